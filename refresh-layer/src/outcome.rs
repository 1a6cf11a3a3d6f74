//! What the layer tells the caller about a response: request and response extensions, and the
//! `AuthFailure` it parses from 401/403 answers.

use http::{Response, StatusCode};

use crate::error::Error;
use crate::failure::AuthFailure;

/// Request extension: send this request exactly as it is, without a credential and without
/// refresh (token endpoint calls carry it, so a misconfigured stack cannot loop).
#[derive(Debug, Clone, Copy)]
pub struct SkipCredential;

/// Response extension: what the layer did for this response (unless the layer was built with
/// [`report_outcome(false)`](crate::RefreshLayerBuilder::report_outcome)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshOutcome {
    /// A credential was attached.
    pub credential_sent: bool,
    /// The first answer was a refreshable 401, so the credential was refreshed (or found
    /// already replaced) and the request sent a second time; this response is that answer.
    pub retried: bool,
    /// The generation of the credential the returned response was obtained with.
    pub generation: Option<u64>,
}

/// Response extension on a retried response: what the first answer (the refreshable 401)
/// said, for logs and diagnostics.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetriedAfter(pub AuthFailure);

/// `outcome` is `None` when the layer was built with `report_outcome(false)`.
pub(crate) fn annotate<B>(mut res: Response<B>, outcome: Option<RefreshOutcome>) -> Response<B> {
    if matches!(
        res.status(),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    ) {
        let failure = AuthFailure {
            status: res.status(),
            challenges: AuthFailure::challenges_of(res.headers()),
            problem: None,
        };
        res.extensions_mut().insert(failure);
    }
    if let Some(outcome) = outcome {
        res.extensions_mut().insert(outcome);
    }
    res
}

pub(crate) const UNTOUCHED: RefreshOutcome = RefreshOutcome {
    credential_sent: false,
    retried: false,
    generation: None,
};

pub(crate) fn sent(generation: u64) -> RefreshOutcome {
    RefreshOutcome {
        credential_sent: true,
        retried: false,
        generation: Some(generation),
    }
}

pub(crate) fn untouched<ResB, E>(
    res: Result<Response<ResB>, E>,
    report: bool,
) -> Result<Response<ResB>, Error<E>> {
    res.map(|r| annotate(r, report.then_some(UNTOUCHED)))
        .map_err(Error::Inner)
}
