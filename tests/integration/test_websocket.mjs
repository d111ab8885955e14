// WebSocket behaviour of the real chorusd (/v1/echo/ws) with Node's `ws`
// client, and raw sockets for frames a correct client never sends:
// handshake, echo, fragmentation, pings and the pong timeout, oversize (1009),
// invalid UTF-8 (1007), unmasked frames (1002), server close on drain (1001).
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import assert from 'node:assert/strict';
import { startDaemon as startDaemonWith, stopDaemon } from './daemon.mjs';

const require = createRequire(import.meta.url);
const WebSocket = require(path.join(process.env.NODE_PATH || 'tests/node/node_modules', 'ws'));

const CONFIG = {
  websocket: { max_message_bytes: 1024, ping_interval_ms: 200, pong_timeout_ms: 300 },
  shutdown: { drain_timeout_ms: 5000 },
};

function startDaemon(config = CONFIG) {
  return startDaemonWith(config, { tag: 'ws', flows: false });
}

function open(port, opts = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/echo/ws`, opts);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

const nextMessage = (ws) => new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })));
const closed = (ws) => new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));

// A raw client: sends a handshake, returns the socket and the bytes after the 101.
function rawUpgrade(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write('GET /v1/echo/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    });
    let buf = Buffer.alloc(0);
    const onData = (b) => {
      buf = Buffer.concat([buf, b]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      const head = buf.subarray(0, end).toString();
      assert.match(head, /^HTTP\/1\.1 101 /);
      assert.match(head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
      resolve({ s, rest: buf.subarray(end + 4) });
    };
    s.on('data', onData);
    s.on('error', reject);
  });
}

function frame(opcode, payload, { mask = true, fin = true } = {}) {
  const p = Buffer.from(payload);
  const head = [(fin ? 0x80 : 0) | opcode];
  if (p.length < 126) head.push((mask ? 0x80 : 0) | p.length);
  else head.push((mask ? 0x80 : 0) | 126, p.length >> 8, p.length & 0xff);
  const key = Buffer.from([1, 2, 3, 4]);
  const body = mask ? Buffer.from(p.map((b, i) => b ^ key[i % 4])) : p;
  return Buffer.concat([Buffer.from(head), mask ? key : Buffer.alloc(0), body]);
}

// Reads frames until a close frame; returns its code.
function closeCode(s, initial) {
  return new Promise((resolve, reject) => {
    let buf = initial || Buffer.alloc(0);
    const tryParse = () => {
      while (buf.length >= 2) {
        let len = buf[1] & 0x7f, off = 2;
        if (len === 126) { len = buf.readUInt16BE(2); off = 4; }
        if (buf.length < off + len) return;
        const op = buf[0] & 0x0f;
        if (op === 8) { resolve(len >= 2 ? buf.readUInt16BE(off) : 1005); return; }
        buf = buf.subarray(off + len);
      }
    };
    s.on('data', (b) => { buf = Buffer.concat([buf, b]); tryParse(); });
    s.on('end', () => reject(new Error('closed without a close frame')));
    tryParse();
  });
}

const tests = {
  async echoTextAndBinary(d) {
    const ws = await open(d.port);
    ws.send('héllo, wörld');
    let m = await nextMessage(ws);
    assert.equal(m.isBinary, false);
    assert.equal(m.data.toString(), 'héllo, wörld');
    ws.send(Buffer.from([0, 1, 2, 255]));
    m = await nextMessage(ws);
    assert.equal(m.isBinary, true);
    assert.deepEqual([...m.data], [0, 1, 2, 255]);
    ws.close(1000, 'bye');
    const c = await closed(ws);
    assert.equal(c.code, 1000);
  },

  async fragmentedMessageIsReassembled(d) {
    const ws = await open(d.port);
    ws.send('abc', { fin: false });
    ws.send('def', { fin: false });
    ws.send('ghi', { fin: true });
    const m = await nextMessage(ws);
    assert.equal(m.data.toString(), 'abcdefghi');
    ws.close();
    await closed(ws);
  },

  async pingsKeepALiveClientOpen(d) {
    const ws = await open(d.port);
    let pings = 0;
    await new Promise((resolve) => ws.on('ping', () => { if (++pings === 3) resolve(); }));
    assert.equal(ws.readyState, WebSocket.OPEN);
    ws.send('still here');
    assert.equal((await nextMessage(ws)).data.toString(), 'still here');
    ws.close();
    await closed(ws);
  },

  async clientThatNeverPongsIsClosed(d) {
    const ws = await open(d.port, { autoPong: false });
    let pinged = false;
    ws.on('ping', () => { pinged = true; });
    const c = await closed(ws);
    assert.ok(pinged, 'was pinged');
    assert.equal(c.code, 1006);
  },

  async oversizeMessageCloses1009(d) {
    const ws = await open(d.port);
    ws.send('x'.repeat(1000));
    assert.equal((await nextMessage(ws)).data.length, 1000);
    ws.send('x'.repeat(2000));
    const c = await closed(ws);
    assert.equal(c.code, 1009);
  },

  async invalidUtf8Closes1007(d) {
    const { s, rest } = await rawUpgrade(d.port);
    s.write(frame(1, Buffer.from([0x68, 0xff, 0xfe, 0x69])));
    assert.equal(await closeCode(s, rest), 1007);
    s.destroy();
  },

  async fragmentedInvalidUtf8Closes1007(d) {
    const { s, rest } = await rawUpgrade(d.port);
    s.write(frame(1, Buffer.from([0xe2, 0x82]), { fin: false }));
    s.write(frame(0, Buffer.from([0x28]), { fin: true }));
    assert.equal(await closeCode(s, rest), 1007);
    s.destroy();
  },

  async unmaskedFrameCloses1002(d) {
    const { s, rest } = await rawUpgrade(d.port);
    s.write(frame(1, 'hello', { mask: false }));
    assert.equal(await closeCode(s, rest), 1002);
    s.destroy();
  },

  async badHandshakes(d) {
    const res = await fetch(`http://127.0.0.1:${d.port}/v1/echo/ws`);
    assert.equal(res.status, 426);
    const bad = await new Promise((resolve) => {
      const s = net.connect(d.port, '127.0.0.1', () => s.write(
        'GET /v1/echo/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n'));
      let buf = '';
      s.on('data', (b) => { buf += b; });
      s.on('end', () => resolve(buf));
    });
    assert.match(bad, /^HTTP\/1\.1 400 /);
    const ws = await open(d.port); // and it still serves
    ws.close();
    await closed(ws);
  },

  async serverPushQueuesAreBoundedAndEchoSurvivesManyMessages(d) {
    const ws = await open(d.port);
    const n = 500;
    let got = 0;
    const done = new Promise((resolve) => ws.on('message', () => { if (++got === n) resolve(); }));
    for (let i = 0; i < n; i++) ws.send(`m${i}`);
    await done;
    assert.equal(got, n);
    ws.close();
    await closed(ws);
  },
};

async function drainClosesWith1001() {
  const d = await startDaemon();
  const ws = await open(d.port);
  const c = closed(ws);
  const exit = stopDaemon(d);
  assert.equal((await c).code, 1001);
  await exit;
}

let failed = 0;
for (const [name, fn] of Object.entries(tests)) {
  const d = await startDaemon();
  try {
    await Promise.race([fn(d), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 20000))]);
    await stopDaemon(d);
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack}\n${d.stderrText()}`);
    d.kill('SIGKILL');
  }
}
try {
  await drainClosesWith1001();
  console.log('ok   drainClosesWith1001');
} catch (e) {
  failed++;
  console.log(`FAIL drainClosesWith1001: ${e.stack}`);
}
console.log(failed ? `${failed} failed` : 'all passed');
process.exit(failed ? 1 : 0);
