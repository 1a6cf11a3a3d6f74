// The same failures seen by Node clients (no browser): axios and axios-auth-refresh from npm
// against the Portcullis example server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import axios from 'axios';
import createAuthRefreshInterceptor from 'axios-auth-refresh';
import { startApi, expiredToken, clientToken } from './support.mjs';

let api;
before(async () => {
  api = await startApi([]);
});
after(async () => {
  await api?.stop();
});

async function get(path, token) {
  const r = await axios.get(`${api.url}${path}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    validateStatus: () => true,
  });
  return r;
}

test('node axios: 401 missing_credentials with a Bearer challenge', async () => {
  const r = await get('/api/me');
  assert.equal(r.status, 401);
  assert.equal(r.data.code, 'missing_credentials');
  assert.equal(r.headers['content-type'], 'application/problem+json');
  assert.equal(r.headers['www-authenticate'], 'Bearer realm="demo"');
});

test('node axios: 401 token_expired, 403 insufficient_scope', async () => {
  let r = await get('/api/me', await expiredToken(api.url));
  assert.equal(r.status, 401);
  assert.equal(r.data.code, 'token_expired');
  r = await get('/api/admin', await clientToken(api.url, 'read'));
  assert.equal(r.status, 403);
  assert.equal(r.data.code, 'insufficient_scope');
  assert.deepEqual(r.data.required_scopes, ['admin']);
});

test('node axios-auth-refresh: one refresh, then success; 403 is not refreshed', async () => {
  const client = axios.create({ baseURL: api.url });
  let token = await expiredToken(api.url);
  let refreshes = 0;
  client.interceptors.request.use((config) => {
    config.headers.Authorization = `Bearer ${token}`;
    return config;
  });
  createAuthRefreshInterceptor(
    client,
    async (failed) => {
      refreshes += 1;
      token = await clientToken(api.url, 'read');
      failed.response.config.headers.Authorization = `Bearer ${token}`;
    },
    { statusCodes: [401], deduplicateRefresh: false },
  );
  assert.equal((await client.get('/api/me')).status, 200);
  assert.equal(refreshes, 1);
  await assert.rejects(client.get('/api/admin'), (e) => e.response.status === 403);
  assert.equal(refreshes, 1);
});
