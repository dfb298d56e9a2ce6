// Tanya's browser page: the conversation (questions, streamed answers, sources, citations), the
// mode choice and the language switch. The documents panel is in documents.js, the source
// viewer in viewer.js, the strings in i18n.js.
//
// Everything that comes from the server is put on the page as text (textContent, text nodes):
// answers and passages quote user documents, which may contain markup.

import { api, errorFrom, errorFromBody, readEventStream, setCsrf, signedOut, writeHeaders } from './api.js';
import { Documents } from './documents.js';
import { History } from './history.js';
import { People } from './people.js';
import { detectLang, getLang, onLangChange, setLang, t, tr, trAttr } from './i18n.js';
import { renderMarkdown } from './markdown.js';
import { Viewer } from './viewer.js';

const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  conversationId: null,
  inFlight: null, // {controller, turn}
  session: null, // {name, role, groups, csrf} once signed in
};

let viewer;
let documents;
let history;
let people;

function init() {
  setLang(detectLang(), { persist: false });
  for (const btn of document.querySelectorAll('[data-lang]')) {
    btn.addEventListener('click', () => setLang(btn.dataset.lang));
  }
  onLangChange(syncLangButtons);
  syncLangButtons();

  viewer = new Viewer({ documentFormat: (id) => documents.formatOf(id) });
  documents = new Documents({
    openDocument: (doc) => viewer.open({ docId: doc.id, title: doc.title || doc.name, relPath: doc.name }),
  });

  history = new History({
    open: showConversation,
    current: () => state.conversationId,
    onDeleted: newConversation,
  });

  const form = $('ask-form');
  const question = $('question');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (state.inFlight) stopAsking();
    else ask();
  });
  question.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey) {
      e.preventDefault();
      if (!state.inFlight) ask();
    }
  });
  question.addEventListener('input', autosize);
  $('new-conversation').addEventListener('click', newConversation);

  $('sign-in-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn();
  });
  $('sign-out').addEventListener('click', signOut);
  people = new People();
  $('open-people').addEventListener('click', () => people.open());
  window.addEventListener('tanya:signed-out', showSignIn);
  checkSession();
}

// ---- signing in ---------------------------------------------------------------------------

/** Who is signed in: the page when someone is, the sign-in screen when nobody is. */
async function checkSession() {
  try {
    enterApp(await api.session());
  } catch (err) {
    if (err.status === 401) showSignIn();
    else {
      showSignIn();
      showSignInError(err);
    }
  }
}

function showSignIn() {
  setCsrf(null);
  state.session = null;
  $('app-layout').hidden = true;
  $('account').hidden = true;
  $('sign-in').hidden = false;
  document.body.dataset.auth = 'out';
  $('sign-in-name').focus();
}

function enterApp(session) {
  state.session = session;
  setCsrf(session.csrf);
  $('sign-in').hidden = true;
  $('sign-in-error').hidden = true;
  $('sign-in-password').value = '';
  $('app-layout').hidden = false;
  $('account').hidden = false;
  tr($('account-name'), 'signed_in_as', { name: session.name });
  document.body.dataset.auth = 'in';
  document.body.dataset.role = session.role;
  $('open-people').hidden = session.role !== 'admin';
  // Readers ask; only editors and administrators add documents.
  $('drop-zone').hidden = session.role === 'reader';
  loadInfo();
  documents.refresh();
  history.refresh();
  loadCollections();
}

/** The collections the person may ask within; the choice hides when there are none. */
async function loadCollections() {
  let list = [];
  try {
    list = await api.collections();
  } catch {
    return;
  }
  const select = $('collection');
  const chosen = select.value;
  for (const option of [...select.options].slice(1)) option.remove();
  for (const c of list) {
    const option = document.createElement('option');
    option.value = c.name;
    option.textContent = `${c.name} (${c.documents})`;
    select.append(option);
  }
  select.value = list.some((c) => c.name === chosen) ? chosen : '';
  $('collection-field').hidden = list.length === 0;
}

