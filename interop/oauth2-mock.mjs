// Starts oauth2-mock-server (a token endpoint we did not write) on 127.0.0.1, a free port.
// Prints one JSON line {"issuer", "token_endpoint", "jwks_uri"}, then one line per token
// request: {"grant_type", "refresh_token"}. Exits when stdin closes (the test ended).
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
server.service.on('beforeTokenSigning', (token) => {
  token.payload.aud = 'api';
  token.payload.scope = token.payload.scope ?? 'read';
});
server.service.on('beforeResponse', (_response, req) => {
  const body = req.body ?? {};
  process.stdout.write(
    JSON.stringify({ grant_type: body.grant_type, refresh_token: body.refresh_token ?? null }) + '\n',
  );
});
await server.start(0, '127.0.0.1');
// Loopback by address: `localhost` may resolve to ::1 first, where nothing listens.
server.issuer.url = `http://127.0.0.1:${server.address().port}`;
const issuer = server.issuer.url;
process.stdout.write(
  JSON.stringify({ issuer, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` }) + '\n',
);

const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
// Bounded: never outlive a stuck test.
setTimeout(stop, 300_000).unref();
