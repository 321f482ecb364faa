// Plays the human at provider.mjs's pages over plain HTTP: node's fetch, a tiny cookie jar, no browser.
//
//   node user.mjs device --issuer URL --user-code CODE --login SUB --password PW [--deny]
//     Enters the user code at URL/device, confirms, signs in, consents (or denies), and exits 0
//     once the provider shows its "device is authorized" page (with --deny: once it took the denial).
//   node user.mjs code --url AUTHORIZATION_URL --login SUB --password PW [--deny] [--no-deliver]
//     Follows the authorization request, signs in, consents (or denies), and follows redirects up to
//     the one leaving the provider (the client's redirect_uri). Prints that URL on stdout and GETs it,
//     so the program under test receives the code (--no-deliver: only print it). Exits 0 unless the
//     redirect carries an error without --deny.
// Any other outcome (wrong password, unknown user code, error page, ...) exits non-zero with a message.

const [mode, ...rest] = process.argv.slice(2);
const opts = {};
for (let i = 0; i < rest.length; i++) {
  const name = rest[i].replace(/^--/, '');
  opts[name] = ['deny', 'no-deliver'].includes(name) ? true : rest[++i];
}
const fail = (msg, code = 1) => { console.error(`user.mjs: ${msg}`); process.exit(code); };
const need = (...names) => names.forEach((n) => opts[n] === undefined && fail(`missing --${n}`, 2));
if (mode === 'device') need('issuer', 'user-code', 'login', 'password');
else if (mode === 'code') need('url', 'login', 'password');
else fail('usage: user.mjs device|code ... (see the comment at the top)', 2);

// --- Cookie jar: name+path -> value; sent when the request path is under the cookie's path.
const jar = new Map();
function storeCookies(res) {
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const attr = Object.fromEntries(attrs.map((a) => [a.split('=')[0].toLowerCase(), a.split('=').slice(1).join('=')]));
    const path = attr.path || '/';
    const gone = attr['max-age'] === '0' || (attr.expires && Date.parse(attr.expires) <= Date.now());
    if (gone) jar.delete(`${name};${path}`);
    else jar.set(`${name};${path}`, { name, path, value: pair.slice(eq + 1) });
  }
}
const cookieHeader = (url) => [...jar.values()]
  .filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
  .map((c) => `${c.name}=${c.value}`).join('; ');

async function request(method, url, form) {
  const headers = { cookie: cookieHeader(url) };
  if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
  const res = await fetch(url, { method, headers, body: form && new URLSearchParams(form).toString(), redirect: 'manual' });
  storeCookies(res);
  return { url, status: res.status, location: res.headers.get('location'), html: await res.text() };
}

// --- Minimal HTML reading: forms with their hidden/prefilled inputs.
const decode = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(n))
  .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const attrsOf = (tag) => Object.fromEntries([...tag.matchAll(/([\w.:-]+)\s*=\s*"([^"]*)"/g)].map(([, k, v]) => [k, decode(v)]));
function forms(page) {
  return [...page.html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)].map(([, tag, inner]) => {
    const a = attrsOf(tag);
    const fields = {};
    for (const [, input] of inner.matchAll(/<input\b([^>]*)>/g)) {
      const i = attrsOf(input);
      if (i.name) fields[i.name] = i.value ?? '';
    }
    return { id: a.id, action: new URL(a.action ?? '', page.url), method: (a.method ?? 'get').toUpperCase(), fields };
  });
}
const text = (html) => decode(html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim());

// --- The walk: one page at a time until the provider lets go.
const start = mode === 'device' ? new URL('/device', opts.issuer) : new URL(opts.url);
const origin = start.origin;
const done = new Set(); // forms already submitted once (a second time means they were rejected)

let page = await request('GET', start).catch((e) => fail(`GET ${start}: ${e.cause?.message ?? e.message}`));
for (let steps = 0; steps < 30; steps++) {
  if (page.status >= 300 && page.status < 400 && page.location) {
    const next = new URL(page.location, page.url);
    if (next.origin !== origin) { await leave(next); process.exit(0); }
    page = await request('GET', next);
    continue;
  }
  if (page.status !== 200) fail(`HTTP ${page.status} at ${page.url.pathname}: ${text(page.html).slice(0, 300)}`);
  if (page.html.includes('id="device-authorized"')) {
    if (opts.deny) fail('the device was authorized although --deny was given');
    console.error('user.mjs: device authorized');
    process.exit(0);
  }

  const byId = Object.fromEntries(forms(page).map((f) => [f.id, f]));
  let form;
  let kind;
  if (byId['op.deviceInputForm']) {
    kind = 'user code';
    form = byId['op.deviceInputForm'];
    // After a denial the provider shows the code input page again, saying the request was interrupted.
    if (opts.deny && done.has('consent') && /interrupted|denied|abort/i.test(text(page.html))) {
      console.error('user.mjs: denial taken');
      process.exit(0);
    }
    form.fields.user_code = opts['user-code'];
  } else if (byId['op.deviceConfirmForm']) {
    kind = 'device confirmation';
    form = byId['op.deviceConfirmForm'];
  } else if (byId.login) {
    kind = 'login';
    form = byId.login;
    Object.assign(form.fields, { login: opts.login, password: opts.password });
  } else if (byId.confirm) {
    kind = 'consent';
    form = opts.deny ? byId.abort : byId.confirm;
  } else {
    fail(`unexpected page at ${page.url.pathname}: ${text(page.html).slice(0, 300)}`);
  }
  if (done.has(kind)) fail(`${kind} rejected: ${text(page.html).slice(0, 300)}`);
  done.add(kind);
  page = await request(form.method, form.action, form.fields);
}
fail('too many steps');

// The redirect to the client: print it, deliver it, judge it.
async function leave(url) {
  if (mode !== 'code') fail(`the device flow redirected away to ${url}`);
  process.stdout.write(`${url}\n`);
  if (!opts['no-deliver']) {
    const res = await fetch(url, { redirect: 'manual' }).catch((e) => fail(`GET ${url}: ${e.cause?.message ?? e.message}`));
    console.error(`user.mjs: delivered, the client answered HTTP ${res.status}`);
  }
  const error = url.searchParams.get('error');
  if (error && !opts.deny) fail(`the provider answered ${error}: ${url.searchParams.get('error_description')}`, 3);
  if (!error && opts.deny) fail('the client got a code although --deny was given', 3);
}
