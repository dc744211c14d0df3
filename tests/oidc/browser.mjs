// A browser as the tests play one against the test server: a cookie jar,
// redirects followed (303/302 become GET), and the few things read off a page.
// Shared by approve.mjs (device codes) and authorize.mjs (authorization codes).

/** A browser whose relative addresses resolve against `base`; `fail(msg)` ends the run. */
export function browser({ base, signal, fail }) {
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
    let current = new URL(url, base).href;
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

  return { request, strip, hiddenInput, formAction, pageError };
}
