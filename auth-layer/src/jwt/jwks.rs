//! Keys from a JWKS URL (RFC 7517) or OpenID Connect discovery, cached and rotated.
//!
//! - Keys are cached by `kid` for the response's `Cache-Control: max-age`, kept within
//!   configured bounds, and refreshed in the background once most of that time has passed.
//! - A refresh that fails keeps the last good set (stale-if-error, with a warning); garbage from
//!   the provider (HTML, truncated JSON, huge bodies, keys of the wrong type) never replaces it.
//! - Only public keys are taken from a fetched key set: the document is public, so a symmetric
//!   (`oct`) key in it would let anyone who can read it mint tokens. Such keys are skipped.
//!   Several keys may share a `kid` (one per algorithm); a token's key is picked by `kid` and
//!   `alg`.
//! - Keys are fetched over `https` only, unless [`JwksConfig::allow_http`] says otherwise
//!   (tests, loopback); an `https` issuer's discovery document may never name an `http`
//!   `jwks_uri`.
//! - A token with an unknown `kid` causes one refetch — shared by every request waiting for it,
//!   and at most one per `refetch_interval` — then `unknown_key`.
//! - When the keys cannot be fetched and the token's key is not cached, the answer is 503
//!   `key_set_unavailable` with `Retry-After`: the client's credential may be fine.
//!
//! # Example
//! ```no_run
//! use auth_layer::jwt::{JwksKeySource, JwtAuthenticator};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = JwksKeySource::discover("https://id.example.com").await?;
//! let jwt = JwtAuthenticator::builder()
//!     .key_source(keys)
//!     .issuer("https://id.example.com")
//!     .audience("orders-api")
//!     .build()?;
//! # let _ = jwt; Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::Empty;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use portcullis_wire::buffered_client::{BufferedClient, HttpClient, buffered};
use portcullis_wire::single_flight::{Leader, SingleFlight, Waiter};
use tokio::time::Instant;
use tower::ServiceExt;

use super::keys::{JwtKey, KeyLookup, KeySource};
use crate::error::{AuthError, ConfigError, ErrorCode};

/// The HTTP client a key source fetches with, type-erased, bodies read whole up to the limit.
type JwksHttp = BufferedClient<Empty<Bytes>>;

/// Why keys could not be fetched. Never replaces a good cached key set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Connect, I/O or protocol failure.
    #[error("cannot reach the key set: {0}")]
    Network(String),
    /// The fetch took longer than the timeout.
    #[error("fetching the key set took longer than {0:?}")]
    Timeout(Duration),
    /// The provider answered with a non-success status.
    #[error("the key set endpoint answered {0}")]
    Status(StatusCode),
    /// The body is larger than the limit.
    #[error("the key set response is larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not a JWK Set (or discovery document).
    #[error("invalid key set document: {0}")]
    InvalidDocument(String),
    /// The JWK Set holds no key this layer can verify with.
    #[error("the key set holds no usable signature key")]
    NoUsableKeys,
    /// OIDC discovery returned another issuer than the one asked for.
    #[error("discovery document names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch {
        /// The issuer configured.
        expected: String,
        /// The issuer in the document.
        found: String,
    },
    /// A URL is not an absolute http(s) URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A plain `http` URL where keys must come over `https`.
    #[error(
        "keys are fetched over https only, not from {0} (set JwksConfig::allow_http for tests on loopback)"
    )]
    InsecureUrl(String),
    /// The settings are refused (the `ConfigError::KeySet…` variants) or a key cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Cache and fetch settings of a [`JwksKeySource`]: start from `JwksConfig::default()` and
/// change what you need (`#[non_exhaustive]`: new settings are not a breaking change).
///
/// ```
/// use auth_layer::jwt::JwksConfig;
/// use std::time::Duration;
/// let config = JwksConfig::default().refetch_interval(Duration::from_secs(30));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
#[must_use]
pub struct JwksConfig {
    /// Lower bound of the cache lifetime (a provider's `max-age=0` is raised to it).
    pub min_ttl: Duration,
    /// Upper bound of the cache lifetime.
    pub max_ttl: Duration,
    /// Lifetime when the response has no `max-age`.
    pub default_ttl: Duration,
    /// At most one refetch per this interval because of unknown `kid`s or failures.
    pub refetch_interval: Duration,
    /// Whole-fetch timeout (connect, headers, body).
    pub timeout: Duration,
    /// Largest accepted response body.
    pub max_body: usize,
    /// Algorithms an RSA JWK without `alg` may verify (many providers omit `alg`).
    pub rsa_default_algorithms: &'static [Algorithm],
    /// Also fetch over plain `http` (default `false`). Keys fetched without TLS can be
    /// replaced by anyone on the path, so this is for tests and loopback only. Even with it, a
    /// discovery document of an `https` issuer may not name an `http` `jwks_uri`.
    pub allow_http: bool,
}

