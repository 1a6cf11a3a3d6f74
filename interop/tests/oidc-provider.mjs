// A real, OpenID Certified authorization server for the interop tests: `oidc-provider` (npm),
// on a loopback port, with the client_credentials grant and RFC 8707 resource indicators
// issuing RFC 9068 JWT access tokens (`typ: at+jwt`) whose `aud` is the resource asked for.
import { createServer } from 'node:http';
import { generateKeyPair, exportJWK } from 'jose';
import Provider, { errors } from 'oidc-provider';

/**
 * Start the provider. `resources(indicator)` returns the scopes a resource server accepts,
 * or undefined for a resource it does not know (refused with `invalid_target`);
 * `onIssued({grant, scope, resource, client_auth})` is told of every grant.
 *
 * `people: true` adds a person's sign-in: the built-in login and consent pages
 * (devInteractions: any login and password), open dynamic registration (RFC 7591), PKCE
 * required of every client, `offline_access` listed, and a refresh token (rotated for public
 * clients, the provider's default) with every code grant of a client allowed the
 * `refresh_token` grant. `accessTokenTTL` (seconds) is the resource servers' token lifetime.
 *
 * The answer's `requests` lists every request the provider received (`{method, path}`, no
 * query, no body), and `provider` is the oidc-provider instance (for its events).
 */
export async function startOidcProvider({ clients = [], resources, onIssued, people = false, accessTokenTTL = 300 }) {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const keys = [];
  for (const [alg, options] of [['ES256', {}], ['RS256', { modulusLength: 2048 }]]) {
    const { privateKey } = await generateKeyPair(alg, { extractable: true, ...options });
    keys.push({ ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `${alg.toLowerCase()}-1` });
  }
  const issued = [];
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys },
    // The provider refuses clients registered for scopes it does not list.
    scopes: [
      'openid',
      ...(people ? ['offline_access'] : []),
      ...new Set(clients.flatMap((c) => (c.scope ?? '').split(' ').filter(Boolean))),
    ],
    cookies: { keys: ['interop-cookie-key-not-a-secret'] },
    features: {
      devInteractions: { enabled: people },
      registration: { enabled: people },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => false,
        getResourceServerInfo: (_ctx, indicator) => {
          const scope = resources(indicator);
          if (scope === undefined) throw new errors.InvalidTarget();
          return {
            scope,
            audience: indicator,
            accessTokenTTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    ...(people
      ? {
          pkce: { required: () => true },
          // The provider's default asks for `offline_access`, which it keeps only with
          // `prompt=consent`: a client that does not send it would get no refresh token.
          issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
        }
      : {}),
  });
  provider.on('grant.success', (ctx) => {
    const { grant_type: grant, scope, resource } = ctx.oidc.params;
    issued.push({ grant, scope, resource });
    onIssued?.({ grant, scope, resource, client_auth: ctx.oidc.client?.tokenEndpointAuthMethod });
  });
  const callback = provider.callback();
  const requests = [];
  server.on('request', (req, res) => {
    requests.push({ method: req.method, path: new URL(req.url, issuer).pathname });
    callback(req, res);
  });
  return {
    issuer,
    issued,
    requests,
    provider,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}
