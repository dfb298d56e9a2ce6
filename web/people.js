// The people page, for administrators: every user's role, groups and whether they may sign
// in; adding users; who may see each collection and document (their groups, changed without
// re-indexing); API tokens (made, shown once, revoked). Everything goes through the same
// API as scripts use (/api/users, /api/tokens), so the server enforces who may do it.

import { request } from './api.js';
import { t, tr, trAttr } from './i18n.js';

const $ = (id) => document.getElementById(id);
const ROLES = ['reader', 'editor', 'admin'];
// Documents listed at once in the access section; a filter finds the others.
const MAX_DOCUMENTS_SHOWN = 50;

function groupsOf(text) {
  return text
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean);
}

export class People {
  constructor() {
    this.dialog = $('people');
    this.status = $('people-status');
    $('people-close').addEventListener('click', () => this.dialog.close());
    $('people-add').addEventListener('submit', (e) => {
      e.preventDefault();
      this.addUser();
    });
    $('people-token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.createToken();
    });
    this.documents = [];
    $('people-doc-filter').addEventListener('input', () => this.renderDocuments());
  }

  async open() {
    $('people-token-secret').hidden = true;
    this.status.hidden = true;
    if (!this.dialog.open) this.dialog.showModal();
    await this.refresh();
  }

  say(key, args, isError = true) {
    tr(this.status, key, args);
    this.status.classList.toggle('error', isError);
    this.status.hidden = false;
  }

  async refresh() {
    try {
      const [users, tokens, collections, documents] = await Promise.all([
        request('/api/users'),
        request('/api/tokens'),
        request('/api/collections'),
        request('/api/documents'),
      ]);
      this.renderUsers(users);
      this.renderTokens(tokens);
      this.renderCollections(collections);
      this.documents = documents.documents.filter((d) => d.status === 'indexed');
      this.renderDocuments();
    } catch (err) {
      this.say('people_failed', { message: err.message || err.code });
    }
  }

  renderUsers(users) {
    const list = $('people-users');
    list.replaceChildren();
    for (const u of users) {
      const li = document.createElement('li');
      li.className = 'people-user';
      li.dataset.name = u.name;
      const name = document.createElement('strong');
      name.className = 'people-name';
      name.textContent = u.name;
      const role = document.createElement('select');
      role.className = 'people-role';
      trAttr(role, 'aria-label', 'people_role_of', { name: u.name });
      for (const r of ROLES) {
        const o = document.createElement('option');
        o.value = r;
        tr(o, `role_${r}`);
        o.selected = r === u.role;
        role.append(o);
      }
      const groups = document.createElement('input');
      groups.className = 'people-groups';
      groups.value = u.groups.join(', ');
      groups.spellcheck = false;
      trAttr(groups, 'aria-label', 'people_groups_of', { name: u.name });
      const enabledLabel = document.createElement('label');
      enabledLabel.className = 'people-enabled';
      const enabled = document.createElement('input');
      enabled.type = 'checkbox';
      enabled.checked = !u.disabled;
      enabledLabel.append(enabled, tr(document.createElement('span'), 'people_may_sign_in'));
      const save = document.createElement('button');
      save.type = 'button';
      save.className = 'btn btn-secondary btn-small people-save';
      tr(save, 'people_save');
      save.addEventListener('click', () =>
        this.update(u.name, { role: role.value, groups: groupsOf(groups.value), disabled: !enabled.checked }),
      );
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'btn btn-ghost btn-small people-remove';
      tr(remove, 'people_remove');
      remove.addEventListener('click', () => this.remove(u.name));
      li.append(name, role, groups, enabledLabel, save, remove);
      list.append(li);
    }
  }

  // One row: a name, a note, the groups as an editable list, and a Save button.
  accessRow(name, note, groups, labelKey, onSave) {
    const li = document.createElement('li');
    li.className = 'people-user';
    li.dataset.name = name;
    const title = document.createElement('strong');
    title.className = 'people-name';
    title.textContent = name;
    const count = document.createElement('span');
    count.className = 'people-count';
    count.textContent = note;
    const input = document.createElement('input');
    input.className = 'people-groups';
    input.value = groups.join(', ');
    input.spellcheck = false;
    trAttr(input, 'aria-label', labelKey, { name });
    trAttr(input, 'placeholder', 'people_admins_only');
    const save = document.createElement('button');
    save.type = 'button';
    save.className = 'btn btn-secondary btn-small people-save';
    tr(save, 'people_save');
    save.addEventListener('click', () => onSave(groupsOf(input.value)));
    li.append(title, count, input, save);
    return li;
  }

  renderCollections(collections) {
    const list = $('people-collections');
    list.replaceChildren();
    $('people-collections-none').hidden = collections.length > 0;
    for (const c of collections) {
      list.append(
        this.accessRow(
          c.name,
          t('people_collection_count', { count: c.documents }),
          c.groups || [],
          'people_collection_groups_of',
          (groups) =>
            this.act(
              () =>
                request(`/api/collections/${encodeURIComponent(c.name)}`, {
                  method: 'PATCH',
                  json: { groups },
                }),
              'people_saved',
            ),
        ),
      );
    }
  }

  renderDocuments() {
    const list = $('people-documents');
    list.replaceChildren();
    const needle = $('people-doc-filter').value.trim().toLowerCase();
    const shown = this.documents.filter(
      (d) => !needle || d.name.toLowerCase().includes(needle) || (d.title || '').toLowerCase().includes(needle),
    );
    for (const d of shown.slice(0, MAX_DOCUMENTS_SHOWN)) {
      list.append(
        this.accessRow(d.name, d.collection || '', d.groups || [], 'people_doc_groups_of', (groups) =>
          this.act(
            () => request(`/api/documents/${encodeURIComponent(d.id)}`, { method: 'PATCH', json: { groups } }),
            'people_saved',
          ),
        ),
      );
    }
    if (shown.length > MAX_DOCUMENTS_SHOWN) {
      const more = document.createElement('li');
      more.className = 'people-hint';
      tr(more, 'people_more_documents', { count: shown.length - MAX_DOCUMENTS_SHOWN });
      list.append(more);
    }
  }

  renderTokens(tokens) {
    const list = $('people-tokens');
    list.replaceChildren();
    for (const tok of tokens.filter((x) => !x.revoked)) {
      const li = document.createElement('li');
      li.className = 'people-token';
      const text = document.createElement('span');
      text.textContent = `${tok.label} — ${tok.user} (${t(`role_${tok.role}`)})`;
      const revoke = document.createElement('button');
      revoke.type = 'button';
      revoke.className = 'btn btn-ghost btn-small';
      tr(revoke, 'people_revoke');
      revoke.addEventListener('click', async () => {
        await this.act(() => request(`/api/tokens/${tok.id}`, { method: 'DELETE' }));
      });
      li.append(text, revoke);
      list.append(li);
    }
  }

  async act(fn, doneKey) {
    try {
      await fn();
      if (doneKey) this.say(doneKey, {}, false);
    } catch (err) {
      this.say('people_failed', { message: err.message || err.code });
    }
    await this.refresh();
  }

  addUser() {
    const form = $('people-add');
    const body = {
      name: form.name.value.trim(),
      password: form.password.value,
      role: form.role.value,
      groups: groupsOf(form.groups.value),
    };
    return this.act(async () => {
      await request('/api/users', { method: 'POST', json: body });
      form.reset();
    }, 'people_added');
  }

  update(name, change) {
    return this.act(() => request(`/api/users/${encodeURIComponent(name)}`, { method: 'PATCH', json: change }), 'people_saved');
  }

  remove(name) {
    if (!window.confirm(t('people_remove_confirm', { name }))) return null;
    return this.act(() => request(`/api/users/${encodeURIComponent(name)}`, { method: 'DELETE' }), 'people_removed');
  }

  async createToken() {
    const label = $('people-token-label').value.trim();
    if (!label) return;
    try {
      const made = await request('/api/tokens', { method: 'POST', json: { label } });
      const box = $('people-token-secret');
      box.replaceChildren(tr(document.createElement('span'), 'people_token_once'), document.createElement('br'));
      const code = document.createElement('code');
      code.textContent = made.token;
      box.append(code);
      box.hidden = false;
      $('people-token-label').value = '';
    } catch (err) {
      this.say('people_failed', { message: err.message || err.code });
    }
    await this.refresh();
  }
}