/** The collection asks and uploads go to ('' for none). */
function chosenCollection() {
  return $('collection')?.value || '';
}

async function signIn() {
  const name = $('sign-in-name').value.trim();
  const password = $('sign-in-password').value;
  if (!name || !password) return;
  const button = $('sign-in-button');
  button.disabled = true;
  try {
    enterApp(await api.signIn(name, password));
  } catch (err) {
    showSignInError(err);
  } finally {
    button.disabled = false;
  }
}

function showSignInError(err) {
  const box = $('sign-in-error');
  if (err.code === 'bad_credentials') tr(box, 'sign_in_bad');
  else if (err.code === 'too_many_sign_ins') {
    const s = /(\d+) s/.exec(err.message)?.[1] ?? '60';
    tr(box, 'sign_in_throttled', { s });
  } else tr(box, 'sign_in_failed', { message: err.message || err.code });
  box.hidden = false;
}

async function signOut() {
  try {
    await api.signOut();
  } catch {
    // Gone already: the sign-in screen is what follows either way.
  }
  newConversation();
  history.items = [];
  history.render();
  showSignIn();
}

/** A saved conversation, reopened: its turns as they were answered, ready for a follow-up. */
function showConversation(conv) {
  stopAsking();
  const thread = $('thread');
  thread.replaceChildren();
  for (const saved of conv.turns) {
    const r = saved.response;
    const turn = new Turn(saved.question, r?.mode || 'extractive');
    thread.append(turn.li);
    if (r) turn.restore(r, saved.created_at);
    else turn.fail({ code: 'withheld', message: '' });
  }
  setConversation(conv.id);
  $('empty-state').hidden = conv.turns.length > 0;
  $('followup-hint').hidden = conv.turns.length === 0;
  thread.lastElementChild?.scrollIntoView({ block: 'start' });
}

function syncLangButtons() {
  for (const btn of document.querySelectorAll('[data-lang]')) {
    btn.setAttribute('aria-pressed', String(btn.dataset.lang === getLang()));
  }
}

function autosize() {
  const q = $('question');
  q.style.height = 'auto';
  q.style.height = `${Math.min(q.scrollHeight + 2, 240)}px`;
}

async function loadInfo() {
  try {
    const info = await api.info();
    state.info = info;
    $('banner').hidden = true;
    applyInfo(info);
  } catch (err) {
    if (err.status === 401) return; // the sign-in screen is shown
    showBanner(err);
    setTimeout(loadInfo, 3000);
  }
}

function applyInfo(info) {
  documents.setInfo(info);
  const gen = $('mode-generative');
  const available = info.generative_available !== false;
  gen.disabled = !available;
  $('mode-note').hidden = available;
  const wanted = available && info.default_mode === 'generative' ? 'generative' : 'extractive';
  const radio = document.querySelector(`input[name="mode"][value="${wanted}"]`);
  if (radio) radio.checked = true;
  if (Number.isFinite(info.max_question_chars) && info.max_question_chars > 0) {
    $('question').maxLength = info.max_question_chars;
  }
  const footer = $('footer-text');
  if (info.version) tr(footer, 'footer', { version: info.version });
  else tr(footer, 'footer_plain');
}

function showBanner(err) {
  const banner = $('banner');
  banner.replaceChildren(errorView(err));
  banner.hidden = false;
}

// ---- asking ---------------------------------------------------------------------------------

function selectedMode() {
  return document.querySelector('input[name="mode"]:checked')?.value || 'extractive';
}

