// The web widget end to end in a real headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core, against the real chorusd
// serving the example flows and the airline backend stub: open the demo
// page, click a quick reply, type a message, see the bot's replies, reload
// and see the conversation resumed (same messages, once each, in order),
// carry on after the reload, and check the page at a phone's width. Then a
// shop's page on another origin embeds it with one script tag: the launcher
// opens and closes it from the keyboard and a conversation runs there too,
// while a page from an origin that is not allowed gets no conversation.
// Last, a flow with a web variant: links in the text and a link button.
// Screenshots go to tests/e2e/artifacts/ (not committed).
//
// `node tests/integration/test_web_widget.mjs NAME...` runs only the cases
// named (the keys of CASES below); without names, all of them.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
const NODE_PATH = process.env.NODE_PATH || path.join(process.env.CHORUS_SOURCE_DIR || '.', 'tests/node/node_modules');
const { chromium } = require(path.join(NODE_PATH, 'playwright-core'));

const SRC = process.env.CHORUS_SOURCE_DIR || '.';
const ARTIFACTS = path.join(SRC, 'tests', 'e2e', 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function startBackend() {
  const proc = spawn('python3', [path.join(SRC, 'tests', 'stubs', 'backend.py')], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: proc.stdout });
    rl.once('line', (line) => {
      const m = /READY port=(\d+)/.exec(line);
      if (!m) reject(new Error(`backend stub: ${line}`));
      proc.url = `http://127.0.0.1:${m[1]}`;
      resolve(proc);
    });
  });
}

function startDaemon(backendUrl, tmp, allowed, flows = path.join(SRC, 'flows'), chat = {}, port = 0) {
  const cfg = path.join(tmp, 'chorusd.json');
  writeFileSync(cfg, JSON.stringify({ chat: { allowed_origins: allowed, ...chat } }));
  const proc = spawn(process.env.CHORUSD || 'build/chorusd',
    ['--listen', `127.0.0.1:${port}`, '--data-dir', tmp, '--config', cfg, '--flows', flows],
    { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CHORUS_BACKEND_URL: backendUrl } });
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('not ready:\n' + stderr)); }, 60000);
    proc.stderr.on('data', (b) => {
      stderr += b.toString();
      const m = /event=ready .*\bport=(\d+)/.exec(stderr);
      if (m && !proc.port) proc.port = Number(m[1]);
      if (proc.port && /event=flows_loaded/.test(stderr) && !proc.started) {
        proc.started = true;
        clearTimeout(timer);
        resolve(proc);
      }
    });
    proc.stderrText = () => stderr;
  });
}

function stopDaemon(proc) {
  return new Promise((resolve, reject) => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      resolve();
      return;
    }
    proc.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`chorusd exit ${code}\n${proc.stderrText()}`))));
    proc.kill('SIGTERM');
  });
}

// Texts of the conversation as shown: [["bot", "Hi ..."], ["user", "..."]].
async function shown(page) {
  return page.$$eval('.chorus-chat__msg', (els) => els.map((e) => [
    e.classList.contains('chorus-chat__msg--user') ? 'user' : 'bot',
    e.textContent.replace(/^(You said: |Assistant: )/, ''),
  ]));
}

async function waitBot(page, count, containing) {
  await page.waitForFunction(([n, text]) => {
    const bots = document.querySelectorAll('.chorus-chat__msg--bot');
    return bots.length >= n && (!text || bots[bots.length - 1].textContent.includes(text));
  }, [count, containing], { timeout: 20000 });
}

