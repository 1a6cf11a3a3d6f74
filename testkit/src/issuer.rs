//! The in-process identity provider: fresh signing keys of every JWS family, token minting,
//! verification keys and the JWKS.

use std::time::{SystemTime, UNIX_EPOCH};

use auth_layer::jwt::JwtKey;
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
use aws_lc_rs::signature::KeyPair;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct SigningKey {
    kid: &'static str,
    algorithms: &'static [Algorithm],
    encoding: EncodingKey,
    jwk: Option<Jwk>,
    /// The public key as an X.509 SubjectPublicKeyInfo (none for the HMAC secret).
    public_der: Option<Vec<u8>>,
}

impl SigningKey {
    /// A key whose public half is in the JWKS, advertised for its first algorithm.
    fn published(
        kid: &'static str,
        algorithms: &'static [Algorithm],
        encoding: EncodingKey,
        public_der: Vec<u8>,
    ) -> Self {
        SigningKey {
            kid,
            algorithms,
            jwk: Some(jwk(&encoding, algorithms[0], kid)),
            encoding,
            public_der: Some(public_der),
        }
    }
}

/// A token issuer with one key per family: `hs` (HMAC), `rsa` (RS*/PS*), `p256`, `p384`, `ed`.
pub struct TestIssuer {
    issuer: String,
    hmac_secret: Vec<u8>,
    keys: Vec<SigningKey>,
}

/// Names the issuer only: its keys are secrets even in tests.
impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Every JWS algorithm the issuer can sign with (each has a key). A slice, so that its type
/// does not change when an algorithm is added.
pub const ALGORITHMS: &[Algorithm] = &[
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
// The HMAC and RSA families are runs of `ALGORITHMS`, in its order.
const HMAC_ALGS: &[Algorithm] = ALGORITHMS.split_at(3).0;
const RSA_ALGS: &[Algorithm] = ALGORITHMS.split_at(3).1.split_at(6).0;

fn jwk(encoding: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(encoding, alg).expect("a freshly generated key has a JWK");
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

impl TestIssuer {
    /// Generate fresh keys (an RSA-2048 key takes a moment).
    pub fn new(issuer: impl Into<String>) -> Self {
        // 256 random bits as hex text: peers that take the secret as a string can share it.
        let hmac_secret = random_hex(32).into_bytes();
        let rsa = PrivateDecryptingKey::generate(KeySize::Rsa2048).expect("RSA key generation");
        let rsa_der = rsa.as_der().expect("RSA key encodes").as_ref().to_vec();
        let p256 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key");
        let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).expect("P-384 key");
        let ed = Ed25519KeyPair::generate().expect("Ed25519 key");

        let rsa_enc =
            EncodingKey::from_rsa_pem(pkcs8_pem(&rsa_der).as_bytes()).expect("PKCS#8 RSA key");
        let p256_enc = EncodingKey::from_ec_der(p256.to_pkcs8v1().expect("pkcs8").as_ref());
        let p384_enc = EncodingKey::from_ec_der(p384.to_pkcs8v1().expect("pkcs8").as_ref());
        let ed_enc = EncodingKey::from_ed_der(ed.to_pkcs8v1().expect("pkcs8").as_ref());
        let keys = vec![
            SigningKey {
                kid: "hs",
                algorithms: HMAC_ALGS,
                encoding: EncodingKey::from_secret(&hmac_secret),
                jwk: None,
                public_der: None,
            },
            SigningKey::published("rsa", RSA_ALGS, rsa_enc, spki(&rsa.public_key())),
            SigningKey::published(
                "p256",
                &[Algorithm::ES256],
                p256_enc,
                spki(p256.public_key()),
            ),
            SigningKey::published(
                "p384",
                &[Algorithm::ES384],
                p384_enc,
                spki(p384.public_key()),
            ),
            SigningKey::published("ed", &[Algorithm::EdDSA], ed_enc, spki(ed.public_key())),
        ];
        TestIssuer {
            issuer: issuer.into(),
            hmac_secret,
            keys,
        }
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The HMAC secret, 64 ASCII characters (for tests that forge tokens on purpose, and for
    /// verifiers that take the secret as text).
    pub fn hmac_secret(&self) -> &[u8] {
        &self.hmac_secret
    }

    fn key_for(&self, alg: Algorithm) -> &SigningKey {
        self.keys
            .iter()
            .find(|k| k.algorithms.contains(&alg))
            .expect("every JWS algorithm has a key")
    }

    /// The `kid` of the key that signs `alg`.
    pub fn kid(&self, alg: Algorithm) -> &'static str {
        self.key_for(alg).kid
    }

    /// Sign `claims` with `alg`, with the key's `kid` and `typ: JWT`.
    pub fn mint(&self, alg: Algorithm, claims: Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(self.kid(alg).to_owned());
        self.mint_with_header(header, claims)
    }

    /// Sign `claims` under a header of your own (its `alg` picks the key).
    pub fn mint_with_header(&self, header: Header, claims: Value) -> String {
        let key = self.key_for(header.alg);
        jsonwebtoken::encode(&header, &claims, &key.encoding).expect("test tokens encode")
    }

    /// Standard access-token claims: `iss`, `sub`, `aud`, `iat`, `exp = now + ttl`, `scope`.
    pub fn access_claims(&self, sub: &str, aud: &str, scope: &str, ttl_secs: i64) -> Value {
        let now = now() as i64;
        serde_json::json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": aud,
            "iat": now,
            "exp": now + ttl_secs,
            "scope": scope,
            "jti": format!("{sub}-{now}-{ttl_secs}-{}", rand_u32()),
        })
    }

    /// Verification keys for every family, to give to a `JwtAuthenticator`.
    pub fn verification_keys(&self) -> Vec<JwtKey> {
        self.keys
            .iter()
            .map(|k| match &k.jwk {
                // Built from the DecodingKey so the RSA key may verify all six RS/PS algorithms.
                Some(jwk) => JwtKey::new(
                    jsonwebtoken::DecodingKey::from_jwk(jwk).expect("generated JWKs are valid"),
                    k.algorithms,
                )
                .expect("family matches")
                .with_kid(k.kid),
                None => JwtKey::hmac(&self.hmac_secret, k.algorithms)
                    .expect("64-byte secret")
                    .with_kid(k.kid),
            })
            .collect()
    }

    /// The verification key for `alg` alone, with its `kid`: what a server that accepts one
    /// algorithm configures (`JwtAuthenticator::builder().key(issuer.verification_key(RS256))`).
    pub fn verification_key(&self, alg: Algorithm) -> JwtKey {
        let k = self.key_for(alg);
        let key = match &k.jwk {
            Some(jwk) => JwtKey::new(
                jsonwebtoken::DecodingKey::from_jwk(jwk).expect("generated JWKs are valid"),
                &[alg],
            ),
            None => JwtKey::hmac(&self.hmac_secret, &[alg]),
        };
        key.expect("the key's own algorithm").with_kid(k.kid)
    }

    /// The public key that verifies `alg` as PEM (`-----BEGIN PUBLIC KEY-----`, X.509
    /// SubjectPublicKeyInfo), as a server's configuration file would hold it; `None` for the
    /// HMAC algorithms, whose secret is not public.
    ///
    /// ```
    /// use portcullis::server::jwt::JwtKey;
    /// use portcullis::server::jsonwebtoken::Algorithm;
    /// let issuer = portcullis::testkit::TestIssuer::new("https://id.test");
    /// let pem = issuer.public_pem(Algorithm::RS256).unwrap();
    /// assert!(JwtKey::rsa_pem(pem.as_bytes(), &[Algorithm::RS256]).is_ok());
    /// assert!(issuer.public_pem(Algorithm::HS256).is_none());
    /// ```
    pub fn public_pem(&self, alg: Algorithm) -> Option<String> {
        let der = self.key_for(alg).public_der.as_ref()?;
        Some(pem("PUBLIC KEY", der))
    }

    /// The public keys as a JWKS (HMAC keys are never published).
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().filter_map(|k| k.jwk.clone()).collect(),
        }
    }
}

