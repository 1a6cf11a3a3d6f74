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
//!    advertises `authorization_response_iss_parameter_supported`. Only then is the code
//!    redeemed, once, with the verifier and the same `resource`.
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
mod flow;
#[cfg(feature = "loopback")]
mod loopback;
mod pkce;
mod registration;
mod session;
mod user_agent;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

pub use builder::{AuthorizationCodeBuilder, DEFAULT_SIGN_IN_TIMEOUT};
#[cfg(feature = "loopback")]
pub use loopback::LoopbackBrowser;
pub use registration::RegisteredClient;
pub use user_agent::{
    AuthorizationRequest, AuthorizationResponse, AuthorizeFuture, FollowRedirects, UserAgent,
};

use crate::credential::Credential;
use crate::error::{AuthorizationError, RefreshError};
use crate::failure::AuthFailure;
use crate::source::credential_source::{CredentialSource, FetchFuture};
use crate::source::discovery::finder::{Finder, Found};
use crate::source::discovery::metadata::{next_scope, scopes, union};
use crate::source::oauth2::OAuth2;
use crate::source::shared_grant::stored::stored_of;
use crate::store::{StoredSignIn, StoredTokens, Versioned};
use registration::{Client, Registration, auth_name};
use session::{Persist, live_credential};

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
/// use refresh_layer::RefreshLayer;
/// use refresh_layer::source::authorization_code::{AuthorizationCode, FollowRedirects};
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
    persist: Option<Persist>,
    on_change: Option<OnChange>,
    cancel: watch::Sender<u64>,
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
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("resource", &self.inner.finder.resource)
            .field("redirect_uri", &self.inner.user_agent.redirect_uri())
            .finish_non_exhaustive()
    }
}

/// What a sign-in or a refresh needs to talk to the token endpoint.
fn token_client(
    inner: &Inner,
    sign_in: &StoredSignIn,
    client: &Client,
) -> Result<OAuth2, RefreshError> {
    let mut builder = OAuth2::builder(&sign_in.token_endpoint, &client.client_id)
        .resource(sign_in_resource(sign_in, inner))
        .client_auth(client.auth);
    if let Some(secret) = &client.secret {
        builder = builder.client_secret(secret.clone());
    }
    if let Some(key) = &client.key {
        builder = builder
            .private_key_jwt(key.clone())
            .client_auth(client.auth)
            .assertion_audience(sign_in.issuer.clone());
    }
    builder
        .sign_in_via(inner.finder.http.clone())
        .map_err(|e| RefreshError::InvalidResponse(e.to_string().into()))
}

/// The RFC 8707 resource of a sign-in: the identifier the resource's metadata gave.
fn sign_in_resource(sign_in: &StoredSignIn, inner: &Inner) -> String {
    sign_in
        .resource
        .clone()
        .unwrap_or_else(|| inner.finder.resource.clone())
}

