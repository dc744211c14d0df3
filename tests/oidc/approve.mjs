// Approve (or deny) a pending device code on the test server as a browser would.
//
//   node approve.mjs <issuer> <user_code> [--deny]
//
// Exit 0 and prints "approved" / "denied" on success; non-zero with a message
// on stderr otherwise. Gives up after 15 s.
import { browser } from './browser.mjs';

const TIMEOUT_MS = 15_000;

function fail(msg) {
  console.error(`approve.mjs: ${msg}`);
  process.exit(1);
}

const args = process.argv.slice(2);
const deny = args.includes('--deny');
const positional = args.filter((a) => a !== '--deny');
if (positional.length !== 2 || args.some((a) => a.startsWith('--') && a !== '--deny')) {
  console.error('usage: node approve.mjs <issuer> <user_code> [--deny]');
  process.exit(2);
}
const [issuerArg, userCode] = positional;
const issuer = issuerArg.replace(/\/+$/, '');

const deadline = setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS);
deadline.unref();
const signal = AbortSignal.timeout(TIMEOUT_MS);

const { request, strip, hiddenInput, formAction, pageError } = browser({ base: issuer, signal, fail });

try {
  // 1. code entry page
  const entry = await request('GET', '/device');
  const xsrf = hiddenInput(entry.text, 'xsrf');
  if (!xsrf) fail('no xsrf input on /device');

  // 2. submit the user code -> confirmation page
  const confirmPage = await request('POST', '/device', { xsrf, user_code: userCode });
  if (!confirmPage.text.includes('op.deviceConfirmForm')) {
    fail(`user code rejected: ${pageError(confirmPage.text) || strip(confirmPage.text).slice(0, 300)}`);
  }
  const xsrf2 = hiddenInput(confirmPage.text, 'xsrf') || xsrf;
  const codeEcho = hiddenInput(confirmPage.text, 'user_code') || userCode;

  if (deny) {
    // 3b. the "[ Abort ]" button: name="abort" value="yes"
    const denied = await request('POST', '/device', { xsrf: xsrf2, user_code: codeEcho, abort: 'yes' });
    if (pageError(denied.text) !== 'The Sign-in request was interrupted') {
      fail(`deny not confirmed by server: ${strip(denied.text).slice(0, 300)}`);
    }
    console.log('denied');
    process.exit(0);
  }

  // 3. confirm -> redirected to /interaction/:uid (login prompt)
  let page = await request('POST', '/device', { xsrf: xsrf2, user_code: codeEcho, confirm: 'yes' });

  for (let step = 0; step < 4; step += 1) {
    if (/<title>Sign-in Success<\/title>/.test(page.text)) {
      console.log('approved');
      process.exit(0);
    }
    if (!/\/interaction\//.test(page.url)) {
      fail(`unexpected page ${page.url}: ${pageError(page.text) || strip(page.text).slice(0, 300)}`);
    }
    const prompt = hiddenInput(page.text, 'prompt');
    const action = formAction(page.text, page);
    if (prompt === 'login') {
      page = await request('POST', action, { prompt: 'login', login: 'alice', password: 'x' });
    } else if (prompt === 'consent') {
      page = await request('POST', action, { prompt: 'consent' });
    } else {
      fail(`unknown interaction prompt ${prompt} on ${page.url}`);
    }
  }
  fail(`no success page after interactions (last: ${page.url}): ${strip(page.text).slice(0, 300)}`);
} catch (err) {
  fail(err.name === 'TimeoutError' || err.name === 'AbortError' ? `timed out after ${TIMEOUT_MS / 1000} s` : `${err.message}${err.cause ? ` (${err.cause.message || err.cause})` : ''}`);
}
