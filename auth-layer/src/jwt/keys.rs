//! Verification keys, each with the algorithms it may verify, and where keys come from.
//!
//! The allowlist is fixed per key and must match the key's family, so algorithm confusion is
//! impossible by construction: an RSA key never verifies an HS256 token (the classic attack
//! that uses the RSA public key as an HMAC secret), and `none` is not an algorithm at all.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};

use crate::error::{AuthError, ConfigError, KeyError};

/// The shortest HMAC secret accepted for `alg` (RFC 7518 §3.2: at least the size of the
/// hash output, 32, 48 and 64 bytes for HS256, HS384 and HS512).
fn min_hmac_secret(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// A verification key and the algorithms it may verify.
///
/// # Example
/// ```
/// use portcullis::server::jwt::JwtKey;
/// use portcullis::server::jsonwebtoken::Algorithm;
/// let key = JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256])
///     .unwrap()
///     .with_kid("k1");
/// assert_eq!(key.kid(), Some("k1"));
/// // An HMAC key can never be told to verify RS256.
/// assert!(JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::RS256]).is_err());
/// ```
#[derive(Clone)]
pub struct JwtKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    family: AlgorithmFamily,
    /// HMAC keys set up once: jsonwebtoken would set the key up again for every token.
    hmac: Vec<(Algorithm, hmac::Key)>,
    /// RSA, EC and Ed25519 keys parsed once per allowed algorithm. `jsonwebtoken::crypto`
    /// copies the key and has aws-lc parse it for every token (for RSA that includes the
    /// modulus' Montgomery constants); a parsed key keeps all of it. The algorithm constants
    /// are the ones jsonwebtoken's `aws_lc_rs` backend uses, so the same signatures verify.
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

/// Read a public key from PEM. A private key is the likeliest mistake (the issuer's key file
/// copied whole) and gets a message of its own; a verifier never needs the private half.
fn from_pem(
    pem: &[u8],
    parse: fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>,
) -> Result<DecodingKey, ConfigError> {
    if pem.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err(KeyError::PrivateKeyPem.into());
    }
    parse(pem).map_err(|e| KeyError::NotPublicKeyPem(e.to_string()).into())
}

fn key_err(e: impl fmt::Display) -> ConfigError {
    ConfigError::Key(KeyError::Invalid(e.to_string()))
}

impl JwtKey {
    /// A key from a `jsonwebtoken` [`DecodingKey`], allowed to verify `algorithms` only.
    pub fn new(key: DecodingKey, algorithms: &[Algorithm]) -> Result<Self, ConfigError> {
        if algorithms.is_empty() {
            return Err(KeyError::NoAlgorithm.into());
        }
        if let Some(alg) = algorithms.iter().find(|a| a.family() != key.family()) {
            return Err(KeyError::WrongFamily {
                algorithm: *alg,
                family: key.family(),
            }
            .into());
        }
        let mut hmac = Vec::new();
        if key.family() == AlgorithmFamily::Hmac {
            let secret = key.try_get_as_bytes().map_err(key_err)?;
            for &alg in algorithms {
                let min = min_hmac_secret(alg);
                if secret.len() < min {
                    return Err(KeyError::ShortSecret {
                        algorithm: alg,
                        min,
                        got: secret.len(),
                    }
                    .into());
                }
                let a = match alg {
                    Algorithm::HS384 => hmac::HMAC_SHA384,
                    Algorithm::HS512 => hmac::HMAC_SHA512,
                    _ => hmac::HMAC_SHA256,
                };
                hmac.push((alg, hmac::Key::new(a, secret)));
            }
        }
        let parsed = if key.family() == AlgorithmFamily::Hmac {
            Vec::new()
        } else {
            algorithms
                .iter()
                .map(|&alg| parse_public(&key, alg).map(|k| (alg, k)))
                .collect::<Result<_, _>>()?
        };
        Ok(JwtKey {
            kid: None,
            algorithms: algorithms.to_vec(),
            family: key.family(),
            hmac,
            parsed,
        })
    }

    /// An HMAC secret for HS256, HS384 or HS512: at least as long as the hash output (32, 48
    /// and 64 bytes), as RFC 7518 §3.2 requires.
    pub fn hmac(secret: &[u8], algorithms: &[Algorithm]) -> Result<Self, ConfigError> {
        JwtKey::new(DecodingKey::from_secret(secret), algorithms)
    }

