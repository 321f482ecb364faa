// A real OpenID Provider (panva's oidc-provider) for Gatehouse's end-to-end tests.
//
//   node tests/oidc/provider.mjs CONFIG.json
//
// CONFIG.json:
//   { "port": 0,                        // 0 = any free port
//     "issuer_host": "127.0.0.1",       // optional
//     "id_token_ttl_secs": 3600,        // optional
//     "access_token_ttl_secs": 3600,    // optional
//     "clients": [{ "client_id": "gatehouse", "client_secret": "s3cret",   // no secret = public client
//                   "redirect_uris": ["http://127.0.0.1/callback"],
//                   "grant_types": ["authorization_code", "refresh_token",
//                                   "urn:ietf:params:oauth:grant-type:device_code"] }],
//     "users": [{ "sub": "alice", "password": "pw", "email": "alice@example.com",
//                 "name": "Alice", "groups": ["dba", "eng"] }] }
//
// Prints exactly one line on stdout, `OIDC_READY http://127.0.0.1:PORT`, once listening;
// everything else goes to stderr. Besides the provider's own endpoints it serves:
//   GET/POST /interaction/:uid[/login|/confirm|/abort]  login (password checked) and consent pages
//   POST /test/rotate[?drop_old=1]  new RS256 signing key (old RS256 keys stay in the JWKS unless drop_old)
//   POST /test/users                replace the users: a JSON list, or {"users": [...]}
//   POST /test/sign                 {"claims": {...}, "header": {...}} -> {"jwt": "..."} (see sign())
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import Provider from 'oidc-provider';

// oidc-provider prints notices with console.info; stdout carries only the ready line.
console.log = console.info = console.error;

const config = JSON.parse(readFileSync(process.argv[2] ?? usage(), 'utf8'));
function usage() {
  console.error('usage: node provider.mjs CONFIG.json');
  process.exit(2);
}
let users = config.users ?? [];

// --- Signing keys. A key is { jwk (private, with kid/alg/use), keyObject }.
let kidSerial = 0;
function newKey(alg) {
  const { privateKey } = alg === 'RS256'
    ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
    : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = `${alg.toLowerCase()}-${++kidSerial}-${crypto.randomBytes(4).toString('hex')}`;
  return { jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' }, keyObject: privateKey };
}
// The first RS256 key in the list is the one oidc-provider signs with (ties keep list order).
let keys = [newKey('RS256'), newKey('ES256')];
const currentKey = (alg = 'RS256') => keys.find((k) => k.jwk.alg === alg);

// --- Storage shared by every Provider instance (rotation builds a new instance, see below),
// so sessions, grants, codes and tokens survive a key rotation. Interface: oidc-provider's Adapter.
const store = new Map(); // `${model}:${id}` -> { payload, exp (ms epoch or Infinity) }
class MemoryAdapter {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload, expiresIn) {
    store.set(this.key(id), { payload, exp: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
  }
  async find(id) { return live(this.key(id)); }
  async findBy(field, value) {
    for (const k of store.keys()) {
      const p = k.startsWith(`${this.model}:`) && live(k);
      if (p && p[field] === value) return p;
    }
    return undefined;
  }
  async findByUid(uid) { return this.findBy('uid', uid); }
  async findByUserCode(userCode) { return this.findBy('userCode', userCode); }
  async consume(id) {
    const p = live(this.key(id));
    if (p) p.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id) { store.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    for (const [k, v] of store) if (v.payload.grantId === grantId) store.delete(k);
  }
}
function live(k) {
  const v = store.get(k);
  if (v && v.exp < Date.now()) store.delete(k);
  return v && v.exp >= Date.now() ? v.payload : undefined;
}

// --- Accounts come from `users` (replaceable at runtime), read at every token issuance.
async function findAccount(_ctx, sub) {
  const u = users.find((x) => x.sub === sub);
  if (!u) return undefined;
  return {
    accountId: sub,
    claims: async () => ({
      sub, email: u.email, email_verified: true, name: u.name, groups: u.groups ?? [],
    }),
  };
}

// Clients: native by default, so any port on a loopback redirect_uri is accepted (RFC 8252 §7.3).
const clients = (config.clients ?? []).map(({ client_id, client_secret, redirect_uris = [], grant_types = ['authorization_code'], ...rest }) => ({
  client_id,
  ...(client_secret ? { client_secret } : {}),
  token_endpoint_auth_method: client_secret ? 'client_secret_basic' : 'none',
  application_type: 'native',
  redirect_uris,
  grant_types,
  response_types: grant_types.includes('authorization_code') ? ['code'] : [],
  ...rest, // any other client metadata passes through (e.g. token_endpoint_auth_method)
}));

const cookieKeys = [crypto.randomBytes(32).toString('hex')];

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    adapter: MemoryAdapter,
    clients,
    findAccount,
    jwks: { keys: keys.map((k) => k.jwk) },
    // Cookies get the `secure` flag only on https requests, so plain http on loopback works;
    // `lax` instead of v8's default `none` (which browsers drop without `secure`).
    cookies: { keys: cookieKeys, long: { httpOnly: true, sameSite: 'lax' }, short: { httpOnly: true, sameSite: 'lax' } },
    responseTypes: ['code'], // code flow only (no implicit)
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'],
    },
    // Put the claims of the granted scopes in the ID token even when an access token is issued too.
    conformIdTokenClaims: false,
    pkce: { methods: ['S256'], required: () => true }, // every code flow must use PKCE S256
    // Every client allowed the refresh_token grant gets one, `offline_access` requested or not.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: { // seconds
      IdToken: config.id_token_ttl_secs ?? 3600,
      AccessToken: config.access_token_ttl_secs ?? 3600,
      AuthorizationCode: 60,
      DeviceCode: 600,
      Interaction: 3600,
      Session: 86400,
      Grant: 86400,
      RefreshToken: 86400,
    },
    interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false }, // ours below check the password
      deviceFlow: { enabled: true, successSource },
      introspection: { enabled: true },
      revocation: { enabled: true },
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', `<p id="error">${esc(out.error)}: ${esc(out.error_description ?? '')}</p>`);
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  return provider;
}

