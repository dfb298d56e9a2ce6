// End-to-end tests of the browser page against the real `tanya serve`, driven through Debian's
// Chromium with playwright-core (installed in web/node_modules: `cd web && npm ci`).
//
//   source scripts/env.sh && node --test tests/browser/
//
// The suite builds its own world: a temporary data directory, a folder with a few sample
// documents ingested by `tanya ingest`, and `tanya serve --bind 127.0.0.1:0`. Screenshots go to
// artifacts/browser/. Every request the page makes is recorded and must stay on the server's
// origin; a Content-Security-Policy violation or an uncaught page error fails the run.
//
// Environment:
//   TANYA_BIN               the binary (default ~/.cache/tanya/target/release/tanya)
//   TANYA_SAMPLES_DIR       the sample corpus (default samples/corpus; made by
//                           `python3 scripts/make_samples.py --out samples/corpus --quiet`)
//   TANYA_BROWSER_BASE_URL  test an already running server (or a mock) instead of spawning one;
//                           sign in there as TANYA_BROWSER_USER with TANYA_BROWSER_PASSWORD
//   CHROMIUM                the browser (default /usr/bin/chromium)

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'web', 'package.json'));
const { chromium } = require('playwright-core');

const BIN = process.env.TANYA_BIN || path.join(os.homedir(), '.cache/tanya/target/release/tanya');
const SAMPLES = process.env.TANYA_SAMPLES_DIR || path.join(ROOT, 'samples/corpus');
const BASE_OVERRIDE = process.env.TANYA_BROWSER_BASE_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'artifacts', 'browser');
const SAMPLE_FILES = ['cuti-tahunan.pdf', 'cuti-sakit.docx', 'travel-claims.pdf'];

const Q_LEAVE = 'Berapa hari cuti tahunan selepas 3 tahun berkhidmat?';
const ANSWER_TIMEOUT = 90_000; // generation on a busy 2-core machine: ~7 s to the first token
const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  // Without these Chromium keeps calling home, which a closed network answers with errors.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let base; // "http://127.0.0.1:PORT"
let origin;
// The first administrator: made by the server's first start, its password left in a file.
let adminName = process.env.TANYA_BROWSER_USER || 'admin';
let adminPassword = process.env.TANYA_BROWSER_PASSWORD || '';
let server; // the spawned `tanya serve`
let serverLog = '';
let workDir;
let browser;
const requests = []; // {test, url, method}
const violations = []; // CSP violations, from the page and from Chromium's console
const pageErrors = [];
const consoleErrors = [];
let currentTest = '(setup)';
const otherOrigins = new Map(); // test → the origin of the server of its own

// ---- the server ---------------------------------------------------------------------------

function run(cmd, args, { env, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${code ?? signal}:\n${out}`));
    });
  });
}

async function startServer() {
  assert.ok(
    fs.existsSync(BIN),
    `no tanya binary at ${BIN}: build it (scripts/test.sh) or set TANYA_BIN (source scripts/env.sh)`,
  );
  for (const f of SAMPLE_FILES) {
    assert.ok(
      fs.existsSync(path.join(SAMPLES, f)),
      `missing ${f} in ${SAMPLES}: python3 scripts/make_samples.py --out samples/corpus --quiet`,
    );
  }
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tanya-browser-'));
  const dataDir = path.join(workDir, 'data');
  const docsDir = path.join(workDir, 'docs');
  fs.mkdirSync(docsDir);
  for (const f of SAMPLE_FILES) fs.copyFileSync(path.join(SAMPLES, f), path.join(docsDir, f));

  const env = { ...process.env, TANYA__GENERATOR__MAX_NEW_TOKENS: '40' };
  await run(BIN, ['--data-dir', dataDir, 'ingest', docsDir], { env, timeoutMs: 300_000 });

  const launched = await launch('main', dataDir, env, (d) => (serverLog += d));
  server = launched.proc;
  base = launched.url;
  assert.match(serverLog, /First start: sign in as `admin` with the password in /);
  adminPassword = fs.readFileSync(path.join(dataDir, 'first-admin-password.txt'), 'utf8').trim();
  assert.equal(adminPassword.length, 20);
}

/** Starts `tanya serve` on `dataDir` with `env`, feeding its output to `onLog`; resolves
 * with the process and its URL once it is ready (its URL printed, /readyz answering). */
async function launch(name, dataDir, env, onLog) {
  const proc = spawn(BIN, ['--data-dir', dataDir, 'serve', '--bind', '127.0.0.1:0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL from the ${name} server in 120 s:\n${log}`)), 120_000);
    // "Tanya is serving on http://127.0.0.1:PORT/" (looked for on stderr too, should logging move).
    const scan = (d) => {
      log += d;
      onLog(d);
      const m = /http:\/\/127\.0\.0\.1:\d+/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    };
    proc.stdout.on('data', scan);
    proc.stderr.on('data', scan);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the ${name} server exited ${code} before serving:\n${log}`));
    });
  });
  // The URL is printed before the models may be loaded: wait for readiness.
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    assert.ok(Date.now() < deadline, `the ${name} server not ready within 180 s:\n${log}`);
    await sleep(500);
  }
  return { proc, url };
}

/** A second `tanya serve` of its own (data directory, documents, environment), for a test
 * that needs another configuration; stopped by `stop()`. */
async function startOtherServer(name, files, extraEnv) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tanya-browser-${name}-`));
  const dataDir = path.join(dir, 'data');
  const docsDir = path.join(dir, 'docs');
  fs.mkdirSync(docsDir);
  for (const f of files) fs.copyFileSync(path.join(SAMPLES, f), path.join(docsDir, f));
  const env = { ...process.env, ...extraEnv };
  await run(BIN, ['--data-dir', dataDir, 'ingest', docsDir], { env, timeoutMs: 300_000 });
  let log = '';
  const { proc, url } = await launch(name, dataDir, env, (d) => (log += d));
  const password = fs.readFileSync(path.join(dataDir, 'first-admin-password.txt'), 'utf8').trim();
  const stop = async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { url, password, stop, log: () => log };
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort() {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function stopServer() {
  if (server && server.exitCode !== null) {
    console.error(`tanya serve had exited (${server.exitCode}); its last output:\n${serverLog.slice(-4000)}`);
  } else if (server) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
}

// ---- the browser --------------------------------------------------------------------------

/** A fresh context and page, with every request, CSP violation and page error recorded. */
async function openPage({
  viewport = { width: 1280, height: 860 },
  locale = 'ms-MY',
  signIn = true,
  at = base,
  user = adminName,
  password = adminPassword,
} = {}) {
  const context = await browser.newContext({ viewport, locale, acceptDownloads: false });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'}`);
    });
  });
  const page = await context.newPage();
  page.on('request', (r) => requests.push({ test: currentTest, url: r.url(), method: r.method() }));
  page.on('console', (m) => {
    const text = m.text();
    if (/Content[- ]Security[- ]Policy|CSP violation/i.test(text)) violations.push(`${currentTest}: ${text}`);
    else if (m.type() === 'error') consoleErrors.push(`${currentTest}: ${text}`);
  });
  page.on('pageerror', (e) => pageErrors.push(`${currentTest}: ${e.message}`));
  await page.goto(`${at}/`);
  if (!signIn) return page;
  await signInAs(page, user, password);
  await page.locator('#doc-list .doc').first().waitFor({ timeout: 30_000 });
  return page;
}

