// Starts oauth2-mock-server (a token endpoint and key set we did not write) on 127.0.0.1, a
// free port. Writes JSON lines to stdout:
//   {"event":"started","issuer","token_endpoint","jwks_uri"}   first, once listening
//   {"event":"token_request","grant_type","refresh_token"}     per token request
// and obeys lines on stdin:
//   rotate        add a new RS256 key to the key set -> {"event":"rotated","kid"}
//   mint KID      a 10-minute access token signed by KID -> {"event":"minted","token"}
//   stop          stop listening (keys stay, so tokens can still be minted) -> {"event":"stopped"}
// Exits when stdin closes (the test ended).
import { OAuth2Server } from 'oauth2-mock-server';
import { createInterface } from 'node:readline';

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const server = new OAuth2Server();
const first = await server.issuer.keys.generate('RS256');
server.service.on('beforeTokenSigning', (token) => {
  token.payload.aud = 'api';
  token.payload.scope = token.payload.scope ?? 'read';
});
server.service.on('beforeResponse', (_response, req) => {
  const body = req.body ?? {};
  out({ event: 'token_request', grant_type: body.grant_type, refresh_token: body.refresh_token ?? null });
});
await server.start(0, '127.0.0.1');
// Loopback by address: `localhost` may resolve to ::1 first, where nothing listens.
server.issuer.url = `http://127.0.0.1:${server.address().port}`;
const issuer = server.issuer.url;
out({ event: 'started', issuer, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, kid: first.kid });

let listening = true;
const commands = createInterface({ input: process.stdin });
commands.on('line', async (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'rotate') {
    const key = await server.issuer.keys.generate('RS256');
    out({ event: 'rotated', kid: key.kid });
  } else if (cmd === 'mint') {
    const token = await server.issuer.buildToken({
      kid: arg,
      expiresIn: 600,
      scopesOrTransform: (_header, payload) => {
        payload.aud = 'api';
        payload.sub = 'mock-user';
      },
    });
    out({ event: 'minted', token });
  } else if (cmd === 'stop') {
    if (listening) await server.stop();
    listening = false;
    out({ event: 'stopped' });
  }
});

const exit = async () => {
  if (listening) await server.stop().catch(() => {});
  process.exit(0);
};
commands.on('close', exit);
process.on('SIGTERM', exit);
// Bounded: never outlive a stuck test.
setTimeout(exit, 300_000).unref();
