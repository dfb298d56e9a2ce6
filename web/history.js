// The signed-in person's saved conversations: listed in the side panel, reopened into the
// thread, renamed in place, exported as Markdown, deleted. The server keeps them (they
// survive a reload or a restart) and shows each person only their own.

import { api, request } from './api.js';
import { t, tr, trAttr } from './i18n.js';

const $ = (id) => document.getElementById(id);

export class History {
  /** `open(conversation)` shows a reopened conversation; `current()` is the id on screen. */
  constructor({ open, current, onDeleted }) {
    this.open = open;
    this.current = current;
    this.onDeleted = onDeleted;
    this.list = $('history-list');
    this.status = $('history-status');
    this.items = [];
  }

  async refresh() {
    try {
      this.items = await api.conversations();
    } catch (err) {
      if (err.status === 401) return; // signed out
      tr(this.status, 'history_failed');
      this.status.hidden = false;
      return;
    }
    this.render();
  }

  render() {
    this.list.replaceChildren();
    this.status.hidden = this.items.length > 0;
    if (!this.items.length) tr(this.status, 'history_empty');
    const current = this.current();
    for (const c of this.items) this.list.append(this.item(c, c.id === current));
  }

  item(c, isCurrent) {
    const li = document.createElement('li');
    li.className = 'history-item';
    li.dataset.id = c.id;
    if (isCurrent) li.setAttribute('aria-current', 'true');
    const openBtn = document.createElement('button');
    openBtn.type = 'button';
    openBtn.className = 'history-open';
    openBtn.textContent = c.title;
    openBtn.title = c.title;
    openBtn.addEventListener('click', () => this.reopen(c.id));

    const actions = document.createElement('span');
    actions.className = 'history-actions';
    const rename = iconButton('✎', 'history_rename');
    rename.classList.add('history-rename');
    rename.addEventListener('click', () => this.startRename(li, c));
    const exportLink = document.createElement('a');
    exportLink.className = 'btn btn-ghost icon-btn history-export';
    exportLink.href = `/api/conversations/${encodeURIComponent(c.id)}/export`;
    exportLink.setAttribute('download', '');
    exportLink.textContent = '⤓';
    trAttr(exportLink, 'aria-label', 'history_export');
    trAttr(exportLink, 'title', 'history_export');
    const del = iconButton('✕', 'history_delete');
    del.classList.add('history-delete');
    del.addEventListener('click', () => this.remove(c));
    actions.append(rename, exportLink, del);
    li.append(openBtn, actions);
    return li;
  }

  async reopen(id) {
    try {
      this.open(await api.conversation(id));
      this.render();
    } catch (err) {
      if (err.status === 404) this.refresh();
    }
  }

  startRename(li, c) {
    const input = document.createElement('input');
    input.className = 'history-title-input';
    input.value = c.title;
    input.maxLength = 120;
    trAttr(input, 'aria-label', 'history_rename');
    const done = async (save) => {
      const title = input.value.trim();
      if (save && title && title !== c.title) {
        try {
          await request(`/api/conversations/${encodeURIComponent(c.id)}`, { method: 'PATCH', json: { title } });
          c.title = title;
        } catch {
          // the list below shows what the server has
        }
      }
      this.refresh();
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        done(true);
      } else if (e.key === 'Escape') done(false);
    });
    input.addEventListener('blur', () => done(true), { once: true });
    li.replaceChildren(input);
    input.focus();
    input.select();
  }

  async remove(c) {
    if (!window.confirm(t('history_delete_confirm', { title: c.title }))) return;
    try {
      await request(`/api/conversations/${encodeURIComponent(c.id)}`, { method: 'DELETE' });
    } catch {
      // gone already, or not ours: the refreshed list says which
    }
    if (c.id === this.current()) this.onDeleted();
    this.refresh();
  }
}

function iconButton(symbol, labelKey) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'btn btn-ghost icon-btn';
  b.textContent = symbol;
  trAttr(b, 'aria-label', labelKey);
  trAttr(b, 'title', labelKey);
  return b;
}
