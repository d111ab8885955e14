// The chat WebSocket (/v1/chat/ws) against the real chorusd running the
// example flows, with Node's `ws` client: authentication at the upgrade
// (gateway key or browser origin), each conversation resumed only by the key
// (or the widget) that started it, the frames both ways, per-conversation
// sequence numbers, acks (each socket's own) and resume after a reconnect
// without losing or duplicating anything, message ids that make a resend
// safe, replies pushed when another turn on the conversation completes, the
// same frames in the same order on every follower (a slow one closed
// without holding up the rest), an error for every bad frame, and the
// sockets of a key a reload revoked closed.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import http from 'node:http';
import path from 'node:path';
import assert from 'node:assert/strict';
import { startDaemon as startDaemonWith, stopDaemon } from './daemon.mjs';

const require = createRequire(import.meta.url);
const WebSocket = require(path.join(process.env.NODE_PATH || 'tests/node/node_modules', 'ws'));

const KEY = 'ws-gateway-key-1';
const OTHER_KEY = 'ws-gateway-key-2';
const WEB_KEY = 'ws-gateway-key-named-web';
const sha = (s) => createHash('sha256').update(s).digest('hex');

function config(chat = {}) {
  return {
    chat: {
      api_keys: `gw:${sha(KEY)},other:${sha(OTHER_KEY)},web:${sha(WEB_KEY)}`,
      allowed_origins: 'https://shop.example',
      ...chat,
    },
    websocket: { max_message_bytes: 8192 },
  };
}

function startDaemon(chat = {}) {
  return startDaemonWith(config(chat), { tag: 'chatws' });
}

// A client that queues every frame it receives, so a test can wait for the
// next frame matching a predicate without racing the socket.
class Client {
  constructor(port, query = '', headers = { Authorization: `Bearer ${KEY}` }) {
    this.frames = [];
    this.raw = []; // every frame's text as received, never removed
    this.waiters = [];
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/v1/chat/ws${query}`, { headers });
    this.ws.once('upgrade', (res) => { this.rid = res.headers['x-request-id']; });
    this.ws.on('message', (data) => {
      this.raw.push(data.toString());
      this.frames.push(JSON.parse(data.toString()));
      this.wake();
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => resolve(code)));
  }

  opened() {
    return new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('unexpected-response', (req, res) => reject(new Error(`status ${res.statusCode}`)));
      this.ws.once('error', reject);
    });
  }

  wake() {
    for (const w of [...this.waiters]) {
      const i = this.frames.findIndex(w.pred);
      if (i >= 0) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(this.frames.splice(i, 1)[0]);
      }
    }
  }

  // Resolves with (and removes) the first frame pred accepts, now or later.
  next(pred = () => true, what = 'a frame') {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what}; have ${JSON.stringify(this.frames)}`)), 20000);
      this.waiters.push({ pred, resolve: (f) => { clearTimeout(timer); resolve(f); } });
      this.wake();
    });
  }

  entry(seq) {
    return this.next((f) => f.seq === seq, `entry ${seq}`);
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  close() {
    this.ws.close(1000);
    return this.closed;
  }
}

function upgradeStatus(port, headers) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/chat/ws`, { headers });
    ws.once('unexpected-response', (req, res) => { resolve(res.statusCode); req.destroy(); });
    ws.once('open', () => { resolve(101); ws.close(); });
    ws.once('error', () => {});
  });
}

function rest(port, method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: {
      Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
    (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

// Opens a new conversation; returns the client, its ready frame and the welcome.
async function begin(port, headers) {
  const c = new Client(port, '', headers);
  await c.opened();
  const ready = await c.next((f) => f.type === 'ready', 'ready');
  const welcome = await c.next((f) => f.type === 'message', 'welcome');
  return { c, ready, welcome };
}

async function testAuthentication(port) {
  assert.equal(await upgradeStatus(port, {}), 401);
  assert.equal(await upgradeStatus(port, { Authorization: 'Bearer nope' }), 401);
  assert.equal(await upgradeStatus(port, { Origin: 'https://evil.example' }), 403);
  assert.equal(await upgradeStatus(port, { Origin: 'null' }), 403);
  assert.equal(await upgradeStatus(port, { Origin: 'https://shop.example' }), 101);
  assert.equal(await upgradeStatus(port, { Origin: `http://127.0.0.1:${port}` }), 101); // same origin
  assert.equal(await upgradeStatus(port, { Authorization: `Bearer ${KEY}` }), 101);
}