impl JwksConfig {
    /// Lower bound of the cache lifetime.
    pub fn min_ttl(mut self, min_ttl: Duration) -> Self {
        self.min_ttl = min_ttl;
        self
    }

    /// Upper bound of the cache lifetime.
    pub fn max_ttl(mut self, max_ttl: Duration) -> Self {
        self.max_ttl = max_ttl;
        self
    }

    /// Lifetime when the response has no `max-age`.
    pub fn default_ttl(mut self, default_ttl: Duration) -> Self {
        self.default_ttl = default_ttl;
        self
    }

    /// At most one refetch per this interval because of unknown `kid`s or failures.
    pub fn refetch_interval(mut self, refetch_interval: Duration) -> Self {
        self.refetch_interval = refetch_interval;
        self
    }

    /// Whole-fetch timeout (connect, headers, body).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest accepted response body.
    pub fn max_body(mut self, max_body: usize) -> Self {
        self.max_body = max_body;
        self
    }

    /// Algorithms an RSA JWK without `alg` may verify.
    pub fn rsa_default_algorithms(mut self, rsa_default_algorithms: &'static [Algorithm]) -> Self {
        self.rsa_default_algorithms = rsa_default_algorithms;
        self
    }

    /// Also fetch over plain `http`: for tests and loopback only.
    pub fn allow_http(mut self, allow_http: bool) -> Self {
        self.allow_http = allow_http;
        self
    }

    /// Refuse settings that contradict each other (checked when a source is built).
    pub fn validate(&self) -> Result<(), ConfigError> {
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

impl Default for JwksConfig {
    fn default() -> Self {
        JwksConfig {
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            default_ttl: Duration::from_secs(600),
            refetch_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            max_body: 256 * 1024,
            rsa_default_algorithms: &[Algorithm::RS256],
            allow_http: false,
        }
    }
}

/// A parsed key set. Several keys may share a `kid` (providers publish one per algorithm
/// during a migration); a token's key is chosen by `kid` and `alg`.
struct KeySet {
    by_kid: HashMap<String, Vec<Arc<JwtKey>>>,
    only: Option<Arc<JwtKey>>,
    /// Every key with the JWK it came from. A key that is in the next fetch unchanged keeps
    /// its `Arc`, so tokens it verified stay in the verified-token cache; a key that left
    /// the set is dropped, and with it every cached verdict it gave.
    /// Keyed by the JWK's JSON as `serde_json` writes it (members sorted), so a provider that
    /// reorders members does not look like a rotation.
    all: Vec<(String, Arc<JwtKey>)>,
}

impl KeySet {
    fn get(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<JwtKey>> {
        match kid {
            Some(kid) => {
                let keys = self.by_kid.get(kid)?;
                // The key for this algorithm; else any, so the refusal names the algorithm.
                keys.iter()
                    .find(|k| k.allows(alg))
                    .or_else(|| keys.first())
                    .cloned()
            }
            None => self.only.clone(),
        }
    }

    fn len(&self) -> usize {
        self.all.len()
    }
}

type FetchOutcome = Result<(), JwksError>;

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    /// When the cached set should be refreshed (in the background).
    refresh_at: Option<Instant>,
    /// When the last fetch was started (paces retries while nothing was ever fetched).
    last_attempt: Option<Instant>,
    /// When an unknown `kid` last caused a refetch (the rate limit for unknown kids; scheduled
    /// and startup fetches do not count, or a rotation right after startup would be refused).
    last_kid_refetch: Option<Instant>,
    /// The fetch under way, which every lookup that needs keys joins.
    inflight: SingleFlight<FetchOutcome>,
}

struct Inner {
    uri: Uri,
    http: JwksHttp,
    config: JwksConfig,
    state: Mutex<State>,
    fetches: AtomicU64,
    failures: AtomicU64,
}

/// A [`KeySource`] backed by a JWKS URL; cheap to clone (shared cache).
#[derive(Clone)]
pub struct JwksKeySource {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwksKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksKeySource")
            .field("uri", &self.inner.uri)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

/// hyper-util's client with rustls (system roots) for https and plain http.
fn default_http(config: &JwksConfig) -> Result<JwksHttp, JwksError> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    // The URL check already refuses `http`; the connector refuses it again, so a redirect or
    // a custom URL path cannot reach a plain-text connection.
    let https = portcullis_wire::https::connector(config.allow_http, config.timeout)
        .map_err(|e| JwksError::Network(e.to_string()))?;
    Ok(buffered(
        Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(https),
        config.max_body,
    ))
}

fn parse_url(url: &str, allow_http: bool) -> Result<Uri, JwksError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| JwksError::InvalidUrl(url.to_owned()))?;
    match uri.scheme_str() {
        _ if uri.authority().is_none() => Err(JwksError::InvalidUrl(url.to_owned())),
        Some("https") => Ok(uri),
        Some("http") if allow_http => Ok(uri),
        Some("http") => Err(JwksError::InsecureUrl(url.to_owned())),
        _ => Err(JwksError::InvalidUrl(url.to_owned())),
    }
}

