// A person signs in with a real browser at a real provider: examples/login (the refresh
// layer's AuthorizationCode source, a LoopbackBrowser, a FileStore) calls the Rust MCP server
// of examples/mcp_server, whose tokens come from oidc-provider (OpenID Certified) with its
// own login and consent pages, filled in by headless Chromium. The client registers itself
// (RFC 7591, a native app with a loopback redirect URI), signs in with PKCE S256 and the RFC
// 8707 resource, checks RFC 9207 `iss`, keeps the sign-in in a file, uses it again after a
// restart, and refreshes it (rotating refresh token) once the access token has expired.
// Then what it must refuse, each time with nothing sent to the token endpoint: a redirect
// from another issuer, a redirect of another sign-in (a forged state, a replayed redirect),
// and authorization-server metadata for another issuer than the one the resource names.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import os from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { chromium } from 'playwright-core';
import { startExample, CHROMIUM_ARGS, interopDir } from './support.mjs';
import { startOidcProvider } from './oidc-provider.mjs';

const LOGIN = path.resolve(interopDir, '..', 'target', 'debug', 'examples', 'login');
/**
 * The access tokens' lifetime: short, so that the refresh can be waited for, and long enough
 * that a restart right after the sign-in finds it fresh (the layer refreshes within the last
 * half of a token's life).
 */
const ACCESS_TOKEN_TTL = 16;
const SIGN_IN_URL = /^Open this URL to sign in: (\S+)$/m;
/** A stateless request (MCP 2025-11-25 without `initialize`) the server answers at once. */
const TOOLS_LIST = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
const MCP_HEADERS = [
  '-H', 'content-type: application/json',
  '-H', 'accept: application/json, text/event-stream',
  '-H', 'mcp-protocol-version: 2025-11-25',
];

let as;
let mcp;
let resource;
let browser;
let dir;
const children = new Set();
const servers = [];

before(async () => {
  await access(LOGIN).catch(() => {
    throw new Error(`${LOGIN} is missing: run \`cargo test --workspace\` (or \`cargo build --example login\`) first`);
  });
  as = await startOidcProvider({
    people: true,
    accessTokenTTL: ACCESS_TOKEN_TTL,
    resources: (indicator) => (indicator === resource ? 'notes:read notes:write' : undefined),
  });
  mcp = await startExample('mcp_server', ['--listen', '127.0.0.1:0', '--issuer', as.issuer]);
  resource = (await mcp.next()).replace(/^resource /, '');
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-sign-in-'));
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await browser?.close();
  await mcp?.stop();
  await as?.stop();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * Run examples/login with `--print-url`. `url()` resolves with the sign-in URL it prints
 * (fails after 20 s without one); `done` with its exit code and output once it exits. It is
 * killed after `timeoutMs`.
 */
function login(args, timeoutMs = 60_000) {
  const child = spawn(LOGIN, ['--print-url', '--sign-in-timeout', '60', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  let foundUrl;
  const url = new Promise((resolve) => (foundUrl = resolve));
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr += `${line}\n`;
    const m = SIGN_IN_URL.exec(line);
    if (m) foundUrl(m[1]);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    child,
    url: () => withTimeout(url, 20_000, () => `no sign-in URL within 20 s; stderr so far:\n${stderr}`),
    done,
    running: () => child.exitCode === null && child.signalCode === null,
    stderr: () => stderr,
  };
}

function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(message())), ms))),
  ]).finally(() => clearTimeout(timer));
}

const toolsCall = (store, url = resource) =>
  login(['--store', store, '-X', 'POST', ...MCP_HEADERS, '-d', TOOLS_LIST, url]);

const toolNames = (stdout) => JSON.parse(stdout).result.tools.map((t) => t.name).sort();

/** What the provider received since `mark` (an index into its request log). */
const since = (mark) => as.requests.slice(mark);
const tokenRequests = (mark) => since(mark).filter((r) => r.method === 'POST' && r.path === '/token');
const authorizationRequests = (mark) => since(mark).filter((r) => r.path === '/auth');

/** The one sign-in in the store file: its key, version and token set. */
async function storedSet(store) {
  const sets = await storedSets(store);
  assert.equal(sets.length, 1, `one sign-in in the store, under the keys ${sets.map((x) => x.key)}`);
  return sets[0];
}

async function storedSets(store) {
  const doc = JSON.parse(await readFile(store, 'utf8'));
  return Object.entries(doc.grants ?? {})
    .filter(([, entry]) => entry.stored)
    .map(([key, entry]) => ({ key, version: entry.stored.version, tokens: entry.stored.tokens }));
}

const digest = (s) => createHash('sha256').update(s ?? '').digest('hex');

