// examples/cookie_session.rs end to end in headless Chromium: its single-page app on
// http://localhost:<page port> signs in to its notes API on http://localhost:<api port> (two
// origins of one site) with a cookie session, reads and writes notes with the CSRF token the
// sign-in returned, and signs out. Every answer the page gets, failures included, must be
// readable by it (CORS outside the auth layer); a copied cookie must stop working at sign-out;
// a page on a third origin must get no CORS allowance, and its forms cannot sign anyone in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startExample, CHROMIUM_ARGS } from './support.mjs';

let example, browser, context, page;
let apiUrl, pageUrl, apiLoopback, pagePort;

before(async () => {
  example = await startExample('cookie_session', ['--api-port', '0', '--page-port', '0']);
  // `listening on http://localhost:A (api), page http://localhost:P`
  const m = /^listening on (http:\/\/localhost:(\d+)) \(api\), page (http:\/\/localhost:(\d+))$/.exec(example.line);
  assert.ok(m, `readiness line: ${example.line}`);
  [, apiUrl, , pageUrl, pagePort] = m;
  // Node's own requests go to the address the example is bound to (localhost may be ::1 here).
  apiLoopback = `http://127.0.0.1:${m[2]}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
  // One context for the whole path: its cookie jar is the user's browser.
  context = await browser.newContext();
  page = await context.newPage();
  await page.goto(`${pageUrl}/`);
  await page.waitForFunction(() => typeof window.notes === 'object', null, { timeout: 10_000 });
});

after(async () => {
  await browser?.close();
  await example?.stop();
});

const SESSION_COOKIE = '__Host-sid';

/** The session cookie as `ctx` holds it for the API (Node can read it; the page cannot). */
async function sessionCookie(ctx = context) {
  return (await ctx.cookies(apiUrl)).find((c) => c.name === SESSION_COOKIE);
}

test('sign-in: a wrong password is a 401 the page reads; the right one sets an HttpOnly cookie and gives the page its CSRF token', { timeout: 60_000 }, async () => {
  const wrong = await page.evaluate(() => window.notes.signIn('demo', 'not-the-password'));
  assert.equal(wrong.status, 401);
  assert.equal(await sessionCookie(), undefined);

  const r = await page.evaluate(async () => {
    const signIn = await window.notes.signIn('demo', 'demo-password');
    return { signIn, kept: window.notes.csrfToken(), pageSeesCookie: document.cookie.includes('__Host-sid=') };
  });
  assert.equal(r.signIn.status, 200);
  assert.equal(r.signIn.body.user, 'demo');
  assert.match(r.signIn.body.csrf_token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(r.kept, r.signIn.body.csrf_token, 'the page keeps the token from the sign-in body');
  assert.equal(r.pageSeesCookie, false, 'the session cookie is not readable by page scripts');
  const cookie = await sessionCookie();
  assert.ok(cookie, 'Chromium stored the session cookie set by the other origin');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true, 'Secure, accepted from http://localhost');
  assert.equal(cookie.sameSite, 'Lax');
  assert.equal(cookie.path, '/');
  assert.equal(cookie.domain, 'localhost', 'host-only: a __Host- cookie, accepted from http://localhost');
});

test('Chromium holds __Host- to its rules: a __Host-sid with a Domain, what a sibling subdomain would have to set, is refused', { timeout: 60_000 }, async () => {
  // In a context of its own, from the page's origin (the API's host): the same attributes
  // with a Domain are taken under another name, and refused under the session cookie's.
  const other = await browser.newContext();
  try {
    const p = await other.newPage();
    await p.goto(`${pageUrl}/`);
    await p.evaluate((name) => {
      document.cookie = `${name}=planted; Path=/; Secure; SameSite=Lax; Domain=localhost`;
      document.cookie = 'control=planted; Path=/; Secure; SameSite=Lax; Domain=localhost';
    }, SESSION_COOKIE);
    const names = (await other.cookies(apiUrl)).map((c) => c.name);
    assert.deepEqual(names, ['control']);
  } finally {
    await other.close();
  }
});

test('GET /notes with the cookie only is 200', { timeout: 60_000 }, async () => {
  const r = await page.evaluate(() => window.notes.list());
  assert.deepEqual(r, { status: 200, body: [] });
});

test('POST /notes with the CSRF header is 201, and the note is there', { timeout: 60_000 }, async () => {
  const added = await page.evaluate(() => window.notes.add('buy milk'));
  assert.deepEqual(added, { status: 201, body: { id: 1, text: 'buy milk' } });
  const listed = await page.evaluate(() => window.notes.list());
  assert.deepEqual(listed, { status: 200, body: ['buy milk'] });
});

test('POST /notes without the CSRF header is 403 csrf_failed, readable by the page, and writes nothing', { timeout: 60_000 }, async () => {
  const r = await page.evaluate(() => window.notes.add('forged', { csrf: false }));
  assert.equal(r.status, 403);
  assert.equal(r.body.code, 'csrf_failed');
  const listed = await page.evaluate(() => window.notes.list());
  assert.deepEqual(listed.body, ['buy milk']);
});

test('sign-out: then GET /notes is 401 missing_credentials for the page, and the copied cookie is 401 token_revoked', { timeout: 60_000 }, async () => {
  const copied = (await sessionCookie()).value;
  const replay = () => fetch(`${apiLoopback}/notes`, { headers: { cookie: `${SESSION_COOKIE}=${copied}` } });
  // The copy works from outside the browser while the session lives …
  const before = await replay();
  assert.equal(before.status, 200);
  assert.deepEqual(await before.json(), ['buy milk']);

  const out = await page.evaluate(() => window.notes.signOut());
  assert.equal(out.status, 204);
  assert.equal(await sessionCookie(), undefined, 'the browser dropped the cleared cookie');
  const r = await page.evaluate(() => window.notes.list());
  assert.equal(r.status, 401);
  assert.equal(r.body.code, 'missing_credentials');

  // … and not after: the session's jti is revoked, not only the browser's cookie cleared.
  const after = await replay();
  assert.equal(after.status, 401);
  assert.equal((await after.json()).code, 'token_revoked');
});

test('a page on a third origin gets no CORS allowance', { timeout: 60_000 }, async () => {
  // The same page, served from another origin (127.0.0.1 instead of localhost).
  const third = `http://127.0.0.1:${pagePort}`;
  const other = await browser.newContext();
  try {
    const p = await other.newPage();
    await p.goto(`${third}/`);
    await p.waitForFunction(() => typeof window.notes === 'object', null, { timeout: 10_000 });
    const r = await p.evaluate(async () => {
      try {
        return { read: await window.notes.signIn('demo', 'demo-password') };
      } catch (e) {
        return { error: e.name };
      }
    });
    assert.deepEqual(r, { error: 'TypeError' }, 'the browser blocks the answer');
  } finally {
    await other.close();
  }
  // What the browser was told: no allowance for that origin, neither in the preflight nor in
  // an answer; the page's own origin gets one.
  const preflight = (origin) =>
    fetch(`${apiLoopback}/notes`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-csrf-token' },
    });
  const denied = await preflight(third);
  assert.equal(denied.headers.get('access-control-allow-origin'), null);
  const allowed = await preflight(pageUrl);
  assert.equal(allowed.headers.get('access-control-allow-origin'), pageUrl);
  assert.match(allowed.headers.get('access-control-allow-headers'), /(^|,)x-csrf-token(,|$)/);
  const get = await fetch(`${apiLoopback}/notes`, { headers: { origin: third } });
  assert.equal(get.status, 401);
  assert.equal(get.headers.get('access-control-allow-origin'), null);
});

