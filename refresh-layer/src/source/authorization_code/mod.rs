//! A person signs in: the authorization-code grant with PKCE (RFC 6749 §4.1, RFC 7636,
//! OAuth 2.1), as MCP clients (MCP authorization, 2026-07-28), CLIs and desktop apps need.
//!
//! [`AuthorizationCode`] is a [`CredentialSource`]: put it under a
//! [`RefreshLayer`](crate::RefreshLayer) and the first request that needs a credential
//! starts the sign-in; every other request waits on that one (the layer's single flight).
//!
//! 1. The first request goes without a credential. Its `401` leads to the resource's RFC 9728
//!    metadata and the authorization server it names, as [`discovery`](super::discovery)
//!    does (the same destination rules: `https` off loopback, no internal address named by a
//!    public resource), and that server's metadata must name exactly that issuer.
//! 2. The client is registered there: credentials registered beforehand **for that
//!    issuer** ([`RegisteredClient`]), else a client ID metadata document when the server
//!    supports them, else dynamic registration (RFC 7591). A registration is bound to the
//!    issuer that made it; a resource that moves to another authorization server gets a new
//!    registration and a new sign-in there, and nothing of the old one is sent to it.
//! 3. The server must list `S256` in `code_challenge_methods_supported`. The [`UserAgent`]
//!    takes the person to the authorization URL (PKCE challenge, `state`, RFC 8707
//!    `resource`) and brings back the redirect. Its `state` must be this request's; its RFC
//!    9207 `iss` must be the issuer, as an exact string, and must be there when the server
//!    advertises `authorization_response_iss_parameter_supported` — or when the issuer was
//!    not pinned, unless [`accept_authorization_responses_without_iss`](AuthorizationCodeBuilder::accept_authorization_responses_without_iss)
//!    says otherwise (mix-up). Only then is the code redeemed, once, with the verifier and
//!    the same `resource`.
//! 4. The scope asked for is the challenge's, else the resource's `scopes_supported`, else
//!    none; `offline_access` is added when the authorization server lists it (so a refresh
//!    token comes back). With [`step_up`](crate::RefreshLayerBuilder::step_up), an
//!    `insufficient_scope` refusal signs in again asking for what the token had and what the
//!    challenge names, at most [`max_step_ups`](AuthorizationCodeBuilder::max_step_ups)
//!    times, and never when the challenge names nothing new.
//! 5. Later refreshes use the refresh token (rotated ones replace it). With a
//!    [`store`](AuthorizationCodeBuilder::store) the token set and the registration survive
//!    a restart, and processes sharing the store refresh once between them.
//!
//! Which authorization server a person signs in at is the resource's choice (the person
//! sees it in the browser); no secret of the client's goes there unless it was registered
//! for exactly that issuer. Restrict the servers with
//! [`trust_issuer`](AuthorizationCodeBuilder::trust_issuer).

mod builder;
mod fetch;
mod flow;
#[cfg(feature = "loopback")]
mod loopback;
mod pkce;
mod registration;
mod session;
mod user_agent;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use builder::{AuthorizationCodeBuilder, DEFAULT_SIGN_IN_TIMEOUT};
#[cfg(feature = "loopback")]
pub use loopback::LoopbackBrowser;
pub use registration::RegisteredClient;
pub use user_agent::{
    AuthorizationRequest, AuthorizationResponse, AuthorizeFuture, FollowRedirects, UserAgent,
};

use crate::error::RefreshError;
use crate::failure::AuthFailure;
use crate::source::credential_source::{CredentialSource, FetchFuture};
use crate::source::discovery::finder::Finder;
use crate::source::discovery::metadata::{next_scope, scopes};
use crate::store::{StoredTokens, Versioned};
use registration::Registration;
use session::Persist;

/// Called with the token set whenever it changes (a sign-in, a refresh), and with `None`
/// after a sign-out.
pub type OnChange = Arc<dyn Fn(Option<&StoredTokens>) + Send + Sync>;

/// A [`CredentialSource`] that signs a person in; see the [module docs](self).
///
/// ```no_run
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use portcullis::client::RefreshLayer;
/// use portcullis::client::source::authorization_code::{AuthorizationCode, FollowRedirects};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// // A CLI uses the loopback browser (feature `loopback`); an automated server, this.
/// let agent = FollowRedirects::new("http://127.0.0.1:8976/callback", http.clone());
/// let source = AuthorizationCode::builder("https://mcp.example.com/mcp", agent)
///     .client_name("my-agent")
///     .build(http.clone())?;
/// let layer = RefreshLayer::builder(source)
///     .allow_origin("https://mcp.example.com")
///     .step_up(true)
///     .build()?;
/// # let _ = layer; Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct AuthorizationCode {
    inner: Arc<Inner>,
}

