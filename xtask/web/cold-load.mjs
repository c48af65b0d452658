// `node cold-load.mjs URL` (URL = the pairing link `http://host:port/#code=XXXX-XXXX`): opens the
// web UI in a fresh headless Chromium, signs in with the link's code, and prints one JSON line:
// the bytes of every response of the cold load (the UI's own files and the API's JSON apart) and
// the time from navigation start until the page is usable (signed in, the socket open, the
// agent list loaded, the composer enabled). Used by `cargo xtask bench web`.
import { createRequire } from 'node:module';
import path from 'node:path';

const url = process.argv[2];
const npm = process.env.CLAWDIA_TEST_NPM || '/root/.cache/clawdia/npm';
const executablePath = process.env.CLAWDIA_TEST_CHROMIUM || '/usr/bin/chromium';
const { chromium } = createRequire(path.join(npm, 'package.json'))('playwright-core');
// A fresh profile each run: Playwright's `launch` makes (and removes) a temporary one.
const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 375, height: 740 } });
  const responses = [];
  page.on('response', (response) => responses.push(response));
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => {
    const banner = document.querySelector('[data-testid=conn-banner]');
    const picker = document.querySelector('[data-testid=agent-picker]');
    const composer = document.querySelector('[data-testid=composer]');
    return banner && banner.hidden && picker && picker.options.length > 0 && composer && !composer.disabled
      && composer.offsetParent !== null;
  }, null, { polling: 'raf', timeout: 15000 });
  const usableMs = await page.evaluate(() => performance.now());
  let assets = 0;
  let api = 0;
  const files = {};
  for (const response of responses) {
    const size = (await response.body().catch(() => Buffer.alloc(0))).length;
    const { pathname } = new URL(response.url());
    if (pathname.startsWith('/v1/')) api += size; else { assets += size; files[pathname] = size; }
  }
  process.stdout.write(JSON.stringify({ assets, api, files, usable_ms: usableMs }) + '\n');
} finally {
  await browser.close();
}
