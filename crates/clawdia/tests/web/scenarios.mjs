// Browser scenarios for the web UI, one per run: `node scenarios.mjs NAME` with CLAWDIA_URL set.
// Driven by the Rust integration test: it asks the harness for things with `ask <action> <json>` lines on
// stdout and reads one JSON line answer per ask from stdin; it prints `pass <what>` per check, and on
// failure `fail <what>: <reason>` (plus a screenshot under $CLAWDIA_TEST_OUT) and exits non-zero.
// Scenarios: pair_and_chat, approve_exec, alert, restart, hostile, phone.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const SCENARIO = process.argv[2];
const BASE = (process.env.CLAWDIA_URL || '').replace(/\/$/, '');
const OUT = process.env.CLAWDIA_TEST_OUT || '';
const NPM = process.env.CLAWDIA_TEST_NPM || path.join(os.homedir(), '.cache/clawdia/npm'); // as scripts/test.sh
const CHROMIUM = process.env.CLAWDIA_TEST_CHROMIUM || '/usr/bin/chromium';
// Generous: in CI the whole suite runs beside the browser on a loaded 2-core machine.
const WAIT = 20000;

function die(message) {
  process.stdout.write(`fail ${SCENARIO || 'setup'}: ${message}\n`);
  process.exit(1);
}

if (!BASE) die('CLAWDIA_URL is not set (the gateway address, e.g. http://127.0.0.1:18789)');
let chromium;
try {
  ({ chromium } = createRequire(path.join(NPM, 'package.json'))('playwright-core'));
} catch (error) {
  die(`playwright-core is not installed under ${NPM}/node_modules (npm install --prefix ${NPM} playwright-core): ${error.message}`);
}

// ------------------------------------------------------------ the harness protocol
const input = readline.createInterface({ input: process.stdin });
const answers = [];
const waiting = [];
input.on('line', (line) => {
  if (waiting.length) waiting.shift().resolve(line); else answers.push(line);
});
let inputClosed = false;
input.on('close', () => {
  inputClosed = true;
  for (const w of waiting.splice(0)) w.reject(new Error('the harness closed stdin'));
});

async function ask(action, argument) {
  process.stdout.write(`ask ${action}${argument === undefined ? '' : ' ' + JSON.stringify(argument)}\n`);
  if (!answers.length && inputClosed) throw new Error(`the harness closed stdin before answering \`ask ${action}\``);
  const line = answers.length ? answers.shift() : await new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  let answer;
  try { answer = JSON.parse(line); } catch { throw new Error(`the harness answered \`${line}\` to \`ask ${action}\`, not JSON`); }
  if (answer && answer.error) throw new Error(`the harness could not ${action}: ${answer.error}`);
  return answer;
}

// ------------------------------------------------------------ checks
const problems = []; // page errors, console errors, dialogs: each fails the scenario
let allowNetworkErrors = false;
let browser;
let shot = 0;
const pages = [];

function allowedConsoleError(text) {
  if (/status of 401\b/.test(text)) return true; // signed-out probes and the wrong-code login
  if (allowNetworkErrors && /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|ERR_CONNECTION_CLOSED|WebSocket connection to .* failed/.test(text)) return true;
  return false;
}