async function testConversation(port) {
  const { c, ready, welcome } = await begin(port);
  assert.equal(ready.resumed, false);
  assert.equal(ready.channel, 'chat');
  assert.match(ready.conversation, /^[0-9a-f]{32}$/);
  assert.equal(welcome.seq, 1);
  assert.equal(welcome.from, 'bot');
  assert.ok(welcome.choices.some((ch) => ch.title === 'Baggage allowance'), JSON.stringify(welcome));

  c.send({ type: 'message', id: 'm-1', text: welcome.choices.find((ch) => ch.title === 'Baggage allowance').value });
  const echo = await c.entry(2);
  assert.deepEqual([echo.type, echo.from, echo.id], ['message', 'user', 'm-1']);
  const reply = await c.entry(3);
  assert.equal(reply.from, 'bot');
  assert.ok(reply.text.length > 0);
  // the turn was announced with typing on, then off before the reply
  const typing = c.frames.filter((f) => f.type === 'typing').map((f) => f.on);
  assert.deepEqual(typing.slice(-2), [true, false], JSON.stringify(c.frames));

  // widget conversations (origin-authenticated) use the web variants
  const w = await begin(port, { Origin: 'https://shop.example' });
  assert.equal(w.ready.channel, 'web');
  await w.c.close();
  await c.close();
}

async function testResumeAfterReconnect(port) {
  const { c, ready } = await begin(port);
  const id = ready.conversation;
  c.send({ type: 'message', id: 'r-1', text: 'hello' });
  await c.entry(2);
  const third = await c.entry(3);
  c.send({ type: 'ack', seq: third.seq });
  // wait until the ack is in: an invalid ack after it gets an error, in order
  c.send({ type: 'ack', seq: 9999 });
  await c.next((f) => f.type === 'error' && f.code === 'invalid_frame', 'ack error');
  await c.close();

  // while nobody is connected, a gateway takes a turn on the conversation
  const r = await rest(port, 'POST', `/v1/chat/conversations/${id}/messages`, { text: 'what is my baggage allowance' });
  assert.equal(r.status, 200);
  const lastSeq = r.body.messages.at(-1).seq;
  assert.ok(lastSeq >= 5);

  // reconnect without last_seq: everything held, as with last_seq=0 (the
  // ack was the old socket's, and says nothing of what this one has shown)
  const c2 = new Client(port, `?conversation=${id}`);
  await c2.opened();
  const ready2 = await c2.next((f) => f.type === 'ready');
  assert.equal(ready2.resumed, true);
  assert.equal(ready2.conversation, id);
  assert.equal(ready2.last_seq, lastSeq);
  const replayed = [];
  for (let s = 1; s <= lastSeq; s++) replayed.push(await c2.entry(s));
  assert.equal(replayed[3].from, 'user');
  assert.equal(replayed[3].text, 'what is my baggage allowance');
  await c2.close();

  // reconnect with last_seq=0 (a reloaded page): everything, in order, once
  const c3 = new Client(port, `?conversation=${id}&last_seq=0`);
  await c3.opened();
  await c3.next((f) => f.type === 'ready');
  for (let s = 1; s <= lastSeq; s++) await c3.entry(s);
  c3.send({ type: 'message', id: 'after', text: 'thanks' });
  const after = await c3.next((f) => f.from === 'user');
  assert.equal(after.seq, lastSeq + 1);
  // its reply too, so that it cannot reach the next socket as a live entry
  await c3.next((f) => f.from === 'bot' && f.seq > after.seq);
  assert.ok(!c3.frames.some((f) => f.seq !== undefined && f.seq <= lastSeq), 'a duplicate entry');
  await c3.close();

  // a last_seq beyond the end (or past 2^64) replays nothing; live entries follow
  for (const big of ['99999', '18446744073709551615']) {
    const c5 = new Client(port, `?conversation=${id}&last_seq=${big}`);
    await c5.opened();
    await c5.next((f) => f.type === 'ready');
    c5.send({ type: 'message', id: `big-${big}`, text: 'hello' });
    const live = await c5.next((f) => f.from === 'user');
    assert.equal(live.id, `big-${big}`);
    assert.ok(!c5.frames.some((f) => f.seq !== undefined && f.seq < live.seq), JSON.stringify(c5.frames));
    await c5.next((f) => f.from === 'bot' && f.seq > live.seq); // not live on the next socket
    await c5.close();
  }

  // an unknown conversation: an error frame, then close 4404
  const c4 = new Client(port, '?conversation=ffffffffffffffffffffffffffffffff');
  await c4.opened();
  const err = await c4.next((f) => f.type === 'error');
  assert.equal(err.code, 'conversation_not_found');
  assert.equal(await c4.closed, 4404);
}

