// The human desk end to end in headless Chromium (playwright-core): a
// customer in the web widget asks for a person and is queued; an agent in
// the console at /agent claims the conversation, sees the bot's summary and
// slots, and they exchange messages both ways; the agent releases the
// conversation to the bot at a node and the bot continues in the widget.
// Screenshots go to tests/e2e/artifacts/ (not committed).
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { startDaemon, stopDaemon, SRC } from '../integration/daemon.mjs';

const require = createRequire(import.meta.url);
const NODE_PATH = process.env.NODE_PATH || path.join(SRC, 'tests/node/node_modules');
const { chromium } = require(path.join(NODE_PATH, 'playwright-core'));
const ARTIFACTS = path.join(SRC, 'tests', 'e2e', 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = 'agent-e2e-token-6f3a';
const sha = (s) => createHash('sha256').update(s).digest('hex');

async function waitText(page, selector, text) {
  await page.waitForFunction(([sel, t]) => [...document.querySelectorAll(sel)]
    .some((e) => e.textContent.includes(t)), [selector, text], { timeout: 20000 });
}

async function run() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const daemon = await startDaemon({ admin: { tokens: `ann:agent:${sha(TOKEN)}` } }, { tag: 'agents-e2e' });
  const profile = mkdtempSync(path.join(os.tmpdir(), 'chorus-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1100, height: 800 },
    });
    const errors = [];
    const watch = (p) => {
      p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      p.on('pageerror', (e) => errors.push(String(e)));
    };
    const base = `http://127.0.0.1:${daemon.port}`;

    // the customer asks for a person in the widget
    const customer = context.pages()[0] || await context.newPage();
    watch(customer);
    await customer.goto(`${base}/`);
    await waitText(customer, '.chorus-chat__msg--bot', 'How can I help');
    await customer.getByRole('button', { name: 'Talk to an agent' }).click();
    await waitText(customer, '.chorus-chat__msg--bot', 'what is it about');
    await customer.getByRole('button', { name: 'Booking', exact: true }).click();
    await waitText(customer, '.chorus-chat__msg--bot', 'bookings team');
    await waitText(customer, '.chorus-chat', 'connected to a person');
    await customer.screenshot({ path: path.join(ARTIFACTS, 'agents-customer-queued.png') });

    // the agent connects to the console and claims it
    const agent = await context.newPage();
    watch(agent);
    const resp = await agent.goto(`${base}/agent`);
    assert.match(resp.headers()['content-security-policy'], /default-src 'self'/);
    await agent.getByLabel('Agent token').fill(TOKEN);
    await agent.getByRole('button', { name: 'Connect' }).click();
    await agent.waitForFunction(() => /Connected/.test(document.getElementById('conn').textContent),
      null, { timeout: 20000 });
    const claim = agent.getByRole('button', { name: 'Claim' });
    await claim.waitFor({ timeout: 20000 });
    assert.equal(await claim.count(), 1);
    await claim.click();
    await waitText(agent, '#s-state', 'claimed (ann)');
    assert.equal(await agent.locator('#s-queue').textContent(), 'bookings');
    assert.equal(await agent.locator('#s-flow').textContent(), 'speak_to_agent');
    const slots = await agent.locator('#s-slots').textContent();
    assert.ok(slots.includes('agent_topic') && slots.includes('booking'), slots);

    // they talk: the agent's words reach the widget, the customer's the console
    await agent.getByLabel('Reply').fill('Hi, this is Ann from bookings.');
    await agent.getByRole('button', { name: 'Send' }).click();
    await waitText(customer, '.chorus-chat__msg--agent', 'Hi, this is Ann from bookings.');
    const input = customer.getByLabel('Type your message');
    await input.fill('I need to move my flight to Friday');
    await input.press('Enter');
    await waitText(agent, '.ac-msg--customer', 'I need to move my flight to Friday');
    await agent.screenshot({ path: path.join(ARTIFACTS, 'agents-console.png') });
    await customer.screenshot({ path: path.join(ARTIFACTS, 'agents-customer-talking.png') });
    const botsBefore = await customer.locator('.chorus-chat__msg--bot').count();

    // back to the bot at a node: it greets again and goes on answering
    await agent.locator('#rel-flow').fill('welcome');
    await agent.locator('#rel-node').fill('greet');
    await agent.getByRole('button', { name: 'Release' }).click();
    await waitText(agent, '#s-state', 'released');
    await customer.waitForFunction((n) => document.querySelectorAll('.chorus-chat__msg--bot').length > n,
      botsBefore, { timeout: 20000 });
    await waitText(customer, '.chorus-chat__msg--bot:last-of-type', 'How can I help');
    await input.fill('what is my baggage allowance');
    await input.press('Enter');
    await customer.waitForFunction((n) => document.querySelectorAll('.chorus-chat__msg--bot').length > n + 1,
      botsBefore, { timeout: 20000 });
    await customer.screenshot({ path: path.join(ARTIFACTS, 'agents-customer-released.png') });
    await agent.screenshot({ path: path.join(ARTIFACTS, 'agents-console-released.png') });
    assert.deepEqual(errors, [], 'console errors');
    console.log('ok   agents: widget escalates, console claims, messages both ways, release, bot continues');
  } finally {
    if (context) await context.close();
    rmSync(profile, { recursive: true, force: true });
    await stopDaemon(daemon);
  }
}

await run();