async function ask() {
  const input = $('question');
  const question = input.value.trim();
  if (!question) {
    input.focus();
    return;
  }
  const mode = selectedMode();
  const turn = new Turn(question, mode);
  $('empty-state').hidden = true;
  // Earlier turns keep their answers in view; their source lists fold to one line each.
  for (const details of $('thread').querySelectorAll('.sources')) details.open = false;
  $('thread').append(turn.li);
  $('followup-hint').hidden = false;
  turn.li.scrollIntoView({ block: 'start' });
  input.value = '';
  autosize();

  const controller = new AbortController();
  state.inFlight = { controller, turn };
  setAskButton(true);
  const body = { question, mode };
  if (chosenCollection()) body.collection = chosenCollection();
  if (state.conversationId) body.conversation_id = state.conversationId;

  try {
    const response = await fetch('/api/ask', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...writeHeaders() },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!response.ok) {
      if (response.status === 401) signedOut();
      throw await errorFrom(response);
    }
    const type = response.headers.get('Content-Type') || '';
    if (!type.includes('text/event-stream')) {
      // A server (or proxy) that ignored Accept: the whole answer as JSON.
      const whole = await response.json();
      turn.passages(whole.passages || []);
      if (whole.conversation_id) setConversation(whole.conversation_id);
      turn.final(whole);
      turn.done(whole);
      history.refresh();
      return;
    }
    let finished = false;
    for await (const ev of readEventStream(response.body)) {
      if (ev.event === 'comment') continue; // keep-alive: the ticking clock already says we wait
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        continue; // not ours; the contract only sends JSON
      }
      if (ev.event === 'passages') {
        if (data.conversation_id) setConversation(data.conversation_id);
        turn.passages(data.passages || []);
      } else if (ev.event === 'token') {
        turn.token(data.text || '');
      } else if (ev.event === 'citations') {
        turn.final(data);
      } else if (ev.event === 'done') {
        turn.done(data);
        history.refresh();
        loadCollections();
        finished = true;
        break;
      } else if (ev.event === 'error') {
        turn.fail(errorFromBody(200, data));
        finished = true;
        break;
      }
    }
    if (!finished) {
      if (turn.hasFinal) turn.done({});
      else turn.fail({ code: 'stream_cut', message: '' });
    }
  } catch (err) {
    if (err?.name === 'AbortError') {
      turn.stopped();
    } else {
      turn.fail(err?.code ? err : { code: 'network', message: String(err?.message || '') });
      // Nothing was answered: give the question back so it can be sent again.
      if (!turn.text && !input.value) {
        input.value = question;
        autosize();
      }
    }
  } finally {
    if (state.inFlight?.controller === controller) {
      state.inFlight = null;
      setAskButton(false);
    }
  }
}

function stopAsking() {
  state.inFlight?.controller.abort();
}

function setAskButton(asking) {
  const btn = $('ask-button');
  btn.classList.toggle('stop', asking);
  tr(btn.querySelector('.label'), asking ? 'stop' : 'ask');
  $('ask-form').dataset.state = asking ? 'asking' : 'idle';
}

/** The id that makes the next question a follow-up; mirrored on the thread for tests. */
function setConversation(id) {
  state.conversationId = id;
  if (id) $('thread').dataset.conversationId = id;
  else delete $('thread').dataset.conversationId;
}

function newConversation() {
  stopAsking();
  setConversation(null);
  $('thread').replaceChildren();
  $('empty-state').hidden = false;
  $('followup-hint').hidden = true;
  $('question').focus();
}

/** A localized error: the message for its code, then the server's own words. */
function errorView(err) {
  const box = document.createElement('div');
  box.className = 'error-box';
  box.setAttribute('role', 'alert');
  const title = document.createElement('p');
  title.className = 'error-title';
  const key = `err_${err.code}`;
  tr(title, t(key) === key ? 'err_generic' : key);
  box.append(title);
  if (err.message) {
    const detail = document.createElement('p');
    detail.className = 'error-detail';
    tr(detail, 'server_says', { message: err.message });
    box.append(detail);
  }
  return box;
}

// ---- one question and its answer ------------------------------------------------------------