async function successSource(ctx) {
  ctx.body = page('Sign-in Success', '<p id="device-authorized">The device is authorized.</p>');
}

// --- Tiny HTML pages for login and consent.
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;
const loginPage = (uid, hint, error) => page('Sign-in', `${error ? `<p id="error">${esc(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${uid}/login">
  <input type="text" name="login" value="${esc(hint ?? '')}"> <input type="password" name="password">
  <button type="submit">Sign-in</button></form>`);
const consentPage = (uid, clientId, scopes) => page('Authorize', `<p>${esc(clientId)} asks for: ${esc(scopes)}</p>
<form id="confirm" method="post" action="/interaction/${uid}/confirm"><button type="submit">Continue</button></form>
<form id="abort" method="post" action="/interaction/${uid}/abort"><button type="submit">Deny</button></form>`);

async function interaction(provider, req, res, [, uid, action]) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (details.uid !== uid) throw new Error('interaction cookie does not match the URL');
  const form = req.method === 'POST' ? new URLSearchParams(await readBody(req)) : new URLSearchParams();

  if (req.method === 'GET' && !action) {
    const html = prompt.name === 'login'
      ? loginPage(uid, params.login_hint)
      : consentPage(uid, params.client_id, params.scope);
    return send(res, 200, html, 'text/html');
  }
  if (action === 'login' && prompt.name === 'login') {
    const user = users.find((u) => u.sub === form.get('login'));
    if (!user || user.password !== form.get('password')) {
      console.error(`login failed for ${form.get('login')}`);
      return send(res, 200, loginPage(uid, form.get('login'), 'Invalid login or password.'), 'text/html');
    }
    return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    // Grant everything the request asked for, as a user clicking "Continue" would.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, s] of Object.entries(missingResourceScopes ?? {})) grant.addResourceScope(indicator, s.join(' '));
    const result = { consent: { grantId: await grant.save() } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  }
  if (action === 'abort') {
    const result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  return send(res, 400, `unexpected ${req.method} ${action ?? ''} at prompt ${prompt.name}`);
}

// --- /test/* endpoints.
function b64url(x) { return Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url'); }

// Signs `claims` as a compact JWS. Defaults: header {alg: RS256, typ: JWT, kid: current key},
// claims iss = issuer, iat = now, exp = now + 300; a null value removes a default.
// alg RS256/ES256 use the current key of that type, or the key named by header.kid if it is
// one of ours (old keys too); any other kid is written as given. alg "none" gives an unsigned
// token; alg HS256 is keyed with the current RS256 public key's PEM (the key-confusion attack).
function sign(issuer, { claims = {}, header = {} }) {
  const now = Math.floor(Date.now() / 1000);
  const alg = header.alg ?? 'RS256';
  const key = keys.find((k) => k.jwk.kid === header.kid && k.jwk.alg === alg) ?? currentKey(alg);
  const h = strip({ alg, typ: 'JWT', kid: key?.jwk.kid, ...header });
  const c = strip({ iss: issuer, iat: now, exp: now + 300, ...claims });
  const input = `${b64url(h)}.${b64url(c)}`;
  let sig;
  if (alg === 'none') sig = Buffer.alloc(0);
  else if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(input), key.keyObject);
  else if (alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key: key.keyObject, dsaEncoding: 'ieee-p1363' });
  else if (alg === 'HS256') {
    const pem = crypto.createPublicKey(currentKey().keyObject).export({ type: 'spki', format: 'pem' });
    sig = crypto.createHmac('sha256', pem).update(input).digest();
  } else throw new Error(`unsupported alg ${alg}`);
  return `${input}.${sig.toString('base64url')}`;
}
function strip(o) { return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)); }

async function testEndpoint(server, req, res, url) {
  if (req.method !== 'POST') return send(res, 405, 'POST only');
  const body = await readBody(req);
  try {
    return testAction(server, res, url, body);
  } catch (err) { // bad JSON, unknown alg, ...
    return send(res, 400, String(err.message));
  }
}
function testAction(server, res, url, body) {
  switch (url.pathname) {
    case '/test/rotate': {
      const fresh = newKey('RS256');
      const others = url.searchParams.get('drop_old') === '1' ? keys.filter((k) => k.jwk.alg !== 'RS256') : keys;
      keys = [fresh, ...others];
      serve(buildProvider(server.issuer)); // the JWKS is fixed per instance
      console.error(`rotated: signing kid ${fresh.jwk.kid}; jwks ${keys.map((k) => k.jwk.kid).join(' ')}`);
      return sendJson(res, 200, { kid: fresh.jwk.kid, kids: keys.map((k) => k.jwk.kid) });
    }
    case '/test/users': {
      const parsed = JSON.parse(body);
      const list = Array.isArray(parsed) ? parsed : parsed.users;
      if (!Array.isArray(list)) throw new Error('expected a list of users, or {"users": [...]}');
      users = list;
      return sendJson(res, 200, { users: users.map((u) => u.sub) });
    }
    case '/test/sign':
      return sendJson(res, 200, { jwt: sign(server.issuer, JSON.parse(body || '{}')) });
    default:
      return send(res, 404, 'no such test endpoint');
  }
}

// --- Plumbing.
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks).toString())).on('error', reject);
  });
}
function send(res, status, body, type = 'text/plain') {
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
  res.end(body);
}
const sendJson = (res, status, obj) => send(res, status, JSON.stringify(obj), 'application/json');

// Requests go to the current Provider instance; rotation swaps in a new one.
function serve(provider) {
  server.provider = provider;
  server.handler = provider.callback();
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, server.issuer);
  res.on('finish', () => console.error(`${req.method} ${url.pathname} -> ${res.statusCode}`));
  try {
    const m = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
    if (m) return await interaction(server.provider, req, res, m);
    if (url.pathname.startsWith('/test/')) return await testEndpoint(server, req, res, url);
    return server.handler(req, res);
  } catch (err) {
    console.error(`${req.method} ${url.pathname}:`, err);
    if (!res.headersSent) send(res, 500, String(err?.message ?? err));
  }
});

const host = config.issuer_host ?? '127.0.0.1';
server.listen(config.port ?? 0, host, () => {
  server.issuer = `http://${host}:${server.address().port}`;
  serve(buildProvider(server.issuer));
  process.stdout.write(`OIDC_READY ${server.issuer}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
// Don't outlive the test that started us: exit once the parent process is gone.
const parent = process.ppid;
setInterval(() => {
  try { process.kill(parent, 0); } catch { process.exit(0); }
}, 1000).unref();