test('login CSRF: a form on a third origin posting the right credentials (text/plain, url-encoded) is 415 and sets no cookie', { timeout: 60_000 }, async () => {
  const third = `http://127.0.0.1:${pagePort}`;
  const other = await browser.newContext();
  try {
    for (const enctype of ['text/plain', 'application/x-www-form-urlencoded']) {
      const p = await other.newPage();
      await p.goto(`${third}/`);
      const answered = p.waitForResponse(`${apiUrl}/session`);
      await p.evaluate(({ action, enctype }) => {
        const form = Object.assign(document.createElement('form'), { method: 'POST', action, enctype });
        const field = (name, value) => form.append(Object.assign(document.createElement('input'), { name, value }));
        if (enctype === 'text/plain') {
          // The body becomes {"username":"demo","password":"demo-password","x":"="}: valid JSON.
          field('{"username":"demo","password":"demo-password","x":"', '"}');
        } else {
          field('username', 'demo');
          field('password', 'demo-password');
        }
        document.body.append(form);
        form.submit();
      }, { action: `${apiUrl}/session`, enctype });
      const r = await answered;
      // The navigation to the answer is done: whatever it set is in the cookie jar by now.
      await p.waitForURL(`${apiUrl}/session`, { waitUntil: 'load' });
      assert.equal(r.request().headers()['content-type'].split(';')[0], enctype);
      if (enctype === 'text/plain') {
        assert.deepEqual(JSON.parse(r.request().postData()), { username: 'demo', password: 'demo-password', x: '=' });
      }
      assert.equal(r.status(), 415, enctype);
      assert.equal(await r.headerValue('set-cookie'), null, enctype);
      assert.equal(await sessionCookie(other), undefined, `no session cookie after a ${enctype} form`);
    }
  } finally {
    await other.close();
  }
});