class Turn {
  constructor(question, mode) {
    this.mode = mode;
    this.started = performance.now();
    this.text = '';
    this.passageList = [];
    this.citations = [];
    this.hasFinal = false;
    this.renderQueued = false;

    const li = (this.li = el('li', 'turn'));
    li.dataset.state = 'searching';
    li.dataset.mode = mode;

    const q = el('div', 'question-bubble');
    const who = tr(el('span', 'visually-hidden'), 'you');
    const qText = el('p', 'question-text');
    qText.textContent = question;
    q.append(who, qText);

    const card = (this.card = el('article', 'answer-card'));
    const head = el('div', 'answer-head');
    const label = tr(el('h3', 'answer-label'), 'answer_label');
    const modeTag = tr(el('span', `mode-tag mode-${mode}`), `mode_${mode}`);
    head.append(label, modeTag);
    this.modeTag = modeTag;
    this.abstainNote = tr(el('p', 'abstain-note'), 'abstained_title');
    this.abstainNote.hidden = true;
    this.uncitedNote = tr(el('p', 'uncited-note'), 'no_citations');
    this.uncitedNote.hidden = true;
    // Set when a generative answer was asked for and the model server failed before its
    // first word: the answer below is quoted from the documents instead.
    this.fallbackNote = el('p', 'fallback-note');
    this.fallbackNote.hidden = true;

    this.status = el('div', 'status');
    this.status.setAttribute('role', 'status');
    this.statusText = el('span', 'status-text');
    this.statusTime = el('span', 'status-time');
    this.status.append(el('span', 'spinner'), this.statusText, this.statusTime);

    this.answer = el('div', 'answer');
    this.answer.setAttribute('aria-live', 'polite');
    this.answer.setAttribute('aria-busy', 'true');
    this.answer.dataset.testid = 'answer';

    this.errorSlot = el('div', 'error-slot');
    this.meta = el('p', 'answer-meta');
    this.meta.hidden = true;
    card.append(head, this.abstainNote, this.fallbackNote, this.status, this.answer, this.uncitedNote, this.errorSlot, this.meta);

    this.sources = el('details', 'sources');
    this.sources.open = true;
    this.sources.hidden = true;
    this.sourcesSummary = el('summary');
    this.sourceList = el('ol', 'source-list');
    this.sources.append(this.sourcesSummary, this.sourceList);

    li.append(q, card, this.sources);
    this.setStatus('status_searching');
    this.timer = setInterval(() => this.tick(), 250);
    this.tick();
  }

  setStatus(key) {
    tr(this.statusText, key);
  }

  tick() {
    const s = Math.floor((performance.now() - this.started) / 1000);
    if (this.shownSeconds !== s) {
      this.shownSeconds = s;
      tr(this.statusTime, 'elapsed', { s });
    }
  }

  passages(list) {
    this.passageList = list;
    this.li.dataset.state = 'thinking';
    this.setStatus(this.mode === 'generative' ? 'status_thinking' : 'status_composing');
    this.sources.hidden = false;
    tr(this.sourcesSummary, 'sources', { n: list.length });
    this.sourceList.replaceChildren(...list.map((p, i) => this.sourceItem(p, i)));
    if (list.length === 0) {
      this.sourceList.replaceChildren(tr(el('li', 'source-empty'), 'no_sources'));
    }
  }

  sourceItem(p, i) {
    const li = el('li', 'source-item');
    li.dataset.docId = p.doc_id;
    li.dataset.relPath = p.rel_path || '';
    const rank = el('span', 'src-rank');
    rank.textContent = String(p.rank ?? i + 1);
    rank.setAttribute('aria-hidden', 'true');
    const body = el('div', 'src-body');
    const open = el('button', 'src-open');
    open.type = 'button';
    open.textContent = p.title || p.rel_path || p.doc_id;
    trAttr(open, 'aria-label', 'open_passage', { rank: p.rank ?? i + 1, title: p.title || p.rel_path });
    open.addEventListener('click', () => {
      const c = this.citations.find((c) => samePassage(c, p));
      viewer.open({
        docId: p.doc_id,
        title: p.title,
        relPath: p.rel_path,
        page: p.page,
        quote: c?.quote,
        passageText: p.text,
        charStart: p.char_start,
        charEnd: p.char_end,
      });
    });
    const loc = el('p', 'src-loc');
    const bits = [document.createTextNode(p.rel_path || '')];
    if (p.page) bits.push(tr(el('span'), 'page_n', { n: p.page }));
    if (p.heading) bits.push(document.createTextNode(p.heading));
    bits.filter((b) => b.textContent).forEach((b, k) => {
      if (k > 0) loc.append(document.createTextNode(' · '));
      loc.append(b);
    });
    const snippet = el('p', 'src-snippet');
    snippet.textContent = p.snippet || (p.text || '').slice(0, 240);
    const cited = el('span', 'src-cited');
    cited.hidden = true;
    body.append(open, loc, snippet);
    li.append(rank, body, cited);
    return li;
  }

