//! Keeping credentials inside their origins when redirects are followed.
//!
//! [`RefreshService`](crate::RefreshService) checks the origin of every request it sees, so
//! with `tower_http::follow_redirect` *outside* it, a hop to another origin gets no credential.
//! Two cases need help from the redirect policy, which [`ScopedRedirect`] gives:
//! - a chain that left the origins and comes back (A → B → A) must not get the credential again
//!   (B chose that request);
//! - with `FollowRedirect` *inside* the refresh layer, hops reuse the first request's headers;
//!   tower-http's `FilterCredentials` strips `Authorization` and `Cookie`, but not an API-key
//!   header.
//!
//! `ScopedRedirect` wraps any policy (by default tower-http's `Standard`): once a hop leaves the
//! credential's origins, it strips the credential headers from every later hop and marks them
//! so the refresh layer does not add them back. A `Location` that is not `http` or `https`
//! (`data:`, `javascript:`, …) is not followed: the 3xx is returned as it is.
//!
//! With `FollowRedirect` *outside* the refresh layer, every hop is a request of its own to the
//! layer, and each could answer 401 and be refreshed and retried: an allowed origin that
//! refuses every hop until it sees the newest token, then redirects on, would make one call
//! refresh once per hop. So the policy puts one [`RedirectChain`] marker on every request of a
//! chain (`FollowRedirect` shows the policy the original request as well as each hop), and the
//! layer refreshes (and retries) at most once per chain: a later hop's refusal is returned as
//! it is. A step-up or a `token_revoked` refresh is that one too, so a hop asking for more
//! scope after an earlier hop's refresh gets its `insufficient_scope` answer back.
//!
//! Inside the refresh layer it also tells the layer whether the last hop still carried the
//! credential: a 401 to a hop without it says nothing about the credential, so it is returned
//! as it is instead of refreshing a good token and replaying the whole chain. Without
//! `ScopedRedirect`, a 401 that came from another URI than the one the layer sent (a redirect
//! followed inside it) is never taken as a verdict on the credential either.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use http::Request;
use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
use tower_http::follow_redirect::policy::{Action, Attempt, Policy, Standard};

use crate::credential_cell::Cell;
use portcullis_wire::Origin;

/// Request extension: this request is a redirect hop of a chain that left the credential's
/// origins. The refresh layer sends no credential with it.
#[derive(Debug, Clone, Copy)]
pub struct LeftCredentialScope;

/// Request extension a [`ScopedRedirect`] puts on every request of one redirect chain (the
/// original and each hop): the refresh layer notes in it that it refreshed for one of them,
/// and refreshes at most once per chain.
#[derive(Debug, Clone, Default)]
pub(crate) struct RedirectChain(Arc<AtomicBool>);

impl RedirectChain {
    /// Whether a request of this chain already had its refresh.
    pub(crate) fn refreshed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Take the chain's one refresh: `true` when it was still to be had. (The hops of a chain
    /// are sent one after the other, so no two requests race for it.)
    pub(crate) fn take_refresh(&self) -> bool {
        !self.0.swap(true, Ordering::Relaxed)
    }
}

/// Request extension set by the refresh layer when a [`ScopedRedirect`] may follow the
/// request's redirects: the policy notes in it whether the last hop still carried the
/// credential.
#[derive(Debug, Clone, Default)]
pub(crate) struct CredentialTrail(Arc<AtomicU8>);

const NO_HOP: u8 = 0;
const CARRIED: u8 = 1;
const STRIPPED: u8 = 2;

impl CredentialTrail {
    fn hop(&self, carried: bool) {
        let v = if carried { CARRIED } else { STRIPPED };
        self.0.store(v, Ordering::Relaxed);
    }

    /// `Some(carried)` for the last request a `ScopedRedirect` saw (the original or a hop);
    /// `None` when none saw it (no such policy inside the layer).
    pub(crate) fn last_hop_carried(&self) -> Option<bool> {
        match self.0.load(Ordering::Relaxed) {
            NO_HOP => None,
            v => Some(v == CARRIED),
        }
    }
}

/// A redirect policy that keeps the refresh layer's credential inside its origins; get one from
/// [`RefreshLayer::redirect_policy`](crate::RefreshLayer::redirect_policy).
#[derive(Clone)]
pub struct ScopedRedirect<P = Standard> {
    inner: P,
    scope: Arc<[Origin]>,
    cell: Arc<Cell>,
    left: bool,
    /// The trail of the request this policy follows (`FollowRedirect` clones the policy per
    /// request and shows it the original request first).
    trail: Option<CredentialTrail>,
    /// The chain this policy follows; made when it sees the original request.
    chain: Option<RedirectChain>,
    seen_first: bool,
}

impl<P> ScopedRedirect<P> {
    pub(crate) fn new(inner: P, scope: Arc<[Origin]>, cell: Arc<Cell>) -> Self {
        ScopedRedirect {
            inner,
            scope,
            cell,
            left: false,
            trail: None,
            chain: None,
            seen_first: false,
        }
    }

    /// Wrap another policy instead of `Standard`.
    pub fn with_policy<Q>(self, inner: Q) -> ScopedRedirect<Q> {
        ScopedRedirect {
            inner,
            scope: self.scope,
            cell: self.cell,
            left: false,
            trail: None,
            chain: None,
            seen_first: false,
        }
    }
}

impl<P: std::fmt::Debug> std::fmt::Debug for ScopedRedirect<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedRedirect")
            .field("inner", &self.inner)
            .field("scope", &self.scope)
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<P, B, E> Policy<B, E> for ScopedRedirect<P>
where
    P: Policy<B, E>,
{
    fn redirect(&mut self, attempt: &Attempt<'_>) -> Result<Action, E> {
        if !matches!(attempt.location().scheme_str(), Some("http" | "https")) {
            // No HTTP client can send it; following would turn the 3xx into an error.
            return Ok(Action::Stop);
        }
        if !self.scope.iter().any(|o| o.matches(attempt.location())) {
            self.left = true;
        }
        self.inner.redirect(attempt)
    }

    fn on_request(&mut self, request: &mut Request<B>) {
        self.inner.on_request(request);
        if !self.seen_first {
            // The original request, with the refresh layer's extensions.
            self.seen_first = true;
            self.trail = request.extensions().get::<CredentialTrail>().cloned();
            self.chain = Some(RedirectChain::default());
        }
        if let Some(chain) = &self.chain {
            // Again on every hop: the inner policy may have dropped the request's extensions.
            request.extensions_mut().insert(chain.clone());
        }
        if self.left {
            let headers = request.headers_mut();
            for h in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
                headers.remove(h);
            }
            if let Some(name) = self.cell.header_name() {
                headers.remove(name);
            }
            request.extensions_mut().insert(LeftCredentialScope);
        }
        if let Some(trail) = &self.trail {
            // Whether this hop (the last one, if the chain ends here) carries the credential,
            // after the inner policy and this one had their say.
            let carried = !self.left
                && self
                    .cell
                    .header_name()
                    .is_none_or(|name| request.headers().contains_key(name));
            trail.hop(carried);
        }
    }

    fn clone_body(&self, body: &B) -> Option<B> {
        self.inner.clone_body(body)
    }
}
