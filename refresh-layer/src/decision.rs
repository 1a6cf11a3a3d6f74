//! The one place that decides, for an answer to a request that carried the layer's
//! credential, whether it calls for a refresh and whether the request is sent once more.
//!
//! Rules read the status and headers first ([`Rules::first_look`]); a rule that needs the
//! problem body (RFC 9457) asks for it ([`Verdict::ReadProblem`]), and the body is read once,
//! bounded in size and time, before [`Rules::after_problem`] decides.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Extensions, HeaderMap, Method, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::BodyExt;
use portcullis_wire::{ErrorCode, PROBLEM_JSON};

use crate::error::BoxError;
use crate::failure::AuthFailure;
use crate::redirect::{CredentialTrail, RedirectChain};

/// Decides whether a response to a request that carried our credential calls for a refresh.
pub(crate) type RefreshPredicate = Arc<dyn Fn(StatusCode, &HeaderMap) -> bool + Send + Sync>;

/// The largest failure body read: problem bodies are a few hundred bytes; anything larger is
/// not one worth waiting for.
const MAX_FAILURE_BODY: usize = 16 * 1024;

/// How long reading a failure body may take before the answer is judged without it: the
/// server already answered, so its body is normally there.
const FAILURE_BODY_TIMEOUT: Duration = Duration::from_secs(1);

/// The default predicate: `401`, unless its Bearer challenge says `insufficient_scope` or
/// `invalid_request` (a new token would not help).
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// let mut h = HeaderMap::new();
/// assert!(portcullis::client::refresh_on_401(StatusCode::UNAUTHORIZED, &h));
/// assert!(!portcullis::client::refresh_on_401(StatusCode::FORBIDDEN, &h));
/// h.insert("www-authenticate", r#"Bearer realm="api", error="invalid_request""#.parse().unwrap());
/// assert!(!portcullis::client::refresh_on_401(StatusCode::UNAUTHORIZED, &h));
/// ```
pub fn refresh_on_401(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UNAUTHORIZED
        && !AuthFailure::challenges_of(headers).iter().any(|c| {
            c.is("Bearer")
                && matches!(
                    c.param("error"),
                    Some("insufficient_scope" | "invalid_request")
                )
        })
}

/// A `401` or `403` whose Bearer challenge says `insufficient_scope` (RFC 6750 §3.1): a token
/// with more scope may be granted (step-up).
fn is_insufficient_scope(status: StatusCode, headers: &HeaderMap) -> bool {
    matches!(status.as_u16(), 401 | 403)
        && AuthFailure::challenges_of(headers)
            .iter()
            .any(|c| c.is("Bearer") && c.param("error") == Some("insufficient_scope"))
}

/// Whether the answer says its body is an RFC 9457 problem (`application/problem+json`).
fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case(PROBLEM_JSON))
}

/// What the status and headers alone say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The answer is returned as it is.
    Final,
    /// A refresh, and (when the request can be sent again) one retry.
    Refresh,
    /// Only the problem body can tell: read it, then ask [`Rules::after_problem`].
    ReadProblem,
}

/// The rules one layer was built with.
pub(crate) struct Rules {
    /// Which answers refresh (default [`refresh_on_401`]).
    pub(crate) predicate: RefreshPredicate,
    /// Whether an `insufficient_scope` refusal gets one new credential and one retry.
    pub(crate) step_up: bool,
    /// Whether a `403` problem with the code `token_revoked` refreshes like a `401`.
    pub(crate) revoked_token: bool,
    /// `None`: every method is retried.
    pub(crate) retry_methods: Option<Arc<[Method]>>,
}

impl Rules {
    /// The verdict on an answer's status and headers.
    pub(crate) fn first_look(&self, status: StatusCode, headers: &HeaderMap) -> Verdict {
        if (self.predicate)(status, headers)
            || (self.step_up && is_insufficient_scope(status, headers))
        {
            Verdict::Refresh
        } else if self.revoked_token && status == StatusCode::FORBIDDEN && is_problem(headers) {
            Verdict::ReadProblem
        } else {
            Verdict::Final
        }
    }

    /// The verdict once the problem body was read: a `403` whose problem `code` is
    /// `token_revoked` refreshes (when that rule is on).
    pub(crate) fn after_problem(&self, failure: &AuthFailure) -> bool {
        self.revoked_token
            && failure.status == StatusCode::FORBIDDEN
            && failure.code() == Some(ErrorCode::TokenRevoked)
    }

    /// Why an answer that refreshes is not followed by a retry (`None`: it is). The credential
    /// is still refreshed for the requests that follow.
    pub(crate) fn why_not_retried(&self, method: &Method, buffered: bool) -> Option<&'static str> {
        if !buffered {
            Some("the request body could not be buffered")
        } else if self
            .retry_methods
            .as_ref()
            .is_some_and(|m| !m.contains(method))
        {
            Some("its method is not retried")
        } else {
            None
        }
    }
}

/// Did the request this answer is for carry the credential? Yes, unless a redirect was
/// followed inside the layer and its last hop went without it: only an answer to the
/// credential is a verdict on it.
pub(crate) fn carried_credential(
    trail: Option<&CredentialTrail>,
    sent_to: &Uri,
    answer: &Extensions,
) -> bool {
    if let Some(carried) = trail.and_then(CredentialTrail::last_hop_carried) {
        return carried;
    }
    // No `ScopedRedirect` saw this request. An answer for another URI came through a
    // redirect followed inside the layer, whose hops may have dropped the credential:
    // not a verdict on it.
    answer
        .get::<tower_http::follow_redirect::RequestUri>()
        .is_none_or(|u| u.0 == *sent_to)
}