/// Builds a [`JwksKeySource`]: settings, your own HTTP client, then a URL or an issuer.
///
/// # Example
/// ```
/// use auth_layer::jwt::{JwksConfig, JwksKeySource};
/// use std::time::Duration;
///
/// let keys = JwksKeySource::builder()
///     .config(JwksConfig::default().timeout(Duration::from_secs(2)))
///     .build("https://login.example.com/.well-known/jwks.json")
///     .unwrap();
/// # drop(keys);
/// ```
#[derive(Default)]
#[must_use]
pub struct JwksBuilder {
    config: JwksConfig,
    http: Option<Box<dyn FnOnce(usize) -> JwksHttp + Send>>,
}

impl fmt::Debug for JwksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksBuilder")
            .field("config", &self.config)
            .field("custom_http", &self.http.is_some())
            .finish()
    }
}

impl JwksBuilder {
    /// Timeouts, limits, cache lifetimes and the `http` allowance.
    pub fn config(mut self, config: JwksConfig) -> Self {
        self.config = config;
        self
    }

    /// Fetch through your own HTTP client (a proxy-aware one, say) instead of hyper-util with
    /// rustls. Response bodies over [`JwksConfig::max_body`] are refused while they are read.
    pub fn http_client(mut self, http: impl HttpClient<Empty<Bytes>>) -> Self {
        self.http = Some(Box::new(move |max_body| buffered(http, max_body)));
        self
    }

    fn into_parts(self) -> Result<(JwksConfig, JwksHttp), JwksError> {
        self.config.validate()?;
        let http = match self.http {
            Some(make) => make(self.config.max_body),
            None => default_http(&self.config)?,
        };
        Ok((self.config, http))
    }

    /// A source for the JWK Set at `url`, fetched on first use.
    pub fn build(self, url: &str) -> Result<JwksKeySource, JwksError> {
        let (config, http) = self.into_parts()?;
        JwksKeySource::from_parts(url, config, http)
    }

    /// OpenID Connect discovery, as [`JwksKeySource::discover`].
    pub async fn discover(self, issuer: &str) -> Result<JwksKeySource, JwksError> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let (config, http) = self.into_parts()?;
        let url = portcullis_wire::well_known::openid_configuration_url(issuer);
        let discovery_uri = parse_url(&url, config.allow_http)?;
        let res = get(&http, &discovery_uri, &config).await?;
        let doc: Discovery = serde_json::from_slice(res.body())
            .map_err(|e| JwksError::InvalidDocument(e.to_string()))?;
        if doc.issuer != issuer {
            return Err(JwksError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: doc.issuer,
            });
        }
        // Never downgrade: keys for an https issuer come over https.
        if discovery_uri.scheme_str() == Some("https") && !doc.jwks_uri.starts_with("https://") {
            return Err(JwksError::InsecureUrl(doc.jwks_uri));
        }
        let source = JwksKeySource::from_parts(&doc.jwks_uri, config, http)?;
        source.refresh().await?;
        Ok(source)
    }
}

