// The documents panel: what is indexed (with each document's status), deleting, and uploading by
// drag and drop or file picker with per-file progress, followed until the file is indexed or
// rejected.

import { api, ApiError, errorFromBody, writeHeaders } from './api.js';
import { t, tr, trAttr } from './i18n.js';

const POLL_MS = 1000;
const FINAL = new Set(['indexed', 'rejected']);

export class Documents {
  constructor({ openDocument }) {
    this.openDocument = openDocument; // (doc) => void
    this.docs = [];
    this.maxUploadMb = null;
    this.loaded = false;
    this.listTimer = 0;
    this.uploadChain = Promise.resolve();

    this.countEl = document.getElementById('docs-count');
    this.listEl = document.getElementById('doc-list');
    this.listStatus = document.getElementById('doc-list-status');
    this.dropZone = document.getElementById('drop-zone');
    this.fileInput = document.getElementById('file-input');
    this.hintEl = document.getElementById('upload-hint');
    this.uploadsEl = document.getElementById('uploads');
    this.clearBtn = document.getElementById('clear-uploads');

    this.fileInput.addEventListener('change', () => {
      const files = [...this.fileInput.files];
      this.fileInput.value = '';
      this.upload(files);
    });
    this.clearBtn.addEventListener('click', () => {
      for (const li of [...this.uploadsEl.children]) if (li.dataset.final === 'true') li.remove();
      this.updateClearButton();
    });
    this.bindDropZone();
  }

  setInfo(info) {
    this.maxUploadMb = Number.isFinite(info?.max_upload_mb) ? info.max_upload_mb : null;
    if (this.maxUploadMb) tr(this.hintEl, 'upload_hint', { mb: this.maxUploadMb });
    else tr(this.hintEl, 'upload_hint_nolimit');
  }

  formatOf(docId) {
    return this.docs.find((d) => d.id === docId)?.format;
  }

