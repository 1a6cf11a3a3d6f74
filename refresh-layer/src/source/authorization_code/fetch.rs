//! What one fetch does: use or refresh the sign-in held (or stored by another process), or
//! sign the person in again — with the checks that keep a stored or refused sign-in from
//! steering anything.

use std::time::Instant;

use http::Uri;
use tokio::sync::watch;

use super::registration::{Client, auth_name};
use super::session::{Refreshed, SignInTurn, live_credential};
use super::{AuthorizationCode, Inner, flow};
use crate::credential::Credential;
use crate::error::{AuthorizationError, RefreshError};
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
    /// and its token endpoint passes the destination rules (a store is not trusted to name
    /// where a secret goes).
    async fn stored_allowed(&self, sign_in: &StoredSignIn) -> bool {
        let finder = &self.inner.finder;
        if let Trust::Pinned(pins) = &finder.trust
            && !pins.contains(&sign_in.issuer)
        {
            return false;
        }
        let Ok(endpoint) = sign_in.token_endpoint.parse::<Uri>() else {
            return false;
        };
        let place = finder.resource_place().await;
        finder.may_send(&endpoint, place).await.is_ok()
    }

    /// A new access token from the refresh token of `doc` (or from another process's
    /// refresh). `Ok(None)`: nothing usable is held or stored any more; sign in again.
    async fn refresh(
        &self,
        doc: Versioned,
        epoch: u64,
    ) -> Result<Option<Credential>, RefreshError> {
        let mut doc = doc;
        // Twice at most: once more with a sign-in another process stored instead.
        for _ in 0..2 {
            let Some(sign_in) = doc.tokens.sign_in.clone() else {
                return Ok(None);
            };
            let client = match Client::of_stored(&sign_in, &self.inner.registration) {
                Some(c) if self.stored_allowed(&sign_in).await => c,
                _ => {
                    tracing::warn!(target: "portcullis::client", issuer = %sign_in.issuer, "the stored sign-in cannot be used with this configuration: signing in again");
                    return Ok(None);
                }
            };
            let oauth = token_client(&self.inner, &sign_in, &client)?;
            let outcome = match &self.inner.persist {
                Some(persist) => persist.refresh(&doc, &oauth).await?,
                None => {
                    let rt = doc.tokens.refresh_token.clone();
                    let tokens = oauth.exchange(rt.as_deref()).await?;
                    let (stored, credential) = stored_of(tokens, rt, &doc.tokens)?;
                    let version = doc.version.saturating_add(1);
                    Refreshed::Fresh(
                        Versioned {
                            version,
                            tokens: stored,
                        },
                        credential,
                    )
                }
            };
            match outcome {
                Refreshed::Fresh(next, credential) => {
                    self.changed(epoch, next)?;
                    return Ok(Some(credential));
                }
                Refreshed::Gone => return Ok(None),
                Refreshed::Replaced(other) => {
                    // Taken up only through the checks above, on the next turn.
                    tracing::info!(target: "portcullis::client", "another process stored another sign-in: using it");
                    if let Some(c) = live_credential(&other.tokens) {
                        let usable = match &other.tokens.sign_in {
                            Some(s) => self.stored_allowed(s).await,
                            None => false,
                        };
                        if usable {
                            self.changed(epoch, other)?;
                            return Ok(Some(c));
                        }
                        return Ok(None);
                    }
                    doc = other;
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
        let _one = self.inner.sign_in_lock.lock().await;
        {
            let st = self.lock();
            let now = st.session.as_ref();
            let signed_in_meanwhile = now.map(|v| v.version)
                != previous.as_ref().map(|v| v.version)
                && !st.step_up
                && now
                    .and_then(|v| v.tokens.sign_in.as_ref())
                    .is_some_and(|s| s.issuer == found.issuer);
            if signed_in_meanwhile && let Some(c) = now.and_then(|v| live_credential(&v.tokens)) {
                return Ok(c);
            }
        }
        // Nothing is registered at a server this client will not sign in at.
        flow::require_s256(&found)?;
        // Across processes sharing the store: one of them sends the person to the browser,
        // the others take up what it stores.
        let _turn = match &self.inner.persist {
            Some(persist) => {
                let replacing = previous.as_ref().map(|p| p.version);
                let wait = self.inner.sign_in_timeout;
                match persist
                    .turn_to_sign_in(&found.issuer, replacing, wait)
                    .await?
                {
                    SignInTurn::Mine(lease) => Some(lease),
                    SignInTurn::Theirs(theirs) => {
                        let (doc, c) = *theirs;
                        let allowed = match &doc.tokens.sign_in {
                            Some(s) => self.stored_allowed(s).await,
                            None => false,
                        };
                        if allowed {
                            self.changed(epoch, doc)?;
                            return Ok(c);
                        }
                        None
                    }
                }
            }
            None => None,
        };
        self.count_sign_in()?;
        self.sign_in_at(found, previous, epoch, cancel).await
    }

    async fn sign_in_at(
        &self,
        found: Found,
        previous: Option<Versioned>,
        epoch: u64,
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
        let pinned = matches!(i.finder.trust, Trust::Pinned(_));
        let request = flow::SignInRequest {
            client: &client,
            redirect_uri,
            scope: scope.as_deref(),
            timeout: i.sign_in_timeout,
            resource: &found.resource.resource,
            iss_without_advertising: !pinned && !i.accept_without_iss,
        };
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

    /// Store a new sign-in (unless a sign-out came meanwhile); the version it is held as.
    async fn keep(
        &self,
        previous: Option<&Versioned>,
        stored: &StoredTokens,
        epoch: u64,
    ) -> Result<u64, RefreshError> {
        if self.lock().epoch != epoch {
            return Err(RefreshError::SignedOut);
        }
        let in_memory = previous.map_or(1, |p| p.version.saturating_add(1));
        let Some(persist) = &self.inner.persist else {
            return Ok(in_memory);
        };
        match persist.write(stored).await {
            Ok(v) => Ok(v),
            // The person signed in: their tokens are used here even if they cannot be kept;
            // the next run signs in again.
            Err(e) => {
                tracing::warn!(target: "portcullis::client", error = %e, "signed in, but the sign-in cannot be stored");
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