/// jsonwebtoken signs RSA with a PKCS#1 key; its PEM reader unwraps PKCS#8 for us.
/// A fresh P-256 key pair as PEM, `(private PKCS#8, public SubjectPublicKeyInfo)`: a client's
/// `private_key_jwt` key, the public half registered at the [`TestTokenEndpoint`](crate::TestTokenEndpoint).
///
/// ```
/// let (private, public) = portcullis::testkit::es256_key_pair();
/// assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
/// assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
/// ```
pub fn es256_key_pair() -> (String, String) {
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key");
    let private = pkcs8_pem(key.to_pkcs8v1().expect("pkcs8").as_ref());
    let public = pem("PUBLIC KEY", &spki(key.public_key()));
    (private, public)
}

fn pkcs8_pem(der: &[u8]) -> String {
    pem("PRIVATE KEY", der)
}

/// RFC 7468 text encoding of `der` under `label`.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// The X.509 SubjectPublicKeyInfo DER of a public key.
fn spki<K: AsDer<PublicKeyX509Der<'static>>>(key: &K) -> Vec<u8> {
    key.as_der().expect("public keys encode").as_ref().to_vec()
}

/// `bytes` random bytes from the system generator, as lowercase hex (secrets, CSRF tokens).
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut b).expect("system randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    aws_lc_rs::rand::fill(&mut b).expect("system randomness");
    u32::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_runs_of_algorithms_are_the_families() {
        assert_eq!(
            HMAC_ALGS,
            [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
        );
        assert_eq!(RSA_ALGS.len(), 6);
        assert!(
            RSA_ALGS
                .iter()
                .all(|a| a.family() == jsonwebtoken::AlgorithmFamily::Rsa)
        );
    }
}
