// Plays one message in Debian's chromium through the Lemonvox web player
// and prints the player's result as JSON on stdout.
// Usage: node play.js <player page URL> <grant or CHANNEL URL>
//        node play.js <player page URL> --admin <admin token> <user> <uid>
'use strict';
const { chromium } = require('playwright-core');

async function main() {
  const [pageURL, grant, token, user, uid] = process.argv.slice(2);
  if (!pageURL || !grant) throw new Error('usage: node play.js <player URL> <grant> | --admin <token> <user> <uid>');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 60000,
    args: [
      // ICE on loopback only: the server offers 127.0.0.1, the browser
      // must use its loopback interface and plain host candidates.
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-gpu',
      // Nothing beyond the test's own server: this host's network is closed.
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    page.on('console', (m) => console.error('page console:', m.type(), m.text()));
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await page.goto(pageURL, { waitUntil: 'load' });
    if (grant === '--admin') {
      await page.click('#admin summary');
      await page.fill('#token', token);
      await page.fill('#user', user);
      await page.fill('#uid', uid);
      await page.click('#issue');
    } else {
      await page.fill('#grant', grant);
      await page.click('#play');
    }
    await page.waitForFunction(() => window.lemonvoxPlayer && window.lemonvoxPlayer.result, null,
      { timeout: 90000, polling: 200 });
    const result = await page.evaluate(() => window.lemonvoxPlayer.result);
    // The CSP must have let the page work without violations.
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