impl AuthorizationCode {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stop a sign-in under way: it ends with [`AuthorizationError::Cancelled`] (at once when
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
    /// that goes on using the layer, call [`CredentialHandle::expire`](crate::CredentialHandle::expire)
    /// after it, so the layer drops the access token it holds: the next request then goes
    /// without one, and its `401` starts a new sign-in.
    pub async fn sign_out(&self) -> Result<(), RefreshError> {
        self.forget_here();
        if let Some(persist) = &self.inner.persist {
            persist.clear().await?;
        }
        Ok(())
    }

    fn forget_here(&self) {
        {
            let mut st = self.lock();
            let loaded = st.loaded;
            *st = State::default();
            st.loaded = loaded;
        }
        if let Some(hook) = &self.inner.on_change {
            hook(None);
        }
    }

    fn changed(&self, doc: Versioned) {
        if let Some(hook) = &self.inner.on_change {
            hook(Some(&doc.tokens));
        }
        let mut st = self.lock();
        st.session = Some(doc);
        st.stale = false;
    }

    /// The stored set, read once (a restart picks up where the last run left off).
    async fn load_once(&self) -> Result<(), RefreshError> {
        let Some(persist) = &self.inner.persist else {
            return Ok(());
        };
        if self.lock().loaded {
            return Ok(());
        }
        let doc = persist.load().await?;
        let mut st = self.lock();
        st.loaded = true;
        if st.session.is_none() {
            st.session = doc;
        }
        Ok(())
    }

    async fn fetch_now(self) -> Result<Credential, RefreshError> {
        // A cancellation from here on ends this fetch's sign-in.
        let mut cancel = self.inner.cancel.subscribe();
        cancel.borrow_and_update();
        self.load_once().await?;
        let (session, refused, recheck, hint, step_up, stale) = {
            let mut st = self.lock();
            (
                st.session.clone(),
                st.refused,
                std::mem::take(&mut st.recheck),
                st.hint.clone(),
                st.step_up,
                st.stale,
            )
        };
        let mut found = None;
        if let Some(doc) = session.filter(|d| d.tokens.sign_in.is_some())
            && !step_up
        {
            let sign_in = doc.tokens.sign_in.clone().unwrap_or_default();
            if recheck {
                // Ask the resource again which server it uses: it may have moved.
                let now = self.inner.finder.find(hint.clone()).await?;
                if now.issuer == sign_in.issuer {
                    found = Some(now);
                } else {
                    tracing::info!(target: "portcullis::client", from = %sign_in.issuer, to = %now.issuer, "the resource moved to another authorization server: signing in there");
                    return self.sign_in(now, None, cancel).await;
                }
            }
            if !stale && let Some(c) = live_credential(&doc.tokens) {
                return Ok(c);
            }
            if doc.tokens.refresh_token.is_some() {
                match self.refresh(&doc, &sign_in).await {
                    Ok(Some(c)) => return Ok(c),
                    Ok(None) => {}
                    Err(e) if e.is_sign_in_again() => {
                        tracing::info!(target: "portcullis::client", error = %e, "the refresh token is spent: signing in again");
                    }
                    Err(e) => return Err(e),
                }
            }
        } else if !refused {
            // Nothing refused yet: go without a credential and let the 401 say where to go.
            return Ok(Credential::none());
        }
        let found = match found {
            Some(f) => f,
            None => self.inner.finder.find(hint).await?,
        };
        let previous = self.lock().session.clone();
        self.sign_in(found, previous, cancel).await
    }

    /// One refresh with the refresh token; `Ok(None)` when the stored set is gone.
    async fn refresh(
        &self,
        doc: &Versioned,
        sign_in: &StoredSignIn,
    ) -> Result<Option<Credential>, RefreshError> {
        let client = Client::of_stored(sign_in, &self.inner.registration).ok_or_else(|| {
            RefreshError::InvalidResponse("the stored registration cannot be used".into())
        })?;
        let oauth = token_client(&self.inner, sign_in, &client)?;
        let result = match &self.inner.persist {
            Some(persist) => persist.refresh(doc, &oauth).await?,
            None => {
                let rt = doc.tokens.refresh_token.clone();
                let tokens = oauth.exchange(rt.as_deref()).await?;
                let (stored, credential) = stored_of(tokens, rt, &doc.tokens)?;
                let next = Versioned {
                    version: doc.version.saturating_add(1),
                    tokens: stored,
                };
                Some((next, credential))
            }
        };
        Ok(result.map(|(next, credential)| {
            self.changed(next);
            credential
        }))
    }

    /// The scope to ask for at the server `found` names.
    fn scope_for(&self, found: &Found) -> Option<String> {
        let st = self.lock();
        let mut scope = self
            .inner
            .scope
            .clone()
            .or_else(|| st.challenge_scope.clone())
            .or_else(|| {
                let s = &found.resource.scopes_supported;
                (!s.is_empty()).then(|| s.join(" "))
            });
        let lists_offline = found
            .server
            .scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| x == "offline_access"));
        if self.inner.offline_access && lists_offline {
            scope = Some(union(scope.as_deref(), "offline_access"));
        }
        scope
    }

    /// Sign-ins for more scope are counted, and refused past the limit; any other sign-in
    /// starts the count again.
    fn count_step_up(&self) -> Result<(), RefreshError> {
        let max = self.inner.max_step_ups;
        let mut st = self.lock();
        if !st.step_up {
            st.step_ups = 0;
            return Ok(());
        }
        st.step_ups += 1;
        // This sign-in answers the step-up, whatever becomes of it: a declined or failed one
        // leaves later renewals to the refresh token, not to another trip to the browser.
        st.step_up = false;
        if st.step_ups > max {
            return Err(RefreshError::Authorization(
                AuthorizationError::StepUpLimit(max),
            ));
        }
        Ok(())
    }

    /// A new sign-in at the server `found` names; `previous` is the sign-in it replaces.
    async fn sign_in(
        &self,
        found: Found,
        previous: Option<Versioned>,
        cancel: watch::Receiver<u64>,
    ) -> Result<Credential, RefreshError> {
        let i = &self.inner;
        // Nothing is registered at a server this client will not sign in at.
        flow::require_s256(&found)?;
        self.count_step_up()?;
        let redirect_uri = i.user_agent.redirect_uri();
        let client = match reusable_client(previous.as_ref(), &found, &redirect_uri, i) {
            Some(c) => c,
            None => {
                i.registration
                    .client_for(&i.finder, &found, &redirect_uri)
                    .await?
            }
        };
        let token_endpoint = i
            .finder
            .endpoint(
                &found,
                found.server.token_endpoint.as_ref(),
                "token_endpoint",
            )
            .await?;
        let scope = self.scope_for(&found);
        let stored_sign_in = StoredSignIn {
            issuer: found.issuer.clone(),
            token_endpoint: token_endpoint.to_string(),
            client_id: client.client_id.clone(),
            // Only a dynamic registration's secret is kept: a pre-registered one stays in
            // the configuration it came from.
            client_secret: client.secret.clone().filter(|_| client.kind == "dynamic"),
            token_endpoint_auth_method: auth_name(client.auth).to_owned(),
            registration: client.kind.to_owned(),
            redirect_uri: redirect_uri.clone(),
            scope: scope.clone(),
            resource: Some(found.resource.resource.clone()),
        };
        let oauth = token_client(i, &stored_sign_in, &client)?;
        let request = flow::SignInRequest {
            client: &client,
            redirect_uri,
            scope: scope.as_deref(),
            timeout: i.sign_in_timeout,
            resource: &found.resource.resource,
        };
        let tokens =
            flow::sign_in(&i.finder, &found, &oauth, &*i.user_agent, request, cancel).await?;
        let before = StoredTokens {
            sign_in: Some(stored_sign_in),
            ..StoredTokens::default()
        };
        let (stored, credential) = stored_of(tokens, None, &before)?;
        let in_memory = previous.as_ref().map_or(1, |p| p.version.saturating_add(1));
        let version = match &i.persist {
            Some(persist) => match persist.write(&stored).await {
                Ok(v) => v,
                // The person signed in: their tokens are used here even if they cannot be
                // kept; the next run signs in again.
                Err(e) => {
                    tracing::warn!(target: "portcullis::client", error = %e, "signed in, but the sign-in cannot be stored");
                    in_memory
                }
            },
            None => in_memory,
        };
        self.changed(Versioned {
            version,
            tokens: stored,
        });
        Ok(credential)
    }
}

/// The registration of the sign-in being replaced, when it is for the same server and the
/// same redirect URI: a new sign-in there does not register again.
fn reusable_client(
    previous: Option<&Versioned>,
    found: &Found,
    redirect_uri: &str,
    inner: &Inner,
) -> Option<Client> {
    let sign_in = previous?.tokens.sign_in.as_ref()?;
    (sign_in.issuer == found.issuer && sign_in.redirect_uri == redirect_uri)
        .then(|| Client::of_stored(sign_in, &inner.registration))
        .flatten()
}

impl CredentialSource for AuthorizationCode {
    fn fetch(&self) -> FetchFuture {
        Box::pin(self.clone().fetch_now())
    }

    fn forget(&self) {
        self.forget_here();
        if let Some(persist) = self.inner.persist.clone()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                if let Err(e) = persist.clear().await {
                    tracing::warn!(target: "portcullis::client", error = %e, "signed out, but the store could not be cleared");
                }
            });
        }
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