struct Inner {
    finder: Finder,
    registration: Registration,
    user_agent: Arc<dyn UserAgent>,
    /// A scope fixed by the user: wins over what the server says.
    scope: Option<String>,
    offline_access: bool,
    sign_in_timeout: Duration,
    max_step_ups: u32,
    /// At most this many sign-ins (browser round trips) within the window.
    max_sign_ins: (u32, Duration),
    /// Accept authorization responses without RFC 9207 `iss` from an issuer that was not
    /// pinned and does not advertise it (the mix-up risk, named by its opt-in).
    accept_without_iss: bool,
    persist: Option<Persist>,
    on_change: Option<OnChange>,
    cancel: watch::Sender<u64>,
    /// One sign-in at a time, whatever number of layers share this source.
    sign_in_lock: tokio::sync::Mutex<()>,
    /// Held across a sign-in's last epoch check and its write to the store, and across a
    /// sign-out: a sign-out never lands between the two.
    write_lock: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Whether a server has refused us yet: before that, requests go without a credential.
    refused: bool,
    /// `resource_metadata` of the last challenge.
    hint: Option<String>,
    /// The scope the last challenge names (for a step-up: with what the token had).
    challenge_scope: Option<String>,
    /// A refusal came since the last fetch: ask the resource again which server it uses.
    recheck: bool,
    /// A refusal asked for more scope: the next fetch signs in again.
    step_up: bool,
    /// Sign-ins made for more scope since the last one made for another reason.
    step_ups: u32,
    /// The held access token was refused: never hand it out again.
    stale: bool,
    /// The stored set has been read (with a store).
    loaded: bool,
    /// The sign-in's token set, and its version in the store (0 without one).
    session: Option<Versioned>,
    /// When the recent sign-ins started (at most the limit's count).
    sign_ins: VecDeque<Instant>,
    /// Moves on every sign-out: a fetch that started before one stores and uses nothing.
    epoch: u64,
    /// The held set is newer than the stored one (its write failed): the next refresh
    /// presents its refresh token, not the stored one, and stores the result over it.
    unsaved: bool,
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("resource", &self.inner.finder.resource)
            .field("redirect_uri", &self.inner.user_agent.redirect_uri())
            .finish_non_exhaustive()
    }
}

impl AuthorizationCode {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stop a sign-in under way: it ends with [`AuthorizationError::Cancelled`](crate::AuthorizationError::Cancelled) (at once when
    /// the person is in the browser, else when it gets there), and so do the requests waiting
    /// for it. The next request that needs a credential starts a new one.
    pub fn cancel_sign_in(&self) {
        self.inner.cancel.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The token set of the current sign-in, if any (what a store would keep).
    pub fn tokens(&self) -> Option<StoredTokens> {
        self.lock().session.as_ref().map(|s| s.tokens.clone())
    }

    /// Sign out: forget the tokens and the registration, here and in the store. In a process
    /// that goes on using the layer, call [`CredentialHandle::restart`](crate::CredentialHandle::restart)
    /// after it, so the layer drops the access token it holds: the next request then goes
    /// without one, and its `401` starts a new sign-in.
    ///
    /// A sign-in or refresh under way when this is called is cancelled and stores nothing
    /// (its waiting requests get [`RefreshError::Superseded`]).
    pub async fn sign_out(&self) -> Result<(), RefreshError> {
        // Not between a sign-in's check and its write: one of the two comes first, whole.
        let _writing = self.inner.write_lock.lock().await;
        self.forget_here();
        self.cancel_sign_in();
        if let Some(persist) = &self.inner.persist {
            persist.clear().await?;
        }
        Ok(())
    }

    fn forget_here(&self) {
        {
            let mut st = self.lock();
            let (loaded, epoch, sign_ins) = (st.loaded, st.epoch, std::mem::take(&mut st.sign_ins));
            *st = State {
                loaded,
                epoch: epoch.wrapping_add(1),
                // A sign-out does not reset the count of sign-ins.
                sign_ins,
                ..State::default()
            };
        }
        if let Some(hook) = &self.inner.on_change {
            hook(None);
        }
    }

    /// Hold `doc` from now on, unless a sign-out came after the fetch of `epoch` started.
    fn changed(&self, epoch: u64, doc: Versioned) -> Result<(), RefreshError> {
        {
            let mut st = self.lock();
            if st.epoch != epoch {
                return Err(RefreshError::Superseded);
            }
            st.session = Some(doc.clone());
            st.stale = false;
        }
        if let Some(hook) = &self.inner.on_change {
            hook(Some(&doc.tokens));
        }
        Ok(())
    }
}

impl CredentialSource for AuthorizationCode {
    fn fetch(&self) -> FetchFuture {
        Box::pin(self.clone().fetch_now())
    }

    /// What [`CredentialHandle::sign_out`](crate::CredentialHandle::sign_out) and
    /// [`restart`](crate::CredentialHandle::restart) call: the store is cleared on a task of
    /// the current runtime. Prefer [`AuthorizationCode::sign_out`], which clears it before it
    /// returns.
    fn forget(&self) {
        self.forget_here();
        self.cancel_sign_in();
        let Some(persist) = self.inner.persist.clone() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = persist.clear().await {
                        tracing::warn!(target: "portcullis::client", error = %e, "signed out, but the store could not be cleared");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(target: "portcullis::client", "signed out outside a runtime: the stored sign-in is not cleared (use AuthorizationCode::sign_out)");
            }
        }
    }

    fn interaction_time(&self) -> Option<Duration> {
        Some(self.inner.sign_in_timeout)
    }

    fn refused(&self, failure: &AuthFailure) {
        let mut st = self.lock();
        st.refused = true;
        st.recheck = true;
        st.stale = true;
        let Some(bearer) = failure.bearer() else {
            return;
        };
        if let Some(hint) = self.inner.finder.hint_of(bearer) {
            st.hint = Some(hint);
        }
        let Some(scope) = bearer.param("scope") else {
            return;
        };
        if bearer.param("error") == Some("insufficient_scope") {
            let had = st
                .session
                .as_ref()
                .and_then(|s| s.tokens.sign_in.as_ref())
                .and_then(|s| s.scope.clone());
            let adds =
                scopes(scope).any(|s| !had.as_deref().is_some_and(|h| scopes(h).any(|x| x == s)));
            // A challenge naming only what the token was given cannot be met by signing in
            // again: the refusal stands.
            if adds && let Some(next) = next_scope(had.as_deref(), scope, true) {
                st.challenge_scope = Some(next);
                st.step_up = true;
            } else {
                st.stale = false;
            }
        } else if let Some(next) = next_scope(None, scope, false) {
            st.challenge_scope = Some(next);
        }
    }
}
