//! The HTTP client token requests go through: type-erased, answers bounded in size.

use bytes::Bytes;
use http_body_util::Full;
use portcullis_wire::buffered_client::{BufferedClient, HttpClient, buffered};
use tower::ServiceExt;

use crate::error::RefreshError;

/// The HTTP service the OAuth2 source posts to, type-erased.
pub(crate) type TokenHttp = BufferedClient<Full<Bytes>>;

/// The largest token response read.
pub(crate) const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// An error and all its sources, `outer: inner: innermost`: hyper-util's "client error
/// (Connect)" alone does not say that the URL was https and the connector plain http.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Send `req` and read the whole (bounded) answer; a failure to get one is a network error,
/// told with its whole chain of causes.
pub(crate) async fn send(
    http: &TokenHttp,
    req: http::Request<Full<Bytes>>,
) -> Result<http::Response<Bytes>, RefreshError> {
    http.clone()
        .oneshot(req)
        .await
        .map_err(|e| RefreshError::Network(error_chain(&*e).into()))
}

pub(crate) fn erase(http: impl HttpClient<Full<Bytes>>) -> TokenHttp {
    buffered(http, MAX_TOKEN_RESPONSE)
}
