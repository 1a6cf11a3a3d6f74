//! API keys from a header, stored hashed and compared in constant time.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};

use crate::authenticator::{Authentication, Authenticator};
use crate::credential::PresentedCredential;
use crate::error::{AuthError, ErrorCode};
use crate::principal::Principal;

type Digest = [u8; 32];

fn sha256(s: &str) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, s.as_bytes()).as_ref());
    out
}

/// Authenticates API keys. Only SHA-256 digests of the keys are kept in memory.
///
/// Lookup is by digest: what timing can reveal is where the *digest* of the guess lands, which
/// says nothing usable about any real key; the final comparison is constant-time as well.
///
/// # Example
/// ```
/// use portcullis::server::{ApiKeys, CredentialKind, Principal};
/// let keys = ApiKeys::new()
///     .with_key("k-live-123", Principal::builder(CredentialKind::ApiKey).subject("billing").build())
///     // or, to keep plaintext keys out of your config entirely:
///     .with_key_digest(ApiKeys::digest("k-live-456"), Principal::builder(CredentialKind::ApiKey).subject("ci").build());
/// assert_eq!(keys.len(), 2);
/// ```
#[derive(Default, Clone)]
pub struct ApiKeys {
    keys: HashMap<Digest, Principal>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("len", &self.keys.len())
            .finish()
    }
}

impl ApiKeys {
    /// An empty key store.
    pub fn new() -> Self {
        ApiKeys::default()
    }

    /// The SHA-256 digest under which a key is stored.
    pub fn digest(key: &str) -> [u8; 32] {
        sha256(key)
    }

    /// Accept `key` as `principal`.
    pub fn with_key(self, key: &str, principal: Principal) -> Self {
        self.with_key_digest(sha256(key), principal)
    }

    /// Accept the key whose SHA-256 digest is `digest` as `principal`.
    pub fn with_key_digest(mut self, digest: [u8; 32], principal: Principal) -> Self {
        self.keys.insert(digest, principal);
        self
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is accepted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn find(&self, key: &str) -> Result<Principal, AuthError> {
        let d = sha256(key);
        match self.keys.get_key_value(&d) {
            Some((stored, p)) if verify_slices_are_equal(stored, &d).is_ok() => Ok(p.clone()),
            _ => Err(AuthError::new(ErrorCode::InvalidApiKey)),
        }
    }
}

impl Authenticator for ApiKeys {
    fn authenticate(&self, credential: &PresentedCredential) -> Authentication {
        Authentication::ready(self.find(credential.expose_secret()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::CredentialKind;

    #[test]
    fn known_key_maps_to_its_principal_and_unknown_is_invalid() {
        let keys = ApiKeys::new().with_key(
            "secret-1",
            Principal::builder(CredentialKind::ApiKey)
                .subject("svc")
                .build(),
        );
        let ok = PresentedCredential::new(CredentialKind::ApiKey, "secret-1").unwrap();
        let bad = PresentedCredential::new(CredentialKind::ApiKey, "secret-2").unwrap();
        assert_eq!(
            keys.find(ok.expose_secret()).unwrap().subject(),
            Some("svc")
        );
        assert_eq!(
            keys.find(bad.expose_secret()).unwrap_err().code(),
            ErrorCode::InvalidApiKey
        );
    }
}