// A site on another loopback port whose page embeds the widget with one tag.
function startShop(widgetUrlOf) {
  const page = (widgetUrl) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Shop</h1><p>Our products.</p>
<script src="${widgetUrl}" data-title="Help" defer></script></body></html>`;
  const srv = http.createServer((req, res) => {
    res.writeHead(req.url === '/' ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(req.url === '/' ? page(widgetUrlOf()) : '');
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

async function embedded(context, shop, blocked) {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1024, height: 800 });
  await page.goto(`http://localhost:${shop.address().port}/`);
  const launcher = page.getByRole('button', { name: 'Help' });
  await launcher.waitFor();
  assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
  assert.equal(await page.locator('.chorus-chat__panel').isVisible(), false);
  // keyboard only: focus the launcher, open with Enter
  await launcher.focus();
  await page.keyboard.press('Enter');
  assert.equal(await launcher.getAttribute('aria-expanded'), 'true');
  await waitBot(page, 1, 'How can I help');
  const input = page.getByLabel('Type your message');
  assert.ok(await input.evaluate((e) => e === document.activeElement), 'focus moves to the input');
  await input.fill('hello');
  await page.keyboard.press('Enter');
  await waitBot(page, 2);
  // a message whose turn waits on a slow backend shows at once, marked as
  // sending; its echo takes its place once the turn is recorded
  await input.fill('booking status');
  await input.press('Enter');
  await waitBot(page, 3, 'booking reference');
  await input.fill('SLOW01'); // the backend stub answers it after 1.5 s
  await input.press('Enter');
  const sending = page.locator('[data-pending]');
  await sending.waitFor({ timeout: 1000 });
  assert.equal(await sending.textContent(), 'Sending: SLOW01');
  await waitBot(page, 4, 'SLOW01');
  assert.equal(await page.locator('[data-pending]').count(), 0, 'the sending bubble stayed');
  const last = await shown(page);
  assert.deepEqual(last.slice(-2).map((m) => m[0]), ['user', 'bot'], JSON.stringify(last));
  assert.equal(last.at(-2)[1], 'SLOW01');
  assert.equal(last.filter((m) => m[1] === 'SLOW01').length, 1, JSON.stringify(last));
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-embedded.png') });
  // Escape closes it and gives focus back to the launcher
  await page.keyboard.press('Escape');
  assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
  assert.ok(await launcher.evaluate((e) => e === document.activeElement), 'focus returns to the launcher');
  await page.close();

  // an origin that is not in chat.allowed_origins: the upgrade is refused
  const other = await context.newPage();
  await other.goto(`http://127.0.0.1:${blocked.address().port}/`);
  await other.getByRole('button', { name: 'Help' }).click();
  await other.waitForFunction(() => /Offline/.test(document.querySelector('.chorus-chat__conn').textContent),
    null, { timeout: 20000 });
  assert.equal(await other.locator('.chorus-chat__msg').count(), 0);
  await other.close();
  console.log('ok   widget embedded on another origin: launcher, keyboard, allowed origins only');
}

// A conversation that ends while the visitor types in the floating panel:
// the input is disabled, and focus goes to the button that starts a new
// conversation (not to the page's body, out of the panel), so Escape still
// closes the panel and gives focus back to the launcher; reopened, the panel
// focuses that button again, and Enter on it starts a new conversation.
async function endedKeepsFocus(context, shop) {
  const page = await context.newPage();
  await page.addInitScript(() => window.localStorage.clear()); // a new conversation
  await page.goto(`http://localhost:${shop.address().port}/`);
  const launcher = page.getByRole('button', { name: 'Help' });
  await launcher.focus();
  await page.keyboard.press('Enter');
  await waitBot(page, 1, 'How can I help');
  const input = page.getByLabel('Type your message');
  assert.ok(await input.evaluate((e) => e === document.activeElement), 'focus moves to the input');
  await page.keyboard.type('bye');
  await page.keyboard.press('Enter');
  await page.locator('.chorus-chat__note', { hasText: 'has ended' }).waitFor({ timeout: 20000 });
  const again = page.getByRole('button', { name: 'Start a new conversation' });
  await again.waitFor();
  assert.ok(await input.isDisabled());
  const active = () => page.evaluate(() => `${document.activeElement.tagName} ${document.activeElement.textContent.slice(0, 40)}`);
  assert.equal(await active(), 'BUTTON Start a new conversation');
  await page.keyboard.press('Escape');
  assert.equal(await launcher.getAttribute('aria-expanded'), 'false', 'Escape closes the panel');
  assert.ok(await launcher.evaluate((e) => e === document.activeElement), 'focus returns to the launcher');
  await page.keyboard.press('Enter');
  assert.equal(await launcher.getAttribute('aria-expanded'), 'true');
  assert.equal(await active(), 'BUTTON Start a new conversation');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('.chorus-chat__msg--bot').length === 1 &&
    !document.querySelector('.chorus-chat__input').disabled, null, { timeout: 20000 });
  assert.ok(await input.evaluate((e) => e === document.activeElement), 'focus moves to the input');
  await page.close();
  console.log('ok   widget: an ended conversation keeps focus in the panel; Escape still closes it');
}

