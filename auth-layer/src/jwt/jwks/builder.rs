//! The builders of a key source: one for a JWK Set URL, one for OpenID Connect discovery,
//! with the same settings.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use jsonwebtoken::Algorithm;
use portcullis_wire::buffered_client::{HttpClient, buffered};

use super::discovery::discover;
use super::fetch::{JwksHttp, default_http, parse_url};
use super::settings::JwksSettings;
use super::source::JwksKeySource;
use crate::error::{ConfigError, JwksError};

/// A custom HTTP client, wrapped with the body limit once that is known.
type MakeHttp = Box<dyn FnOnce(usize) -> JwksHttp + Send>;

/// The setters both builders share.
macro_rules! settings_setters {
    () => {
        /// Lower bound of the cache lifetime (a provider's `max-age=0` is raised to it).
        /// Default: 60 s.
        pub fn min_ttl(mut self, min_ttl: Duration) -> Self {
            self.settings.min_ttl = min_ttl;
            self
        }

        /// Upper bound of the cache lifetime. Default: 24 h.
        pub fn max_ttl(mut self, max_ttl: Duration) -> Self {
            self.settings.max_ttl = max_ttl;
            self
        }

        /// Lifetime when the response has no `max-age`. Default: 10 min.
        pub fn default_ttl(mut self, default_ttl: Duration) -> Self {
            self.settings.default_ttl = default_ttl;
            self
        }

        /// At most one refetch per this interval because of unknown `kid`s or failures.
        /// Default: 10 s.
        pub fn refetch_interval(mut self, refetch_interval: Duration) -> Self {
            self.settings.refetch_interval = refetch_interval;
            self
        }

        /// Whole-fetch timeout (connect, headers, body). Default: 5 s.
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.settings.timeout = timeout;
            self
        }

        /// Largest accepted response body. Default: 256 KiB.
        pub fn max_body(mut self, max_body: usize) -> Self {
            self.settings.max_body = max_body;
            self
        }

        /// Algorithms an RSA JWK without `alg` may verify (many providers omit `alg`).
        /// Default: RS256 only.
        pub fn rsa_default_algorithms(mut self, algorithms: &'static [Algorithm]) -> Self {
            self.settings.rsa_default_algorithms = algorithms;
            self
        }

        /// Also fetch over plain `http` (default `false`). Keys fetched without TLS can be
        /// replaced by anyone on the path, so this is for tests and loopback only. Even with
        /// it, a discovery document of an `https` issuer may not name an `http` `jwks_uri`.
        pub fn allow_http(mut self, allow_http: bool) -> Self {
            self.settings.allow_http = allow_http;
            self
        }

        /// Fetch through your own HTTP client (a proxy-aware one, say) instead of hyper-util
        /// with rustls. Response bodies over [`max_body`](Self::max_body) are refused while
        /// they are read.
        pub fn http_client(mut self, http: impl HttpClient<Empty<Bytes>>) -> Self {
            self.http = Some(Box::new(move |max_body| buffered(http, max_body)));
            self
        }
    };
}

/// Checked settings and the client to fetch with.
fn into_parts(
    settings: JwksSettings,
    http: Option<MakeHttp>,
) -> Result<(JwksSettings, JwksHttp), ConfigError> {
    settings.validate()?;
    let http = match http {
        Some(make) => make(settings.max_body),
        None => default_http(&settings)?,
    };
    Ok((settings, http))
}

/// Builds a [`JwksKeySource`] for a JWK Set URL: [`JwksKeySource::builder`].
///
/// # Example
/// ```
/// use portcullis::server::jwt::JwksKeySource;
/// use std::time::Duration;
///
/// let keys = JwksKeySource::builder("https://login.example.com/.well-known/jwks.json")
///     .timeout(Duration::from_secs(2))
///     .build()
///     .unwrap();
/// # drop(keys);
/// ```
#[must_use]
pub struct JwksKeySourceBuilder {
    url: String,
    settings: JwksSettings,
    http: Option<MakeHttp>,
}

impl fmt::Debug for JwksKeySourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksKeySourceBuilder")
            .field("url", &self.url)
            .field("settings", &self.settings)
            .field("custom_http", &self.http.is_some())
            .finish()
    }
}

