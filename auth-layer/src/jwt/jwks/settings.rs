//! The cache and fetch settings of a key source, with their defaults.

use std::time::Duration;

use jsonwebtoken::Algorithm;

use crate::error::ConfigError;

/// Lower bound of the cache lifetime: a provider's `max-age=0` would otherwise mean a fetch
/// per request.
pub(crate) const DEFAULT_MIN_TTL: Duration = Duration::from_secs(60);
/// Upper bound of the cache lifetime: a key the provider withdrew is trusted at most a day.
pub(crate) const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Lifetime of a key set whose response has no `max-age`.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// At most one refetch per this interval because of unknown `kid`s or failures.
pub(crate) const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Whole-fetch timeout: a request waiting for keys waits at most this long.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest accepted key-set response: real ones are a few KiB.
pub(crate) const DEFAULT_MAX_BODY: usize = 256 * 1024;
/// Algorithms an RSA JWK without `alg` may verify (many providers omit `alg`).
pub(crate) const DEFAULT_RSA_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256];

/// What a [`JwksKeySourceBuilder`](super::JwksKeySourceBuilder) sets, checked when it builds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JwksSettings {
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    pub(crate) default_ttl: Duration,
    pub(crate) refetch_interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_body: usize,
    pub(crate) rsa_default_algorithms: &'static [Algorithm],
    pub(crate) allow_http: bool,
}

impl JwksSettings {
    /// Refuse settings that contradict each other.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.min_ttl > self.max_ttl {
            return Err(ConfigError::KeySetTtlRange);
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::KeySetZeroTimeout);
        }
        if self.max_body == 0 {
            return Err(ConfigError::KeySetZeroMaxBody);
        }
        if self
            .rsa_default_algorithms
            .iter()
            .any(|a| !matches!(a.family(), jsonwebtoken::AlgorithmFamily::Rsa))
        {
            return Err(ConfigError::KeySetNotRsaAlgorithm);
        }
        Ok(())
    }
}

impl Default for JwksSettings {
    fn default() -> Self {
        JwksSettings {
            min_ttl: DEFAULT_MIN_TTL,
            max_ttl: DEFAULT_MAX_TTL,
            default_ttl: DEFAULT_TTL,
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            rsa_default_algorithms: DEFAULT_RSA_ALGORITHMS,
            allow_http: false,
        }
    }
}
