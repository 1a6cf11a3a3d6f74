//! The one retry after a refreshable 401: when it is due, and how it is sent.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower::{Service, ServiceExt};

use crate::error::{BoxError, Error};
use crate::failure::AuthFailure;
use crate::outcome::{RefreshOutcome, RetriedAfter, annotate};
use crate::redirect::CredentialTrail;
use crate::state::Shared;

/// The largest failure body read before a retry.
const MAX_FAILURE_BODY: usize = 16 * 1024;

pub(crate) async fn read_failure<B>(res: Response<B>) -> AuthFailure
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = res.into_parts();
    let read =
        http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_FAILURE_BODY));
    let bytes = match tokio::time::timeout(Duration::from_secs(1), read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    AuthFailure::parse(parts.status, &parts.headers, &bytes)
}

/// A `401` or `403` whose Bearer challenge says `insufficient_scope` (RFC 6750 §3.1): a token
/// with more scope may be granted (step-up).
fn is_insufficient_scope(status: http::StatusCode, headers: &http::HeaderMap) -> bool {
    matches!(status.as_u16(), 401 | 403)
        && AuthFailure::challenges_of(headers)
            .iter()
            .any(|c| c.is("Bearer") && c.param("error") == Some("insufficient_scope"))
}

/// What the one retry needs: the service, the request's head and its buffered body (`None`
/// when it could not be buffered), and the generation of the credential the first attempt
/// carried.
pub(crate) struct Retry<S, B> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) inner: S,
    pub(crate) parts: http::request::Parts,
    pub(crate) body: Option<Bytes>,
    pub(crate) generation: u64,
    pub(crate) trail: Option<CredentialTrail>,
    // The body type the retry is rebuilt as.
    pub(crate) _body: std::marker::PhantomData<fn() -> B>,
}

impl<S, B> Retry<S, B> {
    /// Whether the first answer calls for the one retry. A refreshable 401 that cannot be
    /// retried (a body that was not buffered, a method not to retry) still refreshes the
    /// credential, in the background, for the requests that follow.
    pub(crate) fn should_retry<ResB>(&self, res: &Response<ResB>) -> bool {
        let step_up = self.shared.step_up && is_insufficient_scope(res.status(), res.headers());
        if !step_up && !(self.shared.predicate)(res.status(), res.headers()) {
            return false;
        }
        if !self.carried_credential(res) {
            tracing::debug!(target: "portcullis::client", status = res.status().as_u16(), "not refreshed: the refused request did not carry the credential (a redirect dropped it)");
            return false;
        }
        let why_not = if self.body.is_none() {
            "the request body could not be buffered"
        } else if self
            .shared
            .retry_methods
            .as_ref()
            .is_some_and(|m| !m.contains(&self.parts.method))
        {
            "its method is not retried"
        } else {
            return true;
        };
        tracing::debug!(target: "portcullis::client", status = res.status().as_u16(), "not retried: {why_not}; refreshing for the next requests");
        self.shared
            .cell
            .refresh_after_in_background(self.generation);
        false
    }

    /// Did the request this answer is for carry the credential? Yes, unless a redirect was
    /// followed inside the layer and its last hop went without it.
    fn carried_credential<ResB>(&self, res: &Response<ResB>) -> bool {
        if let Some(carried) = self.trail.as_ref().and_then(|t| t.last_hop_carried()) {
            return carried;
        }
        // No `ScopedRedirect` saw this request. An answer for another URI came through a
        // redirect followed inside the layer, whose hops may have dropped the credential:
        // not a verdict on it.
        res.extensions()
            .get::<tower_http::follow_redirect::RequestUri>()
            .is_none_or(|u| u.0 == self.parts.uri)
    }
}

impl<S, B, ResB> Retry<S, B>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    B: From<Bytes>,
    ResB: Body,
    ResB::Error: Into<BoxError>,
{
    /// The first answer was a refreshable 401: refresh (or take the credential that already
    /// replaced ours) and send the request once more.
    pub(crate) async fn after(
        mut self,
        res: Response<ResB>,
    ) -> Result<Response<ResB>, Error<S::Error>> {
        // Read what the server said (a small problem body, bounded in size and time): it is
        // what the caller sees in `RetriedAfter`, and draining it lets the connection be reused.
        let first_failure = read_failure(res).await;
        self.shared.cell.refused(&first_failure);
        let fresh = self
            .shared
            .cell
            .refresh_after(self.generation)
            .await
            .map_err(Error::Refresh)?;
        tracing::debug!(target: "portcullis::client", failed_generation = self.generation, generation = fresh.generation, "retrying once with the refreshed credential");
        let mut second = Request::from_parts(self.parts, B::from(self.body.unwrap_or_default()));
        fresh.credential.inject(&mut second);
        let mut res = self
            .inner
            .ready()
            .await
            .map_err(Error::Inner)?
            .call(second)
            .await
            .map_err(Error::Inner)?;
        res.extensions_mut().insert(RetriedAfter(first_failure));
        let report = self.shared.report;
        Ok(annotate(
            res,
            report.then_some(RefreshOutcome {
                credential_sent: true,
                retried: true,
                generation: Some(fresh.generation),
            }),
        ))
    }
}