// A conversation is its starter's: the gateway key's, by name, or the
// widget's (pages authenticated by their origin). Anyone else resuming it,
// a key named "web" included, gets conversation_not_found and close 4404,
// as for an id that never existed, and not one entry; the owner resumes.
async function testResumeOnlyOwnConversations(port) {
  const widget = { Origin: 'https://shop.example' };
  const mine = { Authorization: `Bearer ${KEY}` };
  const other = { Authorization: `Bearer ${OTHER_KEY}` };
  const namedWeb = { Authorization: `Bearer ${WEB_KEY}` };
  const gw = await begin(port, mine);
  const web = await begin(port, widget);
  const refused = async (id, headers) => {
    const c = new Client(port, `?conversation=${id}&last_seq=0`, headers);
    await c.opened();
    const e = await c.next((f) => f.type === 'error', 'error');
    assert.equal(e.code, 'conversation_not_found', JSON.stringify(e));
    assert.equal(await c.closed, 4404);
    assert.ok(!c.frames.some((f) => f.type === 'ready' || f.seq !== undefined), JSON.stringify(c.frames));
  };
  for (const headers of [other, namedWeb, widget]) await refused(gw.ready.conversation, headers);
  for (const headers of [mine, other, namedWeb]) await refused(web.ready.conversation, headers);
  for (const [x, headers] of [[gw, mine], [web, widget]]) {
    const c = new Client(port, `?conversation=${x.ready.conversation}&last_seq=0`, headers);
    await c.opened();
    const ready = await c.next((f) => f.type === 'ready', 'ready');
    assert.equal(ready.resumed, true);
    assert.equal((await c.entry(1)).from, 'bot');
    await c.close();
  }
  await gw.c.close();
  await web.c.close();
}

// Acks are each socket's own. Two sockets follow a conversation (two tabs,
// two workers of a gateway); a acknowledges everything, b nothing, and b's
// connection drops. b back without last_seq gets every entry held, not
// only those after a's ack: what b never acknowledged is never skipped.
async function testAckOfOneSocketSkipsNothingForAnother(port) {
  const { c: a, ready } = await begin(port);
  const id = ready.conversation;
  const b = await follow(port, id, 0);
  a.send({ type: 'message', id: 'k-1', text: 'what is my baggage allowance' });
  await a.entry(2);
  const last = (await a.entry(3)).seq;
  await b.entry(3);
  a.send({ type: 'ack', seq: last });
  a.send({ type: 'ack', seq: 9999 }); // answered once the ack before it is in
  await a.next((f) => f.type === 'error' && f.code === 'invalid_frame', 'ack error');
  await b.close();
  const b2 = new Client(port, `?conversation=${id}`);
  await b2.opened();
  const r = await b2.next((f) => f.type === 'ready', 'ready');
  assert.equal(r.last_seq, last);
  for (let s = 1; s <= last; s++) assert.equal((await b2.entry(s)).seq, s);
  await b2.close();
  await a.close();
}