/**
 * Sign in at the provider's own pages in a fresh browser context: any login and password,
 * then consent. `rewrite(url)`, if given, is shown the provider's redirect to the loopback
 * listener and returns the URL Chromium requests instead (Playwright's `page.route` does not
 * see the hops of a redirect, the DevTools protocol's Fetch domain does). Every answer the
 * listener gave comes back as `{url, status}` (the URL the page saw), in order.
 */
async function signInWithBrowser(signInUrl, rewrite) {
  const redirectUri = new URL(signInUrl).searchParams.get('redirect_uri');
  const context = await browser.newContext();
  const answers = [];
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    if (rewrite) {
      const cdp = await context.newCDPSession(page);
      cdp.on('Fetch.requestPaused', ({ requestId, request }) => {
        const url = rewrite(request.url);
        cdp.send('Fetch.continueRequest', url && url !== request.url ? { requestId, url } : { requestId }).catch(() => {});
      });
      await cdp.send('Fetch.enable', { patterns: [{ urlPattern: `${redirectUri}*`, requestStage: 'Request' }] });
    }
    page.on('response', (res) => {
      if (res.url().startsWith(redirectUri) && res.request().isNavigationRequest()) {
        answers.push({ url: res.url(), status: res.status() });
      }
    });
    await page.goto(signInUrl);
    await page.fill('input[name="login"]', 'alice');
    await page.fill('input[name="password"]', 'any password');
    await page.click('button[type="submit"]');
    await page.waitForSelector('input[name="prompt"][value="consent"]', { state: 'attached' });
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(redirectUri), { waitUntil: 'load' }),
      page.click('button[type="submit"]'),
    ]);
    for (let waited = 0; answers.length === 0 && waited < 5_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { page, context, answers, title: await page.title() };
  } catch (e) {
    await context.close();
    throw e;
  }
}

/** `url` with the query parameter `name` set to `value`. */
function withParam(url, name, value) {
  const u = new URL(url);
  u.searchParams.set(name, value);
  return u.href;
}

let firstCallback; // the redirect of the first, successful sign-in, for the replay test
let firstStore;

test('a person signs in in the browser: registration, PKCE, resource, iss; the call goes through; the store keeps it (0600)', { timeout: 90_000 }, async () => {
  firstStore = path.join(dir, 'first.json');
  const mark = as.requests.length;
  const issuedBefore = as.issued.length;
  const run = toolsCall(firstStore);
  const url = new URL(await run.url());
  assert.equal(url.origin, as.issuer);
  assert.equal(url.pathname, '/auth');
  const q = url.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
  assert.ok(q.get('state')?.length >= 16, 'a state');
  assert.equal(q.get('resource'), resource, 'RFC 8707: the token is asked for this resource');
  assert.match(q.get('redirect_uri'), /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
  assert.deepEqual(q.get('scope').split(' ').sort(), ['notes:read', 'offline_access']);
  assert.equal(since(mark).filter((r) => r.method === 'POST' && r.path === '/reg').length, 1, 'registered once');

  const { context, answers, title } = await signInWithBrowser(url.href);
  await context.close();
  assert.equal(answers.length, 1, JSON.stringify(answers.map((a) => a.status)));
  assert.equal(answers[0].status, 200);
  assert.equal(title, 'Sign-in received');
  firstCallback = answers[0].url;
  assert.equal(new URL(firstCallback).searchParams.get('iss'), as.issuer, 'RFC 9207: the provider sends iss');

  const out = await run.done;
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stderr, /^HTTP 200 OK$/m);
  assert.deepEqual(toolNames(out.stdout), ['add_note', 'list_notes', 'whoami']);

  const granted = as.issued.slice(issuedBefore);
  assert.deepEqual(granted.map((g) => g.grant), ['authorization_code']);
  assert.equal(granted[0].resource, resource);

  const mode = (await stat(firstStore)).mode & 0o777;
  assert.equal(mode.toString(8), '600', 'the store is readable by its owner only');
  const { key, tokens } = await storedSet(firstStore);
  assert.deepEqual(JSON.parse(key), ['authorization_code', resource, 'default']);
  assert.equal(tokens.sign_in.issuer, as.issuer);
  assert.equal(tokens.sign_in.registration, 'dynamic');
  assert.equal(tokens.sign_in.token_endpoint_auth_method, 'none', 'a public client: no secret kept');
  assert.equal(tokens.sign_in.resource, resource);
  assert.ok(tokens.sign_in.client_id, 'the registration is kept');
  assert.ok(typeof tokens.access_token === 'string' && typeof tokens.refresh_token === 'string', 'both tokens kept');
  const claims = decodeJwt(tokens.access_token);
  assert.equal(claims.aud, resource);
  assert.equal(claims.iss, as.issuer);
  assert.equal(claims.client_id, tokens.sign_in.client_id);
  assert.equal(claims.scope, 'notes:read');
  for (const secret of [tokens.access_token, tokens.refresh_token]) {
    assert.ok(!out.stdout.includes(secret) && !out.stderr.includes(secret), 'no token is printed');
  }
});