  bindDropZone() {
    let depth = 0;
    const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
    this.dropZone.addEventListener('dragenter', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth++;
      this.dropZone.classList.add('dragging');
    });
    this.dropZone.addEventListener('dragover', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
    });
    this.dropZone.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) this.dropZone.classList.remove('dragging');
    });
    this.dropZone.addEventListener('drop', (e) => {
      e.preventDefault();
      depth = 0;
      this.dropZone.classList.remove('dragging');
      const files = [...(e.dataTransfer?.files || [])];
      if (files.length) this.upload(files);
    });
    // A file dropped beside the zone must not make the browser navigate away to it.
    for (const type of ['dragover', 'drop']) {
      window.addEventListener(type, (e) => {
        if (!this.dropZone.contains(e.target) && hasFiles(e)) {
          e.preventDefault();
          if (e.dataTransfer) e.dataTransfer.dropEffect = 'none';
        }
      });
    }
  }

  // ---- the list --------------------------------------------------------------------------

  async refresh() {
    clearTimeout(this.listTimer);
    try {
      const body = await api.documents();
      this.docs = Array.isArray(body.documents) ? body.documents : [];
      this.loaded = true;
      this.listStatus.hidden = true;
      this.render();
    } catch (err) {
      if (err.status === 401) return; // signed out: the sign-in screen is shown
      if (!this.loaded) {
        this.listStatus.hidden = false;
        this.listStatus.classList.add('error');
        tr(this.listStatus, 'docs_load_failed');
      }
      this.listTimer = setTimeout(() => this.refresh(), 5 * POLL_MS);
      return;
    }
    if (this.docs.some((d) => !FINAL.has(d.status))) {
      this.listTimer = setTimeout(() => this.refresh(), POLL_MS);
    }
  }

  render() {
    tr(this.countEl, 'docs_count', { n: this.docs.length });
    if (this.docs.length === 0) {
      this.listStatus.hidden = false;
      this.listStatus.classList.remove('error');
      tr(this.listStatus, 'docs_empty');
    }
    const existing = new Map([...this.listEl.children].map((li) => [li.dataset.docId, li]));
    const sorted = [...this.docs].sort(
      (a, b) => (a.title || a.name || '').localeCompare(b.title || b.name || '', undefined, { sensitivity: 'base' }),
    );
    let prev = null;
    for (const doc of sorted) {
      let li = existing.get(doc.id);
      existing.delete(doc.id);
      const sig = JSON.stringify(doc);
      if (!li) {
        li = document.createElement('li');
        li.className = 'doc';
        li.dataset.docId = doc.id;
      }
      // Rebuilding only what changed keeps focus (and an open delete confirmation) in place.
      if (li.dataset.sig !== sig && li.dataset.confirming !== 'true') {
        li.dataset.sig = sig;
        this.fillDoc(li, doc);
      }
      const want = prev ? prev.nextSibling : this.listEl.firstChild;
      if (want !== li) this.listEl.insertBefore(li, want);
      prev = li;
    }
    for (const li of existing.values()) li.remove();
  }

  fillDoc(li, doc) {
    li.dataset.status = doc.status;
    li.dataset.name = doc.name || '';
    const name = doc.title || doc.name || doc.id;

    const head = document.createElement('div');
    head.className = 'doc-head';
    let titleEl;
    if (doc.status === 'indexed') {
      titleEl = document.createElement('button');
      titleEl.type = 'button';
      titleEl.className = 'doc-title linklike';
      titleEl.textContent = name;
      trAttr(titleEl, 'title', 'open_document', { name: doc.name || name });
      titleEl.addEventListener('click', () => this.openDocument(doc));
    } else {
      titleEl = document.createElement('span');
      titleEl.className = 'doc-title';
      titleEl.textContent = name;
    }
    const badge = document.createElement('span');
    badge.className = `badge badge-${doc.status}`;
    tr(badge, `status_${doc.status}`);
    head.append(titleEl, badge);

    const meta = document.createElement('p');
    meta.className = 'doc-meta';
    const bits = [];
    if (doc.name && doc.name !== name) bits.push(text(doc.name));
    if (doc.format) bits.push(text(String(doc.format).toUpperCase()));
    if (Number.isFinite(doc.pages) && doc.pages > 0) bits.push(tr(document.createElement('span'), 'doc_pages', { n: doc.pages }));
    if (doc.status === 'indexed' && Number.isFinite(doc.chunks)) {
      bits.push(tr(document.createElement('span'), 'doc_chunks', { n: doc.chunks }));
    }
    if (Number.isFinite(doc.size)) bits.push(text(formatSize(doc.size)));
    if (doc.origin === 'upload') bits.push(tr(document.createElement('span'), 'doc_uploaded'));
    bits.forEach((b, i) => {
      if (i > 0) meta.append(text(' · '));
      meta.append(b);
    });

    const parts = [head];
    if (doc.status === 'rejected') {
      const why = document.createElement('p');
      why.className = 'doc-reason';
      why.textContent = [doc.reason, doc.message].filter(Boolean).join(': ');
      parts.push(why);
    }

    const actions = document.createElement('div');
    actions.className = 'doc-actions';
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'btn btn-ghost btn-small doc-delete';
    tr(del, 'delete');
    trAttr(del, 'aria-label', 'delete_label', { name: doc.name || name });
    del.addEventListener('click', () => this.confirmDelete(li, doc, actions));
    actions.append(del);
    const foot = document.createElement('div');
    foot.className = 'doc-foot';
    foot.append(meta, actions);
    parts.push(foot);
    li.replaceChildren(...parts);
  }

  confirmDelete(li, doc, actions) {
    li.dataset.confirming = 'true';
    const box = document.createElement('div');
    box.className = 'confirm';
    box.setAttribute('role', 'group');
    const question = tr(document.createElement('span'), 'confirm_delete');
    question.id = `confirm-${doc.id}`;
    box.setAttribute('aria-labelledby', question.id);
    const yes = document.createElement('button');
    yes.type = 'button';
    yes.className = 'btn btn-danger btn-small';
    tr(yes, 'confirm_yes');
    const no = document.createElement('button');
    no.type = 'button';
    no.className = 'btn btn-ghost btn-small';
    tr(no, 'cancel');
    box.append(question, yes, no);
    const old = [...actions.childNodes];
    actions.replaceChildren(box);
    const restore = () => {
      li.dataset.confirming = 'false';
      actions.replaceChildren(...old);
      old.find((n) => n.tagName === 'BUTTON')?.focus();
    };
    no.addEventListener('click', restore);
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        restore();
      }
    });
    yes.addEventListener('click', async () => {
      yes.disabled = no.disabled = true;
      tr(yes, 'deleting');
      try {
        await api.deleteDocument(doc.id);
        li.dataset.confirming = 'false';
        const next = li.nextElementSibling || li.previousElementSibling;
        this.docs = this.docs.filter((d) => d.id !== doc.id);
        li.remove();
        this.render();
        (next?.querySelector('button') || this.fileInput).focus();
        this.refresh();
      } catch (err) {
        li.dataset.confirming = 'false';
        actions.replaceChildren(...old);
        const msg = document.createElement('p');
        msg.className = 'doc-reason';
        msg.setAttribute('role', 'alert');
        tr(msg, 'delete_failed');
        if (err.message) msg.append(text(` ${err.message}`));
        actions.prepend(msg);
      }
    });
    no.focus();
  }

  // ---- uploads ---------------------------------------------------------------------------

  upload(files) {
    for (const file of files) {
      const row = new UploadRow(file, this);
      this.uploadsEl.append(row.li);
      this.uploadsEl.hidden = false;
      this.uploadChain = this.uploadChain.then(() => row.run());
    }
    this.updateClearButton();
  }

  updateClearButton() {
    const rows = [...this.uploadsEl.children];
    this.clearBtn.hidden = !rows.some((li) => li.dataset.final === 'true');
    this.uploadsEl.hidden = rows.length === 0;
  }
}

