//! How a client authenticates at a token or introspection endpoint (RFC 6749 §2.3.1): a
//! secret in HTTP Basic or in the form, or a `private_key_jwt` assertion (RFC 7523) signed
//! with a [`ClientKey`].
//!
//! The client builds its token requests with [`authenticate`]; a server calling an
//! introspection endpoint can use the same.
//!
//! # Example
//! ```
//! use portcullis::wire::client_auth::{ClientAuth, authenticate};
//! use portcullis::wire::form::form_encode;
//!
//! let auth = authenticate(ClientAuth::Post, "my-client", Some("s3cret"), None, "https://id.example/token")
//!     .unwrap();
//! let mut form = vec![("grant_type", "client_credentials")];
//! form.extend(auth.params.iter().map(|(k, v)| (*k, v.as_str())));
//! assert_eq!(form_encode(&form), "grant_type=client_credentials&client_id=my-client&client_secret=s3cret");
//! assert!(auth.authorization.is_none());
//! ```

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use http::HeaderValue;

use crate::form::form_component;

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`), which every server must support.
    #[default]
    Basic,
    /// Form parameters (`client_secret_post`).
    Post,
    /// A JWT signed with the client's private key (`private_key_jwt`, RFC 7523 §2.2), a
    /// [`ClientKey`].
    PrivateKeyJwt,
    /// No authentication (`none`): a public client, which sends its `client_id` only.
    None,
}

/// The private key of a `private_key_jwt` client: it signs a short-lived client assertion
/// (RFC 7523) for every token request. `Debug` shows the algorithm only.
///
/// ```
/// use portcullis::client::jsonwebtoken::Algorithm;
/// use portcullis::wire::client_auth::ClientKey;
/// let pem = b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
/// assert!(ClientKey::from_pem(pem, Algorithm::ES256).is_err());
/// assert!(ClientKey::from_pem(pem, Algorithm::HS256).is_err(), "HMAC is not a private key");
/// ```
#[derive(Clone)]
pub struct ClientKey {
    key: Arc<jsonwebtoken::EncodingKey>,
    alg: jsonwebtoken::Algorithm,
    kid: Option<String>,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// A PEM private key (PKCS#8 for EC and Ed25519; PKCS#1 or PKCS#8 for RSA) that signs with
    /// `alg` (RS*, PS*, ES256, ES384 or EdDSA; HMAC algorithms are refused, they are not
    /// private keys).
    pub fn from_pem(pem: &[u8], alg: jsonwebtoken::Algorithm) -> Result<Self, InvalidClientKey> {
        use jsonwebtoken::{Algorithm as A, EncodingKey};
        let key = match alg {
            A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => {
                EncodingKey::from_rsa_pem(pem)
            }
            A::ES256 | A::ES384 => EncodingKey::from_ec_pem(pem),
            A::EdDSA => EncodingKey::from_ed_pem(pem),
            _ => {
                return Err(InvalidClientKey(
                    "private_key_jwt needs an asymmetric algorithm",
                ));
            }
        }
        .map_err(|_| InvalidClientKey("not a PEM private key for this algorithm"))?;
        Ok(ClientKey {
            key: Arc::new(key),
            alg,
            kid: None,
        })
    }

    /// The key id to put in the assertion's header (when the server holds several keys).
    pub fn key_id(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithm it signs with.
    pub fn algorithm(&self) -> jsonwebtoken::Algorithm {
        self.alg
    }

    /// A client assertion for `client_id`, addressed to `audience` (RFC 7523 §3), valid for a
    /// minute, with a `jti` no other assertion carries.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<String, ClientAuthError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + 60,
            "jti": unique_id(),
        });
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| ClientAuthError::Signing)
    }
}

/// A value no other assertion of this process (or, with overwhelming likelihood, of any
/// other) carries: RFC 7523 §3 lets the server refuse a replayed `jti`.
fn unique_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // RandomState is seeded per process from the OS.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(nanos);
    h.write_u64(n);
    format!("{:016x}{:016x}{n:x}", h.finish(), nanos as u64)
}

