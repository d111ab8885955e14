// bench/brain_peer.mjs: the conversational peer's dialog engine alone, in
// process, with no HTTP: Bot Framework SDK for JavaScript (botbuilder-core +
// botbuilder-dialogs), a 3-step WaterfallDialog (TextPrompt name, TextPrompt
// city, ConfirmPrompt) over MemoryStorage + ConversationState, driven through
// TestAdapter.processActivity, turns spread over N conversations as
// bench/brain.sh does for chorus. Prints turns/s and heap bytes per
// conversation waiting at a prompt. Usage: node --expose-gc brain_peer.mjs [N] [TURNS]
import { createRequire } from 'node:module';
const require = createRequire(process.env.PEER_DIR ? process.env.PEER_DIR + '/' : import.meta.url);
const { TestAdapter, MemoryStorage, ConversationState } = require('botbuilder-core');
const { DialogSet, WaterfallDialog, TextPrompt, ConfirmPrompt, DialogTurnStatus } =
    require('botbuilder-dialogs');

const N = Number(process.argv[2] || 10000);
const TURNS = Number(process.argv[3] || 200000);

const storage = new MemoryStorage();
const state = new ConversationState(storage);
const dialogState = state.createProperty('dialogState');
const dialogs = new DialogSet(dialogState);
dialogs.add(new TextPrompt('text'));
dialogs.add(new ConfirmPrompt('confirm'));
dialogs.add(new WaterfallDialog('main', [
    async (step) => step.prompt('text', 'What is your name?'),
    async (step) => { step.values.name = step.result; return step.prompt('text', 'Which city?'); },
    async (step) => { step.values.city = step.result;
                      return step.prompt('confirm', `Book for ${step.values.name} in ${step.result}?`); },
    async (step) => { await step.context.sendActivity(step.result ? 'Booked.' : 'Cancelled.');
                      return step.endDialog(); },
]));

async function logic(ctx) {
    const dc = await dialogs.createContext(ctx);
    const r = await dc.continueDialog();
    if (r.status === DialogTurnStatus.empty) await dc.beginDialog('main');
    await state.saveChanges(ctx);
}

const adapter = new TestAdapter(logic);
const activity = (conv, text) => ({
    type: 'message', text, channelId: 'test', serviceUrl: 'http://localhost',
    conversation: { id: 'c' + conv }, from: { id: 'u' + conv }, recipient: { id: 'bot' },
});
const answers = ['hi', 'Ada', 'London', 'yes'];

// Heap per idle conversation: every conversation started and waiting at the
// first prompt.
global.gc && global.gc();
const before = process.memoryUsage().heapUsed;
for (let c = 0; c < N; c++) {
    await adapter.processActivity(activity(c, "hi"), logic);
    adapter.activeQueue.length = 0;
}
global.gc && global.gc();
const perConv = (process.memoryUsage().heapUsed - before) / N;

// Turns per second, round robin over the population (each conversation walks
// the dialog: name, city, confirm, start again).
const step = new Array(N).fill(1);
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
for (let i = 0; i < TURNS; i++) {
    const c = i % N;
    await adapter.processActivity(activity(c, answers[step[c]]), logic);
    adapter.activeQueue.length = 0; // replies are not kept (chorus returns them per turn)
    step[c] = (step[c] + 1) % answers.length;
}
const dt = Number(process.hrtime.bigint() - t0) / 1e9;
const cu = process.cpuUsage(c0);
const ct = (cu.user + cu.system) / 1e6; // the whole process: includes GC threads
console.log(`peer botbuilder-dialogs 4.23.3 (TestAdapter, no HTTP): ${Math.round(TURNS / dt)} turns/s ` +
            `${Math.round(TURNS / ct)} per CPU-second (${TURNS} turns, ${dt.toFixed(3)} s, ` +
            `${(ct * 1e6 / TURNS).toFixed(2)} us/turn of CPU)`);
console.log(`peer idle conversation (waiting at a prompt): ${Math.round(perConv)} bytes of JS heap each`);
