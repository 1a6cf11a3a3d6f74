// The official MCP TypeScript SDK client against the Rust MCP server of examples/mcp_server,
// with oidc-provider (OpenID Certified) as the authorization server: 401 → RFC 9728 metadata
// → OpenID discovery → client_credentials with the RFC 8707 resource → tools; then a tool
// that needs more scope → 403 insufficient_scope → the SDK's step-up path.
//
// SDK 1.32.2's client_credentials providers ask for their configured scope on every token
// request (fetchToken reads `clientMetadata.scope`, never the challenge's), so its step-up
// gets the same scope again and stops after one try; that bounded stop is what is checked
// here. refresh-layer's step-up asks for the challenge's scopes (tests/mcp_server.rs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { chromium } from 'playwright-core';
import { startExample, startPages, CHROMIUM_ARGS } from './support.mjs';
import { startOidcProvider } from './oidc-provider.mjs';

const CLIENT = { client_id: 'notes-agent', client_secret: 'notes-agent-secret-0123456789abcdef' };
const OTHER_RESOURCE = 'http://127.0.0.1:9/other-mcp';
const PAGE = 'http://app.test';

let as;
let mcp;
let resource;
let pages;

before(async () => {
  // The resource URI is only known once the server listens, and the provider must know it:
  // the provider's resource servers are looked up when a token is asked for.
  as = await startOidcProvider({
    clients: [
      {
        ...CLIENT,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'notes:read notes:write',
      },
    ],
    resources: (indicator) =>
      indicator === resource || indicator === OTHER_RESOURCE ? 'notes:read notes:write' : undefined,
  });
  pages = await startPages();
  mcp = await startExample('mcp_server', [
    '--listen', '127.0.0.1:0', '--issuer', as.issuer,
    '--allow-origin', PAGE, '--allow-origin', `http://localhost:${pages.port}`,
  ]);
  resource = (await mcp.next()).replace(/^resource /, '');
  assert.equal(resource, `${mcp.url}/mcp`);
});

after(async () => {
  await mcp?.stop();
  await as?.stop();
  await pages?.stop();
});

