// Approve (or deny) a pending device code on the test server as a browser would.
//
//   node approve.mjs <issuer> <user_code> [--deny]
//
// Exit 0 and prints "approved" / "denied" on success; non-zero with a message
// on stderr otherwise. Gives up after 15 s.
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

// --- minimal cookie jar (name -> {value, path}); the server is a single host.
const jar = new Map();
function storeCookies(res) {
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let path = '/';
    let expired = value === '';
    for (const attr of attrs) {
      const [k, v = ''] = attr.split('=');
      const key = k.toLowerCase();
      if (key === 'path') path = v || '/';
      if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      if (key === 'max-age' && Number(v) <= 0) expired = true;
    }
    const id = `${name}\0${path}`;
    if (expired) jar.delete(id);
    else jar.set(id, { name, value, path });
  }
}
function cookieHeader(url) {
  const { pathname } = new URL(url);
  return [...jar.values()]
    .filter((c) => pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
    .map((c) => `${c.name}=${c.value}`)
    .join('; ');
}

// One request, then follow redirects (303/302 -> GET) like a browser.
async function request(method, url, form) {
  let current = new URL(url, issuer).href;
  let body = form ? new URLSearchParams(form).toString() : undefined;
  for (let hops = 0; hops < 10; hops += 1) {
    const headers = { accept: 'text/html' };
    const cookies = cookieHeader(current);
    if (cookies) headers.cookie = cookies;
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(current, {
      method, headers, body, redirect: 'manual', signal,
    });
    storeCookies(res);
    if ([301, 302, 303, 307, 308].includes(res.status)) {
      const location = res.headers.get('location');
      if (!location) fail(`${res.status} without Location from ${current}`);
      await res.arrayBuffer();
      current = new URL(location, current).href;
      if (res.status !== 307 && res.status !== 308) {
        method = 'GET';
        body = undefined;
      }
      continue;
    }
    const text = await res.text();
    if (res.status !== 200) fail(`HTTP ${res.status} from ${method} ${current}: ${strip(text).slice(0, 300)}`);
    return { url: current, text };
  }
  return fail(`too many redirects from ${url}`);
}

function strip(html) {
  return html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
}
function hiddenInput(html, name) {
  const m = html.match(new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`));
  return m ? m[1] : undefined;
}
function formAction(html, page) {
  const m = html.match(/<form[^>]*action="([^"]+)"[^>]*method="post"/i);
  if (!m) fail(`no form on ${page.url}: ${strip(html).slice(0, 300)}`);
  return new URL(m[1].replace(/&amp;/g, '&'), page.url).href;
}
function pageError(html) {
  // The re-rendered code-entry page carries its error in <p class="red">.
  const m = html.match(/<p class="red">([\s\S]*?)<\/p>/);
  return m ? strip(m[1]) : undefined;
}

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