/// Does the redirect chain this request belongs to (if a [`ScopedRedirect`] follows it) still
/// allow a refresh? One refresh, and one retry, per chain: a compromised allowed origin that
/// refuses every hop until it sees the newest token would otherwise make one call refresh once
/// per hop. With `take`, the chain's refresh is taken (this answer refreshes); without, it is
/// only checked (the answer's body decides later). A request outside any chain always may.
///
/// [`ScopedRedirect`]: crate::ScopedRedirect
pub(crate) fn chain_allows_refresh(request: &Extensions, take: bool) -> bool {
    request.get::<RedirectChain>().is_none_or(|chain| {
        if take {
            chain.take_refresh()
        } else {
            !chain.refreshed()
        }
    })
}

/// Read what the server said about a failure, consuming the answer (bounded in size and
/// time): what the caller sees in `RetriedAfter`, and draining it lets the connection be
/// reused.
pub(crate) async fn read_failure<B>(res: Response<B>) -> AuthFailure
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = res.into_parts();
    let read = BodyExt::collect(http_body_util::Limited::new(body, MAX_FAILURE_BODY));
    let bytes = match tokio::time::timeout(FAILURE_BODY_TIMEOUT, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    AuthFailure::parse(parts.status, &parts.headers, &bytes)
}

/// Read the problem body of an answer a rule must look into, keeping the answer: its body is
/// drained into the returned [`AuthFailure`] (what the caller reads instead). A body that
/// declares no length or more than the bound is not read, so it is never cut short: the
/// failure then has no problem, and no body rule matches. A body whose reading started and
/// did not end (it failed, stalled past the time limit or outgrew its declared length) is an
/// error: what was read of it is gone, so handing on the rest would pass a cut answer off as
/// whole.
pub(crate) async fn read_problem<B>(
    res: Response<B>,
) -> Result<(Response<B>, AuthFailure), BoxError>
where
    B: Body + Unpin,
{
    let (parts, mut body) = res.into_parts();
    let bounded = body
        .size_hint()
        .upper()
        .is_some_and(|n| n <= MAX_FAILURE_BODY as u64);
    let mut bytes = BytesMut::new();
    let mut complete = false;
    if bounded {
        let drain = async {
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { return false };
                if let Ok(data) = frame.into_data() {
                    use bytes::Buf;
                    if bytes.len() + data.remaining() > MAX_FAILURE_BODY {
                        return false;
                    }
                    let mut data = data;
                    while data.has_remaining() {
                        let chunk = data.chunk();
                        bytes.extend_from_slice(chunk);
                        let n = chunk.len();
                        data.advance(n);
                    }
                }
            }
            true
        };
        complete = tokio::time::timeout(FAILURE_BODY_TIMEOUT, drain)
            .await
            .unwrap_or(false);
    }
    if bounded && !complete {
        return Err(format!(
            "the body of a {} problem answer stopped before its end (read to judge it, at most \
             {MAX_FAILURE_BODY} bytes within {FAILURE_BODY_TIMEOUT:?}); the answer is not handed on cut short",
            parts.status
        )
        .into());
    }
    let failure = AuthFailure::parse(parts.status, &parts.headers, &bytes);
    Ok((Response::from_parts(parts, body), failure))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(revoked_token: bool) -> Rules {
        Rules {
            predicate: Arc::new(refresh_on_401),
            step_up: false,
            revoked_token,
            retry_methods: None,
        }
    }

    fn problem_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            "application/problem+json; charset=utf-8".parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_403_problem_is_read_only_with_the_revoked_token_rule() {
        let h = problem_headers();
        assert_eq!(
            rules(false).first_look(StatusCode::FORBIDDEN, &h),
            Verdict::Final
        );
        assert_eq!(
            rules(true).first_look(StatusCode::FORBIDDEN, &h),
            Verdict::ReadProblem
        );
        assert_eq!(
            rules(true).first_look(StatusCode::FORBIDDEN, &HeaderMap::new()),
            Verdict::Final,
            "a 403 without a problem body is final"
        );
    }

    #[test]
    fn only_the_token_revoked_code_refreshes_after_the_problem_is_read() {
        let h = problem_headers();
        let failure = |body: &[u8]| AuthFailure::parse(StatusCode::FORBIDDEN, &h, body);
        assert!(rules(true).after_problem(&failure(br#"{"code":"token_revoked"}"#)));
        assert!(!rules(true).after_problem(&failure(br#"{"code":"insufficient_scope"}"#)));
        assert!(!rules(false).after_problem(&failure(br#"{"code":"token_revoked"}"#)));
    }

    #[tokio::test]
    async fn a_problem_body_over_the_bound_is_not_read() {
        let big = format!(
            r#"{{"code":"token_revoked","pad":"{}"}}"#,
            "x".repeat(MAX_FAILURE_BODY)
        );
        let mut res = Response::new(http_body_util::Full::new(Bytes::from(big)));
        *res.status_mut() = StatusCode::FORBIDDEN;
        *res.headers_mut() = problem_headers();
        let (res, failure) = read_problem(res).await.unwrap();
        assert!(failure.problem.is_none());
        assert!(!rules(true).after_problem(&failure));
        let left = res.into_body().collect().await.unwrap().to_bytes();
        assert!(
            left.len() > MAX_FAILURE_BODY,
            "the body is handed on untouched"
        );
    }
}
