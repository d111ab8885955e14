// WebSocket load client for bench/channels.sh: CONNS concurrent web
// conversations on /v1/chat/ws, each running 3-turn conversations ("sign me
// up", a name, a city) for SECONDS; one turn = a message frame sent until the
// bot's reply frame arrives. Prints turns/s and latency percentiles.
// Usage: node ws_load.mjs PORT CONNS SECONDS
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const WebSocket = require(path.join(process.env.NODE_PATH, 'ws'));
const [port, conns, seconds] = process.argv.slice(2).map(Number);
const texts = ['sign me up', 'Ada', 'London'];
const lat = [];
let turns = 0;
let errors = 0;
let measuring = false;

function conversation() {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/chat/ws`, {
      headers: { Origin: `http://127.0.0.1:${port}` }, perMessageDeflate: false,
    });
    let step = 0;
    let sent = 0;
    let welcomed = false;
    let n = 0;
    const send = () => {
      if (stop) { ws.close(1000); return; }
      sent = process.hrtime.bigint();
      n++;
      ws.send(JSON.stringify({ type: 'message', id: `m${n}`, text: texts[step] }));
      step = (step + 1) % 3;
    };
    ws.on('message', (data) => {
      const f = JSON.parse(data);
      if (f.type === 'error') errors++;
      // the bench flows have no welcome: the first turn goes once the socket is ready
      if (f.type === 'ready' && !welcomed) { welcomed = true; send(); return; }
      if (f.type !== 'message' || f.from !== 'bot') return;
      if (f.seq && f.seq % 32 === 0) ws.send(JSON.stringify({ type: 'ack', seq: f.seq }));
      if (measuring) {
        turns++;
        lat.push(Number(process.hrtime.bigint() - sent) / 1e6);
      }
      send();
    });
    ws.on('error', () => { errors++; });
    ws.on('close', () => resolve());
  });
}

let stop = false;
const all = [];
for (let i = 0; i < conns; i++) all.push(conversation());
await new Promise((r) => setTimeout(r, 1000)); // warm-up: every socket open
measuring = true;
const t0 = process.hrtime.bigint();
await new Promise((r) => setTimeout(r, seconds * 1000));
measuring = false;
const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
stop = true;
await Promise.race([Promise.all(all), new Promise((r) => setTimeout(r, 5000))]);
lat.sort((a, b) => a - b);
const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] : NaN);
console.log(`ws turns=${turns} seconds=${elapsed.toFixed(2)} turns_per_s=${(turns / elapsed).toFixed(0)} ` +
  `p50_ms=${pct(0.5).toFixed(2)} p99_ms=${pct(0.99).toFixed(2)} errors=${errors}`);
process.exit(0);
