//! [`SharedGrantBuilder`]: one grant id per identity, and what to do with a new seed.

use super::seed::seed_hash;
use super::*;

/// How long a lease lasts unless renewed, unless [`lease_ttl`](SharedGrantBuilder::lease_ttl)
/// says otherwise: long enough for a token request, short enough that a holder that died
/// keeps the others waiting only briefly.
const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// The shortest lease: renewing every third of it must stay well above a store round trip.
const MIN_LEASE_TTL: Duration = Duration::from_millis(100);

/// How often a waiting process reads the store without a publication unless
/// [`poll_every`](SharedGrantBuilder::poll_every) says otherwise: the bound on a missed one.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest poll interval, so a waiting process never busy-loops on the store.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Configures a [`SharedGrant`]; see [`SharedGrant::builder`].
#[must_use]
pub struct SharedGrantBuilder {
    oauth: OAuth2,
    store: Arc<dyn CredentialStore>,
    grant_id: String,
    new_seed: NewSeed,
    subject: Option<String>,
    lease_ttl: Duration,
    poll_every: Duration,
    local_fallback: bool,
}

impl fmt::Debug for SharedGrantBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedGrantBuilder")
            .field("grant_id", &self.grant_id)
            .field("new_seed", &self.new_seed)
            .field("lease_ttl", &self.lease_ttl)
            .field("poll_every", &self.poll_every)
            .field("local_fallback", &self.local_fallback)
            .finish_non_exhaustive()
    }
}

impl SharedGrantBuilder {
    /// How long a lease lasts unless renewed (default 10 s): how long a dead holder keeps the
    /// others waiting. The holder renews it every third of this while its request runs.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(MIN_LEASE_TTL);
        self
    }

    /// How often a waiting process reads the store even without a publication (default 1 s):
    /// the bound on a missed one.
    pub fn poll_every(mut self, every: Duration) -> Self {
        self.poll_every = every.max(MIN_POLL_INTERVAL);
        self
    }

    /// Refresh locally when the store cannot be reached (default: no, fail with
    /// [`RefreshError::Store`]). See the [module docs](super#when-the-store-cannot-be-reached).
    pub fn local_fallback(mut self, on: bool) -> Self {
        self.local_fallback = on;
        self
    }

    /// The subject the tokens must belong to (default: none named; the first one seen is
    /// kept). Named, a token set is used only when it says it belongs to `subject` (the `sub`
    /// of its ID token or JWT access token): opaque tokens without an ID token are refused.
    /// See the [module docs](super#one-sharedgrant-is-one-identity).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The grant; fails when the grant id is empty, longer than 256 bytes, or holds a
    /// control character.
    pub fn build(self) -> Result<SharedGrant, BuildError> {
        let id = &self.grant_id;
        if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
            return Err(BuildError::InvalidGrantId);
        }
        let grant = self.oauth.grant_key(id);
        let initial = self.oauth.refresh_token_now();
        let seed = initial.as_deref().map(seed_hash);
        Ok(SharedGrant {
            inner: Arc::new(Inner {
                oauth: self.oauth,
                store: self.store,
                grant,
                grant_id: self.grant_id,
                new_seed: self.new_seed,
                subject: self.subject,
                seed,
                lease_ttl: self.lease_ttl,
                poll_every: self.poll_every,
                local_fallback: self.local_fallback,
                known: Mutex::new(Known {
                    initial,
                    ..Known::default()
                }),
            }),
        })
    }
}

impl SharedGrant {
    /// Share `oauth`'s grant through `store` as the identity `grant_id` (one per identity:
    /// see the [module docs](super#one-sharedgrant-is-one-identity)). A `refresh_token`
    /// grant's refresh token seeds the store when it holds nothing for this grant yet; when
    /// the stored set started from another one, `new_seed` says which wins.
    pub fn builder(
        oauth: OAuth2,
        store: Arc<dyn CredentialStore>,
        grant_id: impl Into<String>,
        new_seed: NewSeed,
    ) -> SharedGrantBuilder {
        SharedGrantBuilder {
            oauth,
            store,
            grant_id: grant_id.into(),
            new_seed,
            subject: None,
            lease_ttl: DEFAULT_LEASE_TTL,
            poll_every: DEFAULT_POLL_INTERVAL,
            local_fallback: false,
        }
    }
}
