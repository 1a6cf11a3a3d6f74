// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) runs axios and
// axios-auth-refresh from npm on a page of one origin against the Portcullis example server on
// another: failures must be readable by the page (CORS on 401/403), cookie sessions must need
// the CSRF token of the session (a planted cookie and header pair is refused), and a
// disallowed origin must be blocked by the browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startApi, startPages, CHROMIUM_ARGS, expiredToken, clientToken } from './support.mjs';

let api, pages, otherPages, browser;
let pageOrigin, apiSameSite, apiUrl;

before(async () => {
  pages = await startPages();
  otherPages = await startPages();
  pageOrigin = `http://localhost:${pages.port}`;
  api = await startApi(['--allow-origin', pageOrigin]);
  apiUrl = api.url; // http://127.0.0.1:PORT
  // Same site as the page (cookies are first-party), different origin (CORS applies).
  apiSameSite = `http://localhost:${api.port}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
});

after(async () => {
  await browser?.close();
  await api?.stop();
  await pages?.stop();
  await otherPages?.stop();
});

/** Run `fn(arg)` in a fresh page (own cookies) loaded from `origin`. `onResponse` sees what
 * the network stack received (DevTools protocol), including responses CORS hides from scripts;
 * those events can arrive after the script has finished, so `until()` (if given) is awaited,
 * for at most 5 s, before the page is closed. */
async function inPage(origin, fn, arg, onResponse, until) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    if (onResponse) {
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      // Raw network-level information: sent even when CORS hides the response from scripts.
      // `*ExtraInfo` events come from the network service and may arrive before the
      // `requestWillBeSent` that names their URL, so events wait for their URL.
      const urls = new Map();
      const waiting = new Map();
      const report = (id, event) => {
        if (urls.has(id)) onResponse({ url: urls.get(id), ...event });
        else waiting.set(id, [...(waiting.get(id) ?? []), event]);
      };
      cdp.on('Network.requestWillBeSent', (e) => {
        urls.set(e.requestId, e.request.url);
        for (const event of waiting.get(e.requestId) ?? []) onResponse({ url: e.request.url, ...event });
        waiting.delete(e.requestId);
      });
      cdp.on('Network.responseReceivedExtraInfo', (e) => report(e.requestId, { status: e.statusCode }));
      cdp.on('Network.loadingFailed', (e) => report(e.requestId, { failed: e.corsErrorStatus?.corsError ?? e.errorText }));
    }
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => window.ready === true, null, { timeout: 10_000 });
    const result = await page.evaluate(fn, arg);
    for (let waited = 0; until && !until() && waited < 5_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return result;
  } finally {
    await context.close();
  }
}

async function failure({ url, token }) {
  try {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const r = await window.axios.get(url, { withCredentials: true, headers });
    return { status: r.status };
  } catch (e) {
    if (!e.response) return { network: e.code };
    return {
      status: e.response.status,
      data: e.response.data,
      challenge: e.response.headers['www-authenticate'] ?? null,
    };
  }
}

test('a page reads 401 missing_credentials and its WWW-Authenticate across origins', { timeout: 60_000 }, async () => {
  const r = await inPage(pageOrigin, failure, { url: `${apiSameSite}/api/me` });
  assert.equal(r.status, 401);
  assert.equal(r.data.code, 'missing_credentials');
  assert.equal(r.challenge, 'Bearer realm="demo"');
});

test('a page reads 401 token_expired and 403 insufficient_scope with required_scopes', { timeout: 60_000 }, async () => {
  const expired = await expiredToken(apiUrl);
  let r = await inPage(pageOrigin, failure, { url: `${apiSameSite}/api/me`, token: expired });
  assert.equal(r.status, 401);
  assert.equal(r.data.code, 'token_expired');
  assert.match(r.challenge, /error="invalid_token"/);

  const readOnly = await clientToken(apiUrl, 'read');
  r = await inPage(pageOrigin, failure, { url: `${apiSameSite}/api/admin`, token: readOnly });
  assert.equal(r.status, 403);
  assert.equal(r.data.code, 'insufficient_scope');
  assert.deepEqual(r.data.required_scopes, ['admin']);
  assert.match(r.challenge, /error="insufficient_scope", .*scope="admin"/);
});

test('axios-auth-refresh refreshes an expired token once and succeeds; a 403 is not refreshed', { timeout: 60_000 }, async () => {
  const expired = await expiredToken(apiUrl);
  const r = await inPage(
    pageOrigin,
    async ({ api, expired }) => {
      const client = window.axios.create({ baseURL: api });
      let token = expired;
      let refreshes = 0;
      client.interceptors.request.use((config) => {
        config.headers.Authorization = `Bearer ${token}`;
        return config;
      });
      window.createAuthRefreshInterceptor(
        client,
        async (failed) => {
          refreshes += 1;
          const res = await window.axios.post(
            `${api}/oauth/token`,
            new URLSearchParams({ grant_type: 'client_credentials', scope: 'read' }),
            { auth: { username: 'demo', password: 'demo-secret' } },
          );
          token = res.data.access_token;
          failed.response.config.headers.Authorization = `Bearer ${token}`;
        },
        // Its default (true) rejects requests already in flight when the refresh starts
        // (axios-auth-refresh issue #307); false makes them share the one refresh.
        { statusCodes: [401], deduplicateRefresh: false },
      );
      const single = (await client.get('/api/me')).status;
      const afterSingle = refreshes;
      let forbidden;
      try {
        await client.get('/api/admin');
      } catch (e) {
        forbidden = { status: e.response?.status, code: e.response?.data?.code };
      }
      const afterForbidden = refreshes;
      // A burst with an expired token again: with deduplicateRefresh false none is rejected,
      // but a 401 that arrives after its refresh finished starts another one (the peer has
      // no notion of which token a failure was for), so the count is reported, not pinned.
      token = expired;
      const statuses = (await Promise.all([1, 2, 3, 4, 5].map(() => client.get('/api/me')))).map((x) => x.status);
      return { single, afterSingle, forbidden, afterForbidden, statuses, burstRefreshes: refreshes - afterForbidden };
    },
    { api: apiSameSite, expired },
  );
  assert.equal(r.single, 200);
  assert.equal(r.afterSingle, 1, 'one refresh for the expired token');
  assert.deepEqual(r.forbidden, { status: 403, code: 'insufficient_scope' });
  assert.equal(r.afterForbidden, 1, 'a 403 is not refreshed');
  assert.deepEqual(r.statuses, [200, 200, 200, 200, 200]);
  assert.ok(r.burstRefreshes >= 1 && r.burstRefreshes <= 5, `burst refreshes: ${r.burstRefreshes}`);
  console.log(`axios-auth-refresh: ${r.burstRefreshes} refresh(es) for 5 concurrent 401s`);
});

test('cookie session: login, GET with the cookie, POST needs the CSRF token of the session', { timeout: 60_000 }, async () => {
  const r = await inPage(
    pageOrigin,
    async ({ api }) => {
      const opts = { withCredentials: true };
      const login = await window.axios.post(`${api}/session/login`, { username: 'alice', password: 'demo' }, opts);
      const me = await window.axios.get(`${api}/api/me`, opts);
      let withoutCsrf;
      try {
        await window.axios.post(`${api}/api/echo`, 'hello', { ...opts, headers: { 'content-type': 'text/plain' } });
      } catch (e) {
        withoutCsrf = { status: e.response?.status, code: e.response?.data?.code };
      }
      // The CSRF cookie was set by the API host; cookies ignore ports, so this page reads it.
      const csrf = document.cookie.split('; ').find((c) => c.startsWith('csrf_token='))?.split('=')[1];
      const withCsrf = await window.axios.post(`${api}/api/echo`, 'hello', {
        ...opts,
        headers: { 'content-type': 'text/plain', 'x-csrf-token': csrf },
      });
      // A page of any origin of this site (cookies ignore ports) can overwrite the CSRF cookie;
      // a pair of its choosing, sent from this trusted page, is no proof of the session.
      document.cookie = 'csrf_token=planted; path=/';
      const csrfCookies = document.cookie.split('; ').filter((c) => c.startsWith('csrf_token='));
      let planted;
      try {
        await window.axios.post(`${api}/api/echo`, 'hello', {
          ...opts,
          headers: { 'content-type': 'text/plain', 'x-csrf-token': 'planted' },
        });
        planted = { status: 200 };
      } catch (e) {
        planted = { status: e.response?.status, code: e.response?.data?.code };
      }
      return {
        planted,
        csrfCookies,
        loginSub: login.data.sub,
        sessionCookieHidden: !document.cookie.includes('access_token='),
        me: { status: me.status, sub: me.data.sub },
        withoutCsrf,
        csrfMatchesLogin: csrf === login.data.csrf_token,
        withCsrf: { status: withCsrf.status, body: withCsrf.data },
      };
    },
    { api: apiSameSite },
  );
  assert.equal(r.loginSub, 'alice');
  assert.equal(r.sessionCookieHidden, true, 'the session cookie is HttpOnly');
  assert.deepEqual(r.me, { status: 200, sub: 'alice' });
  assert.deepEqual(r.withoutCsrf, { status: 403, code: 'csrf_failed' });
  assert.equal(r.csrfMatchesLogin, true);
  assert.deepEqual(r.withCsrf, { status: 200, body: 'hello' });
  assert.deepEqual(r.csrfCookies, ['csrf_token=planted'], 'the planted cookie replaced the real one');
  assert.deepEqual(r.planted, { status: 403, code: 'csrf_failed' });
});

test('a page on a disallowed origin cannot read the answer, while the server still answers 401', { timeout: 60_000 }, async () => {
  const seen = [];
  const disallowed = `http://127.0.0.1:${otherPages.port}`;
  const r = await inPage(
    disallowed,
    failure,
    { url: `${apiUrl}/api/me` },
    (res) => {
      if (res.url.endsWith('/api/me')) seen.push(res.status ?? res.failed);
    },
    () => seen.length >= 2,
  );
  assert.equal(r.status, undefined, 'the script must not see a status');
  assert.equal(r.network, 'ERR_NETWORK');
  // Both facts, in whichever order the DevTools protocol delivers them.
  assert.deepEqual(seen.map(String).sort(), ['401', 'MissingAllowOriginHeader'], 'the browser received the 401 and blocked it for CORS');
  // The auth answer itself does not depend on the origin; it just carries no CORS headers.
  const direct = await fetch(`${apiUrl}/api/me`, { headers: { origin: disallowed } });
  assert.equal(direct.status, 401);
  assert.equal(direct.headers.get('access-control-allow-origin'), null);
  assert.equal((await direct.json()).code, 'missing_credentials');
});
