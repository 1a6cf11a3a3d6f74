//! Verification keys, each with the algorithms it may verify, and where keys come from.
//!
//! The allowlist is fixed per key and must match the key's family, so algorithm confusion is
//! impossible by construction: an RSA key never verifies an HS256 token (the classic attack
//! that uses the RSA public key as an HMAC secret), and `none` is not an algorithm at all.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

use crate::error::{AuthError, ConfigError};

/// The shortest HMAC secret accepted (RFC 7518 §3.2: at least the hash output size).
const MIN_HMAC_SECRET: usize = 32;

/// A verification key and the algorithms it may verify.
///
/// # Example
/// ```
/// use auth_layer::jwt::JwtKey;
/// use jsonwebtoken::Algorithm;
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
    key: DecodingKey,
    /// HMAC keys set up once: jsonwebtoken would set the key up again for every token.
    hmac: Vec<(Algorithm, hmac::Key)>,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .field("family", &self.key.family())
            .finish_non_exhaustive()
    }
}

fn key_err(e: impl fmt::Display) -> ConfigError {
    ConfigError::Key(e.to_string())
}

impl JwtKey {
    /// A key from a `jsonwebtoken` [`DecodingKey`], allowed to verify `algorithms` only.
    pub fn new(key: DecodingKey, algorithms: &[Algorithm]) -> Result<Self, ConfigError> {
        if algorithms.is_empty() {
            return Err(ConfigError::Key(
                "a key needs at least one algorithm".into(),
            ));
        }
        if let Some(alg) = algorithms.iter().find(|a| a.family() != key.family()) {
            return Err(ConfigError::Key(format!(
                "{alg:?} cannot be verified with a {:?} key",
                key.family()
            )));
        }
        let mut hmac = Vec::new();
        if key.family() == AlgorithmFamily::Hmac {
            let secret = key.try_get_as_bytes().map_err(key_err)?;
            if secret.len() < MIN_HMAC_SECRET {
                return Err(ConfigError::Key(format!(
                    "HMAC secrets must be at least {MIN_HMAC_SECRET} bytes"
                )));
            }
            for &alg in algorithms {
                let a = match alg {
                    Algorithm::HS384 => hmac::HMAC_SHA384,
                    Algorithm::HS512 => hmac::HMAC_SHA512,
                    _ => hmac::HMAC_SHA256,
                };
                hmac.push((alg, hmac::Key::new(a, secret)));
            }
        }
        Ok(JwtKey {
            kid: None,
            algorithms: algorithms.to_vec(),
            key,
            hmac,
        })
    }

    /// An HMAC secret (HS256/384/512), at least 32 bytes.
    pub fn hmac(secret: &[u8], algorithms: &[Algorithm]) -> Result<Self, ConfigError> {
        JwtKey::new(DecodingKey::from_secret(secret), algorithms)
    }

    /// An RSA public key in PEM (RS* and PS* algorithms).
    pub fn rsa_pem(pem: &[u8], algorithms: &[Algorithm]) -> Result<Self, ConfigError> {
        JwtKey::new(DecodingKey::from_rsa_pem(pem).map_err(key_err)?, algorithms)
    }

    /// An EC public key in PEM (ES256 for P-256, ES384 for P-384).
    pub fn ec_pem(pem: &[u8], algorithms: &[Algorithm]) -> Result<Self, ConfigError> {
        JwtKey::new(DecodingKey::from_ec_pem(pem).map_err(key_err)?, algorithms)
    }