    /// An RSA public key in PEM (RS* and PS* algorithms).
    ///
    /// ```
    /// use portcullis::server::jwt::JwtKey;
    /// use portcullis::server::{ConfigError, KeyError};
    /// use portcullis::server::jsonwebtoken::Algorithm;
    /// let private = b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
    /// assert_eq!(
    ///     JwtKey::rsa_pem(private, &[Algorithm::RS256]).unwrap_err(),
    ///     ConfigError::Key(KeyError::PrivateKeyPem)
    /// );
    /// ```
    pub fn rsa_pem(pem: &[u8], algorithms: &[Algorithm]) -> Result<Self, ConfigError> {
        JwtKey::new(from_pem(pem, DecodingKey::from_rsa_pem)?, algorithms)
    }

    /// An EC public key in PEM (ES256 for P-256, ES384 for P-384).
    pub fn ec_pem(pem: &[u8], algorithms: &[Algorithm]) -> Result<Self, ConfigError> {
        JwtKey::new(from_pem(pem, DecodingKey::from_ec_pem)?, algorithms)
    }

    /// An Ed25519 public key in PEM (EdDSA).
    pub fn ed_pem(pem: &[u8]) -> Result<Self, ConfigError> {
        JwtKey::new(
            from_pem(pem, DecodingKey::from_ed_pem)?,
            &[Algorithm::EdDSA],
        )
    }

    /// A key from a JWK (RFC 7517). The algorithm comes from the JWK's `alg`, or for EC and
    /// OKP keys from the curve; an RSA or oct JWK without `alg` is refused, because guessing
    /// would widen what the key may verify. The JWK's `kid` is kept; `use` must be `sig`
    /// and `key_ops`, if present, must include `verify`.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, ConfigError> {
        let common = &jwk.common;
        if let Some(u) = &common.public_key_use
            && *u != PublicKeyUse::Signature
        {
            return Err(KeyError::NotForSignatures.into());
        }
        if let Some(ops) = &common.key_operations
            && !ops
                .iter()
                .any(|o| matches!(o, jsonwebtoken::jwk::KeyOperations::Verify))
        {
            return Err(KeyError::NotForVerification.into());
        }
        let alg = match (common.key_algorithm, &jwk.algorithm) {
            (Some(a), _) => key_algorithm(a)?,
            (None, AlgorithmParameters::EllipticCurve(p)) => match p.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err(KeyError::UnsupportedCurve.into()),
            },
            (None, AlgorithmParameters::OctetKeyPair(p)) if p.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            _ => return Err(KeyError::NoAlg.into()),
        };
        // An EC key's curve must agree with its algorithm, or ES384 could be asked of a
        // P-256 key.
        if let AlgorithmParameters::EllipticCurve(p) = &jwk.algorithm {
            let ok = matches!(
                (alg, &p.curve),
                (Algorithm::ES256, EllipticCurve::P256) | (Algorithm::ES384, EllipticCurve::P384)
            );
            if !ok {
                return Err(KeyError::CurveMismatch.into());
            }
        }
        let key = DecodingKey::from_jwk(jwk).map_err(key_err)?;
        let mut k = JwtKey::new(key, &[alg])?;
        k.kid = common.key_id.clone();
        Ok(k)
    }

    /// Name this key (`kid`).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithms this key may verify.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    /// An HMAC key: a shared secret, never to be taken from a published key set.
    #[cfg(feature = "jwks")]
    pub(crate) fn is_symmetric(&self) -> bool {
        self.family == AlgorithmFamily::Hmac
    }

    /// Verify `signature_b64` (base64url, no padding) over `message` with `alg`.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature_b64: &[u8]) -> bool {
        // RSA-8192 signatures are the longest: 1,024 bytes.
        let mut buf = [0u8; 1024];
        let Ok(n) = URL_SAFE_NO_PAD.decode_slice(signature_b64, &mut buf) else {
            return false;
        };
        let signature = &buf[..n];
        if let Some((_, key)) = self.hmac.iter().find(|(a, _)| *a == alg) {
            return hmac::verify(key, message, signature).is_ok();
        }
        // Every other allowed algorithm was parsed when the key was built.
        self.parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }
}

/// The RSA verification parameters jsonwebtoken's `aws_lc_rs` backend uses for `alg`.
fn rsa_parameters(alg: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// Parse `key` once for verifying `alg` (RSA, EC or Ed25519).
fn parse_public(key: &DecodingKey, alg: Algorithm) -> Result<ParsedPublicKey, ConfigError> {
    let parsed = match (key.kind(), rsa_parameters(alg)) {
        (DecodingKeyKind::RsaModulusExponent { n, e }, Some(params)) => {
            RsaPublicKeyComponents { n, e }.to_parsed_public_key(params)
        }
        (DecodingKeyKind::SecretOrDer(bytes), Some(params)) => ParsedPublicKey::new(params, bytes),
        (DecodingKeyKind::SecretOrDer(bytes), None) => {
            let algorithm: &'static dyn sig::VerificationAlgorithm = match alg {
                Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
                Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
                Algorithm::EdDSA => &sig::ED25519,
                _ => {
                    return Err(KeyError::WrongFamily {
                        algorithm: alg,
                        family: AlgorithmFamily::Hmac,
                    }
                    .into());
                }
            };
            ParsedPublicKey::new(algorithm, bytes)
        }
        (DecodingKeyKind::RsaModulusExponent { .. }, None) => {
            return Err(KeyError::WrongFamily {
                algorithm: alg,
                family: AlgorithmFamily::Rsa,
            }
            .into());
        }
    };
    parsed.map_err(|e| {
        KeyError::Unusable {
            algorithm: alg,
            reason: e.to_string(),
        }
        .into()
    })
}