  token(piece) {
    if (!piece) return;
    if (this.li.dataset.state !== 'streaming') {
      this.li.dataset.state = 'streaming';
      this.setStatus('status_writing');
    }
    this.text += piece;
    if (!this.renderQueued) {
      this.renderQueued = true;
      requestAnimationFrame(() => {
        this.renderQueued = false;
        if (this.hasFinal) return;
        const follow = isBottomVisible(this.card);
        renderMarkdown(this.answer, this.text, pendingChip);
        if (follow) keepBottomVisible(this.card);
      });
    }
  }

  final(data) {
    this.hasFinal = true;
    this.text = data.answer ?? this.text;
    this.citations = Array.isArray(data.citations) ? data.citations : [];
    const byN = new Map(this.citations.map((c) => [c.n, c]));
    renderMarkdown(this.answer, this.text, (n) => (byN.has(n) ? this.chip(byN.get(n)) : null));
    this.abstained = Boolean(data.abstained);
    const nothingIndexed = Boolean(data.nothing_indexed);
    this.card.classList.toggle('abstained', this.abstained);
    this.card.classList.toggle('nothing-indexed', nothingIndexed);
    this.abstainNote.hidden = !this.abstained;
    // A generated answer that cites nothing is not backed by the documents: say so.
    this.uncitedNote.hidden =
      this.abstained || nothingIndexed || this.citations.length > 0 || !this.text.trim();
    if (nothingIndexed) this.sources.hidden = true;
    if (this.abstained && this.passageList?.length) {
      // What was found does not answer the question: offered, folded, never as sources.
      this.sources.classList.add('closest');
      this.sources.open = false;
      tr(this.sourcesSummary, 'closest_passages', { n: this.passageList.length });
    }
    for (const c of this.citations) {
      const i = this.passageList.findIndex((p) => samePassage(c, p));
      if (i < 0) continue;
      const item = this.sourceList.children[i];
      const badge = item?.querySelector('.src-cited');
      if (!badge) continue;
      item.classList.add('cited');
      const ns = (badge.dataset.ns ? badge.dataset.ns.split(',') : []).concat(String(c.n));
      badge.dataset.ns = ns.join(',');
      tr(badge, 'cited_as', { n: ns.join(', ') });
      badge.hidden = false;
    }
    this.foldSources();
  }

  /** Once answered, the uncited tail of a long source list folds behind one button. */
  foldSources() {
    if (this.moreButton) return;
    const items = [...this.sourceList.querySelectorAll(':scope > .source-item')];
    const extra = items.filter((li, i) => i >= 4 && !li.classList.contains('cited'));
    if (extra.length < 2) return;
    for (const li of extra) li.hidden = true;
    const more = (this.moreButton = el('button', 'btn btn-ghost btn-small more-sources'));
    more.type = 'button';
    tr(more, 'more_sources', { n: extra.length });
    more.addEventListener('click', () => {
      for (const li of extra) li.hidden = false;
      more.remove();
      extra[0].querySelector('.src-open')?.focus();
    });
    this.sources.append(more);
  }

