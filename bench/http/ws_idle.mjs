// node bench/http/ws_idle.mjs PORT N PID [PATH]: opens N WebSocket
// connections to 127.0.0.1:PORT (PATH, default /v1/echo/ws), each doing the
// handshake and one echo, then leaves them idle and reports the server's
// (PID) resident memory before and after, and per connection. Raw sockets
// and a hand-written handshake, so the client needs no package.
import net from 'node:net';
import fs from 'node:fs';

const [port, n, pid] = process.argv.slice(2, 5).map(Number);
const path = process.argv[5] || '/v1/echo/ws';
const rss = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hs = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
  'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Sec-WebSocket-Version: 13\r\n\r\n';
// a masked text frame "ping!"
const key = Buffer.from([1, 2, 3, 4]);
const payload = Buffer.from('ping!');
const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), key,
  Buffer.from(payload.map((b, i) => b ^ key[i % 4]))]);

function open(i) {
  return new Promise((resolve, reject) => {
    // spread over source addresses: one address has ~28,000 ports
    const s = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${1 + (i % 8)}` });
    let got = Buffer.alloc(0);
    let upgraded = false;
    s.on('error', reject);
    s.on('connect', () => s.write(hs));
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (!upgraded) {
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!got.subarray(0, 12).toString().includes('101')) return reject(new Error(got.toString()));
        upgraded = true;
        got = got.subarray(end + 4);
        s.write(frame);
      }
      if (got.length >= 2 + payload.length) { // the echo came back
        got = Buffer.alloc(0);
        s.removeAllListeners('data');
        s.on('data', () => {}); // pings are answered by nobody: ping_interval is long
        resolve(s);
      }
    });
  });
}

const before = rss();
const socks = [];
const batch = 200;
for (let i = 0; i < n; i += batch) {
  const k = Math.min(batch, n - i);
  socks.push(...await Promise.all(Array.from({ length: k }, (_, j) => open(i + j))));
}
await sleep(1000);
const after = rss();
console.log(`ws_idle: ${n} idle WebSocket connections on ${path}`);
console.log(`server rss before ${(before / 1048576).toFixed(1)} MiB, after ${(after / 1048576).toFixed(1)} MiB, ` +
  `${((after - before) / n).toFixed(0)} bytes per connection`);
console.log(`at 100,000 connections: ${((before + (after - before) / n * 100000) / 1048576).toFixed(0)} MiB (extrapolated)`);
for (const s of socks) s.destroy();
await sleep(500);