async function testDuplicateIdRunsOnce(port) {
  const { c, ready } = await begin(port);
  c.send({ type: 'message', id: 'dup-1', text: 'hello' });
  c.send({ type: 'message', id: 'dup-1', text: 'hello' });
  // the repeat came while the first still ran: acknowledged as a duplicate,
  // with seq 0 until the turn's entry exists (it gets one once recorded)
  const early = await c.next((f) => f.type === 'ack');
  assert.deepEqual([early.id, early.duplicate], ['dup-1', true]);
  assert.ok(early.seq === 0 || early.seq === 2, JSON.stringify(early));
  const echo = await c.entry(2);
  assert.equal(echo.id, 'dup-1');
  c.send({ type: 'message', id: 'dup-1', text: 'hello' });
  const ack = await c.next((f) => f.type === 'ack');
  assert.deepEqual([ack.id, ack.seq, ack.duplicate], ['dup-1', 2, true]);
  c.send({ type: 'message', id: 'dup-1', text: 'something else' });
  const reused = await c.next((f) => f.type === 'error');
  assert.equal(reused.code, 'id_reused');
  c.send({ type: 'message', id: 'dup-2', text: 'bye for now' });
  await c.next((f) => f.from === 'user' && f.id === 'dup-2');
  const t = await rest(port, 'GET', `/v1/chat/conversations/${ready.conversation}`);
  const users = t.body.messages.filter((m) => m.from === 'user');
  assert.deepEqual(users.map((m) => m.id), ['dup-1', 'dup-2'], JSON.stringify(t.body));
  await c.close();
}

async function testPushToEveryFollower(port) {
  const { c: a, ready } = await begin(port);
  const b = new Client(port, `?conversation=${ready.conversation}&last_seq=1`);
  await b.opened();
  await b.next((f) => f.type === 'ready');
  a.send({ type: 'message', id: 'p-1', text: 'hello' });
  // b sent nothing: it is told as the turn completes
  const pushedUser = await b.entry(2);
  assert.equal(pushedUser.id, 'p-1');
  const pushedBot = await b.entry(3);
  assert.equal(pushedBot.from, 'bot');
  await a.close();
  await b.close();
}

async function testBadFrames(port) {
  const { c } = await begin(port);
  const expectError = async (frame, code) => {
    c.send(frame);
    const e = await c.next((f) => f.type === 'error', `error ${code}`);
    assert.equal(e.code, code, JSON.stringify(e));
    assert.ok(e.message);
  };
  await expectError('{"type": ', 'invalid_json');
  await expectError({ type: 'dance' }, 'invalid_frame');
  await expectError({ text: 'no type' }, 'invalid_frame');
  await expectError({ type: 'message' }, 'invalid_frame');
  await expectError({ type: 'message', text: '' }, 'invalid_frame');
  await expectError({ type: 'message', text: 5 }, 'invalid_frame');
  await expectError({ type: 'message', text: 'hi', id: 7 }, 'invalid_frame');
  await expectError({ type: 'message', event: 'explode' }, 'invalid_frame');
  await expectError({ type: 'message', text: 'x'.repeat(300) }, 'too_large');
  await expectError({ type: 'ack', seq: 'one' }, 'invalid_frame');
  // nothing above became a turn
  assert.ok(!c.frames.some((f) => f.from === 'user'));
  // binary frames close the socket (1003)
  c.ws.send(Buffer.from([1, 2, 3]));
  assert.equal(await c.closed, 1003);
}

async function testEndedConversation(port) {
  const { c } = await begin(port);
  c.send({ type: 'message', id: 'e-1', text: 'goodbye' });
  await c.next((f) => f.type === 'end', 'end');
  c.send({ type: 'message', id: 'e-2', text: 'hello?' });
  const e = await c.next((f) => f.type === 'error');
  assert.equal(e.code, 'conversation_ended');
  // the message that ended it, sent again (a client resending its outbox on
  // reconnect), is acknowledged as the duplicate it is, as over REST
  c.send({ type: 'message', id: 'e-1', text: 'goodbye' });
  const ack = await c.next((f) => f.type === 'ack' || (f.type === 'error' && f.id === 'e-1'));
  assert.deepEqual([ack.type, ack.id, ack.duplicate], ['ack', 'e-1', true], JSON.stringify(ack));
  assert.ok(ack.seq > 1, JSON.stringify(ack));
  await c.close();
}

