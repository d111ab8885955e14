// WebSocket load client for bench/channels.sh: CONNS concurrent web
// visitors on /v1/chat/ws, each holding one 3-turn conversation ("sign me
// up", a name, a city) per socket, as the widget does, then opening the next
// one, for SECONDS; one turn = a message frame sent until the bot's reply
// frame arrives. A new conversation per three turns keeps each within the
// guardrails' per-conversation rate limit (20 a minute, burst 8), as real
// visitors are: one socket sending as fast as replies come back would
// measure the limiter's "slow down" answer instead of the flow after eight
// turns. Prints turns/s, conversations/s, latency percentiles and the error
// frames by code. Usage: node ws_load.mjs PORT CONNS SECONDS
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const WebSocket = require(path.join(process.env.NODE_PATH, 'ws'));
const [port, conns, seconds] = process.argv.slice(2).map(Number);
const texts = ['sign me up', 'Ada', 'London'];
const lat = [];
let turns = 0;
let conversations = 0;
let errors = 0;
const errorCodes = {};
let measuring = false;

// One conversation on its own socket: resolves once the socket is closed.
function conversation() {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/chat/ws`, {
      headers: { Origin: `http://127.0.0.1:${port}` }, perMessageDeflate: false,
    });
    let step = 0;
    let sent = 0;
    let welcomed = false;
    let lastFrame = 'none';
    // A conversation that stops answering is counted (with the last frame
    // it saw) and dropped, so one stuck socket cannot stall its visitor.
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        errors++;
        const code = `timeout_after_${lastFrame}`;
        errorCodes[code] = (errorCodes[code] || 0) + 1;
        ws.terminate();
      }, 5000);
    };
    arm();
    const send = () => {
      if (stop || step === texts.length) { clearTimeout(watchdog); ws.close(1000); return; }
      arm();
      sent = process.hrtime.bigint();
      ws.send(JSON.stringify({ type: 'message', id: `m${step}`, text: texts[step] }));
      step++;
    };
    ws.on('message', (data) => {
      const f = JSON.parse(data);
      lastFrame = f.type === 'message' ? `${f.from}_message` : f.type;
      if (f.type === 'error') {
        errors++;
        errorCodes[f.code] = (errorCodes[f.code] || 0) + 1;
      }
      // the bench flows have no welcome: the first turn goes once the socket is ready
      if (f.type === 'ready' && !welcomed) { welcomed = true; send(); return; }
      if (f.type !== 'message' || f.from !== 'bot') return;
      if (measuring) {
        turns++;
        lat.push(Number(process.hrtime.bigint() - sent) / 1e6);
        if (step === texts.length) conversations++;
      }
      send();
    });
    ws.on('error', (e) => {
      errors++;
      errorCodes[e.code || 'socket'] = (errorCodes[e.code || 'socket'] || 0) + 1;
    });
    ws.on('close', () => { clearTimeout(watchdog); resolve(); });
  });
}

async function visitor() {
  while (!stop) await conversation();
}

let stop = false;
const all = [];
for (let i = 0; i < conns; i++) all.push(visitor());
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
const codes = Object.entries(errorCodes).map(([k, v]) => `${k}:${v}`).join(',') || 'none';
console.log(`ws turns=${turns} conversations=${conversations} seconds=${elapsed.toFixed(2)} ` +
  `turns_per_s=${(turns / elapsed).toFixed(0)} p50_ms=${pct(0.5).toFixed(2)} ` +
  `p99_ms=${pct(0.99).toFixed(2)} errors=${errors} error_codes=${codes}`);
process.exit(0); // sockets still closing must not keep the benchmark waiting