/** Sign in through the sign-in screen. */
async function signInAs(page, name, password) {
  await page.locator('#sign-in-form').waitFor({ timeout: 30_000 });
  await page.locator('#sign-in-name').fill(name);
  await page.locator('#sign-in-password').fill(password);
  await page.locator('#sign-in-button').click();
  await page.locator('#app-layout').waitFor({ state: 'visible', timeout: 30_000 });
}

/** A screenshot of what the user sees (the composer is sticky, so a full-page capture would
 * show it over the middle of the thread), or of the whole page with `full`. */
async function shot(page, name, { full = false, scrollTo } = {}) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  if (scrollTo) await scrollTo.evaluate((e) => e.scrollIntoView({ block: 'start' }));
  await page.screenshot({ path: file, fullPage: full });
  return path.relative(ROOT, file);
}

/** Ask `question` in `mode` and wait for the turn to finish; returns the turn's locator. */
async function ask(page, question, { mode = 'extractive', wait = true, submit = 'enter' } = {}) {
  await page.locator(`input[name="mode"][value="${mode}"]`).check();
  const turns = await page.locator('#thread > .turn').count();
  await page.locator('#question').fill(question);
  if (submit === 'enter') await page.locator('#question').press('Enter');
  else await page.locator('#ask-button').click();
  const turn = page.locator('#thread > .turn').nth(turns);
  await turn.waitFor();
  if (wait) await finished(turn);
  return turn;
}

async function finished(turn) {
  await turn.page().waitForFunction(
    (el) => ['done', 'error', 'stopped'].includes(el.dataset.state),
    await turn.elementHandle(),
    { timeout: ANSWER_TIMEOUT },
  );
  const state = await turn.getAttribute('data-state');
  if (state === 'error') {
    assert.fail(`the answer failed: ${await turn.locator('.error-box').innerText()}`);
  }
}

