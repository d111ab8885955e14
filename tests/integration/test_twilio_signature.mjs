// Cross-checks chorus's X-Twilio-Signature code against the official `twilio`
// helper library from npm: the vectors of tests/unit/channels/test_twilio.c
// must be what twilio.getExpectedTwilioSignature computes and what
// twilio.validateRequest accepts; requests signed by the library (URLs with
// query strings, UTF-8, XML specials, empty values, many fields) are
// accepted by the real chorusd, and requests the library says are invalid
// (another token, URL or value) are refused by chorusd with 403. The URL
// may be signed with or without its port (the scheme's default one when
// none is configured), and a field repeated with the same value is signed
// once: chorusd agrees with the library on every such request.
import { createRequire } from 'node:module';
import http from 'node:http';
import path from 'node:path';
import assert from 'node:assert/strict';
import { startDaemon as startDaemonWith, stopDaemon } from './daemon.mjs';

const require = createRequire(import.meta.url);
const twilio = require(path.join(process.env.NODE_PATH || 'tests/node/node_modules', 'twilio'));

const TOKEN = 'cross-check-token-0c5d';

function startDaemon(config) {
  return startDaemonWith(config, { tag: 'twsig', env: { TWILIO_AUTH_TOKEN: TOKEN } });
}

// params: an object (a name with an array value is sent once per value, as
// the library signs it and as Twilio sends a repeated field)
function formPairs(params) {
  return Object.entries(params).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]));
}

function post(port, pathQuery, params, signature) {
  const body = new URLSearchParams(formPairs(params)).toString();
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: pathQuery,
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        'Content-Length': Buffer.byteLength(body),
        ...(signature ? { 'X-Twilio-Signature': signature } : {}),
      },
    }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// The vectors test_twilio.c checks our C code against.
function testOurVectors() {
  const doc = {
    CallSid: 'CA1234567890ABCDE', Caller: '+12349013030', Digits: '1234',
    From: '+12349013030', To: '+18005551212',
  };
  const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
  assert.equal(twilio.getExpectedTwilioSignature('12345', url, doc), '0/KCTR6DLpKmkAf8muzZqo1nDgQ=');
  assert.ok(twilio.validateRequest('12345', '0/KCTR6DLpKmkAf8muzZqo1nDgQ=', url, doc));
  const own = {
    Body: 'H\u00e9llo & <bye>', From: '+15551230001', MessageSid: 'SM1',
    To: '+15559870000', NumMedia: '0',
  };
  assert.equal(twilio.getExpectedTwilioSignature('secret', 'https://bot.example.com/v1/sms/twilio', own),
    'jo5gB3Pa5z1dtULdQq4IAmr7Iok=');
  assert.ok(!twilio.validateRequest('secret', 'jo5gB3Pa5z1dtULdQq4IAmr7Iok=',
    'https://bot.example.com/v1/sms/twilio', { ...own, Body: 'Hello' }));
  // a pair sent twice is signed once (test_signature_repeated_pairs)
  const twice = { Body: 'hi', From: '+15551230001', MediaUrl0: ['https://x/1', 'https://x/1'],
    To: '+15559870000' };
  assert.equal(twilio.getExpectedTwilioSignature('secret', 'https://bot.example.com/v1/sms/twilio', twice),
    'YrVMiyomUxVoYcv340ZhVex8GOY=');
}

const VALUES = [
  'hi', '', 'H\u00e9llo & <bye> "q" \'a\'', 'caf\u00e9 \u20ac5 [x] {y}', '\u{1F642} \u0416\u0438\u043c',
  'a+b=c&d', '100%', 'line1\nline2', ' spaced ', 'x'.repeat(600),
];

