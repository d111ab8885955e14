// A WebSocket client over TLS for test_tls.py: node tls_ws_client.mjs URL CA_FILE.
// Prints "open" once connected; then each line read on stdin is sent as a
// text message and its echo printed as "echo <text>"; "closed <code>" when
// the connection ends; "error <message>" on a failure (TLS included).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const require = createRequire(import.meta.url);
const modules = process.env.NODE_PATH ||
  path.join(process.env.CHORUS_SOURCE_DIR || '.', 'tests/node/node_modules');
const WebSocket = require(path.join(modules, 'ws'));

const [url, caFile] = process.argv.slice(2);
const ws = new WebSocket(url, { ca: fs.readFileSync(caFile), servername: 'localhost' });
ws.on('open', () => {
  const sock = ws._socket;
  const cert = sock.getPeerCertificate();
  console.log(`open ${sock.getProtocol()} ${cert.subject.CN}`);
});
ws.on('message', (data) => console.log(`echo ${data.toString()}`));
ws.on('close', (code) => {
  console.log(`closed ${code}`);
  process.exit(0);
});
ws.on('error', (e) => {
  console.log(`error ${e.message}`);
  process.exit(0);
});
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'close') ws.close(1000, 'done');
  else ws.send(line);
});