fn key_algorithm(a: KeyAlgorithm) -> Result<Algorithm, ConfigError> {
    Ok(match a {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => {
            return Err(KeyError::NotSignatureAlg.into());
        }
    })
}

/// A future that resolves a key that was not available at once.
pub type KeyFuture = Pin<Box<dyn Future<Output = Result<Arc<JwtKey>, AuthError>> + Send>>;

/// The answer of a [`KeySource`].
#[non_exhaustive]
pub enum KeyLookup {
    /// The key is at hand.
    Found(Arc<JwtKey>),
    /// No key has that id (401 `unknown_key`).
    Unknown,
    /// The key may arrive after I/O (a JWKS refetch).
    Pending(KeyFuture),
}

impl fmt::Debug for KeyLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyLookup::Found(key) => f.debug_tuple("Found").field(key).finish(),
            KeyLookup::Unknown => f.write_str("Unknown"),
            KeyLookup::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}

/// Where verification keys come from: a fixed set, or a JWKS that rotates.
pub trait KeySource: Send + Sync + 'static {
    /// Find the key for a token whose header names `kid` (or none) and `alg`. Where several
    /// keys share a `kid`, answer the one that allows `alg`; the verifier still refuses an
    /// algorithm the key answered does not allow.
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup;

    /// Whether [`lookup`](Self::lookup) may start I/O (a key-set fetch) for a key it does not
    /// have. When it may, the verifier finishes its cheap checks of the token's shape before
    /// asking, so that a token that can never verify causes no fetch. Default: `true`.
    fn may_fetch(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};

    fn pem(der: &[u8]) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n").into_bytes()
    }

    fn b64(sig: &[u8]) -> Vec<u8> {
        URL_SAFE_NO_PAD.encode(sig).into_bytes()
    }

    /// Keys from PEM are parsed once and verify what their private halves signed, for the
    /// algorithms they were given and for nothing else.
    #[test]
    fn pem_keys_verify_their_own_signatures_only() {
        let msg = b"header.payload";
        let rng = SystemRandom::new();

        let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let rsa_pub = pem(rsa.public_key().as_der().unwrap().as_ref());
        let key = JwtKey::rsa_pem(&rsa_pub, &[Algorithm::RS256, Algorithm::PS256]).unwrap();
        for (alg, padding) in [
            (
                Algorithm::RS256,
                &sig::RSA_PKCS1_SHA256 as &dyn sig::RsaEncoding,
            ),
            (Algorithm::PS256, &sig::RSA_PSS_SHA256),
        ] {
            let mut s = vec![0; rsa.public_modulus_len()];
            rsa.sign(padding, &rng, msg, &mut s).unwrap();
            assert!(key.verify(alg, msg, &b64(&s)), "{alg:?}");
            assert!(!key.verify(alg, b"header.payloaD", &b64(&s)), "{alg:?}");
        }
        let mut s = vec![0; rsa.public_modulus_len()];
        rsa.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut s).unwrap();
        assert!(
            !key.verify(Algorithm::PS256, msg, &b64(&s)),
            "padding mixed up"
        );
        assert!(!key.verify(Algorithm::RS384, msg, &b64(&s)), "not allowed");

        let ec = EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let key = JwtKey::ec_pem(
            &pem(ec.public_key().as_der().unwrap().as_ref()),
            &[Algorithm::ES256],
        )
        .unwrap();
        let s = ec.sign(&rng, msg).unwrap();
        assert!(key.verify(Algorithm::ES256, msg, &b64(s.as_ref())));
        assert!(!key.verify(Algorithm::ES256, b"header.payloaD", &b64(s.as_ref())));

        let ed = Ed25519KeyPair::generate().unwrap();
        let key = JwtKey::ed_pem(&pem(ed.public_key().as_der().unwrap().as_ref())).unwrap();
        let s = ed.sign(msg);
        assert!(key.verify(Algorithm::EdDSA, msg, &b64(s.as_ref())));
        assert!(!key.verify(Algorithm::EdDSA, b"header.payloaD", &b64(s.as_ref())));
        assert!(!key.verify(Algorithm::EdDSA, msg, b"not*base64"));
    }
}
