//! RFC 7523 client assertions (`private_key_jwt`) as the kit's servers verify them: the
//! [`TestTokenEndpoint`](crate::TestTokenEndpoint)'s own client and the key clients of a
//! [`TestAuthorizationServer`](crate::TestAuthorizationServer) are checked by the same rules.

use jsonwebtoken::{Algorithm, DecodingKey};

/// A client's public key, from its PEM (EC for `ES256`/`ES384`, Ed25519 for `EdDSA`, RSA
/// otherwise). Panics on a PEM that is not one: the test passed the wrong thing.
pub(crate) fn client_public_key(public_pem: &[u8], alg: Algorithm) -> DecodingKey {
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(public_pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(public_pem),
        _ => DecodingKey::from_rsa_pem(public_pem),
    }
    .expect("a public key PEM")
}

/// RFC 7523 §3: the claims of `assertion` when it is signed by `key` with `alg`, its `iss`
/// and `sub` are `client_id`, its `aud` is `issuer` or the token URL `{issuer}/oauth/token`,
/// and its `exp` has not passed (jsonwebtoken's default leeway of 60 s); `None` otherwise.
pub(crate) fn verified_assertion(
    assertion: &str,
    key: &DecodingKey,
    alg: Algorithm,
    client_id: &str,
    issuer: &str,
) -> Option<serde_json::Value> {
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_audience(&[issuer.to_owned(), format!("{issuer}/oauth/token")]);
    v.set_issuer(&[client_id]);
    v.sub = Some(client_id.to_owned());
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    jsonwebtoken::decode::<serde_json::Value>(assertion, key, &v)
        .ok()
        .map(|data| data.claims)
}