/// A `private_key_jwt` key could not be read, or its algorithm is not an asymmetric one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client's private key cannot be used: {0}")]
pub struct InvalidClientKey(&'static str);

impl InvalidClientKey {
    /// Why, in a few words.
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

/// A request could not be authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAuthError {
    /// `private_key_jwt` was chosen without a key.
    #[error("private_key_jwt without a key")]
    NoKey,
    /// The client assertion could not be signed.
    #[error("the client assertion could not be signed")]
    Signing,
}

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What authenticates one request: form parameters to add after the request's own, and an
/// `Authorization` header (marked sensitive) for HTTP Basic.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authentication {
    /// Form parameters, in the order to send them.
    pub params: Vec<(&'static str, String)>,
    /// `Authorization: Basic …`, for `client_secret_basic`.
    pub authorization: Option<HeaderValue>,
}

impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets and assertions stay out of logs.
        let names: Vec<&str> = self.params.iter().map(|(k, _)| *k).collect();
        f.debug_struct("Authentication")
            .field("params", &names)
            .field("authorization", &self.authorization.is_some())
            .finish()
    }
}

/// Authenticate `client_id` with `method`: `secret` for `client_secret_basic` and
/// `client_secret_post`, `key` for `private_key_jwt` (its assertion addressed to
/// `audience`, the endpoint or the server's issuer identifier). A public client (no
/// secret) sends only its `client_id`.
pub fn authenticate(
    method: ClientAuth,
    client_id: &str,
    secret: Option<&str>,
    key: Option<&ClientKey>,
    audience: &str,
) -> Result<Authentication, ClientAuthError> {
    let mut params = Vec::new();
    let mut authorization = None;
    match (secret, method) {
        (_, ClientAuth::PrivateKeyJwt) => {
            let key = key.ok_or(ClientAuthError::NoKey)?;
            let assertion = key.assertion(client_id, audience)?;
            params.push(("client_id", client_id.to_owned()));
            params.push(("client_assertion_type", JWT_BEARER_ASSERTION.to_owned()));
            params.push(("client_assertion", assertion));
        }
        (_, ClientAuth::None) => params.push(("client_id", client_id.to_owned())),
        (Some(secret), ClientAuth::Basic) => {
            // RFC 6749 §2.3.1: form-encode id and secret before Basic.
            let raw = format!("{}:{}", form_component(client_id), form_component(secret));
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            );
            authorization = HeaderValue::from_str(&basic).ok().map(|mut v| {
                v.set_sensitive(true);
                v
            });
        }
        (Some(secret), ClientAuth::Post) => {
            params.push(("client_id", client_id.to_owned()));
            params.push(("client_secret", secret.to_owned()));
        }
        (None, _) => params.push(("client_id", client_id.to_owned())),
    }
    Ok(Authentication {
        params,
        authorization,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_form_encodes_id_and_secret_before_base64() {
        // RFC 6749 Appendix B's client id.
        let auth = authenticate(ClientAuth::Basic, " %&+£€", Some("a:b"), None, "aud").unwrap();
        assert!(auth.params.is_empty());
        let value = auth.authorization.unwrap();
        assert!(value.is_sensitive());
        let b64 = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(raw, b"+%25%26%2B%C2%A3%E2%82%AC:a%3Ab");
    }

    #[test]
    fn a_public_client_sends_only_its_id() {
        for method in [ClientAuth::Basic, ClientAuth::Post] {
            let auth = authenticate(method, "c", None, None, "aud").unwrap();
            assert_eq!(auth.params, [("client_id", "c".to_owned())]);
            assert!(auth.authorization.is_none());
        }
    }

    #[test]
    fn private_key_jwt_without_a_key_is_an_error() {
        assert_eq!(
            authenticate(ClientAuth::PrivateKeyJwt, "c", Some("s"), None, "aud"),
            Err(ClientAuthError::NoKey)
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let auth = authenticate(ClientAuth::Post, "c", Some("SECRET"), None, "aud").unwrap();
        assert!(!format!("{auth:?}").contains("SECRET"));
    }
}