test('a restart uses the stored token without a browser; once it has expired, the stored refresh token (rotated)', { timeout: 90_000 }, async () => {
  assert.ok(firstStore, 'needs the first sign-in');
  const before = await storedSet(firstStore);
  let mark = as.requests.length;
  let out = await toolsCall(firstStore).done;
  assert.equal(out.code, 0, out.stderr);
  assert.doesNotMatch(out.stderr, SIGN_IN_URL);
  assert.deepEqual(toolNames(out.stdout), ['add_note', 'list_notes', 'whoami']);
  assert.deepEqual(
    since(mark).filter((r) => r.method === 'POST' || r.path === '/auth'),
    [],
    'the stored access token was used as it is: no registration, no token request, no browser',
  );
  assert.equal((await storedSet(firstStore)).version, before.version);

  const waitMs = before.tokens.expires_at_ms + 500 - Date.now();
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, waitMs)));
  mark = as.requests.length;
  const issuedBefore = as.issued.length;
  out = await toolsCall(firstStore).done;
  assert.equal(out.code, 0, out.stderr);
  assert.doesNotMatch(out.stderr, SIGN_IN_URL);
  assert.deepEqual(toolNames(out.stdout), ['add_note', 'list_notes', 'whoami']);
  assert.deepEqual(authorizationRequests(mark), [], 'no browser, no authorization request');
  assert.deepEqual(
    since(mark).filter((r) => r.method === 'POST').map((r) => r.path),
    ['/token'],
    'one token request, no registration',
  );
  const granted = as.issued.slice(issuedBefore);
  assert.deepEqual(granted.map((g) => g.grant), ['refresh_token']);
  assert.equal(granted[0].resource, resource);

  const after = await storedSet(firstStore);
  assert.ok(after.version > before.version);
  assert.notEqual(digest(after.tokens.refresh_token), digest(before.tokens.refresh_token), 'the refresh token was rotated');
  assert.notEqual(digest(after.tokens.access_token), digest(before.tokens.access_token));
  assert.equal(after.tokens.sign_in.client_id, before.tokens.sign_in.client_id, 'the same registration');
  assert.equal(decodeJwt(after.tokens.access_token).aud, resource);
});

test('--sign-out forgets the sign-in: the next run needs the browser again', { timeout: 60_000 }, async () => {
  assert.ok(firstStore, 'needs the first sign-in');
  const out = await login(['--store', firstStore, '--sign-out', resource]).done;
  assert.equal(out.code, 0, out.stderr);
  // The entry stays, emptied (its version keeps growing, so other processes see the change).
  const left = (await storedSets(firstStore)).map((x) => Object.keys(x.tokens));
  assert.deepEqual(left, [[]], 'no token and no registration left in the store');
  const mark = as.requests.length;
  const run = toolsCall(firstStore);
  const url = new URL(await run.url());
  assert.equal(url.origin, as.issuer);
  assert.equal(since(mark).filter((r) => r.method === 'POST' && r.path === '/token').length, 0);
  run.child.kill('SIGTERM');
  await run.done;
});

test('a redirect from another issuer (RFC 9207 iss) is refused: typed error, the code never redeemed', { timeout: 90_000 }, async () => {
  const mark = as.requests.length;
  const run = toolsCall(path.join(dir, 'iss.json'));
  const signInUrl = await run.url();
  const forged = 'http://127.0.0.1:9/another-issuer';
  const { context } = await signInWithBrowser(signInUrl, (url) => withParam(url, 'iss', forged));
  await context.close();
  const out = await run.done;
  assert.equal(out.code, 1, out.stderr);
  assert.match(out.stderr, new RegExp(`login: .*sign-in failed: the redirect was issued by "${forged}", not by "${as.issuer}"`));
  assert.deepEqual(tokenRequests(mark), [], 'no token request: the code was not redeemed');
  assert.deepEqual(await storedSets(path.join(dir, 'iss.json')), [], 'nothing stored');
});

test("a redirect with another sign-in's state is answered 400 and the sign-in goes on waiting", { timeout: 90_000 }, async () => {
  const mark = as.requests.length;
  const run = toolsCall(path.join(dir, 'state.json'));
  const signInUrl = await run.url();
  let genuine;
  const { context, answers, title } = await signInWithBrowser(signInUrl, (url) => {
    genuine ??= url;
    return withParam(url, 'state', 'forged-state');
  });
  try {
    assert.deepEqual(answers.map((a) => a.status), [400]);
    assert.equal(title, 'Not this sign-in');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.ok(run.running(), `the sign-in is still waiting:\n${run.stderr()}`);
    assert.deepEqual(tokenRequests(mark), [], 'no token request for a redirect of another sign-in');

    // The genuine redirect, still unused, then ends it (in another tab: this one rewrites).
    const tab = await context.newPage();
    await tab.goto(genuine, { timeout: 15_000 });
    assert.equal(await tab.title(), 'Sign-in received');
  } finally {
    await context.close();
  }
  const out = await run.done;
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual(toolNames(out.stdout), ['add_note', 'list_notes', 'whoami']);
  assert.equal(tokenRequests(mark).length, 1, 'one code redeemed: the genuine one');
});

