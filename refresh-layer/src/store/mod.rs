//! Where a token set lives when several processes share one grant: the [`CredentialStore`]
//! trait, its in-process implementation [`MemoryStore`], the file one of CLIs and desktop
//! apps [`FileStore`] (the processes of one user on one machine), and what they hold.
//!
//! A store keeps, per grant, one versioned token set, one lease and a way to hear about
//! commits. [`SharedGrant`](crate::source::shared_grant::SharedGrant) drives the protocol; a store only has to make
//! each step atomic:
//!
//! - [`load`](CredentialStore::load): the current token set and its version.
//! - [`acquire`](CredentialStore::acquire): a lease with a time to live, held by one process
//!   at a time, with a fencing value that grows with every lease ever given.
//! - [`renew`](CredentialStore::renew) / [`release`](CredentialStore::release): only by the
//!   lease's own holder (same fencing value).
//! - [`commit`](CredentialStore::commit): write a new token set if the stored version is still
//!   the one read (compare-and-set), release the holder's lease, and tell every process.
//! - [`changes`](CredentialStore::changes): a counter that moves on every commit heard of.

mod file;
mod memory;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

pub use file::FileStore;
pub use memory::MemoryStore;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::StoreError;

/// The future of a [`CredentialStore`] operation.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The version a commit over `version` writes; never wraps.
pub(crate) fn next_version(version: u64) -> Result<u64, StoreError> {
    version.checked_add(1).ok_or(StoreError::VersionOverflow)
}

/// A token set as a store keeps it. `Debug` hides the tokens.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredTokens {
    /// The access token, once one was obtained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// When it expires, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// How long it was valid for when issued, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_ms: Option<u64>,
    /// The refresh token to use next (`refresh_token` grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The SHA-256 (hex) of the configured refresh token this token set descends from (the
    /// seed; never the seed itself): how a replica configured with another one notices. See
    /// [`NewSeed`](crate::source::shared_grant::NewSeed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_sha256: Option<String>,
    /// The SHA-256 (hex) of seeds this set replaced (the newest last, at most 16): a replica
    /// still configured with one of them never puts it back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_seeds: Vec<String>,
    /// Who the tokens belong to, when a token response said (see
    /// [`SharedGrant`](crate::source::shared_grant::SharedGrant#one-sharedgrant-is-one-identity)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A person's sign-in ([`AuthorizationCode`](crate::source::authorization_code::AuthorizationCode)):
    /// the authorization server that issued these tokens and the client registered with it.
    /// The registration is bound to that issuer and never used with another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<StoredSignIn>,
}

/// What a person's sign-in keeps besides its tokens: where they came from, and the client
/// registration they were obtained with. `Debug` hides the client secret.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredSignIn {
    /// The authorization server's issuer identifier, exactly as its metadata gives it.
    pub issuer: String,
    /// Its token endpoint.
    pub token_endpoint: String,
    /// The client ID (an https URL for a client ID metadata document).
    pub client_id: String,
    /// The client secret a dynamic registration gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// How the client authenticates at the token endpoint (an RFC 7591
    /// `token_endpoint_auth_method`: `none`, `client_secret_basic`, `client_secret_post`,
    /// `private_key_jwt`).
    pub token_endpoint_auth_method: String,
    /// How the client was registered: `pre-registered`, `metadata-document` or `dynamic`.
    pub registration: String,
    /// The redirect URI it was registered with.
    pub redirect_uri: String,
    /// The scope the tokens were asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The RFC 8707 resource the tokens are for: the identifier the resource's metadata gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl fmt::Debug for StoredSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSignIn")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("registration", &self.registration)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTokens")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at_ms", &self.expires_at_ms)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("seed_sha256", &self.seed_sha256)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl StoredTokens {
    /// A token set holding `access_token`; add what else is known with the setters.
    ///
    /// ```
    /// use portcullis::client::store::StoredTokens;
    /// let t = StoredTokens::new("at-1").refresh_token("rt-1").expires_at_ms(1_700_000_000_000);
    /// assert_eq!(t.access_token.as_deref(), Some("at-1"));
    /// assert_eq!(t.refresh_token.as_deref(), Some("rt-1"));
    /// ```
    pub fn new(access_token: impl Into<String>) -> Self {
        StoredTokens {
            access_token: Some(access_token.into()),
            ..StoredTokens::default()
        }
    }

    /// When the access token expires, in milliseconds since the Unix epoch.
    pub fn expires_at_ms(mut self, at: u64) -> Self {
        self.expires_at_ms = Some(at);
        self
    }

    /// How long the access token was valid for when issued, in milliseconds.
    pub fn lifetime_ms(mut self, lifetime: u64) -> Self {
        self.lifetime_ms = Some(lifetime);
        self
    }

    /// The refresh token to use next.
    pub fn refresh_token(mut self, refresh_token: impl Into<String>) -> Self {
        self.refresh_token = Some(refresh_token.into());
        self
    }

    /// Who the tokens belong to.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// A token set holding only a refresh token (what a sign-in hands over).
    pub fn from_refresh_token(refresh_token: &str) -> Self {
        StoredTokens {
            refresh_token: Some(refresh_token.to_owned()),
            ..StoredTokens::default()
        }
    }

    /// How long the access token remains valid: `None` when no expiry is known,
    /// `Some(ZERO)` once it has expired.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        let at = self.expires_at_ms?;
        Some(Duration::from_millis(at.saturating_sub(unix_ms())))
    }
}

