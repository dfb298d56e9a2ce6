// The source viewer: a modal side panel that shows where a citation or passage comes from.
// PDFs are drawn page by page with pdf.js (served from /vendor/pdfjs/) and the cited quote is
// highlighted over the canvas; every other format, and PDFs when pdf.js cannot load, is shown as
// the extracted text with the passage marked and the quote emphasised.

import { api } from './api.js';
import { tr, trAttr } from './i18n.js';

const PDFJS_URL = '/vendor/pdfjs/pdf.min.mjs';
const PDFJS_WORKER_URL = '/vendor/pdfjs/pdf.worker.min.mjs';
const PDFJS_FONTS_URL = '/vendor/pdfjs/standard_fonts/';
// Fragments shorter than this (in letters and digits) match too much by chance.
const MIN_FRAGMENT = 12;
const MAX_CACHED_PDFS = 4;

let pdfjsPromise = null;

/** pdf.js, or null when it is not there (a build without web/node_modules). */
function loadPdfjs() {
  pdfjsPromise ??= import(PDFJS_URL)
    .then((lib) => {
      lib.GlobalWorkerOptions.workerSrc = PDFJS_WORKER_URL;
      return lib;
    })
    .catch((err) => {
      console.warn('pdf.js is unavailable; PDFs are shown as text:', err);
      return null;
    });
  return pdfjsPromise;
}

/** Letters and digits only, case-folded: PDF text items and extracted text differ in spacing,
 * hyphenation, quote marks and ligatures, never in these. */
function fold(s) {
  return s.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
}

/** The whole text, then its sentences and ellipsis-separated pieces, folded and long enough. */
function fragmentsOf(text) {
  if (!text) return [];
  const whole = fold(text);
  const parts = text
    .split(/…|\.\.\.|(?<=[.!?;:])\s+|\n+/)
    .map(fold)
    .filter((f) => f.length >= MIN_FRAGMENT && f !== whole);
  return [whole, ...parts].filter((f) => f.length >= MIN_FRAGMENT || f === whole);
}

/**
 * Which parts of which text items to highlight: `[{item, from, to}]` with `from`/`to` as
 * fractions of the item's folded length. Tries the quote, then the passage text.
 */
export function findHighlights(items, quote, passageText) {
  const folded = items.map((it) => fold(it.str || ''));
  let page = '';
  const owner = [];
  const offset = [];
  folded.forEach((f, i) => {
    for (let k = 0; k < f.length; k++) {
      owner.push(i);
      offset.push(k);
    }
    page += f;
  });
  for (const text of [quote, passageText]) {
    const covered = new Map();
    for (const frag of fragmentsOf(text)) {
      if (!frag) continue;
      const at = page.indexOf(frag);
      if (at < 0) continue;
      for (let c = at; c < at + frag.length; c++) {
        const i = owner[c];
        const span = covered.get(i) ?? [Infinity, -Infinity];
        covered.set(i, [Math.min(span[0], offset[c]), Math.max(span[1], offset[c] + 1)]);
      }
      if (frag.length === fold(text).length) break; // the whole text matched
    }
    if (covered.size === 0 && text) {
      // Last resort: long items that appear in the text as they are.
      const ft = fold(text);
      folded.forEach((f, i) => {
        if (f.length >= MIN_FRAGMENT && ft.includes(f)) covered.set(i, [0, f.length]);
      });
    }
    if (covered.size > 0) {
      return [...covered].map(([i, [a, b]]) => ({
        item: items[i],
        from: a / folded[i].length,
        to: b / folded[i].length,
      }));
    }
  }
  return [];
}

/** Index (in Unicode characters) of `needle` in `hay` (a string), tolerant of whitespace. */
function findChars(hay, needle) {
  if (!needle) return null;
  let at = hay.indexOf(needle);
  let len = needle.length;
  if (at < 0) {
    const words = needle.trim().split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    if (words.length === 0 || words[0] === '') return null;
    const m = new RegExp(words.join('\\s+'), 'u').exec(hay);
    if (!m) return null;
    at = m.index;
    len = m[0].length;
  }
  const start = Array.from(hay.slice(0, at)).length;
  return [start, start + Array.from(hay.slice(at, at + len)).length];
}

