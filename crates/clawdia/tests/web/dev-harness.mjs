// Developer harness for the browser scenarios without cargo (CI runs them from the Rust test instead):
// starts a built gateway ($CLAWDIA_BIN, default `clawdia`) serving the assets from disk, a small mock LLM
// on the OpenAI wire with queued replies, and answers scenarios.mjs's asks as the Rust harness does.
// usage: CLAWDIA_BIN=path/to/debug/clawdia node dev-harness.mjs SCENARIO   (or --serve to keep it running)
import http from 'node:http';
import fs from 'node:fs';
import net from 'node:net';
import { spawn, execFileSync } from 'node:child_process';
import readline from 'node:readline';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.CLAWDIA_BIN || 'clawdia';
const ASSETS = process.env.CLAWDIA_WEB_ASSETS || path.join(HERE, '../../../clawdia-server/assets');
const HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'clawdia-web-dev-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = fs.createWriteStream(HOME + '.log');

// ---- mock LLM
const replies = [];
const mock = http.createServer(async (req, res) => {
  const chunks = []; for await (const c of req) chunks.push(c);
  const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
  if (req.url === '/queue') { replies.push(body); res.end('ok'); return; } // --serve: curl -d '{"text":"..."}' MOCK/queue
  const r = replies.shift() || { text: 'hello' };
  log.write(`mock: ${req.url} -> ${JSON.stringify(r).slice(0, 100)}\n`);
  if (r.status) { res.writeHead(r.status, { 'content-type': 'application/json' }); return res.end(JSON.stringify({ error: { message: 'mock failure ' + r.status } })); }
  const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: body.model };
  if (!body.stream) {
    const message = { role: 'assistant', content: r.text || null };
    if (r.tool_calls) message.tool_calls = r.tool_calls.map(([name, args], i) => ({ id: 'call_' + Date.now() + i, type: 'function', function: { name, arguments: args } }));
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ ...base, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: r.tool_calls ? 'tool_calls' : 'stop' }], usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } }));
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const send = (obj) => res.write('data: ' + JSON.stringify(obj) + '\n\n');
  if (r.tool_calls) {
    r.tool_calls.forEach(([name, args], i) => send({ ...base, choices: [{ index: 0, delta: { role: 'assistant', tool_calls: [{ index: i, id: 'call_' + Date.now() + i, type: 'function', function: { name, arguments: args } }] }, finish_reason: null }] }));
    send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] });
  } else {
    const text = r.text || '';
    const n = 4; const size = Math.ceil(text.length / n) || 1;
    for (let i = 0; i < text.length; i += size) {
      if (r.chunks_ms) await sleep(r.chunks_ms);
      send({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: text.slice(i, i + size) }, finish_reason: null }] });
      if (r.break_after_ms) { await sleep(r.break_after_ms); res.destroy(); return; } // a stream that breaks off
    }
    send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
  }
  send({ ...base, choices: [], usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } });
  res.end('data: [DONE]\n\n');
});
await new Promise((r) => mock.listen(0, '127.0.0.1', r));
const MOCK = mock.address().port;

// ---- gateway
const port = await new Promise((r) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
const env = { ...process.env, CLAWDIA_HOME: HOME, CLAWDIA_WEB_ASSETS: ASSETS };
execFileSync(BIN, ['init', '--force'], { env, stdio: 'ignore' });
fs.writeFileSync(HOME + '/clawdia.toml', `
[gateway]
bind = "127.0.0.1"
port = ${port}
token = { file = "secrets/gateway-token" }

[providers.mock]
kind = "openai"
base_url = "http://127.0.0.1:${MOCK}/v1"

[providers.backup]
kind = "openai"
base_url = "http://127.0.0.1:${MOCK}/v1"

[agents.main]
model = "mock/m1"
fallbacks = ["backup/m2"]

[agents.main.tools]
allow = ["exec", "fs"]
ask = ["exec"]
`);
const BASE = 'http://127.0.0.1:' + port;
let gw;
async function start() {
  gw = spawn(BIN, ['up'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  gw.stdout.pipe(log, { end: false }); gw.stderr.pipe(log, { end: false });
  for (let i = 0; i < 200; i++) {
    try { const r = await fetch(BASE + '/v1/web/me'); if (r.status) return; } catch { /* not yet */ }
    await sleep(100);
  }
  throw new Error('gateway did not start; see ' + HOME + '.log');
}
async function stop() {
  const exited = new Promise((r) => gw.once('exit', r));
  gw.kill('SIGTERM');
  await exited;
}
await start();
const token = fs.readFileSync(HOME + '/secrets/gateway-token', 'utf8').trim();

// The gateway goes with the harness (Ctrl-C on --serve, or the harness being killed).
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { stop().finally(() => process.exit(130)); });

const mode = process.argv[2];
if (mode === '--serve') {
  console.log(`gateway ${BASE} token ${token} home ${HOME} mock http://127.0.0.1:${MOCK}/queue`);
} else {
  const child = spawn('node', [path.join(HERE, 'scenarios.mjs'), mode], { env: { ...process.env, CLAWDIA_URL: BASE }, stdio: ['pipe', 'pipe', 'inherit'] });
  const rl = readline.createInterface({ input: child.stdout });
  rl.on('line', async (line) => {
    console.log('  < ' + line);
    const m = /^ask (\S+)\s*(.*)$/.exec(line);
    if (!m) return;
    const arg = m[2] ? JSON.parse(m[2]) : {};
    let answer = { ok: true };
    try {
      if (m[1] === 'pair') answer = JSON.parse(execFileSync(BIN, ['web', 'pair', '--json'], { env }).toString());
      else if (m[1] === 'reply') replies.push(arg);
      else if (m[1] === 'token') answer = { token };
      else if (m[1] === 'restart') { await stop(); await start(); }
      else if (m[1] === 'alert') {
        // Queued for the `web` route straight in the outbox, as `clawdia` would; the gateway delivers it.
        const id = 'a' + Date.now();
        const sql = `INSERT INTO alerts (id, created_ms, kind, severity, title, body, agent, approval) VALUES ('${id}', ${Date.now()}, 'test', 10, '${arg.title.replace(/'/g, "''")}', 'raised by the test', NULL, NULL);
INSERT INTO deliveries (alert_seq, route, status, next_ms) VALUES (last_insert_rowid(), 'web', 'pending', 0);`;
        execFileSync('sqlite3', [HOME + '/state/outbox.db', sql]);
      }
    } catch (error) { answer = { error: String(error.message || error) }; }
    child.stdin.write(JSON.stringify(answer) + '\n');
  });
  child.on('exit', async (code) => { console.log('scenario exit', code, 'log', HOME + '.log'); await stop().catch(() => {}); process.exit(code ?? 1); });
}
