// The Bot Framework peer of bench/channels.sh, set up as ../shared/PEERS.md
// describes: botbuilder + botbuilder-dialogs 4.23.3, a 3-step WaterfallDialog
// (TextPrompt name, TextPrompt city, confirmation) over MemoryStorage +
// ConversationState, CloudAdapter with authentication off, behind a plain
// Node http server at /api/messages. One POST with deliveryMode
// "expectReplies" is one turn; the replies come back in the response body.
// Usage: node botframework.js PORT  (prints "READY port=N")
const http = require('node:http');
const {
  CloudAdapter, ConfigurationBotFrameworkAuthentication, ConversationState, MemoryStorage,
  ActivityHandler,
} = require('botbuilder');
const { DialogSet, WaterfallDialog, TextPrompt, DialogTurnStatus } = require('botbuilder-dialogs');

const auth = new ConfigurationBotFrameworkAuthentication({ MicrosoftAppId: '', MicrosoftAppPassword: '' });
const adapter = new CloudAdapter(auth);
const state = new ConversationState(new MemoryStorage());
const dialogState = state.createProperty('dialog');
const dialogs = new DialogSet(dialogState);
dialogs.add(new TextPrompt('text'));
dialogs.add(new WaterfallDialog('signup', [
  async (step) => step.prompt('text', 'What is your name?'),
  async (step) => {
    step.values.name = step.result;
    return step.prompt('text', `Which city do you live in, ${step.result}?`);
  },
  async (step) => {
    await step.context.sendActivity(`Thanks ${step.values.name} from ${step.result}, you are signed up.`);
    return step.endDialog();
  },
]));

class Bot extends ActivityHandler {
  constructor() {
    super();
    this.onMessage(async (context, next) => {
      const dc = await dialogs.createContext(context);
      const r = await dc.continueDialog();
      if (r.status === DialogTurnStatus.empty) await dc.beginDialog('signup');
      await next();
    });
  }

  async run(context) {
    await super.run(context);
    await state.saveChanges(context, false);
  }
}
const bot = new Bot();

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/api/messages') {
    res.writeHead(404).end();
    return;
  }
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    try {
      req.body = JSON.parse(body);
    } catch {
      res.writeHead(400).end();
      return;
    }
    // CloudAdapter.process takes Express-like objects
    const resp = {
      statusCode: 200, headers: {}, body: undefined,
      status(c) { this.statusCode = c; return this; },
      header(k, v) { this.headers[k] = v; return this; },
      send(b) { this.body = b; return this; },
      end() {
        const out = this.body === undefined ? '' : (typeof this.body === 'string' ? this.body : JSON.stringify(this.body));
        res.writeHead(this.statusCode, { 'Content-Type': 'application/json', ...this.headers });
        res.end(out);
      },
    };
    adapter.process(req, resp, (context) => bot.run(context)).catch((e) => {
      if (!res.headersSent) res.writeHead(500).end(String(e));
    });
  });
});
server.keepAliveTimeout = 60000;
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log(`READY port=${server.address().port}`);
});
