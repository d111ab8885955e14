// The nlp.js side of bench/nlu.sh: trains node-nlp's NlpManager on the
// CLINC150 train + oos_train split (oos as an intent of its own), classifies
// test + oos_test, and prints one JSON object with the keys chorusctl nlu
// eval --json uses. Settings as in ../shared/PEERS.md: English, no NER, no
// sentiment; answers below 0.5 come back as "None" and count as out of scope.
//
// usage: node nlpjs_eval.mjs data_full.json
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { NlpManager } = require('node-nlp');

const path = process.argv[2];
if (!path) {
  console.error('usage: node nlpjs_eval.mjs data_full.json');
  process.exit(2);
}
const data = JSON.parse(readFileSync(path, 'utf8'));
const OOS = 'oos';

const manager = new NlpManager({
  languages: ['en'],
  forceNER: false,
  calculateSentiment: false,
  autoSave: false,
  nlu: { log: false },
});
for (const [text, label] of [...data.train, ...data.oos_train]) {
  manager.addDocument('en', text, label);
}

const t0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
await manager.train();
const trainSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);

const lat = [];
let nIn = 0, right = 0, nOos = 0, recalled = 0, flagged = 0, flaggedRight = 0;
for (const [text, label] of [...data.test, ...data.oos_test]) {
  const s = process.hrtime.bigint();
  const r = await manager.process('en', text);
  lat.push(Number(process.hrtime.bigint() - s) / 1e3);
  const saidOos = !r.intent || r.intent === 'None' || r.intent === OOS;
  const isOos = label === OOS;
  if (isOos) {
    nOos++;
    if (saidOos) recalled++;
  } else {
    nIn++;
    if (!saidOos && r.intent === label) right++;
  }
  if (saidOos) {
    flagged++;
    if (isOos) flaggedRight++;
  }
}
lat.sort((a, b) => a - b);
const out = {
  in_scope_accuracy: right / nIn,
  oos_recall: recalled / nOos,
  oos_precision: flagged ? flaggedRight / flagged : 0,
  train_seconds: trainSeconds,
  train_cpu_seconds: (cpu.user + cpu.system) / 1e6,
  classify_us_p50: lat[Math.floor(lat.length / 2)],
  classify_us_p99: lat[Math.floor((lat.length - 1) * 0.99)],
  peak_rss_kib: process.resourceUsage().maxRSS,
  n_in_scope: nIn,
  n_oos: nOos,
};
console.log(JSON.stringify(out, null, 2));