/// GET `uri`, bounded in time and size.
async fn get(
    http: &JwksHttp,
    uri: &Uri,
    config: &JwksConfig,
) -> Result<Response<Bytes>, JwksError> {
    let mut req = Request::new(Empty::new());
    *req.uri_mut() = uri.clone();
    req.headers_mut()
        .insert(ACCEPT, HeaderValue::from_static("application/json"));
    let limit = config.max_body;
    let fetch = async {
        let res = http.clone().oneshot(req).await.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                JwksError::TooLarge(limit)
            } else {
                JwksError::Network(e.to_string())
            }
        })?;
        if !res.status().is_success() {
            return Err(JwksError::Status(res.status()));
        }
        // Every client, custom ones included, is wrapped by `buffered` with this limit; the
        // check states the invariant the parser relies on.
        if res.body().len() > limit {
            return Err(JwksError::TooLarge(limit));
        }
        Ok(res)
    };
    tokio::time::timeout(config.timeout, fetch)
        .await
        .map_err(|_| JwksError::Timeout(config.timeout))?
}

/// `max-age` of a `Cache-Control` header, if any.
fn max_age(res: &Response<Bytes>) -> Option<Duration> {
    let cc = res.headers().get(CACHE_CONTROL)?.to_str().ok()?;
    cc.split(',').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

/// The most JWKs read from one document. Providers publish a handful; a document with more
/// would cost a key parse each (and an O(n²) duplicate check per `kid`) on every fetch.
const MAX_KEYS: usize = 256;

/// Parse a JWK Set, keeping every public key usable for signature verification and skipping
/// the rest. Keys unchanged since `previous` keep their identity.
fn parse_key_set(
    body: &[u8],
    config: &JwksConfig,
    previous: Option<&KeySet>,
) -> Result<KeySet, JwksError> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc =
        serde_json::from_slice(body).map_err(|e| JwksError::InvalidDocument(e.to_string()))?;
    if doc.keys.len() > MAX_KEYS {
        tracing::warn!(target: "portcullis::jwks", keys = doc.keys.len(), "the key set has more JWKs than are read; the first {MAX_KEYS} are used");
    }
    let kept: HashMap<&str, &Arc<JwtKey>> = previous
        .map(|p| p.all.iter().map(|(j, k)| (j.as_str(), k)).collect())
        .unwrap_or_default();
    let mut by_kid: HashMap<String, Vec<Arc<JwtKey>>> = HashMap::new();
    let mut all: Vec<(String, Arc<JwtKey>)> = Vec::new();
    for value in doc.keys.into_iter().take(MAX_KEYS) {
        let json = value.to_string();
        let key = match kept.get(json.as_str()) {
            Some(key) => Arc::clone(key),
            None => match parse_public_jwk(&value, config) {
                Some(key) => Arc::new(key),
                None => continue,
            },
        };
        if let Some(kid) = key.kid() {
            let same_kid = by_kid.entry(kid.to_owned()).or_default();
            if same_kid
                .iter()
                .any(|k| k.algorithms().iter().any(|a| key.allows(*a)))
            {
                tracing::debug!(target: "portcullis::jwks", kid, "skipping a JWK whose kid and algorithm repeat an earlier key; the first is kept");
                continue;
            }
            same_kid.push(key.clone());
        }
        all.push((json, key));
    }
    if all.is_empty() {
        return Err(JwksError::NoUsableKeys);
    }
    let only = (all.len() == 1).then(|| all[0].1.clone());
    Ok(KeySet { by_kid, only, all })
}

/// One JWK of a fetched set as a public verification key, or `None` (with a debug event) when
/// it is not one this layer may use.
fn parse_public_jwk(value: &serde_json::Value, config: &JwksConfig) -> Option<JwtKey> {
    let Ok(jwk) = serde_json::from_value::<Jwk>(value.clone()) else {
        tracing::debug!(target: "portcullis::jwks", "skipping a JWK that does not parse");
        return None;
    };
    // RFC 7517 lets a client ignore keys it does not use. A symmetric key in a published
    // document is a secret anyone can read: trusting it would let anyone mint tokens.
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        tracing::debug!(target: "portcullis::jwks", kid = jwk.common.key_id.as_deref(), "skipping a symmetric (oct) JWK: a fetched key set yields public keys only");
        return None;
    }
    let key = match JwtKey::from_jwk(&jwk) {
        Ok(k) => k,
        Err(_)
            if jwk.common.key_algorithm.is_none()
                && matches!(jwk.algorithm, AlgorithmParameters::RSA(_)) =>
        {
            let dk = jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?;
            let k = JwtKey::new(dk, config.rsa_default_algorithms).ok()?;
            match &jwk.common.key_id {
                Some(kid) => k.with_kid(kid.clone()),
                None => k,
            }
        }
        Err(e) => {
            tracing::debug!(target: "portcullis::jwks", kid = jwk.common.key_id.as_deref(), error = %e, "skipping an unusable JWK");
            return None;
        }
    };
    // Belt and braces: whatever the JWK claimed, no HMAC algorithm comes out of a fetched set.
    if key.is_symmetric() {
        tracing::debug!(target: "portcullis::jwks", kid = jwk.common.key_id.as_deref(), "skipping a symmetric JWK");
        return None;
    }
    Some(key)
}

