//! [`RefreshLayer`] and its builder: configuration only, validated when the layer is built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use tower::Layer;

use crate::credential::Credential;
use crate::credential_cell::{Cell, Timing};
use crate::decision::{Rules, refresh_on_401};
use crate::error::BuildError;
use crate::handle::CredentialHandle;
use crate::redirect::ScopedRedirect;
use crate::service::RefreshService;
use crate::source::credential_source::CredentialSource;
use crate::state::Shared;
use portcullis_wire::Origin;

/// How long before expiry a credential is refreshed unless
/// [`skew`](RefreshLayerBuilder::skew) says otherwise.
const DEFAULT_SKEW: Duration = Duration::from_secs(30);

/// How long a request waits for a refresh unless
/// [`refresh_timeout`](RefreshLayerBuilder::refresh_timeout) says otherwise.
const DEFAULT_REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a token request may take unless
/// [`refresh_exchange_limit`](RefreshLayerBuilder::refresh_exchange_limit) says otherwise:
/// well above a slow token endpoint, since abandoning one may lose a rotated refresh token.
const DEFAULT_EXCHANGE_LIMIT: Duration = Duration::from_secs(120);
/// What a source's [`interaction_time`](crate::CredentialSource::interaction_time) is given on top,
/// for the network exchanges around the person's part.
const INTERACTION_MARGIN: Duration = Duration::from_secs(60);

/// The first wait after a failed refresh unless [`backoff`](RefreshLayerBuilder::backoff)
/// says otherwise.
const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(500);

/// The longest wait after failed refreshes unless [`backoff`](RefreshLayerBuilder::backoff)
/// says otherwise.
const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The largest request body buffered for the one retry unless
/// [`max_replay_body`](RefreshLayerBuilder::max_replay_body) says otherwise.
const DEFAULT_MAX_REPLAY_BODY: usize = 64 * 1024;

/// Injects, refreshes and retries; see the [crate docs](crate).
///
/// Clones (and every service made from them) share one credential cell.
#[derive(Clone)]
#[must_use]
pub struct RefreshLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for RefreshLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshLayer")
            .field("scope", &self.shared.scope)
            .finish_non_exhaustive()
    }
}

impl RefreshLayer {
    /// Start configuring a layer whose credentials come from `source`.
    pub fn builder(source: impl CredentialSource) -> RefreshLayerBuilder {
        RefreshLayerBuilder {
            source: Arc::new(source),
            initial: None,
            origins: Vec::new(),
            timing: Timing {
                skew: DEFAULT_SKEW,
                timeout: DEFAULT_REFRESH_TIMEOUT,
                exchange_limit: DEFAULT_EXCHANGE_LIMIT,
                backoff_initial: DEFAULT_BACKOFF_INITIAL,
                backoff_max: DEFAULT_BACKOFF_MAX,
            },
            keep_existing: true,
            max_replay: DEFAULT_MAX_REPLAY_BODY,
            rules: Rules {
                predicate: Arc::new(refresh_on_401),
                step_up: false,
                revoked_token: false,
                retry_methods: None,
            },
            report: true,
        }
    }

    /// A handle on the shared credential cell.
    pub fn handle(&self) -> CredentialHandle {
        CredentialHandle {
            cell: self.shared.cell.clone(),
        }
    }

    /// A `tower_http::follow_redirect` policy that keeps this layer's credential inside its
    /// origins (see [`ScopedRedirect`]). Inside the layer it also tells the layer whether a
    /// redirect's last hop still carried the credential, so a 401 there refreshes only when it
    /// did.
    pub fn redirect_policy(&self) -> ScopedRedirect {
        self.shared
            .cell
            .tracks_redirects
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.outer_redirect_policy()
    }

    /// The policy for redirects followed *outside* the layer only (the reqwest adapter's):
    /// every hop passes through the layer as a request of its own, so the layer keeps no
    /// trail of hops for it (no per-request allocation).
    pub(crate) fn outer_redirect_policy(&self) -> ScopedRedirect {
        ScopedRedirect::new(
            Default::default(),
            self.shared.scope.clone(),
            self.shared.cell.clone(),
        )
    }
}

/// Configures a [`RefreshLayer`]; see [`RefreshLayer::builder`].
#[must_use]
pub struct RefreshLayerBuilder {
    source: Arc<dyn CredentialSource>,
    initial: Option<Credential>,
    origins: Vec<String>,
    timing: Timing,
    keep_existing: bool,
    max_replay: usize,
    rules: Rules,
    report: bool,
}

impl fmt::Debug for RefreshLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshLayerBuilder")
            .field("origins", &self.origins)
            .field("initial", &self.initial)
            .field("timing", &self.timing)
            .field("keep_existing", &self.keep_existing)
            .field("max_replay", &self.max_replay)
            .field("retry_methods", &self.rules.retry_methods)
            .finish_non_exhaustive()
    }
}

impl RefreshLayerBuilder {
    /// Send the credential to this origin (`scheme://host[:port]`); may be given several times.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Start with this credential instead of fetching one on the first request.
    pub fn initial_credential(mut self, credential: Credential) -> Self {
        self.initial = Some(credential);
        self
    }

    /// Refresh a credential this long before it expires (default 30 s), but never earlier
    /// than half its lifetime: a token valid for 10 s is refreshed 4–5 s before it expires, not
    /// before every request. Up to a fifth of the window is taken off at random per
    /// credential, so replicas do not refresh in step.
    pub fn skew(mut self, skew: Duration) -> Self {
        self.timing.skew = skew;
        self
    }