async function testHistoryTruncated(port) {
  // the log holds 64 entries: after ~70, a full replay says where it starts
  const { c, ready } = await begin(port);
  let last = 1;
  while (last < 70) {
    c.send({ type: 'message', id: `h-${last}`, text: 'hello' });
    const user = await c.next((f) => f.from === 'user', 'echo');
    const bot = await c.next((f) => f.from === 'bot' && f.seq > user.seq, 'reply');
    last = bot.seq;
  }
  await c.close();
  const r = new Client(port, `?conversation=${ready.conversation}&last_seq=0`);
  await r.opened();
  const rr = await r.next((f) => f.type === 'ready');
  assert.equal(rr.last_seq, last);
  assert.equal(rr.first_seq, last - 63);
  const e = await r.next((f) => f.type === 'error');
  assert.equal(e.code, 'history_truncated');
  for (let s = rr.first_seq; s <= last; s++) await r.entry(s);
  assert.ok(!r.frames.some((f) => f.seq !== undefined), 'nothing beyond what is held');
  await r.close();
}

function metric(port, name) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
        if (res.statusCode !== 200 || !m) reject(new Error(`no ${name}: ${res.statusCode} ${text.slice(0, 500)}`));
        else resolve(Number(m[1]));
      });
    }).on('error', reject);
  });
}

// Follows conversation id from seq after on a new socket; resolves with the
// client once its ready frame is in.
async function follow(port, id, after) {
  const c = new Client(port, `?conversation=${id}&last_seq=${after}`);
  await c.opened();
  await c.next((f) => f.type === 'ready', 'ready');
  return c;
}

// chat.max_followers = 2 (its own daemon): a third socket on a conversation
// closes the oldest, which gets error "replaced" then close 1008 and nothing
// more; the other two stay open and both get the bot's next reply; the
// replacement is logged and counted; the one replaced resumes by seq.
async function testMaxFollowers() {
  const d = await startDaemon({ max_followers: 2 });
  try {
    assert.equal(await metric(d.port, 'chorus_chat_ws_followers_replaced_total'), 0);
    const { c: a, ready } = await begin(d.port);
    const id = ready.conversation;
    const b = await follow(d.port, id, 1);
    const c = await follow(d.port, id, 1);
    const replaced = await a.next((f) => f.type === 'error', 'error replaced');
    assert.equal(replaced.code, 'replaced', JSON.stringify(replaced));
    assert.match(replaced.message, /newer connection/);
    assert.equal(await a.closed, 1008);
    assert.ok(!b.frames.concat(c.frames).some((f) => f.type === 'error'), 'b or c got an error');

    c.send({ type: 'message', id: 'f-1', text: 'hello' });
    for (const x of [b, c]) {
      const user = await x.next((f) => f.from === 'user' && f.id === 'f-1', 'echo');
      const bot = await x.next((f) => f.from === 'bot' && f.seq > user.seq, 'reply');
      assert.ok(bot.text.length > 0, JSON.stringify(bot));
      assert.equal(x.ws.readyState, WebSocket.OPEN);
    }
    assert.ok(!a.frames.some((f) => f.seq !== undefined), `after replaced: ${JSON.stringify(a.frames)}`);
    assert.equal(await metric(d.port, 'chorus_chat_ws_followers_replaced_total'), 1);
    assert.match(d.stderrText(), new RegExp(`event=chat_ws_replaced conversation=${id} `));

    // the replaced page comes back: it wins over b (now the oldest) and
    // gets what it missed, from seq 2 on
    const a2 = await follow(d.port, id, 1);
    const missed = await a2.entry(2);
    assert.equal(missed.id, 'f-1');
    assert.equal((await b.next((f) => f.type === 'error', 'b replaced')).code, 'replaced');
    assert.equal(await b.closed, 1008);
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    assert.equal(await metric(d.port, 'chorus_chat_ws_followers_replaced_total'), 2);
    await a2.close();
    await c.close();
  } finally {
    await stopDaemon(d);
  }
}