impl JwksKeySource {
    /// A source for the JWK Set at `url`, fetched on first use with hyper-util and rustls.
    pub fn new(url: &str) -> Result<Self, JwksError> {
        JwksKeySource::builder().build(url)
    }

    /// A source with settings, a custom HTTP client, or OpenID Connect discovery.
    pub fn builder() -> JwksBuilder {
        JwksBuilder::default()
    }

    fn from_parts(url: &str, config: JwksConfig, http: JwksHttp) -> Result<Self, JwksError> {
        config.validate()?;
        Ok(JwksKeySource {
            inner: Arc::new(Inner {
                uri: parse_url(url, config.allow_http)?,
                http,
                config,
                state: Mutex::new(State::default()),
                fetches: AtomicU64::new(0),
                failures: AtomicU64::new(0),
            }),
        })
    }

    /// OpenID Connect discovery: read `{issuer}/.well-known/openid-configuration`, check that it
    /// names the same `issuer`, and use its `jwks_uri`. The keys are fetched once before this
    /// returns, so a misconfiguration fails at startup.
    ///
    /// The issuer and the `jwks_uri` must be `https` (see [`JwksConfig::allow_http`]); an
    /// `https` issuer naming an `http` `jwks_uri` is refused whatever the settings say.
    pub async fn discover(issuer: &str) -> Result<Self, JwksError> {
        JwksKeySource::builder().discover(issuer).await
    }

    /// Fetch the key set now (at startup, say), waiting for the result.
    pub async fn refresh(&self) -> Result<(), JwksError> {
        let rx = {
            let mut st = self.inner.lock();
            self.start_or_join(&mut st)
        };
        wait(rx).await
    }

    /// How many fetches were started.
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// How many fetches failed.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    fn start_or_join(&self, st: &mut State) -> Waiter<FetchOutcome> {
        if let Some(waiter) = st.inflight.join() {
            return waiter;
        }
        let (leader, waiter) = st.inflight.start();
        st.last_attempt = Some(Instant::now());
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let task = FetchTask {
            inner: self.inner.clone(),
            leader: Some(leader),
        };
        // Its own task: a request that gives up waiting does not cancel it for the others.
        tokio::spawn(task.run());
        waiter
    }

    fn retry_after(&self, st: &State) -> Duration {
        let interval = self.inner.config.refetch_interval;
        match st.last_attempt {
            Some(t) => interval
                .saturating_sub(t.elapsed())
                .max(Duration::from_secs(1)),
            None => interval,
        }
    }
}

/// One fetch, in its own task. If the task ends without finishing (a panic, a dropped
/// runtime), `Drop` frees the in-flight slot: a slot left behind would make every later lookup
/// join a fetch nobody runs, or start one past the unknown-kid rate limit.
struct FetchTask {
    inner: Arc<Inner>,
    leader: Option<Leader<FetchOutcome>>,
}

impl FetchTask {
    async fn run(mut self) {
        let Some(leader) = &self.leader else { return };
        let outcome = self.inner.fetch(leader).await;
        if let Some(leader) = self.leader.take() {
            leader.land(outcome);
        }
    }
}