test("a replayed redirect (another run's code and state) is answered 400 and never redeemed", { timeout: 90_000 }, async () => {
  assert.ok(firstCallback, 'needs the first sign-in');
  const mark = as.requests.length;
  const run = toolsCall(path.join(dir, 'replay.json'));
  const signInUrl = new URL(await run.url());
  const replayed = new URL(firstCallback);
  replayed.host = new URL(signInUrl.searchParams.get('redirect_uri')).host;
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const res = await page.goto(replayed.href, { timeout: 15_000 });
    assert.equal(res.status(), 400);
    assert.equal(await page.title(), 'Not this sign-in');
  } finally {
    await context.close();
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.ok(run.running(), `the sign-in is still waiting:\n${run.stderr()}`);
  assert.deepEqual(tokenRequests(mark), [], 'the replayed code was not sent to the provider');
  run.child.kill('SIGTERM');
  await run.done;
});

/**
 * A resource like the MCP server (a 401 naming its RFC 9728 metadata) whose metadata names
 * `authorizationServer`; `asMetadata`, if given, is served as its own RFC 8414 document.
 */
async function fakeResource(authorizationServer, asMetadata) {
  const server = createServer((req, res) => {
    const base = `http://${req.headers.host}`;
    const { pathname } = new URL(req.url, base);
    if (pathname === '/.well-known/oauth-protected-resource/mcp') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        resource: `${base}/mcp`,
        authorization_servers: [authorizationServer(base)],
        scopes_supported: ['notes:read'],
      }));
    } else if (pathname === '/.well-known/oauth-authorization-server' && asMetadata) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(asMetadata));
    } else if (pathname === '/mcp') {
      res.writeHead(401, {
        'www-authenticate': `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp", scope="notes:read"`,
      });
      res.end();
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${server.address().port}/mcp`;
}

test('authorization-server metadata for another issuer than the resource names is refused before any authorization request', { timeout: 90_000 }, async () => {
  const real = await (await fetch(`${as.issuer}/.well-known/openid-configuration`)).json();
  const cases = [
    // The provider's issuer with a trailing slash: another string, so another issuer.
    { name: 'trailing slash', resource: await fakeResource(() => `${as.issuer}/`), named: `${as.issuer}/` },
    // The provider's own document, served by the resource as if it were its server's.
    { name: 'copied document', resource: await fakeResource((base) => base, real), named: null },
  ];
  for (const c of cases) {
    const mark = as.requests.length;
    const out = await toolsCall(path.join(dir, `mismatch-${cases.indexOf(c)}.json`), c.resource).done;
    const named = c.named ?? new URL(c.resource).origin;
    assert.equal(out.code, 1, `${c.name}: ${out.stderr}`);
    assert.doesNotMatch(out.stderr, SIGN_IN_URL, `${c.name}: no sign-in URL`);
    assert.match(
      out.stderr,
      new RegExp(`login: .*discovery failed: the authorization-server metadata is for the issuer "${as.issuer}", not "${named.replace(/[/.]/g, '\\$&')}"`),
      c.name,
    );
    assert.deepEqual(authorizationRequests(mark), [], `${c.name}: no authorization request`);
    assert.deepEqual(since(mark).filter((r) => r.method === 'POST'), [], `${c.name}: no registration, no token request`);
  }
});

test('the answer reaches the terminal escaped and bounded', { timeout: 60_000 }, async () => {
  // An API that needs no token: the first request, sent without one, is answered.
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    if (req.url === '/big') res.end('x'.repeat(3 * 1024 * 1024));
    else res.end('\x1b[2J\x1b]0;title\x07red\r\nline two\t\u202egnp.exe\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const base = `http://127.0.0.1:${server.address().port}`;
  const store = path.join(dir, 'plain.json');
  let out = await login(['--store', store, `${base}/`]).done;
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, '\\u{1b}[2J\\u{1b}]0;title\\u{7}red\\u{d}\nline two\t\\u{202e}gnp.exe\n');
  out = await login(['--store', store, `${base}/big`]).done;
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout.length, 1024 * 1024 + 1, '1 MiB shown, then a newline');
  assert.match(out.stderr, /the answer was cut after 1048576 bytes/);
  assert.deepEqual(await storedSets(store), [], 'no sign-in was needed');
});