/** A token straight from the provider, for `res`. */
async function tokenFor(res, scope) {
  const r = await fetch(`${as.issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from(`${CLIENT.client_id}:${CLIENT.client_secret}`).toString('base64'),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource: res }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).access_token;
}

async function connect(scope) {
  const provider = new ClientCredentialsProvider({
    clientId: CLIENT.client_id,
    clientSecret: CLIENT.client_secret,
    expectedIssuer: as.issuer,
    scope,
  });
  const client = new Client({ name: 'portcullis-interop', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider }));
  return { client, provider };
}

test('TS SDK client: 401 → discovery → client_credentials for this resource → tools', async () => {
  const before = as.issued.length;
  const { client, provider } = await connect('notes:read');
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(tools, ['add_note', 'list_notes', 'whoami']);
  const who = await client.callTool({ name: 'whoami', arguments: {} });
  assert.notEqual(who.isError, true);
  assert.equal(who.structuredContent.subject, CLIENT.client_id);
  assert.equal(who.structuredContent.issuer, as.issuer);
  assert.deepEqual(who.structuredContent.scopes, ['notes:read']);
  assert.equal(who.structuredContent.token_visible_to_tools, false);

  const granted = as.issued.slice(before);
  assert.equal(granted.length, 1, JSON.stringify(granted));
  assert.equal(granted[0].grant, 'client_credentials');
  assert.equal(granted[0].scope, 'notes:read');
  assert.equal(granted[0].resource, resource, 'RFC 8707: the token is asked for this resource');
  const token = provider.tokens().access_token;
  assert.equal(decodeProtectedHeader(token).typ, 'at+jwt');
  assert.equal(decodeJwt(token).aud, resource);
  await client.close();
});

test("TS SDK client: a tool needing more scope → 403 insufficient_scope → the SDK's step-up tries once, then stops", async () => {
  const { client } = await connect('notes:read');
  const before = as.issued.length;
  await assert.rejects(
    client.callTool({ name: 'add_note', arguments: { text: 'not allowed' } }),
    (e) => e.code === 403 && /after trying upscoping/.test(e.message),
  );
  const tried = as.issued.slice(before);
  assert.equal(tried.length, 1, `one step-up token request, no loop: ${JSON.stringify(tried)}`);
  assert.equal(tried[0].resource, resource);
  // Nothing was written by the refused call.
  const listed = await client.callTool({ name: 'list_notes', arguments: {} });
  assert.deepEqual(listed.structuredContent.notes, []);
  await client.close();
});

test('TS SDK client with the write scope: add_note runs for its subject', async () => {
  const { client, provider } = await connect('notes:read notes:write');
  const added = await client.callTool({ name: 'add_note', arguments: { text: 'from the TypeScript SDK' } });
  assert.notEqual(added.isError, true, JSON.stringify(added));
  assert.equal(added.structuredContent.count, 1);
  assert.equal(decodeJwt(provider.tokens().access_token).scope, 'notes:read notes:write');
  const listed = await client.callTool({ name: 'list_notes', arguments: {} });
  assert.deepEqual(listed.structuredContent.notes, ['from the TypeScript SDK']);
  await client.close();
});

test('the server over plain fetch: metadata, challenges, audience binding, CORS', async () => {
  const meta = await (await fetch(`${mcp.url}/.well-known/oauth-protected-resource/mcp`)).json();
  assert.equal(meta.resource, resource);
  assert.deepEqual(meta.authorization_servers, [as.issuer]);
  assert.deepEqual(meta.scopes_supported, ['notes:read', 'notes:write']);
  assert.deepEqual(meta.bearer_methods_supported, ['header']);
  const root = await (await fetch(`${mcp.url}/.well-known/oauth-protected-resource`)).json();
  assert.deepEqual(root, meta);

  const call = (token, name) =>
    fetch(resource, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        origin: PAGE,
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: { text: 'x' } } }),
    });
  const missing = await call(undefined, 'whoami');
  assert.equal(missing.status, 401);
  assert.equal(
    missing.headers.get('www-authenticate'),
    `Bearer realm="mcp", resource_metadata="${mcp.url}/.well-known/oauth-protected-resource/mcp", scope="notes:read"`,
  );
  assert.equal(missing.headers.get('access-control-allow-origin'), PAGE);
  assert.match(missing.headers.get('access-control-expose-headers'), /www-authenticate/i);

  // A token the same provider issued for another resource: refused.
  const other = await call(await tokenFor(OTHER_RESOURCE, 'notes:read notes:write'), 'whoami');
  assert.equal(other.status, 401);
  assert.equal((await other.json()).code, 'invalid_audience');

  const readOnly = await call(await tokenFor(resource, 'notes:read'), 'add_note');
  assert.equal(readOnly.status, 403);
  assert.equal((await readOnly.json()).code, 'insufficient_scope');
  assert.match(readOnly.headers.get('www-authenticate'), /error="insufficient_scope"/);
  assert.match(readOnly.headers.get('www-authenticate'), /scope="notes:read notes:write"/);
  assert.match(readOnly.headers.get('www-authenticate'), /resource_metadata="/);

  const preflight = await fetch(resource, {
    method: 'OPTIONS',
    headers: {
      origin: PAGE,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type, mcp-protocol-version',
    },
  });
  assert.ok(preflight.ok, `preflight: ${preflight.status}`);
  assert.equal(preflight.headers.get('access-control-allow-origin'), PAGE);
  assert.equal(preflight.headers.get('www-authenticate'), null);
});

test('headless Chromium: a page of another origin reads the 401 challenge, then calls a tool', async () => {
  const token = await tokenFor(resource, 'notes:read');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
  try {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`http://localhost:${pages.port}/`);
    // `content-type: application/json` and `authorization` make both calls preflighted: the
    // preflight goes without credentials and must still be answered.
    const seen = await page.evaluate(
      async ({ resource, token }) => {
        const post = (auth) =>
          fetch(resource, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              accept: 'application/json, text/event-stream',
              ...(auth ? { authorization: `Bearer ${auth}` } : {}),
            },
            body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
          });
        const missing = await post();
        const ok = await post(token);
        return {
          status: missing.status,
          challenge: missing.headers.get('www-authenticate'),
          code: (await missing.json()).code,
          okStatus: ok.status,
          subject: (await ok.json()).result.structuredContent.subject,
        };
      },
      { resource, token },
    );
    assert.equal(seen.status, 401);
    assert.equal(seen.code, 'missing_credentials');
    assert.match(seen.challenge ?? '', /resource_metadata=".*\/\.well-known\/oauth-protected-resource\/mcp"/);
    assert.equal(seen.okStatus, 200);
    assert.equal(seen.subject, CLIENT.client_id);
  } finally {
    await browser.close();
  }
});
