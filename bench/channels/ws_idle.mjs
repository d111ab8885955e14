// Opens COUNT idle web conversations on /v1/chat/ws (each waits for its
// ready frame: the conversation exists and its start turn ran), spreading the
// client side over source addresses 127.0.1.1-127.0.1.N, 10,000 on each, so
// the loopback's ephemeral ports suffice: a socket bound to its source
// address before connecting cannot take a port in TIME_WAIT, and the load runs
// before this one leave thousands of those on 127.0.0.1,
// then prints the daemon's RSS (from /proc/PID/status) and holds them for
// HOLD seconds. With the RSS it prints how many of the opened sockets are
// still open on the client's side (`still_open`: the server may close one,
// say when a pong comes too late) and on the daemon's
// (`server_connections`, its chorus_http_connections gauge, which counts the
// request asking for it too), so that the figure is known to be of that many.
// Usage: node ws_idle.mjs PORT PID COUNT [HOLD]
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const WebSocket = require(path.join(process.env.NODE_PATH, 'ws'));
const [port, pid, count, hold = 2] = process.argv.slice(2).map(Number);
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const base = rss();
const perAddr = 10000;
const progressEvery = 10000; // a line on stderr: 100,000 take minutes, emulated far longer
let open = 0;
let failed = 0;
let lost = 0; // opened, then closed before the measurement
const reasons = new Map(); // why conversations failed to open: count by reason
const sockets = [];

function one(i) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/chat/ws`, {
      headers: { Origin: `http://127.0.0.1:${port}` }, perMessageDeflate: false,
      localAddress: `127.0.1.${1 + Math.floor(i / perAddr)}`,
    });
    let done = false;
    let opened = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      ok ? open++ : failed++;
      if (!ok) reasons.set(why, (reasons.get(why) || 0) + 1);
      if ((open + failed) % progressEvery === 0)
        console.error(`idle: ${open} open, ${failed} failed, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      resolve();
    };
    ws.on('message', (d) => {
      const frame = JSON.parse(d);
      if (frame.type === 'ready' && !done) {
        opened = true;
        finish(true);
      } else if (frame.type === 'error') {
        finish(false, `error_frame_${frame.code}`);
      }
    });
    ws.on('error', (e) => finish(false, e.code || e.message));
    ws.on('close', (code) => {
      if (done && opened) lost++;
      finish(false, `closed_${code}`);
    });
    sockets.push(ws);
  });
}

const t0 = Date.now();
const inflight = 64; // more overflows the listen queue: SYN retransmits cost seconds
let next = 0;
async function worker() {
  while (next < count) await one(next++);
}
await Promise.all(Array.from({ length: inflight }, worker));
const secs = (Date.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, 1000));
const after = rss();
const stillOpen = open - lost;
const metrics = await new Promise((resolve) => {
  http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
    let body = '';
    res.on('data', (d) => { body += d; });
    res.on('end', () => resolve(body));
  }).on('error', () => resolve(''));
});
const serverConns = /^chorus_http_connections (\d+)/m.exec(metrics)?.[1] ?? 'unknown';
console.log(`idle open=${open} failed=${failed} still_open=${stillOpen} server_connections=${serverConns} ` +
  `open_s=${secs.toFixed(1)} rss_before_kib=${base} ` +
  `rss_kib=${after} rss_mib=${(after / 1024).toFixed(0)} ` +
  `bytes_per_conversation=${open ? Math.round(((after - base) * 1024) / open) : 0}` +
  (failed ? ` failed_reasons=${[...reasons].map(([why, n]) => `${why}:${n}`).join(',')}` : ''));
await new Promise((r) => setTimeout(r, hold * 1000));
for (const ws of sockets) ws.terminate();
process.exit(0);