impl JwksKeySourceBuilder {
    settings_setters!();

    /// The source, its keys fetched on first use. Refuses contradictory settings and a URL
    /// that is not absolute `https` (or `http` with [`allow_http`](Self::allow_http)).
    pub fn build(self) -> Result<JwksKeySource, ConfigError> {
        let uri = parse_url(&self.url, self.settings.allow_http)?;
        let (settings, http) = into_parts(self.settings, self.http)?;
        Ok(JwksKeySource::from_parts(uri, settings, http))
    }
}

/// Builds a [`JwksKeySource`] by OpenID Connect discovery: [`JwksKeySource::discovery`].
///
/// # Example
/// ```no_run
/// use portcullis::server::jwt::JwksKeySource;
/// use std::time::Duration;
/// # async fn run() -> Result<(), portcullis::server::JwksError> {
/// let keys = JwksKeySource::discovery("https://id.example.com")
///     .timeout(Duration::from_secs(2))
///     .discover()
///     .await?;
/// # drop(keys); Ok(()) }
/// ```
#[must_use]
pub struct JwksDiscoveryBuilder {
    issuer: String,
    settings: JwksSettings,
    http: Option<MakeHttp>,
}

impl fmt::Debug for JwksDiscoveryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksDiscoveryBuilder")
            .field("issuer", &self.issuer)
            .field("settings", &self.settings)
            .field("custom_http", &self.http.is_some())
            .finish()
    }
}

impl JwksDiscoveryBuilder {
    settings_setters!();

    /// Read `{issuer}/.well-known/openid-configuration`, check that it names the same
    /// `issuer`, and use its `jwks_uri`. The keys are fetched once before this returns, so a
    /// misconfiguration fails at startup.
    ///
    /// The issuer and the `jwks_uri` must be `https` (see [`allow_http`](Self::allow_http));
    /// an `https` issuer naming an `http` `jwks_uri` is refused whatever the settings say.
    pub async fn discover(self) -> Result<JwksKeySource, JwksError> {
        let (settings, http) = into_parts(self.settings, self.http)?;
        discover(&self.issuer, settings, http).await
    }
}

impl JwksKeySource {
    /// A source for the JWK Set at `url`, fetched on first use with hyper-util and rustls.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        JwksKeySource::builder(url).build()
    }

    /// A source for the JWK Set at `url`, with settings or a custom HTTP client.
    pub fn builder(url: impl Into<String>) -> JwksKeySourceBuilder {
        JwksKeySourceBuilder {
            url: url.into(),
            settings: JwksSettings::default(),
            http: None,
        }
    }

    /// A source found by OpenID Connect discovery of `issuer`, with settings or a custom
    /// HTTP client; finish with [`discover`](JwksDiscoveryBuilder::discover).
    pub fn discovery(issuer: impl Into<String>) -> JwksDiscoveryBuilder {
        JwksDiscoveryBuilder {
            issuer: issuer.into(),
            settings: JwksSettings::default(),
            http: None,
        }
    }

    /// OpenID Connect discovery with the default settings, as
    /// [`JwksDiscoveryBuilder::discover`].
    pub async fn discover(issuer: &str) -> Result<Self, JwksError> {
        JwksKeySource::discovery(issuer).discover().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};

    #[test]
    fn contradictory_settings_and_plain_http_are_refused_when_built() {
        let http = |url: &str| {
            JwksKeySource::builder(url).http_client(tower::service_fn(
                |_req: Request<Empty<Bytes>>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new()))
                },
            ))
        };
        assert!(matches!(
            http("https://id.test/jwks")
                .min_ttl(Duration::from_secs(600))
                .max_ttl(Duration::from_secs(60))
                .build(),
            Err(ConfigError::KeySetTtlRange)
        ));
        assert!(matches!(
            http("http://id.test/jwks").build(),
            Err(ConfigError::InsecureKeySetUrl(_))
        ));
        assert!(
            http("http://127.0.0.1:1/jwks")
                .allow_http(true)
                .build()
                .is_ok()
        );
        assert!(http("https://id.test/jwks").build().is_ok());
    }
}