function guard(page) {
  pages.push(page);
  page.on('pageerror', (error) => problems.push(`uncaught error in the page: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !allowedConsoleError(message.text())) problems.push(`console error: ${message.text()}`);
  });
  page.on('dialog', (dialog) => {
    problems.push(`a ${dialog.type()} dialog opened: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  return page;
}

async function screenshot() {
  if (!OUT) return '';
  const files = [];
  for (const page of pages) {
    if (page.isClosed()) continue;
    const file = path.join(OUT, `${SCENARIO}-${++shot}.png`);
    try { fs.mkdirSync(OUT, { recursive: true }); await page.screenshot({ path: file, fullPage: true }); files.push(file); } catch { /* page gone */ }
  }
  return files.length ? ` (screenshot ${files.join(', ')})` : '';
}

async function fail(what, reason) {
  const where = await screenshot();
  process.stdout.write(`fail ${what}: ${String(reason).split('\n')[0]}${where}\n`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

/** A Playwright timeout's first line says only how long it waited: add what it was waiting for. */
function reasonOf(error) {
  const message = error && error.message ? error.message : String(error);
  const lines = message.split('\n');
  const waitingFor = lines.find((line) => /waiting for /.test(line));
  return waitingFor && /Timeout/.test(lines[0]) ? `${lines[0]} ${waitingFor.trim()}` : lines[0];
}

/** Rethrows a timeout of `promise` as `<what> within N s`. */
async function within(what, promise) {
  try {
    return await promise;
  } catch (error) {
    if (error && error.name === 'TimeoutError') throw new Error(`${what} within ${WAIT / 1000} s`);
    throw error;
  }
}

async function check(what, body) {
  try {
    await body();
  } catch (error) {
    await fail(what, reasonOf(error));
  }
  if (problems.length) await fail(what, problems.join('; '));
  process.stdout.write(`pass ${what}\n`);
}

function expect(condition, message) { if (!condition) throw new Error(message); }

// ------------------------------------------------------------ page helpers
async function newPage(viewport = { width: 1000, height: 800 }) {
  const context = await browser.newContext({ viewport, reducedMotion: 'reduce' });
  return guard(await context.newPage());
}

async function signInByLink(page) {
  const { url } = await ask('pair');
  await page.goto(url);
  await within('the pairing link did not lead to the chat', page.getByTestId('composer').waitFor({ state: 'visible', timeout: WAIT }));
  await page.waitForFunction(() => document.querySelector('[data-testid=agent-picker]').options.length > 0, null, { timeout: WAIT });
  await within('the page never got live over its WebSocket', page.locator('#app[data-live=yes]').waitFor({ timeout: WAIT }));
}

async function sendMessage(page, text) {
  const box = page.getByTestId('composer');
  await box.fill(text);
  await box.press('Enter');
}

const userTexts = (page) => page.$$eval('#transcript [data-role=user]', (nodes) => nodes.map((n) => n.textContent));
const assistantTexts = (page) => page.$$eval('#transcript [data-role=assistant]', (nodes) => nodes.map((n) => n.textContent));

/** Waits until the turn in view is over (no Stop button) and an assistant message contains `text`. */
async function waitForReply(page, text) {
  try {
    await page.waitForFunction((wanted) => {
      const stop = document.querySelector('[data-testid=stop]');
      return stop && stop.hidden && Array.from(document.querySelectorAll('#transcript [data-role=assistant]')).some((n) => n.textContent.includes(wanted));
    }, text, { timeout: WAIT });
  } catch (error) {
    if (!error || error.name !== 'TimeoutError') throw error;
    const shown = await assistantTexts(page).catch(() => []);
    throw new Error(`no finished reply containing \`${text}\` within ${WAIT / 1000} s; assistant messages: ${JSON.stringify(shown).slice(0, 300)}`);
  }
}

/** Opens a Control panel and waits until it has loaded (its "Loading…" placeholder is gone). */
async function openPanel(page, id) {
  await page.getByTestId(id).click();
  await within(`the ${id} panel kept loading`, page.waitForFunction(() => {
    const first = document.querySelector('#panel > *');
    return first && first.textContent !== 'Loading…';
  }, null, { timeout: WAIT }));
  // A missing value printed as text is a rendering bug (the page built a text node from null).
  const stray = await page.evaluate(() => {
    const walker = document.createTreeWalker(document.getElementById('panel'), NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) if (/^\s*(null|undefined|NaN|\[object Object\])\s*$/.test(node.textContent)) return node.textContent;
    return null;
  });
  expect(stray === null, `the ${id} panel shows a stray \`${stray}\``);
}

function count(list, text) { return list.filter((t) => t.includes(text)).length; }

// ------------------------------------------------------------ scenarios
const scenarios = {
  async telegram_pair() {
    const page = await newPage();
    await signInByLink(page);
    await page.getByTestId('tab-control').click();
    await check('with nobody waiting the Telegram panel says so', async () => {
      await openPanel(page, 'ctl-telegram');
      await page.getByTestId('pair-none').waitFor({ timeout: WAIT });
    });
    const stranger = await ask('telegram_stranger');
    expect(stranger.ok, 'the stranger got no pairing code from the bot');
    await check('a stranger\'s pairing request is listed with its code and let in with one click', async () => {
      await openPanel(page, 'ctl-telegram');
      const item = page.getByTestId('pair-item').first();
      await item.waitFor({ timeout: WAIT });
      const text = await item.textContent();
      expect(text.includes('telegram:626262'), `the request shows \`${text}\``);
      await item.getByTestId('pair-approve').click();
      const done = await page.getByTestId('pair-done').textContent({ timeout: WAIT });
      expect(done.includes('told on Telegram'), `after the click: \`${done}\``);
      const told = await ask('telegram_told');
      expect(told.told, 'the stranger was not told on Telegram');
      await openPanel(page, 'ctl-telegram');
      await page.getByTestId('pair-none').waitFor({ timeout: WAIT });
    });
  },

  async pair_and_chat() {
    const page = await newPage();
    await check('the pairing link signs the browser in without typing and leaves the address bar', async () => {
      await signInByLink(page);
      expect(!page.url().includes('code='), `the address bar still holds the code: ${page.url()}`);
    });

    await check('a wrong pairing code shows the server\'s own message', async () => {
      const other = await newPage();
      const expected = await fetch(BASE + '/v1/web/login', {
        method: 'POST', headers: { 'Content-Type': 'application/json', Origin: BASE }, body: JSON.stringify({ code: 'ZZZZ-0000' }),
      }).then((r) => r.json()).then((j) => j.error && j.error.message);
      expect(expected, 'the gateway gave no error message for a wrong code');
      await other.goto(BASE + '/');
      await other.getByTestId('signin-input').fill('ZZZZ-0001');
      await other.getByTestId('signin-button').click();
      const error = other.getByTestId('signin-error');
      await error.waitFor({ state: 'visible', timeout: WAIT });
      const shown = await error.textContent();
      expect(shown === expected, `the page shows \`${shown}\`, the server said \`${expected}\``);
      expect(await other.getByTestId('composer').isHidden(), 'a wrong code reached the chat');
      await other.context().close();
    });

    const reply = 'Hello from **the mock**: this reply is streamed in several pieces.';
    await ask('reply', { text: reply, chunks_ms: 300 });
    await check('a sent message shows as the user\'s bubble', async () => {
      await sendMessage(page, 'hi there');
      await page.locator('#transcript [data-role=user]', { hasText: 'hi there' }).waitFor({ timeout: WAIT });
      expect(await page.getByTestId('composer').inputValue() === '', 'the composer was not cleared after sending');
    });
    await check('the reply is visible while it streams', async () => {
      await within('no partial reply text was visible while the turn ran', page.waitForFunction(() => {
        const stream = document.querySelector('#transcript [data-testid=streaming]');
        return stream && stream.textContent.length > 0 && !document.querySelector('[data-testid=stop]').hidden;
      }, null, { timeout: WAIT }));
    });
    await check('the streamed reply is rendered as markdown with its usage', async () => {
      await waitForReply(page, 'Hello from the mock: this reply is streamed in several pieces.');
      const strong = await page.locator('#transcript [data-role=assistant] strong').first().textContent();
      expect(strong === 'the mock', `bold rendered as \`${strong}\``);
      await page.locator('#transcript [data-testid=turn-meta]').first().waitFor({ timeout: WAIT });
    });
    await check('after a reload the transcript is still there', async () => {
      await page.reload();
      await page.locator('#transcript [data-role=user]', { hasText: 'hi there' }).waitFor({ timeout: WAIT });
      await page.locator('#transcript [data-role=assistant]', { hasText: 'Hello from the mock' }).waitFor({ timeout: WAIT });
      const users = await userTexts(page);
      expect(users.length === 1, `expected one user message after the reload, found ${JSON.stringify(users)}`);
    });

    await ask('reply', { text: 'This slow reply will be stopped long before it reaches its final words.', chunks_ms: 700 });
    await check('Stop ends a running turn', async () => {
      await sendMessage(page, 'talk slowly');
      await within('the slow reply never started streaming', page.waitForFunction(() => {
        const stream = document.querySelector('#transcript [data-testid=streaming]');
        return stream && stream.textContent.length > 0;
      }, null, { timeout: WAIT }));
      await page.getByTestId('stop').click();
      await within('the Stop button stayed after stopping', page.getByTestId('stop').waitFor({ state: 'hidden', timeout: WAIT }));
      const last = page.locator('#transcript [data-role=assistant]').last();
      expect((await last.textContent()).includes('Stopped.'), 'the stopped turn does not say it was stopped');
      expect(!(await last.textContent()).includes('final words'), 'the reply ran to its end despite Stop');
    });

    await check('uploads go to the workspace and to the brain, and the brain page opens rendered', async () => {
      await page.getByTestId('upload-input').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('plain notes') });
      await within('no upload confirmation', page.locator('#chat-status', { hasText: /Uploaded to \S*notes\.txt/ }).waitFor({ timeout: WAIT }));
      await page.getByTestId('upload-to').selectOption('brain');
      await page.getByTestId('upload-input').setInputFiles({ name: 'trip.md', mimeType: 'text/markdown', buffer: Buffer.from('# Trip zanzibar\n\n- **pack** the bag\n') });
      await within('no brain confirmation', page.locator('#chat-status', { hasText: /Saved to the brain as \S*trip/ }).waitFor({ timeout: WAIT }));
      await page.getByTestId('tab-control').click();
      await page.getByTestId('ctl-brain').click();
      await page.getByTestId('brain-search').fill('zanzibar');
      await page.getByTestId('brain-search').press('Enter');
      await page.locator('[data-testid=brain-results] button', { hasText: 'trip' }).first().click();
      const body = page.getByTestId('brain-page');
      await within('the brain page did not open', body.waitFor({ timeout: WAIT }));
      expect((await body.locator('h3').textContent()) === 'Trip zanzibar', 'the page heading did not render');
      expect((await body.locator('li strong').textContent()) === 'pack', 'the page list did not render');
    });

    await check('revoking this browser signs it out, also after a reload', async () => {
      await page.getByTestId('ctl-browsers').click();
      await page.locator('[data-testid=browser-item]', { hasText: 'this browser' }).getByTestId('revoke').click();
      await within('no sign-in screen after revoking', page.getByTestId('signin-form').waitFor({ timeout: WAIT }));
      await page.reload();
      await within('a reload after revoking is signed in again', page.getByTestId('signin-form').waitFor({ timeout: WAIT }));
      expect(await page.getByTestId('composer').isHidden(), 'the chat is still shown after revoking');
    });
  },

  async approve_exec() {
    const page = await newPage();
    await check('signed in by the pairing link', () => signInByLink(page));
    await ask('reply', { tool_calls: [['exec', JSON.stringify({ command: 'echo approved-output-42' })]] });
    await ask('reply', { text: 'The command printed **approved-output-42**.' });
    await check('a call to an `ask` tool shows an approval card with its exact arguments', async () => {
      await sendMessage(page, 'please run the echo');
      const card = page.locator('#transcript [data-testid=approval-card]');
      await card.waitFor({ timeout: WAIT });
      await within('the approval card never showed the call\'s arguments', page.waitForFunction(() => {
        const args = document.querySelector('#transcript [data-testid=approval-card] [data-testid=approval-args]');
        return args && args.textContent.includes('echo approved-output-42');
      }, null, { timeout: WAIT }));
      expect(!(await card.getByTestId('approve').isDisabled()), 'the Approve button is disabled on a pending request');
    });
    // The arguments hold `echo approved-output-42`; only the command's output is `approved-output-42` on a line of its own.
    const resultShown = (when) => within(`${when}: no tool card's result shows the command's output`, page.waitForFunction(() =>
      Array.from(document.querySelectorAll('#transcript [data-testid=tool-card][data-state=ok] [data-testid=tool-summary]'))
        .some((n) => /(^|\n|: )approved-output-42(\n|$)/.test(n.textContent)), null, { timeout: WAIT }));
    await check('approving runs the call: the tool card shows exec\'s result', async () => {
      await page.locator('#transcript [data-testid=approval-card] [data-testid=approve]').click();
      await resultShown('live');
    });
    await check('the agent continues with its final text', async () => {
      await waitForReply(page, 'The command printed approved-output-42.');
      const status = await page.locator('#transcript [data-testid=approval-card]').first().getAttribute('data-status');
      expect(status !== 'pending', 'the approval card still says pending after the decision');
      expect(await page.locator('#transcript [data-testid=approval-card] [data-testid=approve]').first().isDisabled(), 'Approve can still be clicked after the decision');
    });
    await check('after a reload the tool card still shows the result and nothing waits', async () => {
      await page.reload();
      await page.locator('#transcript [data-role=assistant]', { hasText: 'The command printed approved-output-42.' }).waitFor({ timeout: WAIT });
      await resultShown('reloaded');
      const waiting = await page.locator('#transcript [data-testid=approval-card][data-status=pending]').count();
      expect(waiting === 0, `${waiting} approval card(s) still pending after the reload`);
    });
  },

  async alert() {
    const page = await newPage();
    await check('signed in by the pairing link', () => signInByLink(page));
    const first = 'Backup failed <b>twice</b>';
    await check('an alert raised for the owner shows up live as an unread badge and in the feed', async () => {
      await ask('alert', { title: first });
      const badge = page.getByTestId('unread-badge');
      await within('no unread badge appeared', badge.waitFor({ state: 'visible', timeout: WAIT }));
      expect((await badge.textContent()) === '1', `the badge says ${await badge.textContent()}`);
      await page.getByTestId('tab-control').click();
      await page.getByTestId('ctl-notifications').click();
      const item = page.getByTestId('notification').filter({ hasText: first });
      await item.first().waitFor({ timeout: WAIT });
      await openPanel(page, 'ctl-notifications');
      expect(await page.locator('[data-testid=notification] b').count() === 0, 'the title\'s markup became an element');
      expect(await badge.isHidden(), 'the badge stays after the feed was opened');
    });
    await check('a second alert appears in the open feed without a reload', async () => {
      await ask('alert', { title: 'Second alert' });
      await page.getByTestId('notification').filter({ hasText: 'Second alert' }).first().waitFor({ timeout: WAIT });
      const titles = await page.$$eval('[data-testid=notification] .item-title', (nodes) => nodes.map((n) => n.textContent));
      expect(titles.indexOf('Second alert') < titles.indexOf(first), `newest is not first: ${JSON.stringify(titles)}`);
    });
  },

  async restart() {
    const page = await newPage();
    await check('signed in by the pairing link', () => signInByLink(page));
    await ask('reply', { text: 'first reply' });
    await check('a first exchange', async () => {
      await sendMessage(page, 'first message');
      await waitForReply(page, 'first reply');
    });
    await check('a gateway restart shows the disconnected banner, which goes once it is back', async () => {
      await page.evaluate(() => {
        const banner = document.querySelector('[data-testid=conn-banner]');
        window.__bannerSeen = false;
        new MutationObserver(() => { if (!banner.hidden) window.__bannerSeen = true; }).observe(banner, { attributes: true });
      });
      allowNetworkErrors = true;
      await ask('restart');
      await within('the disconnected banner never showed', page.waitForFunction(() => window.__bannerSeen, null, { timeout: WAIT }));
      const text = await page.getByTestId('conn-banner').textContent();
      expect(text.includes('Disconnected'), `the banner says \`${text}\``);
      expect((await page.getByTestId('conn-banner').getAttribute('role')) === 'status', 'the banner has no role="status"');
      await within('the banner did not go away after the restart', page.getByTestId('conn-banner').waitFor({ state: 'hidden', timeout: WAIT }));
    });
    await ask('reply', { text: 'second reply' });
    await check('a message after the reconnect gets its reply', async () => {
      await sendMessage(page, 'second message');
      await waitForReply(page, 'second reply');
    });
    const intact = async (when) => {
      const users = await userTexts(page);
      expect(JSON.stringify(users) === JSON.stringify(['first message', 'second message']), `user messages ${when}: ${JSON.stringify(users)}`);
      const replies = await assistantTexts(page);
      expect(count(replies, 'first reply') === 1 && count(replies, 'second reply') === 1, `replies ${when}: ${JSON.stringify(replies)}`);
    };
    await check('the whole transcript is intact, nothing duplicated', () => intact('live'));
    await check('the same transcript after a reload', async () => {
      await page.reload();
      await page.locator('#transcript [data-role=assistant]', { hasText: 'second reply' }).waitFor({ timeout: WAIT });
      await intact('after a reload');
    });

    // A second browser on the same chat, whose socket the test cuts (and whose events it doubles): what is
    // typed while it is down is kept, sent once when it is back, and the first browser sees it and its reply.
    const other = await newPage();
    let cut = false;
    const routes = [];
    await other.routeWebSocket(/\/v1\/ws$/, (ws) => {
      if (cut) { ws.close({ code: 1011, reason: 'cut by the test' }); return; }
      // Every event reaches this browser twice: the page must apply each `seq` once.
      const server = ws.connectToServer();
      server.onMessage((frame) => {
        ws.send(frame);
        if (/"seq":/.test(frame) && !/"type":"welcome"/.test(frame)) ws.send(frame);
      });
      ws.onMessage((frame) => server.send(frame));
      routes.push([ws, server]);
    });
    await check('a second browser opens the same chat from the chat list', async () => {
      await signInByLink(other);
      await other.getByTestId('sessions-toggle').click();
      await other.getByTestId('session-item').filter({ hasText: 'first message' }).first().getByRole('button').click();
      await other.locator('#transcript [data-role=assistant]', { hasText: 'second reply' }).waitFor({ timeout: WAIT });
    });
    await check('a message typed while disconnected stays in the box, unsent', async () => {
      cut = true;
      for (const [ws, server] of routes.splice(0)) { server.close(); ws.close({ code: 1011, reason: 'cut by the test' }); }
      await within('the second browser shows no disconnected banner', other.getByTestId('conn-banner').waitFor({ state: 'visible', timeout: WAIT }));
      await sendMessage(other, 'third message');
      expect((await other.getByTestId('composer').inputValue()) === 'third message', 'the composer lost the message typed offline');
      expect(!(await userTexts(other)).includes('third message'), 'the message shows as sent while disconnected');
    });
    await ask('reply', { text: 'third reply' });
    await check('once reconnected it is sent exactly once, and both browsers show it with its reply', async () => {
      cut = false;
      await within('the second browser did not reconnect', other.getByTestId('conn-banner').waitFor({ state: 'hidden', timeout: WAIT }));
      await waitForReply(other, 'third reply');
      await waitForReply(page, 'third reply');
      for (const [who, p] of [['second browser', other], ['first browser', page]]) {
        const users = await userTexts(p);
        expect(JSON.stringify(users) === JSON.stringify(['first message', 'second message', 'third message']), `${who}'s user messages: ${JSON.stringify(users)}`);
        expect(count(await assistantTexts(p), 'third reply') === 1, `${who} shows the third reply other than once`);
      }
      expect((await other.getByTestId('composer').inputValue()) === '', 'the sent message is still in the box');
    });
  },

  async hostile() {
    const page = await newPage();
    await check('signed in by the pairing link', () => signInByLink(page));
    const hostile = '<img src=x onerror=alert(1)> and <script>alert(2)</script> **bold** [x](javascript:alert(3))';
    await ask('reply', { text: hostile });
    const harmless = async (when) => {
      const text = await page.locator('#transcript').textContent();
      for (const literal of ['<img src=x onerror=alert(1)>', '<script>alert(2)</script>', '<b>me</b>']) {
        expect(text.includes(literal), `${when}: \`${literal}\` is not shown literally`);
      }
      const made = await page.$$eval('#transcript img, #transcript script, #transcript b, #transcript a[href^="javascript"]', (n) => n.map((x) => x.outerHTML));
      expect(made.length === 0, `${when}: elements were created from text: ${made.join(' ')}`);
      const bold = await page.locator('#transcript [data-role=assistant] strong').allTextContents();
      expect(bold.includes('bold'), `${when}: **bold** did not render as <strong> (${JSON.stringify(bold)})`);
      // An onerror handler would fire asynchronously after a failed load: give it the time to (the dialog guard catches it).
      await page.waitForTimeout(300);
    };
    await check('a hostile reply and message show as text, markdown still renders, no script runs', async () => {
      await sendMessage(page, 'say it <b>me</b>');
      await waitForReply(page, 'and');
      await harmless('live');
    });
    await check('the same after a reload from the stored transcript', async () => {
      await page.reload();
      await page.locator('#transcript [data-role=assistant] strong').first().waitFor({ timeout: WAIT });
      await harmless('reloaded');
    });

    const path = '<img src=x onerror=alert(7)>.txt';
    await ask('reply', { tool_calls: [['read', JSON.stringify({ path })]] });
    await ask('reply', { text: 'The file is **missing**.' });
    await check('hostile tool arguments and results show as text, in the chat and in every Control panel', async () => {
      await sendMessage(page, 'read that file');
      await waitForReply(page, 'The file is missing.');
      const card = page.locator('#transcript [data-testid=tool-card]', { hasText: 'read' }).last();
      expect((await card.getByTestId('tool-args').textContent()).includes(path), 'the tool card does not show the path literally');
      await page.getByTestId('tab-control').click();
      for (const id of await page.$$eval('#subtabs button', (nodes) => nodes.map((n) => n.dataset.testid))) {
        await openPanel(page, id);
        if (id === 'ctl-sessions') {
          // The chat's title is its first message, `say it <b>me</b>`: listed as text.
          await within('the sessions panel does not list the chat by its literal title', page.locator('#panel [data-testid=session-item]').filter({ hasText: 'say it <b>me</b>' }).first().waitFor({ timeout: WAIT }));
        }
        const made = await page.$$eval('img:not([src="/icon.svg"]), script:not([src="/app.js"]), #panel b', (n) => n.map((x) => x.outerHTML));
        expect(made.length === 0, `${id}: elements were created from text: ${made.join(' ')}`);
      }
    });
  },

  async phone() {
    const page = await newPage({ width: 375, height: 740 });
    await check('signed in on a 375 px phone screen', () => signInByLink(page));
    const long = 'x'.repeat(240);
    const wide = Array.from({ length: 12 }, (_, i) => `column-${i}`);
    const table = `| ${wide.join(' | ')} |\n|${wide.map(() => '---').join('|')}|\n| ${wide.join(' | ')} |`;
    await ask('reply', { text: `A long word ${long} and https://example.org/${long}\n\n\`\`\`\n${long}\n\`\`\`\n\n${table}` });
    const noSideScroll = async (where) => {
      const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      expect(scroll <= width, `${where}: the page scrolls sideways (${scroll} px content in ${width} px)`);
    };
    await check('the chat has no horizontal scroll, even with long unbroken text and a wide table', async () => {
      await sendMessage(page, `a long message ${long}`);
      await waitForReply(page, 'A long word');
      await noSideScroll('chat');
    });
    await check('the composer is visible at the bottom of the screen', async () => {
      await page.evaluate(() => window.scrollTo(0, 0));
      const box = await page.getByTestId('composer').boundingBox();
      expect(box && box.y >= 0 && box.y + box.height <= 740 && box.y > 370, `the composer is at ${JSON.stringify(box)}`);
      expect(await page.getByTestId('composer').isVisible(), 'the composer is hidden');
    });
    await check('Tab reaches the send button', async () => {
      await page.getByTestId('composer').focus();
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => document.activeElement && document.activeElement.dataset.testid);
      expect(focused === 'send', `Tab from the composer focused ${focused}`);
    });
    await check('tap targets are at least 40 px', async () => {
      const small = await page.$$eval('button:not([hidden]), select, .button, textarea', (nodes) => nodes
        .filter((n) => n.offsetParent !== null)
        .map((n) => [n.dataset.testid || n.id || n.textContent.trim(), n.getBoundingClientRect()])
        .filter(([, r]) => r.height < 40 || r.width < 40)
        .map(([name, r]) => `${name} ${Math.round(r.width)}x${Math.round(r.height)}`));
      expect(small.length === 0, `too small: ${small.join(', ')}`);
    });
    await check('every Control panel loads without an error and fits the width', async () => {
      await page.getByTestId('tab-control').click();
      const panels = await page.$$eval('#subtabs button', (nodes) => nodes.map((n) => n.dataset.testid));
      for (const id of panels) {
        await openPanel(page, id);
        await noSideScroll(id);
        const error = await page.$$eval('#panel [role=alert]', (nodes) => nodes.map((n) => n.textContent).join('; '));
        expect(!error, `${id} shows an error: ${error}`);
      }
    });
  },
};

// ------------------------------------------------------------ main
if (!scenarios[SCENARIO]) die(`unknown scenario \`${SCENARIO}\`; one of: ${Object.keys(scenarios).join(', ')}`);
process.on('uncaughtException', (error) => { fail(SCENARIO, `uncaught: ${reasonOf(error)}`); });
process.on('unhandledRejection', (error) => { fail(SCENARIO, `unhandled rejection: ${reasonOf(error)}`); });
// A scenario takes seconds; a hang must not hold the test run.
setTimeout(() => { fail(SCENARIO, 'the scenario did not finish within 60 s'); }, 60000);
try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Playwright gives each launch a fresh temporary profile (it refuses --user-data-dir here).
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
} catch (error) {
  die(`cannot start ${CHROMIUM}: ${error.message.split('\n')[0]}`);
}
try {
  await scenarios[SCENARIO]();
} catch (error) {
  await fail(SCENARIO, error && error.message ? error.message : error);
}
await browser.close();
input.close();
process.exit(0);