export class Viewer {
  constructor({ documentFormat }) {
    this.documentFormat = documentFormat; // (docId) => 'pdf' | 'docx' | … | undefined
    this.dialog = document.getElementById('viewer');
    this.titleEl = document.getElementById('viewer-title');
    this.subtitleEl = document.getElementById('viewer-subtitle');
    this.closeBtn = document.getElementById('viewer-close');
    this.toolbar = document.getElementById('viewer-toolbar');
    this.nav = document.getElementById('viewer-nav');
    this.prevBtn = document.getElementById('viewer-prev');
    this.nextBtn = document.getElementById('viewer-next');
    this.pageLabel = document.getElementById('viewer-page');
    this.toggleBtn = document.getElementById('viewer-toggle');
    this.quoteBox = document.getElementById('viewer-quote');
    this.quoteText = document.getElementById('viewer-quote-text');
    this.statusEl = document.getElementById('viewer-status');
    this.body = document.getElementById('viewer-body');
    this.pdfView = document.getElementById('pdf-view');
    this.pdfPage = document.getElementById('pdf-page');
    this.canvas = document.getElementById('pdf-canvas');
    this.hlLayer = document.getElementById('pdf-highlights');
    this.textView = document.getElementById('text-view');

    this.pdfCache = new Map(); // docId -> Promise<PDFDocumentProxy>
    this.textCache = new Map(); // docId -> Promise<{text, pages, …}>
    this.token = 0;
    this.renderTask = null;

    this.closeBtn.addEventListener('click', () => this.close());
    this.prevBtn.addEventListener('click', () => this.goto(this.pageNum - 1));
    this.nextBtn.addEventListener('click', () => this.goto(this.pageNum + 1));
    this.toggleBtn.addEventListener('click', () => this.toggle());
    // A click on the backdrop (outside the panel) closes, like Esc.
    this.dialog.addEventListener('click', (e) => {
      if (e.target === this.dialog) this.close();
    });
    this.dialog.addEventListener('close', () => this.onClosed());
    let resizeTimer = 0;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (this.dialog.open && this.mode === 'pdf') this.goto(this.pageNum);
      }, 200);
    });
  }

  /**
   * Show a source. `target`: {docId, title, relPath, page, quote, passageText, charStart,
   * charEnd}; all but docId optional (a document opened from the list has no passage).
   */
  async open(target) {
    this.opener = document.activeElement;
    this.target = target;
    const token = ++this.token;
    this.titleEl.textContent = target.title || target.relPath || target.docId;
    this.subtitleEl.replaceChildren(document.createTextNode(target.relPath || ''));
    if (target.page) {
      const sep = document.createTextNode(' · ');
      this.subtitleEl.append(sep, tr(document.createElement('span'), 'page_n', { n: target.page }));
    }
    this.quoteBox.hidden = !target.quote;
    this.quoteText.textContent = target.quote || '';
    this.pdfView.hidden = true;
    this.textView.hidden = true;
    this.textView.replaceChildren();
    this.hlLayer.replaceChildren();
    this.nav.hidden = true;
    this.toggleBtn.hidden = true;
    this.setStatus('viewer_loading');
    if (!this.dialog.open) this.dialog.showModal();
    this.closeBtn.focus();
    this.dialog.dataset.state = 'loading';

    const format = this.documentFormat(target.docId) || extensionOf(target.relPath);
    this.isPdf = format === 'pdf';
    if (this.isPdf) {
      const lib = await loadPdfjs();
      if (token !== this.token) return;
      if (lib) {
        try {
          await this.showPdf(lib, target.page || 1, token);
          return;
        } catch (err) {
          if (token !== this.token) return;
          console.warn('PDF rendering failed; showing text instead:', err);
        }
      }
      this.fallbackNote = true;
    } else {
      this.fallbackNote = false;
    }
    await this.showText(token);
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  onClosed() {
    this.token++;
    this.renderTask?.cancel();
    this.renderTask = null;
    const opener = this.opener;
    this.opener = null;
    if (opener?.isConnected && typeof opener.focus === 'function') opener.focus();
  }

  setStatus(key, args, { error = false } = {}) {
    if (!key) {
      this.statusEl.hidden = true;
      this.statusEl.textContent = '';
      delete this.statusEl.dataset.i18n;
      return;
    }
    this.statusEl.hidden = false;
    this.statusEl.classList.toggle('error', error);
    tr(this.statusEl, key, args);
  }

  async toggle() {
    const token = ++this.token;
    if (this.mode === 'pdf') {
      this.fallbackNote = false;
      await this.showText(token);
    } else {
      const lib = await loadPdfjs();
      if (lib && token === this.token) await this.showPdf(lib, this.pageNum || this.target.page || 1, token);
    }
  }

  async pdfDocument(lib, docId) {
    if (!this.pdfCache.has(docId)) {
      const task = lib.getDocument({
        url: api.sourceUrl(docId),
        isEvalSupported: false,
        standardFontDataUrl: PDFJS_FONTS_URL,
        enableXfa: false,
      });
      const promise = task.promise;
      promise.catch(() => this.pdfCache.delete(docId));
      this.pdfCache.set(docId, promise);
      while (this.pdfCache.size > MAX_CACHED_PDFS) {
        const [oldest, old] = this.pdfCache.entries().next().value;
        this.pdfCache.delete(oldest);
        old.then((d) => d.destroy()).catch(() => {});
      }
    }
    return this.pdfCache.get(docId);
  }

  async showPdf(lib, pageNum, token) {
    this.lib = lib;
    const pdf = await this.pdfDocument(lib, this.target.docId);
    if (token !== this.token) return;
    this.pdf = pdf;
    this.mode = 'pdf';
    this.textView.hidden = true;
    this.pdfView.hidden = false;
    this.nav.hidden = false;
    this.toggleBtn.hidden = false;
    tr(this.toggleBtn, 'viewer_show_text');
    await this.renderPage(Math.min(Math.max(1, pageNum), pdf.numPages), token);
  }

  goto(n) {
    if (this.mode !== 'pdf' || !this.pdf || n < 1 || n > this.pdf.numPages) return;
    const token = this.token;
    this.renderPage(n, token).catch((err) => {
      if (token !== this.token) return;
      console.warn('PDF page rendering failed:', err);
      this.setStatus('viewer_load_failed', undefined, { error: true });
      this.dialog.dataset.state = 'error';
    });
  }

  async renderPage(n, token) {
    const pdf = this.pdf;
    this.pageNum = n;
    this.dialog.dataset.page = String(n);
    tr(this.pageLabel, 'viewer_page', { n, total: pdf.numPages });
    this.prevBtn.disabled = n <= 1;
    this.nextBtn.disabled = n >= pdf.numPages;
    this.dialog.dataset.state = 'loading';
    this.renderTask?.cancel();
    const page = await pdf.getPage(n);
    if (token !== this.token || n !== this.pageNum) return;

    const unscaled = page.getViewport({ scale: 1 });
    const available = Math.max(200, this.pdfView.clientWidth - 2);
    const scale = Math.min(2.5, available / unscaled.width);
    const viewport = page.getViewport({ scale });
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.floor(viewport.width * ratio);
    this.canvas.height = Math.floor(viewport.height * ratio);
    for (const el of [this.canvas, this.pdfPage]) {
      el.style.width = `${Math.floor(viewport.width)}px`;
      el.style.height = `${Math.floor(viewport.height)}px`;
    }
    trAttr(this.canvas, 'aria-label', 'viewer_page', { n, total: pdf.numPages });
    this.hlLayer.replaceChildren();

    const task = page.render({
      canvas: this.canvas,
      canvasContext: this.canvas.getContext('2d'),
      viewport,
      transform: ratio === 1 ? undefined : [ratio, 0, 0, ratio, 0, 0],
    });
    this.renderTask = task;
    try {
      await task.promise;
    } catch (err) {
      if (err?.name === 'RenderingCancelledException') return;
      throw err;
    }
    if (token !== this.token || n !== this.pageNum) return;
    const found = await this.highlight(page, viewport);
    if (token !== this.token || n !== this.pageNum) return;
    const cited = this.target.page || 1;
    if (!found && this.target.quote && n === cited) this.setStatus('viewer_not_on_page');
    else this.setStatus(null);
    this.dialog.dataset.state = 'ready';
    this.dialog.dataset.view = 'pdf';
  }

  async highlight(page, viewport) {
    const { quote, passageText } = this.target;
    if (!quote && !passageText) return false;
    const content = await page.getTextContent();
    const items = content.items.filter((it) => typeof it.str === 'string' && it.str.length > 0);
    const spans = findHighlights(items, quote, passageText);
    const Util = this.lib.Util;
    let first = null;
    for (const { item, from, to } of spans) {
      const tx = Util.transform(viewport.transform, item.transform);
      const fontHeight = Math.hypot(tx[2], tx[3]);
      const ascent = content.styles[item.fontName]?.ascent || 0.8;
      const width = item.width * viewport.scale;
      const box = document.createElement('div');
      box.className = 'highlight';
      box.setAttribute('aria-hidden', 'true');
      box.style.left = `${tx[4] + width * from - 1}px`;
      box.style.top = `${tx[5] - fontHeight * ascent - 1}px`;
      box.style.width = `${Math.max(2, width * (to - from)) + 2}px`;
      box.style.height = `${fontHeight * 1.15 + 2}px`;
      this.hlLayer.append(box);
      first ??= box;
    }
    if (first) first.scrollIntoView({ block: 'center', inline: 'nearest' });
    return spans.length > 0;
  }

  async showText(token) {
    this.mode = 'text';
    this.pdfView.hidden = true;
    this.nav.hidden = true;
    this.toggleBtn.hidden = !this.isPdf || this.fallbackNote;
    if (this.isPdf) tr(this.toggleBtn, 'viewer_show_pdf');
    this.setStatus('viewer_loading');
    const docId = this.target.docId;
    if (!this.textCache.has(docId)) {
      const p = api.text(docId);
      p.catch(() => this.textCache.delete(docId));
      this.textCache.set(docId, p);
    }
    let doc;
    try {
      doc = await this.textCache.get(docId);
    } catch (err) {
      if (token !== this.token) return;
      this.setStatus('viewer_load_failed', undefined, { error: true });
      this.dialog.dataset.state = 'error';
      return;
    }
    if (token !== this.token) return;
    this.renderText(doc);
    this.textView.hidden = false;
    if (this.fallbackNote) this.setStatus('viewer_pdf_unavailable');
    else this.setStatus(null);
    this.dialog.dataset.state = 'ready';
    this.dialog.dataset.view = 'text';
    const mark = this.textView.querySelector('mark');
    if (mark) mark.scrollIntoView({ block: 'center' });
    else this.textView.scrollTop = 0;
  }

  /** The text with the passage (`charStart..charEnd`, in Unicode characters) in `<mark>`. */
  renderText(doc) {
    const chars = Array.from(doc.text || '');
    const n = chars.length;
    const { charStart, charEnd, quote } = this.target;
    let start = Number.isInteger(charStart) ? Math.max(0, Math.min(n, charStart)) : null;
    let end = Number.isInteger(charEnd) ? Math.max(0, Math.min(n, charEnd)) : null;
    if (start === null || end === null || end <= start) start = end = null;

    let quoteRange = null;
    if (quote) {
      if (start !== null) {
        const inPassage = findChars(chars.slice(start, end).join(''), quote);
        if (inPassage) quoteRange = [start + inPassage[0], start + inPassage[1]];
      }
      if (!quoteRange) quoteRange = findChars(doc.text || '', quote);
      if (quoteRange && start === null) [start, end] = quoteRange;
    }

    const cuts = new Set([0, n]);
    const pageAt = new Map();
    const pages = Array.isArray(doc.pages) && doc.pages.length > 1 ? doc.pages : [];
    for (const p of pages) {
      if (Number.isInteger(p.char_start) && p.char_start > 0 && p.char_start < n) {
        cuts.add(p.char_start);
        pageAt.set(p.char_start, p.page);
      }
    }
    for (const c of [start, end, ...(quoteRange || [])]) if (c !== null) cuts.add(c);
    const points = [...cuts].sort((a, b) => a - b);

    const root = document.createDocumentFragment();
    if (pages.length) root.append(pageSeparator(pages[0].page));
    let mark = null;
    for (let i = 0; i + 1 < points.length; i++) {
      const [a, b] = [points[i], points[i + 1]];
      if (pageAt.has(a)) {
        mark = null;
        root.append(pageSeparator(pageAt.get(a)));
      }
      const piece = chars.slice(a, b).join('');
      const inPassage = start !== null && a >= start && b <= end;
      const inQuote = quoteRange && a >= quoteRange[0] && b <= quoteRange[1];
      if (!inPassage && !inQuote) {
        mark = null;
        root.append(document.createTextNode(piece));
        continue;
      }
      if (!mark) {
        mark = document.createElement('mark');
        mark.className = 'passage';
        root.append(mark);
      }
      if (inQuote) {
        const strong = document.createElement('strong');
        strong.className = 'quote';
        strong.textContent = piece;
        mark.append(strong);
      } else {
        mark.append(document.createTextNode(piece));
      }
    }
    this.textView.replaceChildren(root);
  }
}

function pageSeparator(page) {
  const sep = document.createElement('span');
  sep.className = 'page-sep';
  sep.setAttribute('role', 'separator');
  return tr(sep, 'viewer_page_only', { n: page });
}

function extensionOf(path) {
  const m = /\.([a-z0-9]+)$/i.exec(path || '');
  return m ? m[1].toLowerCase() : undefined;
}