// A message whose turn failed (the store could not write it): the server's
// error frame names it, and the widget, which never got its echo, keeps it
// as sending and sends it again after the Retry-After; it is shown once. The
// first send is answered here as chorusd answers it on a full disk
// (tests/integration/test_channels_disk_full.py has the real one); the
// second goes through to the real daemon. A message the daemon refuses as
// `unavailable` or `at_capacity` (with its id) goes again the same way.
async function failedTurnSentAgain(context, base, code = 'turn_failed') {
  const page = await context.newPage();
  await page.addInitScript(() => window.localStorage.clear()); // a new conversation
  const sent = [];
  const times = [];
  await page.routeWebSocket(/\/v1\/chat\/ws/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((raw) => {
      const f = JSON.parse(raw);
      if (f.type === 'message' && f.text === 'hello') {
        sent.push(f.id);
        times.push(Date.now());
        if (sent.length === 1) {
          ws.send(JSON.stringify({ type: 'error', code, id: f.id,
            message: code === 'turn_failed' ? 'the turn did not complete: the store could not write the turn'
              : code === 'at_capacity' ? 'too many messages in flight' : 'no flows are serving yet' }));
          return;
        }
      }
      server.send(raw);
    });
  });
  await page.goto(base);
  await waitBot(page, 1, 'How can I help');
  const input = page.getByLabel('Type your message');
  await input.fill('hello');
  await input.press('Enter');
  await page.waitForFunction(() => /trying again/.test(document.querySelector('.chorus-chat__conn').textContent),
    null, { timeout: 5000 });
  assert.equal(await page.locator('[data-pending]').textContent(), 'Sending: hello');
  await waitBot(page, 2); // after the resend, some 5 s later
  assert.equal(sent.length, 2, JSON.stringify(sent));
  assert.equal(sent[1], sent[0], 'the resend keeps its id');
  assert.ok(times[1] - times[0] >= 4000, `sent again after ${times[1] - times[0]} ms`);
  assert.equal(await page.locator('[data-pending]').count(), 0);
  const texts = await shown(page);
  assert.equal(texts.filter((m) => m[0] === 'user' && m[1] === 'hello').length, 1, JSON.stringify(texts));
  assert.equal(await page.locator('.chorus-chat__conn').textContent(), '');
  await page.close();
  console.log(`ok   widget: a message answered ${code} is sent again and shown once`);
}

