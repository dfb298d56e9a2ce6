// Same-origin calls to Tanya's HTTP API (docs/api.md) and the one error shape it answers with.

/** An API failure: `code` is the server's error code (or `network` / `http_<status>`). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** The `{error: {code, message}}` body of a failed response, whatever the body turned out to be. */
export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page, an empty body): the status alone must do.
  }
  const err = body?.error;
  return new ApiError(response.status, err?.code || `http_${response.status}`, err?.message || '');
}

/** Parse one `{error: {...}}` object (from an SSE `error` event or an XHR body). */
export function errorFromBody(status, body) {
  const err = body?.error;
  return new ApiError(status, err?.code || `http_${status}`, err?.message || '');
}

// The signed-in session's CSRF token: every write made with the session cookie carries it.
let csrf = null;

/** Remember (or forget, with null) the CSRF token the server gave at sign-in. */
export function setCsrf(token) {
  csrf = token || null;
}

/** The headers a state-changing request sends besides its own. */
export function writeHeaders() {
  return csrf ? { 'X-CSRF-Token': csrf } : {};
}

/** Told when the server says the session is gone (401): the page shows the sign-in screen. */
export function signedOut() {
  setCsrf(null);
  window.dispatchEvent(new CustomEvent('tanya:signed-out'));
}

export async function request(url, { method = 'GET', json, signal } = {}) {
  const init = { method, headers: { Accept: 'application/json' }, signal };
  if (method !== 'GET') Object.assign(init.headers, writeHeaders());
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', String(e.message || e));
  }
  if (!response.ok) {
    const err = await errorFrom(response);
    if (response.status === 401 && url !== '/api/session') signedOut();
    throw err;
  }
  if (response.status === 204) return null;
  return response.json();
}

export const api = {
  session: () => request('/api/session'),
  signIn: (name, password) => request('/api/session', { method: 'POST', json: { name, password } }),
  signOut: () => request('/api/session', { method: 'DELETE' }),
  conversations: () => request('/api/conversations'),
  collections: () => request('/api/collections'),
  conversation: (id) => request(`/api/conversations/${encodeURIComponent(id)}`),
  info: () => request('/api/info'),
  documents: () => request('/api/documents'),
  document: (id) => request(`/api/documents/${encodeURIComponent(id)}`),
  deleteDocument: (id) => request(`/api/documents/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  text: (id) => request(`/api/documents/${encodeURIComponent(id)}/text`),
  sourceUrl: (id) => `/api/documents/${encodeURIComponent(id)}/source`,
};

/**
 * The events of a `text/event-stream` body, as `{event, data}` with `data` still a string.
 * Comments (the server's `: keep-alive`) are yielded as `{event: 'comment'}` so callers can
 * tell a live stream from a stalled one.
 */
export async function* readEventStream(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = '';
  let data = [];
  const takeLine = (line) => {
    if (line === '') {
      if (data.length === 0) {
        event = '';
        return null;
      }
      const out = { event: event || 'message', data: data.join('\n') };
      event = '';
      data = [];
      return out;
    }
    if (line.startsWith(':')) return { event: 'comment', data: line.slice(1).trim() };
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    return null;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      for (;;) {
        const end = buffer.search(/\r\n|\r|\n/);
        // A lone '\r' at the end may be the first half of '\r\n': wait for more.
        if (end < 0 || (buffer[end] === '\r' && end === buffer.length - 1)) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith('\r\n', end) ? 2 : 1));
        const out = takeLine(line);
        if (out) yield out;
      }
    }
    // A final event without its blank line still counts: the server may close right after it.
    const tail = [buffer.replace(/\r$/, ''), ''].map(takeLine).filter(Boolean);
    yield* tail;
  } finally {
    reader.cancel().catch(() => {});
  }
}