impl Drop for FetchTask {
    fn drop(&mut self) {
        if let Some(leader) = self.leader.take()
            && self.inner.lock().inflight.end(&leader)
        {
            // Ended without an outcome: count it as the failure it is.
            self.inner.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn fetch(&self, leader: &Leader<FetchOutcome>) -> FetchOutcome {
        let previous = self.lock().keys.clone();
        let result = async {
            let res = get(&self.http, &self.uri, &self.config).await?;
            // max then min, not clamp: clamp panics on min > max (validated, but this runs on
            // network input in a task).
            let ttl = max_age(&res)
                .unwrap_or(self.config.default_ttl)
                .max(self.config.min_ttl)
                .min(self.config.max_ttl);
            let set = parse_key_set(res.body(), &self.config, previous.as_deref())?;
            Ok((set, ttl))
        }
        .await;
        let mut st = self.lock();
        st.inflight.end(leader);
        match result {
            Ok((set, ttl)) => {
                tracing::debug!(target: "portcullis::jwks", uri = %self.uri, keys = set.len(), ttl_secs = ttl.as_secs(), "key set fetched");
                st.keys = Some(Arc::new(set));
                // Refresh in the background once 80 % of the lifetime has passed.
                st.refresh_at = Instant::now().checked_add(ttl.mul_f32(0.8));
                Ok(())
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if st.keys.is_some() {
                    tracing::warn!(target: "portcullis::jwks", uri = %self.uri, error = %e, "key set refresh failed; keeping the cached keys");
                    // Try again no sooner than the refetch interval.
                    st.refresh_at = Instant::now().checked_add(self.config.refetch_interval);
                } else {
                    tracing::warn!(target: "portcullis::jwks", uri = %self.uri, error = %e, "key set fetch failed");
                }
                Err(e)
            }
        }
    }
}

async fn wait(waiter: Waiter<FetchOutcome>) -> FetchOutcome {
    waiter
        .wait()
        .await
        .unwrap_or_else(|| Err(JwksError::Network("fetch task ended".into())))
}

impl KeySource for JwksKeySource {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        let mut st = self.inner.lock();
        let now = Instant::now();
        if let Some(keys) = &st.keys {
            if let Some(key) = keys.get(kid, alg) {
                if st.refresh_at.is_some_and(|t| now >= t) && !st.inflight.is_running() {
                    // Stale soon: refresh in the background; this request does not wait.
                    drop(self.start_or_join(&mut st));
                }
                return KeyLookup::Found(key);
            }
            // Unknown kid: refetch at most once per interval (joining one under way).
            let recent = st
                .last_kid_refetch
                .is_some_and(|t| now.duration_since(t) < self.inner.config.refetch_interval);
            if !st.inflight.is_running() {
                if recent {
                    return KeyLookup::Unknown;
                }
                st.last_kid_refetch = Some(now);
            }
        } else if !st.inflight.is_running()
            && st
                .last_attempt
                .is_some_and(|t| now.duration_since(t) < self.inner.config.refetch_interval)
        {
            // Never fetched successfully and the last try was just now: do not hammer.
            let retry = self.retry_after(&st);
            return KeyLookup::Pending(Box::pin(async move {
                Err(AuthError::key_set_unavailable(retry))
            }));
        }
        let rx = self.start_or_join(&mut st);
        drop(st);
        let this = self.clone();
        let kid = kid.map(str::to_owned);
        KeyLookup::Pending(Box::pin(async move {
            let fetched = wait(rx).await;
            let st = this.inner.lock();
            if let Some(key) = st.keys.as_ref().and_then(|k| k.get(kid.as_deref(), alg)) {
                return Ok(key);
            }
            match fetched {
                // The provider answered and the key is not there.
                Ok(()) => Err(AuthError::new(ErrorCode::UnknownKey)),
                // The key may exist; we cannot tell. The server's fault, not the client's.
                Err(_) => Err(AuthError::key_set_unavailable(this.retry_after(&st))),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_keep_usable_keys_and_skip_the_rest() {
        let cfg = JwksConfig::default();
        let doc = br#"{"keys":[
            {"kty":"RSA","kid":"r1","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"},
            {"kty":"EC","kid":"e1","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","alg":"ES256"},
            {"kty":"EC","kid":"bad-curve","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","alg":"ES384"},
            {"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB","alg":"RSA-OAEP"},
            {"kty":"oct","kid":"no-alg","k":"c2VjcmV0"},
            {"kty":"weird"},
            "not even an object"
        ]}"#;
        let set = parse_key_set(doc, &cfg, None).unwrap();
        let mut kids: Vec<_> = set.by_kid.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["e1", "r1"]);
        assert_eq!(set.by_kid["r1"][0].algorithms(), [Algorithm::RS256]);
    }

    const RSA_N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    /// A published document is public: a symmetric key in it is skipped, with or without an
    /// `alg`, and the public keys beside it still work.
    #[test]
    fn symmetric_keys_in_a_fetched_set_are_skipped() {
        let cfg = JwksConfig::default();
        let doc = format!(
            r#"{{"keys":[
            {{"kty":"oct","kid":"hs","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0"}},
            {{"kty":"oct","kid":"hs2","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0"}},
            {{"kty":"RSA","kid":"r1","alg":"RS256","n":"{RSA_N}","e":"AQAB"}}
        ]}}"#
        );
        let set = parse_key_set(doc.as_bytes(), &cfg, None).unwrap();
        assert!(set.get(Some("hs"), Algorithm::HS256).is_none());
        assert!(set.get(Some("hs2"), Algorithm::HS256).is_none());
        assert!(set.get(Some("r1"), Algorithm::RS256).is_some());
        assert!(set.all.iter().all(|(_, k)| !k.is_symmetric()));
        let only_oct = br#"{"keys":[{"kty":"oct","kid":"hs","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0"}]}"#;
        assert_eq!(
            parse_key_set(only_oct, &cfg, None).err(),
            Some(JwksError::NoUsableKeys)
        );
    }