    /// An Ed25519 public key in PEM (EdDSA).
    pub fn ed_pem(pem: &[u8]) -> Result<Self, ConfigError> {
        JwtKey::new(
            DecodingKey::from_ed_pem(pem).map_err(key_err)?,
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
            return Err(ConfigError::Key(
                "the JWK is not for signatures (use)".into(),
            ));
        }
        if let Some(ops) = &common.key_operations
            && !ops
                .iter()
                .any(|o| matches!(o, jsonwebtoken::jwk::KeyOperations::Verify))
        {
            return Err(ConfigError::Key(
                "the JWK's key_ops do not include verify".into(),
            ));
        }
        let alg = match (common.key_algorithm, &jwk.algorithm) {
            (Some(a), _) => key_algorithm(a)?,
            (None, AlgorithmParameters::EllipticCurve(p)) => match p.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err(ConfigError::Key("unsupported EC curve".into())),
            },
            (None, AlgorithmParameters::OctetKeyPair(p)) if p.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            _ => return Err(ConfigError::Key("the JWK has no alg; give one".into())),
        };
        // An EC key's curve must agree with its algorithm, or ES384 could be asked of a
        // P-256 key.
        if let AlgorithmParameters::EllipticCurve(p) = &jwk.algorithm {
            let ok = matches!(
                (alg, &p.curve),
                (Algorithm::ES256, EllipticCurve::P256) | (Algorithm::ES384, EllipticCurve::P384)
            );
            if !ok {
                return Err(ConfigError::Key(
                    "the JWK's curve does not match its alg".into(),
                ));
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

    /// Verify `signature_b64` (base64url, no padding) over `message` with `alg`.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature_b64: &[u8]) -> bool {
        if let Some((_, key)) = self.hmac.iter().find(|(a, _)| *a == alg) {
            let mut sig = [0u8; 64];
            return match URL_SAFE_NO_PAD.decode_slice(signature_b64, &mut sig) {
                Ok(n) => hmac::verify(key, message, &sig[..n]).is_ok(),
                Err(_) => false,
            };
        }
        let Ok(signature_b64) = std::str::from_utf8(signature_b64) else {
            return false;
        };
        jsonwebtoken::crypto::verify(signature_b64, message, &self.key, alg).unwrap_or(false)
    }
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
            return Err(ConfigError::Key(
                "the JWK's alg is not a signature algorithm".into(),
            ));
        }
    })
}

/// A future that resolves a key that was not available at once.
pub type KeyFuture = Pin<Box<dyn Future<Output = Result<Arc<JwtKey>, AuthError>> + Send>>;

/// The answer of a [`KeySource`].
pub enum KeyLookup {
    /// The key is at hand.
    Found(Arc<JwtKey>),
    /// No key has that id (401 `unknown_key`).
    Unknown,
    /// The key may arrive after I/O (a JWKS refetch).
    Pending(KeyFuture),
}

/// Where verification keys come from: a fixed set, or a JWKS that rotates.
pub trait KeySource: Send + Sync + 'static {
    /// Find the key for a token whose header has `kid` (or none).
    fn lookup(&self, kid: Option<&str>) -> KeyLookup;
}

/// A fixed set of keys, selected by `kid`.
///
/// A token without `kid` is verified with the key that has no `kid`, or with the only key
/// when there is exactly one.
///
/// # Example
/// ```
/// use auth_layer::jwt::{JwtKey, StaticKeys};
/// use jsonwebtoken::Algorithm;
/// let keys = StaticKeys::new([
///     JwtKey::hmac(&[7u8; 32], &[Algorithm::HS256]).unwrap().with_kid("a"),
///     JwtKey::hmac(&[8u8; 32], &[Algorithm::HS256]).unwrap().with_kid("b"),
/// ]).unwrap();
/// assert_eq!(keys.len(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticKeys {
    by_kid: HashMap<String, Arc<JwtKey>>,
    unnamed: Option<Arc<JwtKey>>,
}

impl StaticKeys {
    /// A key set; two keys with the same `kid`, or two without one, are a configuration error.
    pub fn new(keys: impl IntoIterator<Item = JwtKey>) -> Result<Self, ConfigError> {
        let mut set = StaticKeys::default();
        for key in keys {
            let key = Arc::new(key);
            match key.kid.clone() {
                Some(kid) => {
                    if set.by_kid.insert(kid, key).is_some() {
                        return Err(ConfigError::Key("two keys share one kid".into()));
                    }
                }
                None => {
                    if set.unnamed.replace(key).is_some() {
                        return Err(ConfigError::Key("more than one key without kid".into()));
                    }
                }
            }
        }
        Ok(set)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.by_kid.len() + usize::from(self.unnamed.is_some())
    }

    /// True when the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn get(&self, kid: Option<&str>) -> Option<&Arc<JwtKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None => self.unnamed.as_ref().or_else(|| {
                (self.by_kid.len() == 1)
                    .then(|| self.by_kid.values().next())
                    .flatten()
            }),
        }
    }
}

impl KeySource for StaticKeys {
    fn lookup(&self, kid: Option<&str>) -> KeyLookup {
        match self.get(kid) {
            Some(k) => KeyLookup::Found(k.clone()),
            None => KeyLookup::Unknown,
        }
    }
}