/// A token set and its version (1 for the first one; each commit adds one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The version.
    pub version: u64,
    /// The token set.
    pub tokens: StoredTokens,
}

/// A lease to refresh one grant, until its time to live runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Grows with every lease ever given for the grant: a lease renewed or released with an
    /// older value is not the current one.
    pub fence: u64,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Written as this version.
    Committed(u64),
    /// The stored version is no longer the one read: someone else committed first.
    Conflict,
}

/// Keeps one versioned token set, one lease and a change counter per grant, for every process
/// sharing them. See the [module docs](self) and [`SharedGrant`](crate::source::shared_grant::SharedGrant).
pub trait CredentialStore: Send + Sync + 'static {
    /// The current token set of `grant`, if any.
    fn load<'a>(&'a self, grant: &'a str) -> StoreFuture<'a, Option<Versioned>>;

    /// Store `doc` as it is if the grant has no token set (a first sign-in, or a store that
    /// lost its data); true when it was written.
    fn restore<'a>(&'a self, grant: &'a str, doc: &'a Versioned) -> StoreFuture<'a, bool>;

    /// A lease for `ttl`, or `None` while another holder has one.
    fn acquire<'a>(&'a self, grant: &'a str, ttl: Duration) -> StoreFuture<'a, Option<Lease>>;

    /// Extend `lease` to `ttl` from now; false when it is no longer held.
    fn renew<'a>(&'a self, grant: &'a str, lease: Lease, ttl: Duration) -> StoreFuture<'a, bool>;

    /// Give `lease` up (nothing happens if it is no longer held).
    fn release<'a>(&'a self, grant: &'a str, lease: Lease) -> StoreFuture<'a, ()>;

    /// Write `tokens` as version `expected + 1` if the stored version is `expected` (or the
    /// grant has no token set left), release `lease` if it is still held, and publish.
    /// `expected` is `u64::MAX`: [`StoreError::VersionOverflow`], nothing written.
    fn commit<'a>(
        &'a self,
        grant: &'a str,
        expected: u64,
        lease: Option<Lease>,
        tokens: &'a StoredTokens,
    ) -> StoreFuture<'a, Commit>;

    /// A counter that moves whenever a commit is heard of (on any grant).
    fn changes(&self) -> watch::Receiver<u64>;
}

impl<S: CredentialStore + ?Sized> CredentialStore for Arc<S> {
    fn load<'a>(&'a self, grant: &'a str) -> StoreFuture<'a, Option<Versioned>> {
        (**self).load(grant)
    }
    fn restore<'a>(&'a self, grant: &'a str, doc: &'a Versioned) -> StoreFuture<'a, bool> {
        (**self).restore(grant, doc)
    }
    fn acquire<'a>(&'a self, grant: &'a str, ttl: Duration) -> StoreFuture<'a, Option<Lease>> {
        (**self).acquire(grant, ttl)
    }
    fn renew<'a>(&'a self, grant: &'a str, lease: Lease, ttl: Duration) -> StoreFuture<'a, bool> {
        (**self).renew(grant, lease, ttl)
    }
    fn release<'a>(&'a self, grant: &'a str, lease: Lease) -> StoreFuture<'a, ()> {
        (**self).release(grant, lease)
    }
    fn commit<'a>(
        &'a self,
        grant: &'a str,
        expected: u64,
        lease: Option<Lease>,
        tokens: &'a StoredTokens,
    ) -> StoreFuture<'a, Commit> {
        (**self).commit(grant, expected, lease, tokens)
    }
    fn changes(&self) -> watch::Receiver<u64> {
        (**self).changes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_token_and_no_subject() {
        let mut t = StoredTokens::from_refresh_token("rt-secret");
        t.access_token = Some("at-secret".into());
        t.subject = Some("alice@example.com".into());
        let d = format!("{t:?}");
        assert!(!d.contains("secret") && !d.contains("alice"), "{d}");
    }
}
