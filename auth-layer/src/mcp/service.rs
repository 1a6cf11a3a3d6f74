//! The service: reads a request's body, bounded, and refuses calls of tools whose scopes the
//! principal lacks.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, Limited};
use tower::{Layer, Service};

use super::content_type::{is_encoded, is_utf8_json};
use super::layer::ToolScopesLayer;
use crate::body::AuthBody;
use crate::error::{AuthError, ErrorCode};
use crate::future::ResponseFuture;
use crate::principal::{Principal, layer_context};
use crate::response::misconfiguration::no_auth_layer;

/// The body the inner service of [`ToolScopes`](super::ToolScopes) receives: the bytes that were read, or the
/// original body when no tool needs a scope.
pub type ToolScopesBody<B> = Either<Full<Bytes>, B>;

impl<S> Layer<S> for ToolScopesLayer {
    type Service = ToolScopes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ToolScopes {
            inner,
            scopes: self.clone(),
        }
    }
}

/// The service of a [`ToolScopesLayer`]: reads the body, checks the tools it calls, and passes
/// it on unchanged.
#[derive(Debug, Clone)]
pub struct ToolScopes<S> {
    inner: S,
    scopes: ToolScopesLayer,
}

impl<S> ToolScopes<S> {
    portcullis_wire::inner_service_accessors!();
}

impl<S, B, ResB> Service<Request<B>> for ToolScopes<S>
where
    S: Service<Request<ToolScopesBody<B>>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResB: Send + 'static,
{
    type Response = Response<AuthBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // Every method's body is read, not only POST's: what a server behind does with a
        // body on another method is not this layer's to assume.
        if self.scopes.tools.is_empty() {
            return ResponseFuture::inner(self.inner.call(req.map(Either::Right)));
        }
        if is_encoded(req.headers()) {
            // A decompression layer between this one and the server would let a compressed
            // call through unread: decompress outside, where this layer sees the JSON.
            return ResponseFuture::ready(not_checked(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "compressed request bodies are not accepted here: tool scopes are checked on the JSON itself".to_owned(),
            ));
        }
        // The ready service goes into the future; a fresh clone stays behind for the next
        // `poll_ready`.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let scopes = self.scopes.clone();
        ResponseFuture::boxed(async move {
            let (parts, body) = req.into_parts();
            let bytes = match Limited::new(body, scopes.max_body).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    let too_large = e.is::<http_body_util::LengthLimitError>();
                    return Ok(unreadable(too_large, scopes.max_body));
                }
            };
            // No body, no call (the SSE stream's GET, the session-ending DELETE).
            if bytes.is_empty() {
                let req = Request::from_parts(parts, Either::Left(Full::new(bytes)));
                return inner.call(req).await.map(|r| r.map(AuthBody::inner));
            }
            let checked = if scopes.pass_unparseable || is_utf8_json(&parts.headers) {
                scopes.needed(&bytes)
            } else {
                Err(not_utf8_json())
            };
            let refusal = match checked {
                Ok(None) => None,
                Ok(Some(needed)) => match parts.extensions.get::<Principal>() {
                    Some(p) if needed.iter().all(|s| p.has_scope(s)) => None,
                    Some(_) => Some(AuthError::insufficient_scope(needed)),
                    // Anonymous (an optional auth layer): authentication is required.
                    None if layer_context(&parts.extensions).is_some() => {
                        Some(AuthError::new(ErrorCode::MissingCredentials))
                    }
                    None => {
                        return Ok(no_auth_layer::<Bytes>("ToolScopes").map(AuthBody::problem));
                    }
                },
                Err(e) => Some(e),
            };
            if let Some(err) = refusal {
                return Ok(crate::policy::refusal::refusal(
                    &parts.extensions,
                    &err,
                    "tool scopes refused the request",
                ));
            }
            let req = Request::from_parts(parts, Either::Left(Full::new(bytes)));
            inner.call(req).await.map(|r| r.map(AuthBody::inner))
        })
    }
}

/// A body that could not be read whole: too long (413), or the client stopped sending (400).
fn unreadable<B>(too_large: bool, max: usize) -> Response<AuthBody<B>> {
    if too_large {
        not_checked(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is longer than the {max} bytes read to check tool scopes"),
        )
    } else {
        not_checked(
            StatusCode::BAD_REQUEST,
            "the request body could not be read".to_owned(),
        )
    }
}

/// A body this layer cannot check. Not an authentication failure, so no challenge; a problem
/// body all the same.
fn not_checked<B>(status: StatusCode, detail: String) -> Response<AuthBody<B>> {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut res = Response::new(AuthBody::problem(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

fn not_utf8_json() -> AuthError {
    AuthError::with_detail(
        ErrorCode::InvalidRequest,
        "a request body must be sent as `Content-Type: application/json` in UTF-8 for the tool it calls to be checked",
    )
}