    /// How long a request waits for a refresh before it fails with
    /// [`RefreshError::Timeout`](crate::RefreshError::Timeout) (default 30 s). The token request itself goes on: the server
    /// may have rotated the refresh token already, and its answer is stored when it comes.
    pub fn refresh_timeout(mut self, timeout: Duration) -> Self {
        self.timing.timeout = timeout;
        self
    }

    /// How long the token request itself may take before it is abandoned (default 120 s).
    /// Abandoning it may lose a refresh token the server rotated meanwhile, so keep this well
    /// above the token endpoint's slowest answers.
    pub fn refresh_exchange_limit(mut self, limit: Duration) -> Self {
        self.timing.exchange_limit = limit;
        self
    }

    /// After a failed refresh wait `initial`, doubling per further failure up to `max`
    /// (defaults 0.5 s and 30 s).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.timing.backoff_initial = initial;
        self.timing.backoff_max = max;
        self
    }

    /// Buffer request bodies up to this size so they can be sent again (default 64 KiB).
    /// Larger or streaming bodies are sent once; their 401 is returned as it is.
    pub fn max_replay_body(mut self, bytes: usize) -> Self {
        self.max_replay = bytes;
        self
    }

    /// Replace a credential the request already carries (default: leave such requests alone).
    pub fn replace_existing(mut self, replace: bool) -> Self {
        self.keep_existing = !replace;
        self
    }

    /// Retry after a refreshable 401 only requests with these methods (default: every method;
    /// see [the crate docs](crate#which-requests-are-retried)). A refreshable 401 to another
    /// method is returned as it is, and the credential is refreshed in the background for
    /// the requests that follow.
    pub fn retry_only(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.rules.retry_methods = Some(methods.into_iter().collect());
        self
    }

    /// Decide yourself which responses refresh (default [`refresh_on_401`]).
    pub fn refresh_if(
        mut self,
        predicate: impl Fn(StatusCode, &HeaderMap) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.rules.predicate = Arc::new(predicate);
        self
    }

    /// Put a [`RefreshOutcome`](crate::RefreshOutcome) into every response (default `true`). It costs an allocation
    /// per response (the response's extension map); turn it off where that matters and the
    /// `portcullis::client` tracing events are enough. [`AuthFailure`](crate::AuthFailure) on 401/403 responses
    /// and [`RetriedAfter`](crate::RetriedAfter) on retried ones are added either way.
    pub fn report_outcome(mut self, report: bool) -> Self {
        self.report = report;
        self
    }

    /// Step-up (default off): a `401` or `403` whose Bearer challenge says
    /// `insufficient_scope` gets one new credential and the request one retry, like a
    /// refreshable `401`. Useful with a source that reads the challenge's `scope` (see
    /// [`CredentialSource::refused`](crate::CredentialSource::refused), as
    /// [`Discovery`](crate::source::discovery::Discovery) does), so the new token carries the scope the server
    /// asked for. The retry limit holds: a second refusal is the final answer.
    pub fn step_up(mut self, enabled: bool) -> Self {
        self.rules.step_up = enabled;
        self
    }

    /// Revoked tokens (default off): a `403` whose problem body (`application/problem+json`,
    /// RFC 9457) has the `code` `token_revoked` gets one new credential and the request one
    /// retry, like a refreshable `401`: for servers that answer a revoked token with `403`
    /// (a Portcullis server answers `401`). The retry limit holds: a second refusal is the
    /// final answer. A `403` with another code, or without a problem body, never refreshes.
    ///
    /// To read the code, the layer reads such a `403`'s body (at most 16 KiB, declared by
    /// its length, within a second): when it is not a revoked token, the `403` is returned
    /// with its body drained, and what it said is in its [`AuthFailure`](crate::AuthFailure)
    /// extension ([`problem`](crate::AuthFailure::problem)). A body that stops before its end
    /// while it is read is [`Error::ResponseBody`](crate::Error::ResponseBody), never a cut
    /// answer. Scopes such a `403`'s challenge names are passed to the source only with
    /// [`step_up`](Self::step_up).
    pub fn refresh_on_revoked_token(mut self, enabled: bool) -> Self {
        self.rules.revoked_token = enabled;
        self
    }

    /// Check the configuration and build.
    pub fn build(mut self) -> Result<RefreshLayer, BuildError> {
        if self.origins.is_empty() {
            return Err(BuildError::NoOrigin);
        }
        if let Some(person) = self.source.interaction_time() {
            // A person signing in is not cut short, nor sent through a second sign-in.
            let enough = person.saturating_add(INTERACTION_MARGIN);
            self.timing.timeout = self.timing.timeout.max(enough);
            self.timing.exchange_limit = self.timing.exchange_limit.max(enough);
        }
        let scope = self
            .origins
            .iter()
            .map(|o| Origin::parse(o))
            .collect::<Result<Arc<[Origin]>, _>>()?;
        Ok(RefreshLayer {
            shared: Arc::new(Shared {
                cell: Arc::new(Cell::new(self.source, self.timing, self.initial)),
                scope,
                keep_existing: self.keep_existing,
                max_replay: self.max_replay,
                rules: self.rules,
                report: self.report,
            }),
        })
    }
}

impl<S> Layer<S> for RefreshLayer {
    type Service = RefreshService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RefreshService::new(inner, self.shared.clone())
    }
}