// A reload that takes a gateway key out of chat.api_keys closes the sockets
// opened with it (error "unauthorized", then close 1008), as it refuses the
// key's REST requests and upgrades from then on: a revoked key runs no
// more turns. So does one that gives the key's name a new secret, as the
// secret those sockets proved is gone. Other keys' sockets and the
// widget's go on. (Its own daemon: the reload changes the keys.)
async function testRevokedKeyClosesItsSockets() {
  const d = await startDaemon();
  try {
    const kept = await begin(d.port);
    const revoked = await begin(d.port, { Authorization: `Bearer ${OTHER_KEY}` });
    const rotated = await begin(d.port, { Authorization: `Bearer ${WEB_KEY}` });
    const page = await begin(d.port, { Origin: 'https://shop.example' });
    const newWebKey = 'ws-gateway-key-named-web-2';
    const cfg = config();
    cfg.chat.api_keys = `gw:${sha(KEY)},web:${sha(newWebKey)}`;
    await d.reload(cfg);
    const within = (ms) => new Promise((resolve) => setTimeout(() => resolve('still open'), ms));
    for (const x of [revoked, rotated]) {
      assert.equal(await Promise.race([x.c.closed, within(5000)]), 1008);
      const e = x.c.frames.find((f) => f.type === 'error');
      assert.equal(e && e.code, 'unauthorized', JSON.stringify(x.c.frames));
    }
    assert.match(d.stderrText(), /event=chat_ws_key_revoked .*gateway=other/);
    assert.match(d.stderrText(), /event=chat_ws_key_revoked .*gateway=web/);
    assert.equal(await upgradeStatus(d.port, { Authorization: `Bearer ${OTHER_KEY}` }), 401);
    for (const x of [kept, page]) {
      x.c.send({ type: 'message', id: 'after-reload', text: 'hello' });
      const echo = await x.c.next((f) => f.from === 'user', 'echo');
      assert.equal(echo.id, 'after-reload');
      assert.equal(x.c.ws.readyState, WebSocket.OPEN);
    }
    await kept.c.close();
    await page.c.close();
  } finally {
    await stopDaemon(d);
  }
}

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const seqsOf = (raw) => raw.map((t) => JSON.parse(t).seq).filter((q) => q !== undefined);

// Every follower of a conversation (eight, chat.max_followers) gets every
// entry and every typing change, byte for byte the same frames in the same
// order, while WebSocket turns from three of them and REST turns run at
// once: nothing missed, nothing doubled, nothing reordered.
async function testBroadcastSameFramesInOrder(port) {
  const { c: a, ready } = await begin(port);
  const id = ready.conversation;
  const all = [a];
  for (let i = 1; i < 8; i++) all.push(await follow(port, id, 1));
  const mark = all.map((x) => x.raw.length);
  const post = (text) => rest(port, 'POST', `/v1/chat/conversations/${id}/messages`, { text });
  const senders = [all[0], all[3], all[7]];
  senders.forEach((x, i) => x.send({ type: 'message', id: `bc-${i}`, text: 'hello' }));
  const posts = [post('what is my baggage allowance'), post('hello'), post('what is my baggage allowance')];
  // each WebSocket turn is in once its entry comes back to its sender
  for (const [i, x] of senders.entries()) await x.next((f) => f.id === `bc-${i}`, `entry bc-${i}`);
  for (const r of await Promise.all(posts)) assert.equal(r.status, 200, JSON.stringify(r.body));
  // a last turn runs behind all of them: its last reply is the last entry
  const last = await post('hello');
  assert.equal(last.status, 200, JSON.stringify(last.body));
  const lastSeq = last.body.messages.at(-1).seq;
  for (const x of all) await x.entry(lastSeq);
  const got = all.map((x, i) => x.raw.slice(mark[i]));
  assert.deepEqual(seqsOf(got[0]), range(2, lastSeq), got[0].join('\n'));
  assert.ok(got[0].filter((t) => JSON.parse(t).type === 'typing').length >= 2 * 7, 'typing frames');
  for (let i = 1; i < all.length; i++) assert.deepEqual(got[i], got[0], `follower ${i} differs`);
  for (const x of all) await x.close();
}