async function testDaemonAcceptsLibrarySignatures(port, publicBase) {
  let n = 0;
  for (const pathQuery of ['/v1/sms/twilio', '/v1/sms/twilio?tenant=a&b=%20c', '/v1/voice/twilio']) {
    for (const v of VALUES) {
      n++;
      const params = pathQuery.startsWith('/v1/sms')
        ? { From: '+1555000' + String(n).padStart(4, '0'), To: '+15559870000', Body: 'HELP',
          MessageSid: `SM${n}`, AccountSid: 'AC0', NumMedia: '0', Extra: v, Zz: v + '1' }
        : { CallSid: `CA${n}`, From: '+15550001111', To: '+15559870000', CallStatus: 'completed', Extra: v };
      const url = publicBase + pathQuery;
      const sig = twilio.getExpectedTwilioSignature(TOKEN, url, params);
      assert.ok(twilio.validateRequest(TOKEN, sig, url, params));
      const ok = await post(port, pathQuery, params, sig);
      assert.equal(ok.status, 200, `${pathQuery} ${JSON.stringify(v)}: ${ok.body}`);
      assert.match(ok.body, /^<\?xml[^>]*\?><Response>/);
      // what the library rejects, chorus rejects
      const wrongToken = twilio.getExpectedTwilioSignature('not-the-token', url, params);
      assert.ok(!twilio.validateRequest(TOKEN, wrongToken, url, params));
      assert.equal((await post(port, pathQuery, params, wrongToken)).status, 403);
      const changed = { ...params, Extra: v + '.' };
      assert.ok(!twilio.validateRequest(TOKEN, sig, url, changed));
      assert.equal((await post(port, pathQuery, changed, sig)).status, 403);
    }
  }
}

// Twilio signs the URL it called with or without the port, and the library
// accepts either; so must chorusd: signed without the configured port (or
// the one of the Host header), with the scheme's default port when none is
// configured; never with another port. A field repeated with the same value
// is signed once.
async function testPortsAndRepeatedPairs(port, base, variants, refused) {
  let n = 0;
  for (const pathQuery of ['/v1/sms/twilio', '/v1/voice/twilio?tenant=a']) {
    for (const signedBase of [base, ...variants, ...refused]) {
      n++;
      const params = pathQuery.startsWith('/v1/sms')
        ? { From: '+1555100' + String(n).padStart(4, '0'), To: '+15559870000', Body: 'HELP',
          MessageSid: `SMport${n}`, AccountSid: 'AC0', NumMedia: '1',
          MediaUrl0: ['https://x.example/m/1', 'https://x.example/m/1'] }
        : { CallSid: `CAport${n}`, From: '+15550001111', To: '+15559870000', CallStatus: 'completed',
          Extra: ['a', 'a', 'b'] };
      const sig = twilio.getExpectedTwilioSignature(TOKEN, signedBase + pathQuery, params);
      const want = refused.includes(signedBase) ? 403 : 200;
      assert.equal(twilio.validateRequest(TOKEN, sig, base + pathQuery, params), want === 200,
        `the library and this test disagree on ${signedBase}`);
      const got = await post(port, pathQuery, params, sig);
      assert.equal(got.status, want, `${signedBase}${pathQuery}: ${got.body}`);
    }
  }
}

let failed = 0;
const run = async (name, fn) => {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n${e.stack}`);
  }
};
await run('testOurVectors', testOurVectors);
const local = await startDaemon({});
try {
  await run('testDaemonAcceptsLibrarySignatures', () =>
    testDaemonAcceptsLibrarySignatures(local.port, `http://127.0.0.1:${local.port}`));
  await run('testHostHeaderPorts', () =>
    testPortsAndRepeatedPairs(local.port, `http://127.0.0.1:${local.port}`, ['http://127.0.0.1'],
      ['http://127.0.0.1:80', `http://127.0.0.1:${local.port + 1}`]));
} finally {
  await stopDaemon(local).catch((e) => { failed++; console.log(String(e)); });
}
const base = 'https://chorus.example.net:8443/bot';
const proxied = await startDaemon({ sms: { public_url: base }, voice: { public_url: base } });
try {
  await run('testBehindAProxy', () => testDaemonAcceptsLibrarySignatures(proxied.port, base));
  await run('testProxyPorts', () =>
    testPortsAndRepeatedPairs(proxied.port, base, ['https://chorus.example.net/bot'],
      ['https://chorus.example.net:443/bot', 'https://chorus.example.net:8444/bot']));
} finally {
  await stopDaemon(proxied).catch((e) => { failed++; console.log(String(e)); });
}
const noPort = 'https://chorus.example.net/bot';
const defaulted = await startDaemon({ sms: { public_url: noPort }, voice: { public_url: noPort } });
try {
  await run('testDefaultPort', () =>
    testPortsAndRepeatedPairs(defaulted.port, noPort, ['https://chorus.example.net:443/bot'],
      ['https://chorus.example.net:80/bot', 'https://chorus.example.net:8443/bot']));
} finally {
  await stopDaemon(defaulted).catch((e) => { failed++; console.log(String(e)); });
}
if (failed) {
  console.log(`${failed} failed`);
  process.exit(1);
}
console.log('all passed');