    /// Two keys under one `kid` for different algorithms are both kept and chosen by `alg`; a
    /// second key for the same `kid` and algorithm does not shadow the first.
    #[test]
    fn keys_sharing_a_kid_are_chosen_by_algorithm() {
        let cfg = JwksConfig::default();
        let doc = format!(
            r#"{{"keys":[
            {{"kty":"RSA","kid":"k","alg":"RS256","n":"{RSA_N}","e":"AQAB"}},
            {{"kty":"EC","kid":"k","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","alg":"ES256"}},
            {{"kty":"RSA","kid":"k","alg":"PS256","n":"{RSA_N}","e":"AQAB"}},
            {{"kty":"EC","kid":"k","use":"sig","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","alg":"ES256"}}
        ]}}"#
        );
        let set = parse_key_set(doc.as_bytes(), &cfg, None).unwrap();
        assert_eq!(
            set.by_kid["k"].len(),
            3,
            "the repeated ES256 key is skipped"
        );
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::PS256] {
            assert!(set.get(Some("k"), alg).unwrap().allows(alg), "{alg:?}");
        }
        let es = set.get(Some("k"), Algorithm::ES256).unwrap();
        assert!(
            Arc::ptr_eq(&es, &set.by_kid["k"][1]),
            "the first ES256 key wins"
        );
        // An algorithm no key allows still finds a key, whose allowlist then refuses it.
        assert!(
            !set.get(Some("k"), Algorithm::ES384)
                .unwrap()
                .allows(Algorithm::ES384)
        );
    }

    /// A document of thousands of keys reads only the first `MAX_KEYS`.
    #[test]
    fn a_huge_key_set_is_read_up_to_the_bound() {
        let key =
            format!(r#"{{"kty":"RSA","alg":"RS256","n":"{RSA_N}","e":"AQAB","kid":"k{{}}"}}"#);
        let keys: Vec<String> = (0..1000)
            .map(|i| key.replace("{}", &i.to_string()))
            .collect();
        let doc = format!(r#"{{"keys":[{}]}}"#, keys.join(","));
        let set = parse_key_set(doc.as_bytes(), &JwksConfig::default(), None).unwrap();
        assert_eq!(set.len(), MAX_KEYS);
    }

    /// A key that is in the next fetch unchanged (members reordered or not) keeps its identity
    /// (its cached verdicts stay); a changed key is a new one.
    #[test]
    fn unchanged_keys_keep_their_identity_across_fetches() {
        let cfg = JwksConfig::default();
        let v1 = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"a","alg":"RS256","n":"{RSA_N}","e":"AQAB"}}]}}"#
        );
        let v2 = format!(
            r#"{{"keys":[{{"e":"AQAB","n":"{RSA_N}","alg":"RS256","kid":"a","kty":"RSA"}},{{"kty":"RSA","kid":"b","alg":"RS256","n":"{RSA_N}","e":"AQAB"}}]}}"#
        );
        let first = parse_key_set(v1.as_bytes(), &cfg, None).unwrap();
        let second = parse_key_set(v2.as_bytes(), &cfg, Some(&first)).unwrap();
        assert!(Arc::ptr_eq(&first.by_kid["a"][0], &second.by_kid["a"][0]));
        assert!(!Arc::ptr_eq(&first.by_kid["a"][0], &second.by_kid["b"][0]));
    }

    #[test]
    fn contradictory_settings_and_plain_http_are_refused_when_built() {
        let http = |config: JwksConfig| {
            JwksKeySource::builder()
                .config(config)
                .http_client(tower::service_fn(|_req: Request<Empty<Bytes>>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new()))
                }))
        };
        let bad = JwksConfig {
            min_ttl: Duration::from_secs(600),
            max_ttl: Duration::from_secs(60),
            ..JwksConfig::default()
        };
        assert!(matches!(
            http(bad).build("https://id.test/jwks"),
            Err(JwksError::Config(ConfigError::KeySetTtlRange))
        ));
        assert!(matches!(
            http(JwksConfig::default()).build("http://id.test/jwks"),
            Err(JwksError::InsecureUrl(_))
        ));
        let loopback = JwksConfig {
            allow_http: true,
            ..JwksConfig::default()
        };
        assert!(http(loopback).build("http://127.0.0.1:1/jwks").is_ok());
        assert!(
            http(JwksConfig::default())
                .build("https://id.test/jwks")
                .is_ok()
        );
    }

    /// A fetch task that dies (here: the HTTP client panics) must not leave its in-flight marker
    /// behind, or every lookup would start another fetch past the rate limit.
    #[tokio::test]
    async fn a_fetch_task_that_panics_still_clears_its_marker_and_keeps_the_rate_limit() {
        let http = tower::service_fn(|_req: Request<Empty<Bytes>>| async {
            if true {
                panic!("HTTP client bug");
            }
            Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new()))
        });
        let cfg = JwksConfig {
            refetch_interval: Duration::from_secs(60),
            ..JwksConfig::default()
        };
        let source = JwksKeySource::builder()
            .config(cfg)
            .http_client(http)
            .build("https://id.test/jwks")
            .unwrap();
        assert!(source.refresh().await.is_err());
        for _ in 0..20 {
            match source.lookup(Some("k"), Algorithm::RS256) {
                KeyLookup::Pending(f) => {
                    let e = f.await.err().unwrap();
                    assert_eq!(e.code(), ErrorCode::KeySetUnavailable);
                }
                _ => panic!("no key can be known"),
            }
        }
        assert_eq!(
            source.fetches(),
            1,
            "the dead fetch is not restarted per lookup"
        );
        assert_eq!(source.failures(), 1);
        assert!(!source.inner.lock().inflight.is_running());
    }

    #[test]
    fn garbage_is_a_typed_error() {
        let cfg = JwksConfig::default();
        for doc in [
            &b"<html>"[..],
            b"{\"keys\": [",
            b"{\"keys\": 7}",
            b"{}",
            b"{\"keys\":[]}",
            b"{\"keys\":[{\"kty\":\"RSA\"}]}",
        ] {
            assert!(
                parse_key_set(doc, &cfg, None).is_err(),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    proptest::proptest! {
        /// Any bytes, and JSON key sets of arbitrary members: a typed error or public keys,
        /// never a panic and never an HMAC key.
        #[test]
        fn key_set_parser_never_panics_nor_yields_a_symmetric_key(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            kty in "RSA|EC|OKP|oct|",
            alg in "HS256|RS256|ES256|EdDSA|none|",
            member in "[ -~]{0,40}",
        ) {
            let cfg = JwksConfig::default();
            let _ = parse_key_set(&body, &cfg, None);
            let doc = serde_json::json!({"keys": [
                {"kty": kty, "alg": alg, "kid": "k", "k": member, "n": member, "e": "AQAB",
                 "crv": "P-256", "x": member, "y": member},
            ]});
            if let Ok(set) = parse_key_set(doc.to_string().as_bytes(), &cfg, None) {
                proptest::prop_assert!(set.all.iter().all(|(_, k)| !k.is_symmetric()));
            }
        }
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        let res = |v: &'static str| {
            let mut r = Response::new(Bytes::new());
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static(v));
            r
        };
        assert_eq!(
            max_age(&res("public, max-age=300")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age(&res("no-cache")), None);
        assert_eq!(max_age(&res("max-age=abc")), None);
    }
}
