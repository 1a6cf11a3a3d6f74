//! What one fetch does: use or refresh the sign-in held (or stored by another process), or
//! sign the person in again — with the checks that keep a stored or refused sign-in from
//! steering anything.

use std::time::Instant;

use http::Uri;
use tokio::sync::watch;

use super::registration::{Client, auth_name};
use super::session::{self, Refreshed, SignInTurn, live_credential};
use super::{AuthorizationCode, Inner, flow};
use crate::credential::Credential;
use crate::error::{AuthorizationError, DiscoveryError, RefreshError};
use crate::source::discovery::finder::{Found, Trust};
use crate::source::discovery::metadata::union;
use crate::source::oauth2::OAuth2;
use crate::source::shared_grant::stored::stored_of;
use crate::store::{StoredSignIn, StoredTokens, Versioned};

/// What a sign-in or a refresh needs to talk to the token endpoint.
fn token_client(
    inner: &Inner,
    sign_in: &StoredSignIn,
    client: &Client,
) -> Result<OAuth2, RefreshError> {
    let resource = sign_in
        .resource
        .clone()
        .unwrap_or_else(|| inner.finder.resource.clone());
    let mut builder = OAuth2::builder(&sign_in.token_endpoint, &client.client_id)
        .resource(resource)
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

/// What a fetch knows when it starts.
struct Start {
    session: Option<Versioned>,
    refused: bool,
    recheck: bool,
    hint: Option<String>,
    step_up: bool,
    stale: bool,
    epoch: u64,
}

impl AuthorizationCode {
    /// The stored set, read once (a restart picks up where the last run left off).
    async fn load_once(&self) -> Result<(), RefreshError> {
        let Some(persist) = &self.inner.persist else {
            return Ok(());
        };
        let epoch = {
            let st = self.lock();
            if st.loaded {
                return Ok(());
            }
            st.epoch
        };
        let doc = persist.load().await?;
        let mut st = self.lock();
        // A sign-out during the read: what was read is what it signed out of.
        if st.epoch != epoch {
            return Ok(());
        }
        st.loaded = true;
        if st.session.is_none() {
            st.session = doc;
        }
        Ok(())
    }

    fn start(&self) -> Start {
        let mut st = self.lock();
        Start {
            session: st.session.clone(),
            refused: st.refused,
            recheck: std::mem::take(&mut st.recheck),
            hint: st.hint.clone(),
            step_up: st.step_up,
            stale: st.stale,
            epoch: st.epoch,
        }
    }

    pub(super) async fn fetch_now(self) -> Result<Credential, RefreshError> {
        // A cancellation from here on ends this fetch's sign-in.
        let mut cancel = self.inner.cancel.subscribe();
        cancel.borrow_and_update();
        self.load_once().await?;
        let start = self.start();
        let mut found = None;
        if let Some(doc) = start.session.clone().filter(|d| d.tokens.sign_in.is_some())
            && !start.step_up
        {
            let sign_in = doc.tokens.sign_in.clone().unwrap_or_default();
            if start.recheck {
                // Ask the resource again which server it uses: it may have moved.
                let now = self.inner.finder.find(start.hint.clone()).await?;
                if now.issuer != sign_in.issuer {
                    tracing::info!(target: "portcullis::client", from = %sign_in.issuer, to = %now.issuer, "the resource moved to another authorization server: signing in there");
                    return self.sign_in(now, None, start.epoch, cancel).await;
                }
                found = Some(now);
            }
            if !start.stale
                && let Some(c) = live_credential(&doc.tokens)
            {
                return Ok(c);
            }
            if doc.tokens.refresh_token.is_some() {
                match self.refresh(doc, start.epoch).await {
                    Ok(Some(c)) => return Ok(c),
                    Ok(None) => {}
                    Err(e) if e.is_sign_in_again() => {
                        tracing::info!(target: "portcullis::client", error = %e, "the refresh token is spent: signing in again");
                    }
                    Err(e) => return Err(e),
                }
            }
        } else if !start.refused {
            // Nothing refused yet: go without a credential and let the 401 say where to go.
            return Ok(Credential::none());
        }
        let found = match found {
            Some(f) => f,
            None => self.inner.finder.find(start.hint).await?,
        };
        let previous = self.lock().session.clone();
        self.sign_in(found, previous, start.epoch, cancel).await
    }

    /// Whether a stored sign-in may be used: its issuer is one this source may sign in at,
    /// and its token endpoint passes the destination rules — and, for a client whose
    /// credentials come from the configuration (pre-registered, metadata document), is the one
    /// that issuer's metadata names: a store is not trusted to say where a configured secret
    /// goes. `Err` when that cannot be told now (a name that does not resolve, metadata out of
    /// reach): the stored sign-in is kept for later.
    async fn stored_allowed(&self, sign_in: &StoredSignIn) -> Result<bool, RefreshError> {
        let finder = &self.inner.finder;
        if let Trust::Pinned(pins) = &finder.trust
            && !pins.contains(&sign_in.issuer)
        {
            return Ok(false);
        }
        let Ok(endpoint) = sign_in.token_endpoint.parse::<Uri>() else {
            return Ok(false);
        };
        let place = finder.resource_place().await;
        match finder.may_send(&endpoint, place).await {
            Ok(()) => {}
            Err(e @ RefreshError::Discovery(DiscoveryError::Unresolvable { .. })) => return Err(e),
            Err(_) => return Ok(false),
        }
        if sign_in.registration == "dynamic" {
            // Its secret came from the same store as the endpoint.
            return Ok(true);
        }
        let (_, server) = finder
            .server_metadata(&sign_in.issuer, place, &sign_in.issuer)
            .await?;
        Ok(server.token_endpoint.as_deref() == Some(sign_in.token_endpoint.as_str()))
    }

    /// Take up a set another process stored, when it may be used and its access token is live.
    async fn take_up(
        &self,
        doc: Versioned,
        epoch: u64,
    ) -> Result<Option<Credential>, RefreshError> {
        let Some(c) = live_credential(&doc.tokens) else {
            return Ok(None);
        };
        let allowed = match &doc.tokens.sign_in {
            Some(s) => self.stored_allowed(s).await?,
            None => false,
        };
        if !allowed {
            return Ok(None);
        }
        self.changed(epoch, doc)?;
        // Whatever step-up was pending: the set taken up is judged by the next refusal.
        self.lock().step_up = false;
        Ok(Some(c))
    }

    /// A new access token from the refresh token of `doc` (or from another process's
    /// refresh). `Ok(None)`: nothing usable is held or stored any more; sign in again.
    async fn refresh(
        &self,
        doc: Versioned,
        epoch: u64,
    ) -> Result<Option<Credential>, RefreshError> {
        let mut doc = doc;
        let mut unsaved = self.lock().unsaved;
        // Twice at most: once more with a sign-in another process stored instead.
        for _ in 0..2 {
            let Some(sign_in) = doc.tokens.sign_in.clone() else {
                return Ok(None);
            };
            let client = match Client::of_stored(&sign_in, &self.inner.registration) {
                Some(c) if self.stored_allowed(&sign_in).await? => c,
                _ => {
                    tracing::warn!(target: "portcullis::client", issuer = %sign_in.issuer, "the stored sign-in cannot be used with this configuration: signing in again");
                    return Ok(None);
                }
            };
            let oauth = token_client(&self.inner, &sign_in, &client)?;
            let outcome = match &self.inner.persist {
                Some(persist) => persist.refresh(&doc, &oauth, unsaved).await?,
                None => {
                    let rt = doc.tokens.refresh_token.clone();
                    let tokens = session::exchange(&oauth, rt.as_deref()).await?;
                    let (stored, credential) = stored_of(tokens, rt, &doc.tokens)?;
                    let version = doc.version.saturating_add(1);
                    let next = Versioned {
                        version,
                        tokens: stored,
                    };
                    Refreshed::Fresh(next, credential, true)
                }
            };
            match outcome {
                Refreshed::Fresh(next, credential, saved) => {
                    self.changed(epoch, next)?;
                    self.lock().unsaved = !saved;
                    return Ok(Some(credential));
                }
                Refreshed::Gone => return Ok(None),
                Refreshed::Replaced(other) => {
                    tracing::info!(target: "portcullis::client", "another process stored another sign-in: using it");
                    if live_credential(&other.tokens).is_some() {
                        return self.take_up(other, epoch).await;
                    }
                    // Refreshed on the next turn with its own client, after the checks above.
                    doc = other;
                    unsaved = false;
                }
            }
        }
        Ok(None)
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

    /// Counts the sign-in about to start: refused past the step-up limit (for a step-up) or
    /// past the limit of sign-ins in the window (any), so no resource can send the person
    /// to the browser again and again.
    fn count_sign_in(&self) -> Result<(), RefreshError> {
        let (max_step_ups, (max, window)) = (self.inner.max_step_ups, self.inner.max_sign_ins);
        let refuse = |e| Err(RefreshError::Authorization(e));
        let mut st = self.lock();
        let now = Instant::now();
        while st
            .sign_ins
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            st.sign_ins.pop_front();
        }
        if st.sign_ins.len() >= usize::try_from(max).unwrap_or(usize::MAX) {
            st.step_up = false;
            return refuse(AuthorizationError::TooManySignIns { limit: max, window });
        }
        if st.step_up {
            st.step_ups += 1;
            // This sign-in answers the step-up, whatever becomes of it: a declined or failed
            // one leaves later renewals to the refresh token, not to another trip to the
            // browser.
            st.step_up = false;
            if st.step_ups > max_step_ups {
                return refuse(AuthorizationError::StepUpLimit(max_step_ups));
            }
        } else {
            st.step_ups = 0;
        }
        st.sign_ins.push_back(now);
        Ok(())
    }

    /// A new sign-in at the server `found` names; `previous` is the sign-in it replaces. One
    /// at a time: a sign-in that waited for another one uses its result when it is for the
    /// same server.
    async fn sign_in(
        &self,
        found: Found,
        previous: Option<Versioned>,
        epoch: u64,
        cancel: watch::Receiver<u64>,
    ) -> Result<Credential, RefreshError> {
        // One deadline for the whole sign-in: the waits for other sign-ins included.
        let timeout = self.inner.sign_in_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let out_of_time = || RefreshError::Authorization(AuthorizationError::Timeout(timeout));
        let _one = tokio::time::timeout_at(deadline, self.inner.sign_in_lock.lock())
            .await
            .map_err(|_| out_of_time())?;
        if let Some(c) = self.signed_in_meanwhile(previous.as_ref(), &found) {
            return Ok(c);
        }
        // Nothing is registered at a server this client will not sign in at, and no person
        // is sent through a sign-in whose answer would be refused.
        flow::require_s256(&found)?;
        // (Unpinned: an issuer not pinned that does not say it sends `iss`.)
        if self.iss_rule(&found) == flow::IssRule::Unpinned {
            return Err(RefreshError::Authorization(
                AuthorizationError::IssuerNotSent {
                    issuer: found.issuer.clone(),
                },
            ));
        }
        // Across processes sharing the store: one of them sends the person to the browser,
        // the others take up what it stores.
        let _turn = match &self.inner.persist {
            Some(persist) => {
                let replacing = previous.as_ref().map(|p| p.version);
                let turn = persist
                    .turn_to_sign_in(&found.issuer, replacing, deadline, cancel.clone())
                    .await
                    .map_err(|e| match e {
                        // Waited until the sign-in's own deadline: its timeout, not the lease's.
                        RefreshError::Authorization(AuthorizationError::Timeout(_)) => {
                            out_of_time()
                        }
                        e => e,
                    })?;
                match turn {
                    SignInTurn::Mine(lease) => Some(lease),
                    SignInTurn::Theirs(theirs) => {
                        if let Some(c) = self.take_up(theirs.0, epoch).await? {
                            return Ok(c);
                        }
                        None
                    }
                }
            }
            None => None,
        };
        self.sign_in_at(found, previous, epoch, deadline, cancel)
            .await
    }

    /// The session another sign-in of this source stored while this one waited its turn,
    /// when it is for the same server and live.
    fn signed_in_meanwhile(
        &self,
        previous: Option<&Versioned>,
        found: &Found,
    ) -> Option<Credential> {
        let st = self.lock();
        let now = st.session.as_ref()?;
        let meanwhile = Some(now.version) != previous.map(|v| v.version)
            && !st.step_up
            && now
                .tokens
                .sign_in
                .as_ref()
                .is_some_and(|s| s.issuer == found.issuer);
        meanwhile.then(|| live_credential(&now.tokens)).flatten()
    }

    /// When this source requires RFC 9207 `iss` from the server `found` names.
    fn iss_rule(&self, found: &Found) -> flow::IssRule {
        let pinned = matches!(self.inner.finder.trust, Trust::Pinned(_));
        if found.server.authorization_response_iss_parameter_supported {
            flow::IssRule::Advertised
        } else if !pinned && !self.inner.accept_without_iss {
            flow::IssRule::Unpinned
        } else {
            flow::IssRule::WhenPresent
        }
    }

    async fn sign_in_at(
        &self,
        found: Found,
        previous: Option<Versioned>,
        epoch: u64,
        deadline: tokio::time::Instant,
        cancel: watch::Receiver<u64>,
    ) -> Result<Credential, RefreshError> {
        let i = &self.inner;
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
        let mut sign_in = StoredSignIn {
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
        let oauth = token_client(i, &sign_in, &client)?;
        let request = flow::SignInRequest {
            client: &client,
            redirect_uri,
            scope: scope.as_deref(),
            timeout: deadline.saturating_duration_since(tokio::time::Instant::now()),
            limit: i.sign_in_timeout,
            resource: &found.resource.resource,
            iss: self.iss_rule(&found),
        };
        // Counted here, just before the person is sent to the browser: what failed before
        // (registration, metadata) cost them nothing.
        self.count_sign_in()?;
        let tokens =
            flow::sign_in(&i.finder, &found, &oauth, &*i.user_agent, request, cancel).await?;
        // What the server granted, when it says (a person may grant less than was asked).
        if let Some(granted) = tokens.scope.clone() {
            sign_in.scope = Some(granted);
        }
        let before = StoredTokens {
            sign_in: Some(sign_in),
            ..StoredTokens::default()
        };
        let (stored, credential) = stored_of(tokens, None, &before)?;
        let version = self.keep(previous.as_ref(), &stored, epoch).await?;
        self.changed(
            epoch,
            Versioned {
                version,
                tokens: stored,
            },
        )?;
        Ok(credential)
    }

    /// Store a new sign-in (unless a sign-out came meanwhile, which then wins whole); the
    /// version it is held as.
    async fn keep(
        &self,
        previous: Option<&Versioned>,
        stored: &StoredTokens,
        epoch: u64,
    ) -> Result<u64, RefreshError> {
        let _writing = self.inner.write_lock.lock().await;
        if self.lock().epoch != epoch {
            return Err(RefreshError::Superseded);
        }
        let in_memory = previous.map_or(1, |p| p.version.saturating_add(1));
        let Some(persist) = &self.inner.persist else {
            return Ok(in_memory);
        };
        match persist.write(stored).await {
            Ok(v) => {
                self.lock().unsaved = false;
                Ok(v)
            }
            // The person signed in: their tokens are used here even if they cannot be kept
            // yet; the next refresh presents this set's refresh token and stores the result.
            Err(e) => {
                tracing::warn!(target: "portcullis::client", error = %e, "signed in, but the sign-in cannot be stored yet");
                self.lock().unsaved = true;
                Ok(in_memory)
            }
        }
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