// A message sent again on a new connection while its first send's turn still
// runs gets an ack with seq 0: the server has it, but not yet in its
// transcript. That turn can still fail: the turn_failed that follows names
// the message, and the widget, which never saw its echo, still holds it and
// sends it again. Here the first send is answered as the daemon answers such
// a resend, then as it answers the turn's failure; the next goes through.
async function acceptedTurnFailed(context, base) {
  const page = await context.newPage();
  await page.addInitScript(() => window.localStorage.clear()); // a new conversation
  const sent = [];
  await page.routeWebSocket(/\/v1\/chat\/ws/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((raw) => {
      const f = JSON.parse(raw);
      if (f.type === 'message' && f.text === 'hello') {
        sent.push(f.id);
        if (sent.length === 1) {
          ws.send(JSON.stringify({ type: 'ack', id: f.id, seq: 0, duplicate: true }));
          setTimeout(() => ws.send(JSON.stringify({ type: 'error', code: 'turn_failed', id: f.id,
            message: 'the turn did not complete: the store could not write the turn' })), 300);
          return;
        }
      }
      server.send(raw);
    });
  });
  await page.goto(base);
  await waitBot(page, 1, 'How can I help');
  const input = page.getByLabel('Type your message');
  await input.fill('hello');
  await input.press('Enter');
  await page.waitForFunction(() => /trying again/.test(document.querySelector('.chorus-chat__conn').textContent),
    null, { timeout: 5000 });
  assert.equal(await page.locator('[data-pending]').textContent(), 'Sending: hello');
  await waitBot(page, 2); // after the resend, some 5 s later
  assert.equal(sent.length, 2, JSON.stringify(sent));
  assert.equal(sent[1], sent[0], 'the resend keeps its id');
  assert.equal(await page.locator('[data-pending]').count(), 0);
  const texts = await shown(page);
  assert.equal(texts.filter((m) => m[0] === 'user' && m[1] === 'hello').length, 1, JSON.stringify(texts));
  await page.close();
  console.log('ok   widget: a message acknowledged with seq 0 whose turn then failed is sent again');
}

// More messages than a conversation queues behind a slow turn: the daemon
// refuses the last ones with `busy` (each naming its message). The widget
// says they are not sent yet, keeps saying so while the others are echoed,
// and sends them again with backoff until they run; each is shown once.
async function busySentAgain(context, base) {
  const page = await context.newPage();
  await page.addInitScript(() => window.localStorage.clear()); // a new conversation
  const busy = [];
  const sends = {};
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => {
      const m = JSON.parse(f.payload);
      if (m.type === 'error' && m.code === 'busy') busy.push(m.id);
    });
    ws.on('framesent', (f) => {
      const m = JSON.parse(f.payload);
      if (m.type === 'message' && m.text) sends[m.text] = (sends[m.text] || 0) + 1;
    });
  });
  await page.goto(base);
  await waitBot(page, 1, 'How can I help');
  const input = page.getByLabel('Type your message');
  await input.fill('booking status');
  await input.press('Enter');
  await waitBot(page, 2, 'booking reference');
  await input.fill('SLOW01'); // the backend stub answers it after 1.5 s
  await input.press('Enter');
  // typed faster than playwright types: all at once, as the form sends them
  const extras = Array.from({ length: 10 }, (_, i) => `hello ${i + 1}`);
  await page.evaluate((texts) => {
    const box = document.querySelector('.chorus-chat__input');
    for (const t of texts) {
      box.value = t;
      box.form.requestSubmit();
    }
  }, extras);
  await page.waitForFunction(() => /trying again/.test(document.querySelector('.chorus-chat__conn').textContent),
    null, { timeout: 5000 });
  assert.ok(busy.length >= 1, 'nothing was refused busy');
  // the first echo (SLOW01's) comes while refused ones still wait: the line stays
  await page.waitForFunction(() => document.querySelectorAll('.chorus-chat__msg--user:not([data-pending])').length >= 2,
    null, { timeout: 10000 });
  if (await page.locator('[data-pending]').count() > 0) {
    assert.match(await connText(page), /trying again/);
  }
  await page.waitForFunction((n) => document.querySelectorAll('.chorus-chat__msg--user:not([data-pending])').length >= n &&
    document.querySelectorAll('[data-pending]').length === 0, 2 + extras.length, { timeout: 30000 });
  const users = (await shown(page)).filter((m) => m[0] === 'user').map((m) => m[1]);
  // in the order they ran: a refused one may run after one typed later
  assert.deepEqual(users.slice(0, 2), ['booking status', 'SLOW01'], JSON.stringify(users));
  assert.deepEqual(users.slice(2).sort(), [...extras].sort(), JSON.stringify(users));
  assert.ok(busy.every((id) => id), JSON.stringify(busy));
  assert.ok(sends['hello 10'] >= 2, `"hello 10" was sent ${sends['hello 10']} times`);
  assert.equal(await connText(page), '');
  await page.close();
  console.log(`ok   widget: messages refused busy (${busy.length}) are sent again and shown once each`);
}