// A follower that stops reading (its own daemon: small output buffer, 1 MiB
// send queue, 256 KiB messages) while others read: once its send queue is
// full it is closed 1008 (logged as event=chat_ws_slow with its request id)
// and gets nothing more, and the followers before and after it in the list
// go on getting every frame. What the slow one got, once it reads again, is
// the others' frames from the start, in order, without a gap, then the close.
// The close frame goes out ahead of what still waits in the socket's queue,
// which then never leaves; the server reads on, so the client's close reply
// ends the connection at once, not after the close timeout (two minutes
// here, websocket.pong_timeout_ms).
async function testSlowFollower() {
  const d = await startDaemonWith({
    chat: { api_keys: `gw:${sha(KEY)}`, max_text_bytes: 262144 },
    http: { write_buffer_bytes: 65536 },
    websocket: { send_queue_bytes: 1048576, ping_interval_ms: 120000, pong_timeout_ms: 120000 },
  }, { tag: 'chatws-slow' });
  try {
    const { c: a, ready } = await begin(d.port);
    const id = ready.conversation;
    const b = await follow(d.port, id, 1);
    const slow = await follow(d.port, id, 1);
    const c = await follow(d.port, id, 1);
    const fast = [a, b, c];
    const all = [a, b, slow, c];
    const mark = all.map((x) => x.raw.length);
    slow.ws._socket.pause(); // the kernel's buffers fill, then its send queue
    const big = 'hello '.repeat(262144 / 6);
    const post = async (text) => {
      const r = await rest(d.port, 'POST', `/v1/chat/conversations/${id}/messages`, { text });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.messages.at(-1).seq;
    };
    const slowLogged = () => d.stderrText().includes(`event=chat_ws_slow rid=${slow.rid}`);
    let turns = 0;
    while (!slowLogged() && turns < 80) {
      await post(big);
      turns++;
    }
    assert.ok(slowLogged(), `no event=chat_ws_slow for ${slow.rid} after ${turns} turns`);
    assert.ok(!new RegExp(`event=chat_ws_slow rid=(?!${slow.rid})`).test(d.stderrText()),
      d.stderrText().split('\n').filter((l) => /chat_ws_slow/.test(l)).join('\n'));
    const lastSeq = await post('hello'); // sent to the closing one too: it gets nothing
    for (const x of fast) await x.entry(lastSeq);
    const got = all.map((x, i) => x.raw.slice(mark[i]));
    assert.deepEqual(seqsOf(got[0]), range(2, lastSeq));
    for (const i of [1, 3]) assert.deepEqual(got[i], got[0], `follower ${i} differs`);
    for (const x of fast) assert.equal(x.ws.readyState, WebSocket.OPEN);

    slow.ws._socket.resume(); // ws answers the close frame with its own
    const within = (ms) => new Promise((resolve) => setTimeout(() => resolve('still open'), ms));
    assert.equal(await Promise.race([slow.closed, within(10000)]), 1008);
    const mine = slow.raw.slice(mark[2]);
    const seqs = seqsOf(mine);
    assert.ok(seqs.length > 0 && seqs.at(-1) < lastSeq, `slow got ${seqs.length} entries`);
    assert.deepEqual(seqs, range(2, seqs.at(-1)));
    assert.deepEqual(mine, got[0].slice(0, mine.length), 'the slow follower\'s frames differ');
    for (const x of fast) await x.close();
  } finally {
    await stopDaemon(d);
  }
}

const daemon = await startDaemon({ max_text_bytes: 200, history_messages: 64 });
let failed = 0;
try {
  for (const [name, fn] of Object.entries({
    testAuthentication, testConversation, testResumeAfterReconnect, testResumeOnlyOwnConversations,
    testAckOfOneSocketSkipsNothingForAnother, testDuplicateIdRunsOnce, testPushToEveryFollower,
    testBadFrames, testEndedConversation, testHistoryTruncated, testMaxFollowers,
    testBroadcastSameFramesInOrder, testSlowFollower, testRevokedKeyClosesItsSockets,
  })) {
    try {
      await fn(daemon.port);
      console.log(`ok   ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}\n${e.stack}`);
    }
  }
} finally {
  await stopDaemon(daemon).catch((e) => { failed++; console.log(String(e)); });
}
if (failed) {
  console.log(`${failed} failed`);
  process.exit(1);
}
console.log('all passed');
