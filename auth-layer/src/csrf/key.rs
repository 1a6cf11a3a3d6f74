//! The secret CSRF tokens are derived with, and the tokens themselves.

use std::fmt;

use aws_lc_rs::{constant_time, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ConfigError;

/// Put before the session value in every MAC, so a CSRF key that is (wrongly) also used for
/// something else never yields a tag that means anything there.
const TOKEN_LABEL: &[u8] = b"portcullis csrf token v1\0";
/// base64url (no padding) of a 32-byte HMAC-SHA256 tag.
pub(super) const TOKEN_LEN: usize = 43;
/// The secret that session-bound CSRF tokens are derived with (HMAC-SHA256).
///
/// There is no default and no random key: give every replica of your app the same secret, so
/// that a token minted by one is accepted by all. To rotate, configure the new key with the
/// old one as [`CsrfPolicy::previous_key`](crate::CsrfPolicy::previous_key) until the sessions minted under the old one have ended.
/// `Debug` does not print the secret.
#[derive(Clone)]
pub struct CsrfKey {
    key: hmac::Key,
}

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfKey(<redacted>)")
    }
}

impl CsrfKey {
    /// The shortest secret accepted, in bytes: the length of the HMAC-SHA256 output.
    pub const MIN_LEN: usize = 32;

    /// A key from `secret`, random bytes from your secret store (at least
    /// [`MIN_LEN`](Self::MIN_LEN) of them, e.g. `openssl rand -base64 32`, decoded).
    /// A shorter secret is [`ConfigError::CsrfKeyTooShort`].
    pub fn new(secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < Self::MIN_LEN {
            return Err(ConfigError::CsrfKeyTooShort {
                min: Self::MIN_LEN,
                got: secret.len(),
            });
        }
        Ok(CsrfKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// The CSRF token of the session whose cookie value is `session` (exactly the value set
    /// in the cookie, without quotes): what the page must send in the CSRF header. Call it
    /// where the app sets or replaces the session cookie, and hand the token to the page (in
    /// the response body, or in a cookie the page can read). A new session value needs a new
    /// token.
    pub fn mint(&self, session: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(self.tag(session.as_ref()))
    }

    fn tag(&self, session: &[u8]) -> hmac::Tag {
        let mut mac = hmac::Context::with_key(&self.key);
        mac.update(TOKEN_LABEL);
        mac.update(session);
        mac.sign()
    }

    /// `token` is the token minted with this key for `session` (compared in constant time).
    pub(super) fn accepts(&self, session: &[u8], token: &[u8]) -> bool {
        if token.len() != TOKEN_LEN {
            return false;
        }
        let mut expected = [0u8; TOKEN_LEN];
        match URL_SAFE_NO_PAD.encode_slice(self.tag(session), &mut expected) {
            Ok(TOKEN_LEN) => constant_time::verify_slices_are_equal(&expected, token).is_ok(),
            _ => false,
        }
    }
}