class UploadRow {
  constructor(file, panel) {
    this.file = file;
    this.panel = panel;
    const li = (this.li = document.createElement('li'));
    li.className = 'upload';
    li.dataset.name = file.name;
    const head = document.createElement('div');
    head.className = 'upload-head';
    const name = document.createElement('span');
    name.className = 'upload-name';
    name.textContent = file.name;
    const size = document.createElement('span');
    size.className = 'upload-size';
    size.textContent = formatSize(file.size);
    head.append(name, size);
    this.progress = document.createElement('progress');
    this.progress.max = 100;
    this.progress.value = 0;
    trAttr(this.progress, 'aria-label', 'upload_progress_label', { name: file.name });
    this.status = document.createElement('p');
    this.status.className = 'upload-status';
    this.detail = document.createElement('p');
    this.detail.className = 'upload-detail';
    this.detail.hidden = true;
    li.append(head, this.progress, this.status, this.detail);
    this.set('waiting', 'up_waiting');
  }

  set(state, key, args, detail) {
    this.li.dataset.state = state;
    tr(this.status, key, args);
    const final = ['indexed', 'rejected', 'error'].includes(state);
    this.li.dataset.final = String(final);
    if (detail) {
      this.detail.hidden = false;
      tr(this.detail, 'server_says', { message: detail });
    }
    if (final) this.panel.updateClearButton();
  }

  async run() {
    const limit = this.panel.maxUploadMb;
    if (limit && this.file.size > limit * 1024 * 1024) {
      this.progress.hidden = true;
      this.set('error', 'up_too_large', { mb: limit });
      return;
    }
    let doc;
    try {
      const body = await this.send();
      doc = body?.documents?.[0];
    } catch (err) {
      this.progress.hidden = true;
      this.failed(err);
      return;
    }
    this.progress.value = 100;
    if (!doc?.id) {
      this.set('error', 'up_failed');
      return;
    }
    this.li.dataset.docId = doc.id;
    this.panel.refresh();
    // Not awaited: the next file uploads while this one waits for its turn to be indexed.
    this.follow(doc);
  }

  failed(err) {
    const limit = this.panel.maxUploadMb;
    if (err.code === 'payload_too_large' || err.status === 413) {
      this.set('error', limit ? 'up_too_large' : 'err_payload_too_large', { mb: limit }, err.message);
    } else if (err.code === 'unsupported_media_type' || err.status === 415) {
      this.set('error', 'up_unsupported', undefined, err.message);
    } else if (err.code === 'network' && limit && this.file.size > limit * 1024 * 1024) {
      // The server may cut the connection of an oversized upload before answering 413.
      this.set('error', 'up_too_large', { mb: limit });
    } else {
      const key = `err_${err.code}`;
      this.set('error', t(key) !== key ? key : 'up_failed', undefined, err.message);
    }
  }

  send() {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/api/documents');
      xhr.setRequestHeader('Accept', 'application/json');
      for (const [k, v] of Object.entries(writeHeaders())) xhr.setRequestHeader(k, v);
      xhr.upload.addEventListener('progress', (e) => {
        if (!e.lengthComputable) return;
        const pct = Math.round((100 * e.loaded) / e.total);
        this.progress.value = pct;
        this.set('uploading', 'up_uploading', { pct });
      });
      xhr.addEventListener('load', () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          // Leave body null: the status decides.
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body);
        else reject(errorFromBody(xhr.status, body));
      });
      xhr.addEventListener('error', () => reject(new ApiError(0, 'network', '')));
      xhr.addEventListener('abort', () => reject(new ApiError(0, 'network', '')));
      const form = new FormData();
      // The collection chosen beside the question box, before the file (the server reads
      // fields in order).
      const collection = document.getElementById('collection')?.value;
      if (collection) form.append('collection', collection);
      form.append('file', this.file, this.file.name);
      this.set('uploading', 'up_uploading', { pct: 0 });
      xhr.send(form);
    });
  }

  /** Poll the document until it is indexed or rejected (the server ingests one at a time). */
  async follow(doc) {
    let failures = 0;
    for (;;) {
      this.show(doc);
      if (FINAL.has(doc.status)) {
        this.panel.refresh();
        return;
      }
      await sleep(POLL_MS);
      try {
        doc = await api.document(doc.id);
        failures = 0;
      } catch (err) {
        if (err.code === 'not_found' || ++failures >= 10) {
          this.failed(err);
          return;
        }
      }
    }
  }

  show(doc) {
    this.progress.hidden = doc.status !== 'queued' && doc.status !== 'indexing';
    if (!this.progress.hidden) this.progress.removeAttribute('value'); // indeterminate while indexing
    switch (doc.status) {
      case 'queued':
        this.set('queued', 'up_queued');
        break;
      case 'indexing':
        this.set('indexing', 'up_indexing');
        break;
      case 'indexed':
        this.set('indexed', 'up_indexed', { n: doc.chunks ?? 0 });
        break;
      case 'rejected':
        this.set('rejected', 'up_rejected', { message: doc.message || doc.reason || '' });
        break;
      default:
        this.set('queued', 'up_queued');
    }
  }
}

function text(s) {
  return document.createTextNode(s);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

export function formatSize(bytes) {
  if (!Number.isFinite(bytes)) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
