// Play the browser for an authorization code sign-in: open the address a
// client sent the browser to (OpenBao's auth_url at this server), sign in and
// consent as the test user, and follow the redirect back to the client's
// loopback callback, as a browser would.
//
//   node authorize.mjs <auth_url> [--login NAME]
//
// Exit 0 and prints the callback page's text on success; non-zero with a
// message on stderr otherwise. Gives up after 15 s.
import { browser } from './browser.mjs';

const TIMEOUT_MS = 15_000;

function fail(msg) {
  console.error(`authorize.mjs: ${msg}`);
  process.exit(1);
}

const args = process.argv.slice(2);
const loginAt = args.indexOf('--login');
const login = loginAt >= 0 ? args[loginAt + 1] : 'alice';
const positional = args.filter((a, i) => !(loginAt >= 0 && (i === loginAt || i === loginAt + 1)));
if (positional.length !== 1 || !login) {
  console.error('usage: node authorize.mjs <auth_url> [--login NAME]');
  process.exit(2);
}
const [authUrl] = positional;

const deadline = setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS);
deadline.unref();
const signal = AbortSignal.timeout(TIMEOUT_MS);

const { request, strip, hiddenInput, formAction } = browser({ base: authUrl, signal, fail });

try {
  let page = await request('GET', authUrl);
  for (let step = 0; step < 4; step += 1) {
    if (!/\/interaction\//.test(page.url)) {
      // Back at the client's callback: its page says how the sign-in went.
      console.log(strip(page.text));
      process.exit(0);
    }
    const prompt = hiddenInput(page.text, 'prompt');
    const action = formAction(page.text, page);
    if (prompt === 'login') {
      page = await request('POST', action, { prompt: 'login', login, password: 'x' });
    } else if (prompt === 'consent') {
      page = await request('POST', action, { prompt: 'consent' });
    } else {
      fail(`unknown interaction prompt ${prompt} on ${page.url}`);
    }
  }
  fail(`still signing in after four pages (last: ${page.url}): ${strip(page.text).slice(0, 300)}`);
} catch (err) {
  fail(err.name === 'TimeoutError' || err.name === 'AbortError' ? `timed out after ${TIMEOUT_MS / 1000} s` : `${err.message}${err.cause ? ` (${err.cause.message || err.cause})` : ''}`);
}