/** Make every source of a turn visible (the uncited tail folds behind a button). */
async function unfoldSources(turn) {
  const more = turn.locator('.more-sources');
  if (await more.count()) await more.click();
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// ---- the tests ----------------------------------------------------------------------------

describe('browser page', { timeout: 900_000 }, () => {
  let page; // shared by the first two tests: the viewer opens citations of the first answer

  before(async () => {
    if (BASE_OVERRIDE) base = BASE_OVERRIDE.replace(/\/+$/, '');
    else await startServer();
    origin = new URL(base).origin;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  });

  after(async () => {
    await browser?.close();
    await stopServer();
  });

  test('an extractive question: sources at once, then a cited answer', { timeout: 120_000 }, async (t) => {
    currentTest = 'extractive';
    page = await openPage();
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'ms');
    const turn = await ask(page, Q_LEAVE, { wait: false, submit: 'button' });
    await turn.locator('.source-item').first().waitFor({ timeout: 30_000 });
    const sources = await turn.locator('.source-item').count();
    await finished(turn);
    const answer = await turn.locator('.answer').innerText();
    assert.match(answer, /16 hari/, `answer: ${answer}`);
    const chips = turn.locator('.answer button.cite');
    assert.ok((await chips.count()) >= 1, 'no citation chip in the answer');
    const label = await chips.first().getAttribute('aria-label');
    assert.match(label, /Rujukan \d+: .+/);
    t.diagnostic(`${sources} sources; answer: ${answer.replace(/\s+/g, ' ').slice(0, 120)}…`);
    t.diagnostic(`screenshot ${await shot(page, 'ask-extractive', { scrollTo: turn })}`);
  });

  test('a question the documents do not answer: no sources, the closest passages folded', { timeout: 120_000 }, async (t) => {
    currentTest = 'abstain';
    const p = await openPage();
    const turn = await ask(p, 'Siapakah yang memenangi Piala Dunia bola sepak 2018?');
    assert.ok(await turn.locator('.abstain-note').isVisible(), 'no "not found" note');
    assert.equal(await turn.locator('.answer button.cite').count(), 0, 'an abstention cites nothing');
    const sources = turn.locator('details.sources');
    assert.ok(await sources.evaluate((d) => d.classList.contains('closest') && !d.open), 'closest passages not folded');
    assert.match(await sources.locator('summary').innerText(), /Petikan terdekat, yang tidak menjawab soalan ini \(\d+\)/);
    assert.equal(await turn.locator('.source-item.cited').count(), 0);
    t.diagnostic(`screenshot ${await shot(p, 'abstained', { scrollTo: turn })}`);
    await p.context().close();
  });

  test('a citation opens the cited PDF page with the quote highlighted; DOCX as marked text', { timeout: 120_000 }, async (t) => {
    currentTest = 'viewer';
    assert.ok(page, 'needs the page of the previous test');
    let turn = page.locator('#thread > .turn').last();
    const chip = turn.locator('.answer button.cite[data-rel-path$="cuti-tahunan.pdf"]').first();
    assert.ok(await chip.count(), 'no citation of cuti-tahunan.pdf');
    await chip.click();
    const viewer = page.locator('#viewer');
    await page.locator('#viewer[data-state="ready"]').waitFor({ timeout: 30_000 });
    assert.equal(await viewer.getAttribute('data-view'), 'pdf', 'pdf.js did not render the PDF');
    assert.equal(await viewer.getAttribute('data-page'), '2');
    assert.match(await page.locator('#viewer-page').innerText(), /\b2\b/);
    const canvas = page.locator('#pdf-canvas');
    assert.ok(await canvas.isVisible());
    const inked = await canvas.evaluate((c) => {
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let dark = 0;
      for (let i = 0; i < data.length; i += 16) if (data[i] < 128) dark++;
      return dark;
    });
    assert.ok(inked > 500, `the canvas looks blank (${inked} dark samples)`);
    const highlights = page.locator('#pdf-highlights .highlight');
    const n = await highlights.count();
    assert.ok(n >= 1, 'no highlight over the cited quote');
    assert.ok(await highlights.first().isVisible());
    const box = await highlights.first().boundingBox();
    const cbox = await canvas.boundingBox();
    assert.ok(box.y >= cbox.y && box.y + box.height <= cbox.y + cbox.height + 4, 'highlight outside the page');
    t.diagnostic(`page 2 rendered, ${n} highlight boxes; screenshot ${await shot(page, 'viewer-pdf')}`);

    // Next page and back, then Esc closes and gives focus back to the chip.
    await page.locator('#viewer-next').click();
    await page.locator('#viewer[data-page="3"][data-state="ready"]').waitFor();
    await page.locator('#viewer-prev').click();
    await page.locator('#viewer[data-page="2"][data-state="ready"]').waitFor();
    await page.keyboard.press('Escape');
    assert.equal(await viewer.evaluate((d) => d.open), false, 'Esc did not close the viewer');
    await page.waitForFunction((c) => c === document.activeElement, await chip.elementHandle(), { timeout: 5000 });

    // A DOCX source: the text view with the passage marked.
    await unfoldSources(turn);
    let docx = turn.locator('.source-item[data-rel-path$=".docx"] .src-open');
    if (!(await docx.count())) {
      turn = await ask(page, 'Berapa hari cuti sakit bagi pekerja yang berkhidmat 3 tahun?');
      await unfoldSources(turn);
      docx = turn.locator('.source-item[data-rel-path$=".docx"] .src-open');
    }
    assert.ok(await docx.count(), 'no DOCX source to open');
    await docx.first().click();
    await page.locator('#viewer[data-state="ready"][data-view="text"]').waitFor({ timeout: 30_000 });
    const mark = page.locator('#text-view mark').first();
    await mark.waitFor();
    assert.ok(await mark.isVisible(), 'the marked passage is not scrolled into view');
    assert.ok((await mark.innerText()).trim().length > 20);
    t.diagnostic(`DOCX text view marked; screenshot ${await shot(page, 'viewer-docx-text')}`);
    await page.locator('#viewer-close').click();
    await page.context().close();
  });

  test('generative answers stream: sources first, then a growing answer', { timeout: 180_000 }, async (t) => {
    currentTest = 'generative';
    const p = await openPage({ locale: 'en-GB' });
    const gen = p.locator('#mode-generative');
    assert.equal(await gen.isDisabled(), false, 'generative mode is disabled: /api/info says no model');
    await p.evaluate(() => {
      // Record how the newest turn changes, with timestamps, from inside the page.
      window.__trace = [];
      const thread = document.getElementById('thread');
      const t0 = performance.now();
      new MutationObserver(() => {
        const turn = thread.lastElementChild;
        if (!turn) return;
        const row = {
          t: performance.now() - t0,
          state: turn.dataset.state,
          sources: turn.querySelectorAll('.source-item').length,
          answer: turn.querySelector('.answer')?.textContent.length ?? 0,
          status: turn.querySelector('.status-text')?.textContent ?? '',
        };
        const last = window.__trace.at(-1);
        if (!last || ['state', 'sources', 'answer', 'status'].some((k) => last[k] !== row[k])) window.__trace.push(row);
      }).observe(thread, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    const turn = await ask(p, 'How many days of annual leave do I get after 3 years of service?', {
      mode: 'generative',
    });
    const trace = await p.evaluate(() => window.__trace);
    const firstSources = trace.find((r) => r.sources > 0);
    const firstToken = trace.find((r) => r.answer > 0);
    assert.ok(firstSources, 'no passages were shown');
    assert.ok(firstToken, 'no answer text appeared');
    assert.ok(firstSources.t <= firstToken.t, 'the answer began before the sources were shown');
    assert.ok(trace.some((r) => r.status === 'The model is thinking…'), 'no "thinking" status');
    const growing = new Set(trace.filter((r) => r.state === 'streaming' && r.answer > 0).map((r) => r.answer));
    assert.ok(growing.size >= 2, `the answer did not grow while streaming: ${JSON.stringify(trace)}`);
    assert.equal(await turn.locator('.mode-tag').innerText(), 'Generated by the model');
    t.diagnostic(
      `sources at ${Math.round(firstSources.t)} ms, first text at ${Math.round(firstToken.t)} ms, ` +
        `${growing.size} distinct lengths while streaming`,
    );
    t.diagnostic(`screenshot ${await shot(p, 'ask-generative', { scrollTo: turn })}`);
    await p.context().close();
  });

  test('the model server down: a quoted answer, saying why', { timeout: 420_000 }, async (t) => {
    currentTest = 'model-server-down';
    if (BASE_OVERRIDE) assert.fail('needs a server of its own: run without TANYA_BROWSER_BASE_URL');
    const port = await closedPort();
    const other = await startOtherServer('fallback', ['cuti-tahunan.pdf'], {
      TANYA__GENERATOR__BACKEND: 'openai',
      TANYA__GENERATOR__URL: `http://127.0.0.1:${port}/v1`,
      TANYA__GENERATOR__RETRIES: '0',
      TANYA__GENERATOR__CONNECT_TIMEOUT_MS: '500',
    });
    otherOrigins.set(currentTest, new URL(other.url).origin);
    try {
      const p = await openPage({ locale: 'en-GB', at: other.url, user: 'admin', password: other.password });
      assert.equal(await p.locator('#mode-generative').isDisabled(), false);
      const turn = await ask(p, Q_LEAVE, { mode: 'generative' });
      const note = turn.locator('.fallback-note');
      await note.waitFor({ state: 'visible' });
      const text = await note.innerText();
      assert.match(text, /The model server did not answer, so this answer is quoted from the documents\./);
      assert.match(text, new RegExp(`127\\.0\\.0\\.1:${port}`), text);
      assert.equal(await turn.locator('.mode-tag').innerText(), 'Direct quotes');
      assert.match(await turn.locator('.answer').innerText(), /16 hari/);
      assert.ok((await turn.locator('.answer button.cite').count()) > 0, 'the quoted answer cites nothing');
      t.diagnostic(`screenshot ${await shot(p, 'ask-model-server-down', { scrollTo: turn })}`);
      await p.context().close();
    } finally {
      await other.stop();
    }
  });

  test('upload: progress, indexing, a cited answer from the file, markup shown as text', { timeout: 240_000 }, async (t) => {
    currentTest = 'upload';
    const p = await openPage();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tanya-upload-'));
    try {
      const name = 'nota-bilik-server.txt';
      const file = path.join(dir, name);
      fs.writeFileSync(
        file,
        'Nota Keselamatan Bilik Server\n\n' +
          'Kod akses bilik server ialah ZEBRA-7731. ' +
          '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">\n\n' +
          'The server room access code is ZEBRA-7731.\n',
      );
      await p.evaluate(() => {
        window.__uploadStates = [];
        new MutationObserver(() => {
          for (const li of document.querySelectorAll('#uploads .upload')) {
            const s = `${li.dataset.name}:${li.dataset.state}`;
            if (window.__uploadStates.at(-1) !== s) window.__uploadStates.push(s);
          }
        }).observe(document.getElementById('uploads'), { subtree: true, attributes: true, childList: true });
      });
      await p.locator('#file-input').setInputFiles(file);
      const row = p.locator(`#uploads .upload[data-name="${name}"]`);
      await row.waitFor();
      assert.ok(await row.locator('progress').count(), 'no progress bar');
      await p.locator(`#uploads .upload[data-name="${name}"][data-final="true"]`).waitFor({ timeout: 180_000 });
      const status = await row.locator('.upload-status').innerText();
      assert.equal(await row.getAttribute('data-state'), 'indexed', `upload ended: ${status}`);
      assert.match(status, /Sedia/);
      const states = await p.evaluate(() => window.__uploadStates);
      assert.ok(states.includes(`${name}:uploading`), `no upload progress shown: ${states}`);
      const docId = await row.getAttribute('data-doc-id');
      await p.locator(`#doc-list .doc[data-doc-id="${docId}"][data-status="indexed"]`).waitFor({ timeout: 10_000 });

      const turn = await ask(p, 'Apakah kod akses bilik server?');
      const answer = await turn.locator('.answer').innerText();
      assert.match(answer, /ZEBRA-7731/, `answer: ${answer}`);
      assert.ok(await turn.locator(`.answer button.cite[data-doc-id="${docId}"]`).count(), 'the answer does not cite the upload');
      assert.equal(await p.evaluate(() => window.__xss), undefined, 'markup from the document ran');
      assert.equal(await turn.locator('script, img').count(), 0, 'markup from the document became elements');
      const literal = turn.locator('.src-snippet, .answer').filter({ hasText: '<script>window.__xss=1</script>' });
      assert.ok(await literal.count(), 'the literal <script> text is not shown');
      assert.ok(await literal.first().isVisible());
      t.diagnostic(`uploaded ${name} (${states.join(' → ')}); answer cites it; markup stayed text`);
      t.diagnostic(`screenshot ${await shot(p, 'upload-answer', { scrollTo: turn })}`);

      // An unsupported format, dropped on the drop zone, is refused with a clear message.
      await p.evaluate(() => {
        const bytes = new Uint8Array(2048).fill(0x90);
        bytes.set([0x4d, 0x5a]); // "MZ": a Windows executable
        const files = new DataTransfer();
        files.items.add(new File([bytes], 'alat.exe', { type: 'application/octet-stream' }));
        const zone = document.getElementById('drop-zone');
        for (const type of ['dragenter', 'dragover', 'drop']) {
          zone.dispatchEvent(new DragEvent(type, { dataTransfer: files, bubbles: true, cancelable: true }));
        }
      });
      const bad = p.locator('#uploads .upload[data-name="alat.exe"][data-final="true"]');
      await bad.waitFor({ timeout: 60_000 });
      assert.match(await bad.getAttribute('data-state'), /^(error|rejected)$/);
      const why = await bad.innerText();
      assert.match(why, /tidak disokong|Ditolak/i, `rejection shown as: ${why}`);
      t.diagnostic(`alat.exe refused: ${why.replace(/\s+/g, ' ')}`);
      t.diagnostic(`screenshot ${await shot(p, 'upload-rejected')}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await p.context().close();
    }
  });

  test('the language switch changes every string at once and persists', { timeout: 120_000 }, async (t) => {
    currentTest = 'language';
    const p = await openPage();
    const lang = () => p.evaluate(() => document.documentElement.lang);
    const turn = await ask(p, Q_LEAVE);
    assert.equal(await lang(), 'ms');
    assert.equal(await p.locator('#ask-button').innerText(), 'Tanya');
    assert.equal(await p.locator('#docs-heading').innerText(), 'Dokumen');
    assert.equal(await turn.locator('.mode-tag').innerText(), 'Petikan terus');

    await p.getByRole('button', { name: 'EN', exact: true }).click();
    assert.equal(await lang(), 'en');
    assert.equal(await p.locator('#ask-button').innerText(), 'Ask');
    assert.equal(await p.locator('#docs-heading').innerText(), 'Documents');
    assert.equal(await p.locator('label[for="question"]').innerText(), 'Your question');
    assert.equal(await turn.locator('.mode-tag').innerText(), 'Direct quotes');
    assert.match(await turn.locator('.sources summary').innerText(), /^Sources \(\d+\)$/);
    assert.match(await turn.locator('.answer button.cite').first().getAttribute('aria-label'), /^Reference \d+: /);
    assert.equal(await p.getByRole('button', { name: 'EN', exact: true }).getAttribute('aria-pressed'), 'true');
    assert.match(await p.title(), /ask your documents/);
    t.diagnostic(`screenshot ${await shot(p, 'language-en', { scrollTo: turn })}`);

    await p.reload();
    await p.locator('#doc-list .doc').first().waitFor();
    assert.equal(await lang(), 'en', 'the choice did not persist');

    await p.getByRole('button', { name: 'BM', exact: true }).click();
    assert.equal(await lang(), 'ms');
    assert.equal(await p.locator('#ask-button').innerText(), 'Tanya');
    assert.equal(await p.locator('label[for="question"]').innerText(), 'Soalan anda');
    await p.context().close();

    // Without a stored choice the browser's languages decide.
    const en = await openPage({ locale: 'en-US' });
    assert.equal(await en.evaluate(() => document.documentElement.lang), 'en');
    await en.context().close();
    t.diagnostic('ms → en → (reload) en → ms; en-US browser defaults to English');
  });

  test('a follow-up continues the conversation; "new conversation" starts afresh', { timeout: 180_000 }, async (t) => {
    currentTest = 'follow-up';
    const p = await openPage();
    const asked = [];
    p.on('request', (r) => {
      if (r.url().endsWith('/api/ask')) asked.push(r.postDataJSON());
    });
    await ask(p, Q_LEAVE);
    const conversation = await p.locator('#thread').getAttribute('data-conversation-id');
    assert.ok(conversation, 'no conversation id from the first answer');
    const second = await ask(p, 'Dan selepas 6 tahun?');
    assert.equal(await p.locator('#thread > .turn').count(), 2);
    assert.ok(await p.locator('#thread > .turn').first().isVisible());
    assert.ok((await second.locator('.answer').innerText()).trim().length > 0, 'empty follow-up answer');
    assert.equal(asked[0].conversation_id, undefined);
    assert.equal(asked[1].conversation_id, conversation, 'the follow-up did not send the conversation id');
    t.diagnostic(`follow-up answer: ${(await second.locator('.answer').innerText()).replace(/\s+/g, ' ').slice(0, 100)}…`);
    t.diagnostic(`screenshot ${await shot(p, 'follow-up', { scrollTo: p.locator('#thread > .turn').first() })}`);

    await p.getByRole('button', { name: 'Perbualan baharu' }).click();
    assert.equal(await p.locator('#thread > .turn').count(), 0);
    assert.ok(await p.locator('#empty-state').isVisible());
    assert.equal(await p.locator('#thread').getAttribute('data-conversation-id'), null);
    await ask(p, Q_LEAVE);
    assert.equal(asked[2].conversation_id, undefined, 'a new conversation still sent the old id');
    await p.context().close();
  });

  test('a conversation is kept: after a reload it is listed, reopens, and a follow-up continues it', { timeout: 180_000 }, async (t) => {
    currentTest = 'saved conversations';
    const p = await openPage();
    await ask(p, 'Berapa hari cuti sakit setahun?');
    const id = await p.locator('#thread').getAttribute('data-conversation-id');
    assert.ok(id, 'no conversation id');
    await p.locator(`#history-list .history-item[data-id="${id}"]`).waitFor();
    await p.reload();
    await p.locator('#app-layout').waitFor({ state: 'visible' });
    const item = p.locator(`#history-list .history-item[data-id="${id}"]`);
    await item.waitFor();
    assert.equal(await item.locator('.history-open').innerText(), 'Berapa hari cuti sakit setahun?');
    assert.equal(await p.locator('#thread > .turn').count(), 0, 'a reload should start with an empty thread');
    await item.locator('.history-open').click();
    await p.locator('#thread > .turn[data-state="done"]').first().waitFor();
    assert.equal(await p.locator('#thread > .turn').count(), 1);
    assert.match(await p.locator('#thread > .turn .answer').first().innerText(), /hari/);
    assert.equal(await p.locator('#thread').getAttribute('data-conversation-id'), id);
    t.diagnostic(`screenshot ${await shot(p, 'conversation-reopened')}`);
    // The follow-up goes into the same conversation.
    await ask(p, 'Bagaimana pula cuti tahunan?');
    assert.equal(await p.locator('#thread').getAttribute('data-conversation-id'), id);
    // Renamed in place, then deleted.
    await item.locator('.history-rename').click();
    await p.locator('.history-title-input').fill('Cuti saya');
    await p.locator('.history-title-input').press('Enter');
    await p.locator(`#history-list .history-item[data-id="${id}"] .history-open`, { hasText: 'Cuti saya' }).waitFor();
    p.once('dialog', (d) => d.accept());
    await p.locator(`#history-list .history-item[data-id="${id}"] .history-delete`).click();
    await p.locator(`#history-list .history-item[data-id="${id}"]`).waitFor({ state: 'detached' });
    assert.equal(await p.locator('#thread > .turn').count(), 0, 'deleting the open conversation clears the thread');
    await p.context().close();
  });

  test('at phone size (375×667) nothing scrolls sideways and asking works', { timeout: 120_000 }, async (t) => {
    currentTest = 'phone';
    const p = await openPage({ viewport: { width: 375, height: 667 } });
    const width = () => p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok((await width()) <= 375, `scrollWidth ${await width()} before asking`);
    const turn = await ask(p, Q_LEAVE);
    assert.match(await turn.locator('.answer').innerText(), /16 hari/);
    assert.ok((await width()) <= 375, `scrollWidth ${await width()} with an answer`);
    t.diagnostic(`screenshot ${await shot(p, 'phone-answer', { full: true })}`);
    await turn.locator('.answer button.cite').first().click();
    await p.locator('#viewer[data-state="ready"]').waitFor({ timeout: 30_000 });
    const vbox = await p.locator('#viewer').boundingBox();
    assert.ok(vbox.width <= 375, `viewer ${vbox.width}px wide`);
    assert.ok(await p.locator('#viewer-close').isVisible());
    t.diagnostic(`screenshot ${await shot(p, 'phone-viewer')}`);
    await p.context().close();
  });

  test('people: the admin adds an editor and readers; each sees only what their groups allow', { timeout: 300_000 }, async (t) => {
    currentTest = 'people';
    const admin = await openPage();
    // A document in a collection (through the API, as a script would, with the page's
    // session and CSRF token); the page then offers the collection beside the question.
    const session = await (await admin.request.get(`${base}/api/session`)).json();
    const put = await admin.request.post(`${base}/api/documents`, {
      headers: { 'X-CSRF-Token': session.csrf },
      multipart: {
        collection: 'Arkib',
        file: { name: 'arkib-lama.txt', mimeType: 'text/plain', buffer: Buffer.from('Arkib Lama\n\nNombor fail arkib lama ialah ARK-3310.\n') },
      },
    });
    assert.equal(put.status(), 202, await put.text());
    const docId = (await put.json()).documents[0].id;
    for (let i = 0; ; i++) {
      const doc = await (await admin.request.get(`${base}/api/documents/${docId}`)).json();
      if (doc.status === 'indexed') break;
      assert.ok(doc.status !== 'rejected' && i < 600, JSON.stringify(doc));
      await sleep(200);
    }
    await admin.reload();
    await admin.locator('#collection-field').waitFor({ state: 'visible' });
    await admin.locator('#collection').selectOption('Arkib');
    const asked = [];
    admin.on('request', (r) => {
      if (r.url().endsWith('/api/ask')) asked.push(JSON.parse(r.postData() || '{}'));
    });
    const inArchive = await ask(admin, 'Apakah nombor fail arkib lama?');
    assert.match(await inArchive.locator('.answer').innerText(), /ARK-3310/);
    assert.equal(asked.at(-1).collection, 'Arkib');
    await admin.locator('#collection').selectOption('');
    await admin.locator('#open-people').click();
    await admin.locator('#people[open]').waitFor();
    const add = async (name, role, groups) => {
      await admin.locator('#people-add-name').fill(name);
      await admin.locator('#people-add-password').fill(`kata-laluan-${name}`);
      await admin.locator('#people-add-role').selectOption(role);
      await admin.locator('#people-add-groups').fill(groups);
      await admin.locator('#people-add button[type="submit"]').click();
      await admin.locator(`#people-users .people-user[data-name="${name}"]`).waitFor();
    };
    await add('penyunting', 'editor', 'Kewangan');
    await add('pembaca', 'reader', 'Kewangan');
    await add('orang-hr', 'reader', 'HR');
    // Who may see what: the archive collection (the default group `public` so far) moves
    // to Kewangan from the people page; nothing is indexed again.
    const arkib = admin.locator('#people-collections .people-user[data-name="Arkib"]');
    assert.equal(await arkib.locator('.people-groups').inputValue(), 'public');
    assert.equal(
      await admin.locator('#people-documents .people-user[data-name="arkib-lama.txt"] .people-groups').inputValue(),
      'public',
    );
    await arkib.locator('.people-groups').fill('Kewangan');
    await arkib.locator('.people-save').click();
    await admin.locator('#people-status:not([hidden]):not(.error)').waitFor();
    // After the save, its document's row, read again from the server, shows Kewangan.
    const docRow = admin.locator('#people-documents .people-user[data-name="arkib-lama.txt"] .people-groups');
    for (let i = 0; (await docRow.inputValue()) !== 'Kewangan'; i++) {
      assert.ok(i < 100, 'the collection\'s groups were not saved');
      await sleep(100);
    }
    assert.equal(await arkib.locator('.people-groups').inputValue(), 'Kewangan');
    t.diagnostic(`screenshot ${await shot(admin, 'people-desktop')}`);
    await admin.locator('#people-access-heading').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    t.diagnostic(`screenshot ${await shot(admin, 'people-access-desktop')}`);
    await admin.setViewportSize({ width: 375, height: 667 });
    assert.ok((await admin.evaluate(() => document.documentElement.scrollWidth)) <= 375);
    t.diagnostic(`screenshot ${await shot(admin, 'people-phone')}`);
    await admin.locator('#people-access-heading').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    t.diagnostic(`screenshot ${await shot(admin, 'people-access-phone')}`);
    await admin.context().close();

    // The editor uploads into their collection, chosen beside the question box.
    const editor = await openPage({ signIn: false });
    await signInAs(editor, 'penyunting', 'kata-laluan-penyunting');
    assert.ok(!(await editor.locator('#open-people').isVisible()), 'an editor sees the people page');
    await editor.locator('#collection-field').waitFor({ state: 'visible' });
    await editor.locator('#collection').selectOption('Arkib');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tanya-people-'));
    const file = path.join(dir, 'bajet-kewangan.txt');
    fs.writeFileSync(file, 'Bajet Kewangan\n\nKod bajet kewangan tahun ini ialah KEW-5521.\n');
    await editor.locator('#file-input').setInputFiles(file);
    const row = editor.locator('#uploads .upload[data-name="bajet-kewangan.txt"][data-final="true"]');
    await row.waitFor({ timeout: 180_000 });
    assert.equal(await row.getAttribute('data-state'), 'indexed');
    const listed = await (await editor.request.get(`${base}/api/documents`)).json();
    const bajet = listed.documents.find((d) => d.name === 'bajet-kewangan.txt');
    assert.equal(bajet.collection, 'Arkib', JSON.stringify(bajet));
    assert.equal(bajet.groups, undefined, 'an editor is shown groups');
    t.diagnostic(`screenshot ${await shot(editor, 'editor-upload-desktop')}`);
    await editor.setViewportSize({ width: 375, height: 667 });
    assert.ok((await editor.evaluate(() => document.documentElement.scrollWidth)) <= 375);
    t.diagnostic(`screenshot ${await shot(editor, 'editor-upload-phone', { full: true })}`);
    fs.rmSync(dir, { recursive: true, force: true });
    await editor.context().close();

    // A reader of that group, in another browser context: only that collection's two
    // documents, answered.
    const reader = await openPage({ signIn: false });
    await signInAs(reader, 'pembaca', 'kata-laluan-pembaca');
    await reader.locator('#doc-list .doc').nth(1).waitFor();
    const names = await reader.locator('#doc-list .doc').allInnerTexts();
    assert.equal(names.length, 2, `the reader sees ${names.join(' | ')}`);
    assert.match(names.join(' '), /arkib-lama/);
    assert.match(names.join(' '), /bajet-kewangan/);
    assert.ok(!(await reader.locator('#drop-zone').isVisible()), 'a reader is offered uploads');
    assert.equal(await reader.locator('#doc-list .doc-delete:visible').count(), 0, 'a reader is offered deleting');
    const turn = await ask(reader, 'Apakah kod bajet kewangan?');
    assert.match(await turn.locator('.answer').innerText(), /KEW-5521/);
    const id = await reader.locator('#thread').getAttribute('data-conversation-id');
    await reader.reload();
    await reader.locator(`#history-list .history-item[data-id="${id}"] .history-open`).click();
    await reader.locator('#thread > .turn[data-state="done"]').first().waitFor();
    assert.match(await reader.locator('#thread > .turn .answer').first().innerText(), /KEW-5521/);
    t.diagnostic(`screenshot ${await shot(reader, 'reader-conversation')}`);
    await reader.setViewportSize({ width: 375, height: 667 });
    assert.ok((await reader.evaluate(() => document.documentElement.scrollWidth)) <= 375);
    t.diagnostic(`screenshot ${await shot(reader, 'reader-conversation-phone', { full: true })}`);
    await reader.context().close();

    // Someone of another group: neither the document nor its words, anywhere.
    const other = await openPage({ signIn: false });
    await signInAs(other, 'orang-hr', 'kata-laluan-orang-hr');
    await other.locator('#doc-list-status').waitFor();
    assert.equal(await other.locator('#doc-list .doc').count(), 0);
    const theirs = await ask(other, 'Apakah kod bajet kewangan?');
    assert.doesNotMatch(await other.content(), /KEW-5521|bajet-kewangan|ARK-3310|arkib-lama/);
    assert.match(await theirs.locator('.answer').innerText(), /./);
    assert.equal((await other.locator('#history-list .history-item').count()), 1, 'sees another person\'s conversations');
    await other.context().close();
  });

  test('signed out, every URL is the sign-in screen; a wrong password says so', { timeout: 120_000 }, async (t) => {
    currentTest = 'sign-in';
    const p = await openPage({ signIn: false });
    await p.locator('#sign-in-form').waitFor();
    assert.ok(!(await p.locator('#app-layout').isVisible()), 'the page showed before signing in');
    t.diagnostic(`screenshot ${await shot(p, 'sign-in-desktop')}`);
    // Any path of the page, and the API itself, ask for a sign-in.
    for (const url of ['/', '/index.html', '/?q=cuti', '/no/such/page', '/documents/x']) {
      await p.goto(`${base}${url}`);
      await p.locator('#sign-in-form').waitFor();
      assert.ok(!(await p.locator('#app-layout').isVisible()), `${url} showed the page`);
    }
    for (const url of ['/api/documents', '/api/info', '/v1/models', '/api/session']) {
      const r = await p.request.get(`${base}${url}`);
      assert.equal(r.status(), 401, `${url} answered ${r.status()} to a signed-out browser`);
    }
    await p.goto(`${base}/`);
    await p.locator('#sign-in-name').fill(adminName);
    await p.locator('#sign-in-password').fill('not-the-password');
    await p.locator('#sign-in-button').click();
    await p.locator('#sign-in-error:not([hidden])').waitFor();
    assert.match(await p.locator('#sign-in-error').innerText(), /salah/);
    await signInAs(p, adminName, adminPassword);
    const cookies = await p.context().cookies();
    const session = cookies.find((c) => c.name === 'tanya_session');
    assert.ok(session, 'no session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(await p.evaluate(() => document.cookie), '', 'the session cookie is readable by scripts');
    await p.reload();
    await p.locator('#app-layout').waitFor({ state: 'visible' });
    await p.locator('#sign-out').click();
    await p.locator('#sign-in-form').waitFor();
    await p.reload();
    await p.locator('#sign-in-form').waitFor();
    assert.ok(!(await p.locator('#app-layout').isVisible()), 'signed out, a reload showed the page');
    await p.context().close();
    const phone = await openPage({ signIn: false, viewport: { width: 375, height: 667 }, locale: 'en-GB' });
    await phone.locator('#sign-in-form').waitFor();
    assert.equal(await phone.locator('#sign-in-button').innerText(), 'Sign in');
    assert.ok((await phone.evaluate(() => document.documentElement.scrollWidth)) <= 375);
    t.diagnostic(`screenshot ${await shot(phone, 'sign-in-phone')}`);
    await phone.context().close();
  });

  test('no request left the origin, no CSP violation, no page error', (t) => {
    currentTest = '(summary)';
    const foreign = requests.filter((r) => {
      if (r.url.startsWith('data:')) return false; // never leaves the page
      try {
        // A test with a server of its own: that server's origin is its page's.
        return new URL(r.url).origin !== (otherOrigins.get(r.test) ?? origin);
      } catch {
        return true;
      }
    });
    assert.ok(requests.length > 20, `only ${requests.length} requests were recorded`);
    assert.deepEqual(foreign, [], 'requests left the origin');
    assert.deepEqual(violations, [], 'Content-Security-Policy violations');
    assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
    for (const e of consoleErrors) t.diagnostic(`console: ${e}`);
    t.diagnostic(`${requests.length} requests, all to ${origin} (or a test's own server); no CSP violation`);
  });
});