// A free loopback port, for a daemon that must come back on the same one.
function freePort() {
  return new Promise((resolve) => {
    const srv = http.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// The same, the real way: the connection drops while a turn waits on a
// backend that never answers; the widget reconnects and sends the message
// again, and the daemon acknowledges it with seq 0 (still running). Then the
// daemon is killed before the turn is recorded, and started again on the
// same port and data dir with a backend that answers: the widget, which
// never saw the echo, sends the message once more and it runs there.
async function acceptedThenCrash(context, backendUrl) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-crash-'));
  const port = await freePort();
  let daemon = await startDaemon(`${backendUrl}/mode/hang`, tmp, '', path.join(SRC, 'flows'), {}, port);
  try {
    const page = await context.newPage();
    const sockets = [];
    const acks = [];
    await page.routeWebSocket(/\/v1\/chat\/ws/, (ws) => {
      const server = ws.connectToServer();
      sockets.push({ ws, server });
      server.onMessage((raw) => {
        if (JSON.parse(raw).type === 'ack') acks.push(JSON.parse(raw));
        ws.send(raw);
      });
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    await waitBot(page, 1, 'How can I help');
    const input = page.getByLabel('Type your message');
    await input.fill('booking status');
    await input.press('Enter');
    await waitBot(page, 2, 'booking reference');
    await input.fill('ABC123'); // its lookup hangs
    await input.press('Enter');
    await page.waitForFunction(() => document.querySelector('.chorus-chat__typing').textContent !== '',
      null, { timeout: 5000 });
    // the network drops; the daemon's turn goes on
    const first = sockets.at(-1);
    first.server.close();
    await first.ws.close({ code: 4000, reason: 'flap' });
    for (let i = 0; i < 100 && acks.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(acks.length, 1, 'the resend was not acknowledged');
    assert.equal(acks[0].seq, 0, JSON.stringify(acks));
    assert.equal(await page.locator('[data-pending]').textContent(), 'Sending: ABC123');
    // the daemon dies before the turn is recorded, and comes back
    const dead = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGKILL');
    await dead;
    daemon = await startDaemon(backendUrl, tmp, '', path.join(SRC, 'flows'), {}, port);
    await waitBot(page, 3, 'CH 101');
    assert.equal(await page.locator('[data-pending]').count(), 0);
    const texts = await shown(page);
    assert.deepEqual(texts.map((m) => m[0]), ['bot', 'user', 'bot', 'user', 'bot'], JSON.stringify(texts));
    assert.equal(texts[3][1], 'ABC123');
    await page.close();
    console.log('ok   widget: a message acknowledged with seq 0 survives the daemon dying before its turn');
  } finally {
    await stopDaemon(daemon);
    rmSync(tmp, { recursive: true, force: true });
  }
}

// A server whose log went backwards: it restarted and rebuilt the
// conversation with fewer entries than the widget has shown, and numbers its
// next entries with seqs the widget has seen. Its `ready` says so (last_seq
// below the widget's); the widget drops what it shows and replays the
// server's log from the start, instead of dropping the new entries as seen;
// a message still being sent stays, below it. The socket is a stub here (playwright's routeWebSocket): it plays a server
// that holds the log below and resumes after the client's last_seq.
async function logWentBack(context, base) {
  const page = await context.newPage();
  await page.addInitScript(() => window.localStorage.clear()); // a new conversation
  const conv = 'c'.repeat(32);
  const bot = (seq, text) => ({ type: 'message', from: 'bot', text, choices: [], seq, ts: '2026-01-01T00:00:00Z' });
  let log = [bot(1, 'one'), { type: 'message', from: 'user', text: 'two', seq: 2 }, bot(3, 'three')];
  const opened = [];
  const sockets = [];
  const ready = (ws) => ws.send(JSON.stringify({ type: 'ready', conversation: conv, status: 'active', channel: 'web',
    resumed: true, first_seq: 1, last_seq: log.length }));
  await page.routeWebSocket(/\/v1\/chat\/ws/, (ws) => {
    const url = new URL(ws.url());
    const last = Number(url.searchParams.get('last_seq') || 0);
    opened.push(url.search);
    sockets.push(ws);
    ready(ws);
    for (const e of log) if (e.seq > last) ws.send(JSON.stringify(e));
    if (opened.length === 2) { // the restarted server carries on, numbering after its own log
      log.push(bot(log.length + 1, 'after the restart'));
      ws.send(JSON.stringify(log.at(-1)));
    }
  });
  await page.goto(base);
  await waitBot(page, 2, 'three');
  const input = page.getByLabel('Type your message');
  await input.fill('still sending'); // never echoed by this server
  await input.press('Enter');
  await page.locator('[data-pending]').waitFor();
  // the server restarts with only the first entry
  log = log.slice(0, 1);
  await sockets[0].close({ code: 1001, reason: 'shutting down' });
  await page.waitForFunction(() => document.querySelector('.chorus-chat__log').textContent.includes('after the restart'),
    null, { timeout: 10000 });
  await page.waitForFunction(() => !document.querySelector('.chorus-chat__log').textContent.includes('three'),
    null, { timeout: 5000 });
  assert.deepEqual(await shown(page), [['bot', 'one'], ['bot', 'after the restart'], ['user', 'Sending: still sending']]);
  assert.deepEqual(opened, ['', `?conversation=${conv}&last_seq=3`, `?conversation=${conv}&last_seq=0`]);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(opened.length, 3, 'it replays once, then stays');
  assert.equal(await connText(page), '');
  await page.close();
  console.log('ok   widget: a server whose log went backwards is shown again from its start');
}

// A flow whose welcome has a web variant with links and a link button.
const LINK_FLOWS = {
  'settings.json': { settings: { welcome_flow: 'hi' } },
  'hi.json': {
    name: 'hi', description: 'web variants', intents: { greeting: { examples: ['hi', 'hello', 'hey'] } },
    nodes: { greet: { type: 'say', message: {
      default: 'Plain text for other channels.',
      web: 'See [our rules](https://example.com/rules) or https://example.com/help.',
      choices: [{ title: 'Open help', value: 'https://example.com/help' }, { title: 'Say hi', value: 'hi' }],
    } } },
  },
};

async function webVariants(context, backendUrl) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-links-'));
  const flows = path.join(tmp, 'flows');
  mkdirSync(flows);
  for (const [name, doc] of Object.entries(LINK_FLOWS)) writeFileSync(path.join(flows, name), JSON.stringify(doc));
  const daemon = await startDaemon(backendUrl, tmp, '', flows);
  try {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${daemon.port}/`);
    await waitBot(page, 1, 'See our rules');
    const bubble = page.locator('.chorus-chat__msg--bot').first();
    assert.ok(!(await bubble.textContent()).includes('Plain text'), 'the web variant is used');
    const links = await bubble.locator('a').evaluateAll((as) => as.map((a) => [a.textContent, a.href, a.target, a.rel]));
    assert.deepEqual(links, [
      ['our rules', 'https://example.com/rules', '_blank', 'noopener noreferrer'],
      ['https://example.com/help', 'https://example.com/help', '_blank', 'noopener noreferrer'],
    ]);
    const help = page.getByRole('link', { name: 'Open help' });
    assert.equal(await help.getAttribute('href'), 'https://example.com/help');
    assert.equal(await page.getByRole('button', { name: 'Say hi' }).count(), 1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'widget-links.png') });
    await page.close();
    console.log('ok   widget: web variant with links and a link button');
  } finally {
    await stopDaemon(daemon);
    rmSync(tmp, { recursive: true, force: true });
  }
}

function replacedCount(daemon) {
  return new Promise((resolve, reject) => {
    http.get(`http://127.0.0.1:${daemon.port}/metrics`, (res) => {
      let body = '';
      res.on('data', (b) => { body += b; });
      res.on('end', () => {
        const m = /^chorus_chat_ws_followers_replaced_total (\d+)/m.exec(body);
        if (m) resolve(Number(m[1])); else reject(new Error('no replaced counter in /metrics'));
      });
    }).on('error', reject);
  });
}

const connText = (page) => page.locator('.chorus-chat__conn').textContent();

// Two windows of one visitor on a daemon that lets one socket follow a
// conversation: the newer takes it over, and the older waits for its
// visitor instead of reconnecting (which would take it back, and so on).
async function replacedWindow(context, backendUrl) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-replaced-'));
  const daemon = await startDaemon(backendUrl, tmp, '', path.join(SRC, 'flows'), { max_followers: 1 });
  try {
    const base = `http://127.0.0.1:${daemon.port}/`;
    const first = await context.newPage();
    await first.goto(base);
    await waitBot(first, 1, 'How can I help');
    const second = await context.newPage(); // same storage: the same conversation
    await second.goto(base);
    await waitBot(second, 1, 'How can I help');
    await first.waitForFunction(() => /another window/.test(document.querySelector('.chorus-chat__conn').textContent),
      null, { timeout: 20000 });
    // the newer one carries on; the older one stays away (no reconnect storm)
    await second.getByLabel('Type your message').fill('hello');
    await second.keyboard.press('Enter');
    await waitBot(second, 2);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await replacedCount(daemon), 1, 'the first window stayed away');
    assert.equal(await first.locator('.chorus-chat__msg--bot').count(), 1);
    assert.equal(await connText(second), '', 'the second window is connected');
    await first.screenshot({ path: path.join(ARTIFACTS, 'widget-replaced.png') });
    // typing in the older window takes the conversation back, with what it missed
    const input = first.getByLabel('Type your message');
    await input.focus();
    await input.fill('what is my baggage allowance');
    await input.press('Enter');
    await waitBot(first, 3);
    const texts = await shown(first);
    assert.deepEqual(texts.map((m) => m[0]), ['bot', 'user', 'bot', 'user', 'bot'], JSON.stringify(texts));
    assert.equal(texts[1][1], 'hello');
    assert.equal(texts[3][1], 'what is my baggage allowance');
    await second.waitForFunction(() => /another window/.test(document.querySelector('.chorus-chat__conn').textContent),
      null, { timeout: 20000 });
    assert.equal(await replacedCount(daemon), 2);
    await first.close();
    await second.close();
    console.log('ok   widget: a window replaced by another waits for its visitor, then takes over');
  } finally {
    await stopDaemon(daemon);
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function conversation({ context, base }) {
  const page = context.pages()[0] || await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(base);

  // the welcome arrives by itself, with its quick replies as buttons
  await waitBot(page, 1, 'How can I help');
  const log = page.locator('[role="log"]');
  assert.equal(await log.getAttribute('aria-live'), 'polite');
  assert.ok(await page.locator('label[for="chorus-chat-input"]').count() === 1, 'the input has a label');
  const choice = page.getByRole('button', { name: 'Booking status' });
  await choice.waitFor();

  // click a choice: its value goes as the user's message, the bot asks for the reference
  await choice.click();
  await waitBot(page, 2, 'booking reference');
  assert.equal(await page.getByRole('button', { name: 'Booking status' }).count(), 0, 'choices are cleared once used');

  // type a message and send it with Enter
  const input = page.getByLabel('Type your message');
  await input.fill('ABC123');
  await input.press('Enter');
  await waitBot(page, 3, 'CH 101');
  const before = await shown(page);
  assert.deepEqual(before.map((m) => m[0]), ['bot', 'user', 'bot', 'user', 'bot'], JSON.stringify(before));
  assert.equal(before[1][1], 'Check my booking');
  assert.equal(before[3][1], 'ABC123');
  // each message was shown as sending until its echo took its place
  assert.equal(await page.locator('[data-pending]').count(), 0, 'a sending bubble stayed');
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-conversation.png') });

  // reload: the same conversation comes back, every message once, in order
  await page.reload();
  await page.waitForFunction((n) => document.querySelectorAll('.chorus-chat__msg').length >= n,
    before.length, { timeout: 20000 });
  const after = await shown(page);
  assert.deepEqual(after, before, 'resumed conversation differs');
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-resumed.png') });

  // and it carries on where it was
  await input.fill('what is my baggage allowance');
  await page.getByRole('button', { name: 'Send' }).click();
  await waitBot(page, 4);
  // frames on one socket arrive in order: had the replay sent anything twice,
  // it would sit before this reply
  const more = await shown(page);
  assert.equal(more.length, before.length + 2, JSON.stringify(more));
  assert.deepEqual(more.slice(0, before.length), before);
  assert.equal(more.at(-2)[1], 'what is my baggage allowance');

  // a phone's width: nothing overflows sideways, the input stays usable
  await page.setViewportSize({ width: 375, height: 740 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page overflows by ${overflow}px at 375px`);
  assert.ok(await input.isVisible());
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-mobile.png') });

  assert.deepEqual(consoleErrors, [], 'console errors');
  console.log('ok   widget: choice, typed message, reply, reload resumes, mobile');
}

const CASES = {
  conversation,
  embedded: ({ context, shop, blocked }) => embedded(context, shop, blocked),
  endedKeepsFocus: ({ context, shop }) => endedKeepsFocus(context, shop),
  failedTurnSentAgain: ({ context, base }) => failedTurnSentAgain(context, base),
  acceptedTurnFailed: ({ context, base }) => acceptedTurnFailed(context, base),
  acceptedThenCrash: ({ context, backend }) => acceptedThenCrash(context, backend.url),
  busySentAgain: ({ context, base }) => busySentAgain(context, base),
  unavailableSentAgain: ({ context, base }) => failedTurnSentAgain(context, base, 'unavailable'),
  atCapacitySentAgain: ({ context, base }) => failedTurnSentAgain(context, base, 'at_capacity'),
  logWentBack: ({ context, base }) => logWentBack(context, base),
  webVariants: ({ context, backend }) => webVariants(context, backend.url),
  replacedWindow: ({ context, backend }) => replacedWindow(context, backend.url),
};

async function run(names) {
  for (const n of names) assert.ok(n in CASES, `no case ${n}: ${Object.keys(CASES).join(' ')}`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-'));
  const backend = await startBackend();
  let widgetUrl = '';
  const shop = await startShop(() => widgetUrl);
  const blocked = await startShop(() => widgetUrl);
  // the shop's page is opened as http://localhost:PORT: allow exactly that origin
  const daemon = await startDaemon(backend.url, tmp, `http://localhost:${shop.address().port}`);
  widgetUrl = `http://127.0.0.1:${daemon.port}/widget.js`;
  const profile = mkdtempSync(path.join(os.tmpdir(), 'chorus-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1024, height: 800 },
    });
    const base = `http://127.0.0.1:${daemon.port}/`;
    const env = { context, base, backend, shop, blocked, daemon };
    for (const name of names.length ? names : Object.keys(CASES)) await CASES[name](env);
  } finally {
    if (context) await context.close();
    rmSync(profile, { recursive: true, force: true });
    backend.kill();
    shop.close();
    blocked.close();
    await stopDaemon(daemon);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await run(process.argv.slice(2));
console.log('all passed');
