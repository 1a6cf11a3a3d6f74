//! The one retry after an answer that refreshes: how it is sent (whether it is due is the
//! [`decision`](crate::decision) module's).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower::{Service, ServiceExt};

use crate::decision::{
    Verdict, carried_credential, chain_allows_refresh, read_failure, read_problem,
};
use crate::error::{BoxError, Error};
use crate::failure::AuthFailure;
use crate::outcome::{RefreshOutcome, RetriedAfter, annotate};
use crate::redirect::CredentialTrail;
use crate::state::Shared;

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

/// What comes after the first answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// It is returned as it is.
    Return,
    /// A refresh, then the one retry.
    Retry,
    /// Its problem body decides (see [`Verdict::ReadProblem`]).
    ReadProblem,
}

impl<S, B> Retry<S, B> {
    /// What the first answer calls for (the rules are the [`decision`](crate::decision)
    /// module's). An answer that refreshes but cannot be retried (a body that was not
    /// buffered, a method not to retry) still refreshes the credential, in the background,
    /// for the requests that follow.
    pub(crate) fn next<ResB>(&self, res: &Response<ResB>) -> Next {
        let verdict = self.shared.rules.first_look(res.status(), res.headers());
        if verdict == Verdict::Final {
            return Next::Return;
        }
        if !carried_credential(self.trail.as_ref(), &self.parts.uri, res.extensions()) {
            tracing::debug!(target: "portcullis::client", status = res.status().as_u16(), "not refreshed: the refused request did not carry the credential (a redirect dropped it)");
            return Next::Return;
        }
        if !chain_allows_refresh(&self.parts.extensions, verdict == Verdict::Refresh) {
            tracing::debug!(target: "portcullis::client", status = res.status().as_u16(), "not refreshed: this redirect chain already had its one refresh");
            return Next::Return;
        }
        match verdict {
            Verdict::ReadProblem => Next::ReadProblem,
            _ if self.retried(res.status()) => Next::Retry,
            _ => Next::Return,
        }
    }

    /// Whether an answer that refreshes is followed by the retry; when not, the credential is
    /// refreshed in the background.
    fn retried(&self, status: http::StatusCode) -> bool {
        let Some(why_not) = self
            .shared
            .rules
            .why_not_retried(&self.parts.method, self.body.is_some())
        else {
            return true;
        };
        tracing::debug!(target: "portcullis::client", status = status.as_u16(), "not retried: {why_not}; refreshing for the next requests");
        self.shared
            .cell
            .refresh_after_in_background(self.generation);
        false
    }
}

impl<S, B, ResB> Retry<S, B>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    B: From<Bytes>,
    ResB: Body,
    ResB::Error: Into<BoxError>,
{
    /// Act on what [`next`](Self::next) said about the first answer (not
    /// [`Next::Return`]); `outcome` is what an answer returned as it is reports.
    pub(crate) async fn settle(
        self,
        next: Next,
        res: Response<ResB>,
        outcome: Option<RefreshOutcome>,
    ) -> Result<Response<ResB>, Error<S::Error>>
    where
        ResB: Unpin,
    {
        if next != Next::ReadProblem {
            let failure = read_failure(res).await;
            return self.after(failure).await;
        }
        let (res, mut failure) = read_problem(res).await.map_err(Error::ResponseBody)?;
        if !self.shared.rules.after_problem(&failure)
            || !chain_allows_refresh(&self.parts.extensions, true)
            || !self.retried(res.status())
        {
            let mut res = annotate(res, outcome);
            // The problem body was drained into it: the caller reads it here.
            res.extensions_mut().insert(failure);
            return Ok(res);
        }
        if !self.shared.rules.step_up {
            // The scopes a 403 names are taken only where step-up was asked for: a revoked
            // token is replaced by one like it, not by one the server chose more scopes for.
            failure
                .challenges
                .retain(|c| c.param("error") != Some("insufficient_scope"));
        }
        tracing::debug!(target: "portcullis::client", "the credential was revoked (403 token_revoked): refreshing");
        self.after(failure).await
    }

    /// The first answer refreshes (`first_failure` is what it said): refresh (or take the
    /// credential that already replaced ours) and send the request once more.
    async fn after(
        mut self,
        first_failure: AuthFailure,
    ) -> Result<Response<ResB>, Error<S::Error>> {
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
