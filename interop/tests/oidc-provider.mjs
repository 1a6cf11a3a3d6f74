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
 */
export async function startOidcProvider({ clients, resources, onIssued }) {
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
    scopes: ['openid', ...new Set(clients.flatMap((c) => (c.scope ?? '').split(' ').filter(Boolean)))],
    cookies: { keys: ['interop-cookie-key-not-a-secret'] },
    features: {
      devInteractions: { enabled: false },
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
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  });
  provider.on('grant.success', (ctx) => {
    const { grant_type: grant, scope, resource } = ctx.oidc.params;
    issued.push({ grant, scope, resource });
    onIssued?.({ grant, scope, resource, client_auth: ctx.oidc.client?.tokenEndpointAuthMethod });
  });
  const callback = provider.callback();
  server.on('request', callback);
  return {
    issuer,
    issued,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}
