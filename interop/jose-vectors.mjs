// Signs one token per JWS algorithm with the `jose` npm package and prints the tokens with
// their public keys as JSON. The Rust suite `tests/jose_interop.rs` verifies them through the
// auth layer over real HTTP: proof that tokens from outside Rust verify.
//
//   node jose-vectors.mjs > fixtures/jose-vectors.json    (the committed copy)
//   PORTCULLIS_JOSE_VECTORS=<fresh file> cargo test --test jose_interop   (what .ci/run does)
import { SignJWT, exportJWK, generateKeyPair, generateSecret } from 'jose';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const joseVersion = require('jose/package.json').version;

const issuer = 'https://jose.test';
const audience = 'api';
// 2100-01-01: the committed vectors must stay valid; freshly generated ones use the same.
const exp = 4102444800;

const algs = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'EdDSA',
];

const vectors = [];
for (const alg of algs) {
  const kid = `jose-${alg.toLowerCase()}`;
  let signingKey;
  const vector = { alg, kid };
  if (alg.startsWith('HS')) {
    signingKey = await generateSecret(alg, { extractable: true });
    vector.secret = (await exportJWK(signingKey)).k;
  } else {
    const opts = alg === 'EdDSA' ? { crv: 'Ed25519' } : {};
    const { publicKey, privateKey } = await generateKeyPair(alg, opts);
    signingKey = privateKey;
    vector.jwk = { ...(await exportJWK(publicKey)), alg, kid, use: 'sig' };
  }
  vector.token = await new SignJWT({ scope: 'read write' })
    .setProtectedHeader({ alg, kid, typ: 'at+jwt' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(`jose-${alg}`)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(signingKey);
  vectors.push(vector);
}

process.stdout.write(
  JSON.stringify({ generated_by: `jose ${joseVersion}`, issuer, audience, vectors }, null, 2) + '\n',
);
