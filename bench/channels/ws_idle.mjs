// Opens COUNT idle web conversations on /v1/chat/ws (each waits for its
// ready frame: the conversation exists and its start turn ran), spreading the
// client side over source addresses 127.0.1.1-127.0.1.N, 10,000 on each, so
// the loopback's ephemeral ports suffice: a socket bound to its source
// address before connecting cannot take a port in TIME_WAIT, and the load runs
// before this one leave thousands of those on 127.0.0.1,
// then prints the daemon's RSS (from /proc/PID/status) and holds them for
// HOLD seconds. Usage: node ws_idle.mjs PORT PID COUNT [HOLD]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const WebSocket = require(path.join(process.env.NODE_PATH, 'ws'));
const [port, pid, count, hold = 2] = process.argv.slice(2).map(Number);
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const base = rss();
const perAddr = 10000;
let open = 0;
let failed = 0;
const sockets = [];

function one(i) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/chat/ws`, {
      headers: { Origin: `http://127.0.0.1:${port}` }, perMessageDeflate: false,
      localAddress: `127.0.1.${1 + Math.floor(i / perAddr)}`,
    });
    let done = false;
    const finish = (ok) => { if (!done) { done = true; ok ? open++ : failed++; resolve(); } };
    ws.on('message', (d) => { if (JSON.parse(d).type === 'ready') finish(true); });
    ws.on('error', () => finish(false));
    ws.on('close', () => finish(false));
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
console.log(`idle open=${open} failed=${failed} open_s=${secs.toFixed(1)} rss_before_kib=${base} ` +
  `rss_kib=${after} rss_mib=${(after / 1024).toFixed(0)} ` +
  `bytes_per_conversation=${open ? Math.round(((after - base) * 1024) / open) : 0}`);
await new Promise((r) => setTimeout(r, hold * 1000));
for (const ws of sockets) ws.terminate();
process.exit(0);