  chip(c) {
    const b = el('button', 'cite');
    b.type = 'button';
    b.textContent = String(c.n);
    b.dataset.n = String(c.n);
    b.dataset.docId = c.doc_id;
    b.dataset.relPath = c.rel_path || '';
    if (c.page) b.dataset.page = String(c.page);
    const title = c.title || c.rel_path || c.doc_id;
    const key = c.page ? 'cite_label' : 'cite_label_nopage';
    trAttr(b, 'aria-label', key, { n: c.n, title, page: c.page });
    trAttr(b, 'title', key, { n: c.n, title, page: c.page });
    b.addEventListener('click', () => {
      const p = this.passageList.find((p) => samePassage(c, p));
      viewer.open({
        docId: c.doc_id,
        title: c.title,
        relPath: c.rel_path,
        page: c.page,
        quote: c.quote,
        passageText: p?.text,
        charStart: c.char_start,
        charEnd: c.char_end,
      });
    });
    return b;
  }

  finishCommon(stateName) {
    clearInterval(this.timer);
    this.foldSources();
    this.status.hidden = true;
    this.answer.setAttribute('aria-busy', 'false');
    this.li.dataset.state = stateName;
  }

  done(data) {
    if (!this.hasFinal) this.final({ answer: this.text, citations: [] });
    this.finishCommon('done');
    this.showFallback(data.fallback);
    const elapsed = (performance.now() - this.started) / 1000;
    const secs = elapsed < 1 ? elapsed.toFixed(2) : elapsed.toFixed(1);
    const parts = [tr(el('span'), `mode_${data.mode || this.mode}`)];
    const ttft = data.timings?.time_to_first_token_ms;
    if (Number.isFinite(ttft)) parts.push(tr(el('span'), 'ttft', { s: (ttft / 1000).toFixed(1) }));
    parts.push(tr(el('span'), 'total_time', { s: secs }));
    this.meta.replaceChildren();
    parts.forEach((p, i) => {
      if (i > 0) this.meta.append(document.createTextNode(' · '));
      this.meta.append(p);
    });
    this.meta.hidden = false;
  }

  /** Says that the model server failed and the answer was quoted instead, and why. */
  showFallback(why) {
    if (!why) return;
    this.fallbackNote.replaceChildren(tr(el('strong'), 'fallback_title'), document.createTextNode(' '));
    const detail = el('span', 'fallback-why');
    detail.textContent = why;
    this.fallbackNote.append(detail);
    this.fallbackNote.hidden = false;
    tr(this.modeTag, 'mode_extractive');
    this.modeTag.className = 'mode-tag mode-extractive';
  }

  /** Shows a saved answer as it was given, dated instead of timed. */
  restore(r, createdAt) {
    this.passages(r.passages || []);
    this.final(r);
    this.finishCommon('done');
    const when = new Date(createdAt * 1000).toLocaleString(document.documentElement.lang);
    this.meta.replaceChildren(tr(el('span'), `mode_${r.mode || this.mode}`), document.createTextNode(' · '),
      tr(el('span'), 'restored_at', { when }));
    this.meta.hidden = false;
  }

  fail(err) {
    this.finishCommon('error');
    this.errorSlot.replaceChildren(errorView(err));
    if (!this.text) this.answer.hidden = true;
  }

  stopped() {
    this.finishCommon('stopped');
    if (this.text && !this.hasFinal) renderMarkdown(this.answer, this.text, pendingChip);
    this.meta.replaceChildren(tr(el('span'), 'stopped'));
    this.meta.hidden = false;
  }
}

function samePassage(c, p) {
  return c.doc_id === p.doc_id && c.char_start === p.char_start && c.char_end === p.char_end;
}

/** While the answer streams, markers are shown but not yet clickable: their citations come last. */
function pendingChip(n) {
  const s = el('span', 'cite cite-pending');
  s.textContent = String(n);
  return s;
}

function el(tag, className) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  return e;
}

function visibleBottom() {
  const composer = $('ask-form');
  const sticky = getComputedStyle(composer).position === 'sticky';
  return sticky ? composer.getBoundingClientRect().top : window.innerHeight;
}

function isBottomVisible(node) {
  return node.getBoundingClientRect().bottom <= visibleBottom() + 4;
}

function keepBottomVisible(node) {
  const overflow = node.getBoundingClientRect().bottom - visibleBottom();
  if (overflow > 0) window.scrollBy({ top: overflow + 8 });
}

init();
