//! Per-tool scopes for MCP servers (and any JSON-RPC endpoint): a `tools/call` for a tool
//! whose scopes the token lacks is answered with 403 `insufficient_scope`, at the HTTP level,
//! before the MCP server runs it.
//!
//! An MCP server is one endpoint: which tool a request calls is in its JSON-RPC body, so a
//! route policy cannot tell a harmless call from a dangerous one. And an error the tool
//! returns is a JSON-RPC error inside a `200`, which no MCP client reads as "ask for more
//! scope". The MCP authorization spec wants the HTTP answer: `403` with
//! `WWW-Authenticate: Bearer error="insufficient_scope", scope="…", resource_metadata="…"`,
//! which conforming clients (refresh-layer's [step-up], the TypeScript SDK) answer by getting
//! a token with that scope and retrying once.
//!
//! [`ToolScopes`] reads the body (bounded), finds every `tools/call` in it (a single message
//! or a batch), and refuses the request when a called tool needs a scope the
//! [`Principal`] lacks; the refusal is rendered by the [`AuthLayer`](crate::AuthLayer) around
//! it, so it has the same realm, `resource_metadata` and problem body as every other failure.
//! Everything else passes through, the body unchanged byte for byte. A compressed body
//! (`Content-Encoding` other than `identity`) is `415`: put a decompression layer *outside*
//! this one, never between it and the server.
//!
//! Name every scope a tool needs, the baseline ones included: the 403 names exactly those,
//! and some clients (the TypeScript SDK 1.x) *replace* their scope with the challenge's
//! rather than adding to it, so a challenge naming only the new scope would cost them the
//! old ones.
//!
//! [step-up]: https://docs.rs/refresh-layer
//!
//! # Example
//! ```
//! use auth_layer::mcp::ToolScopes;
//! use auth_layer::{AuthLayer, ProtectedResource, jwt::{JwtAuthenticator, JwtKey}};
//! use jsonwebtoken::Algorithm;
//! use tower::ServiceBuilder;
//!
//! # fn main() -> Result<(), auth_layer::ConfigError> {
//! let jwt = JwtAuthenticator::builder()
//!     .key(JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256])?)
//!     .audience("https://mcp.example.com/mcp")
//!     .build()?;
//! let stack = ServiceBuilder::new()
//!     .layer(
//!         AuthLayer::builder()
//!             .bearer(jwt)
//!             .resource_metadata(
//!                 ProtectedResource::new("https://mcp.example.com/mcp")
//!                     .authorization_server("https://id.example.com")
//!                     .scopes_supported(["notes:read", "notes:write"])
//!                     .challenge_scope("notes:read"),
//!             )
//!             .strip_credentials(true)
//!             .build()?,
//!     )
//!     .layer(
//!         ToolScopes::new()
//!             .tool("list_notes", ["notes:read"])
//!             .tool("add_note", ["notes:read", "notes:write"]),
//!     );
//! # let _ = stack;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, Limited};
use serde::Deserialize;
use tower::{Layer, Service};

use crate::body::AuthBody;
use crate::error::{AuthError, ErrorCode};
use crate::future::ResponseFuture;
use crate::misconfiguration::no_auth_layer;
use crate::principal::Principal;
use crate::shared::layer_context;

/// The most of a body [`ToolScopes`] reads by default: 4 MiB, what rmcp's Streamable HTTP
/// server accepts.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// The body the inner service of [`ToolScopes`] receives: the bytes that were read, or the
/// original body when no tool needs a scope.
pub type ToolScopesBody<B> = Either<Full<Bytes>, B>;

/// Requires scopes per MCP tool; see the [module docs](self).
#[derive(Clone)]
#[must_use]
pub struct ToolScopes {
    tools: Arc<HashMap<String, Arc<[String]>>>,
    max_body: usize,
}

impl fmt::Debug for ToolScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolScopes")
            .field("tools", &self.tools)
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl Default for ToolScopes {
    fn default() -> Self {
        ToolScopes::new()
    }
}

impl ToolScopes {
    /// No tool needs a scope yet; the body limit is [`DEFAULT_MAX_BODY`].
    pub fn new() -> Self {
        ToolScopes {
            tools: Arc::default(),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Calls of tool `name` need every one of `scopes` (the 403 names them all). Tools not
    /// named need nothing beyond authentication.
    pub fn tool<I, S>(mut self, name: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Arc::make_mut(&mut self.tools).insert(
            name.into(),
            scopes
                .into_iter()
                .map(Into::into)
                .collect::<Vec<_>>()
                .into(),
        );
        self
    }

    /// The most of a body read (default [`DEFAULT_MAX_BODY`]); a longer one is
    /// answered `413`, since a call that cannot be read cannot be checked.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The scopes the calls in one JSON-RPC body need, or why the body is refused. `Ok(None)`:
    /// nothing in it needs a scope (or it is not JSON at all, which the MCP server answers
    /// itself: it cannot call a tool from it either).
    fn needed(&self, body: &[u8]) -> Result<Option<Vec<String>>, AuthError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        let parsed = if first == Some(&b'[') {
            serde_json::from_slice::<Vec<Message>>(body)
        } else {
            serde_json::from_slice::<Message>(body).map(|m| vec![m])
        };
        let messages = match parsed {
            Ok(messages) => messages,
            // Not JSON at all: nothing can be called from it, by this reading or the server's
            // (the syntax pass runs only here, off the path of every well-formed call).
            Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() => {
                return Ok(None);
            }
            // Well-formed JSON this reading cannot place (a repeated `method` or `name`, a name
            // that is not a string, a batch of non-objects): the server might read it
            // otherwise, so it is refused rather than let through unchecked.
            Err(_) => {
                return Err(AuthError::with_detail(
                    ErrorCode::InvalidRequest,
                    "the JSON-RPC message is ambiguous: a member is repeated or has the wrong type",
                ));
            }
        };
        let mut needed: Vec<String> = Vec::new();
        for m in &messages {
            if m.method.as_deref() != Some("tools/call") {
                continue;
            }
            let Some(name) = m.params.as_ref().and_then(|p| p.name.as_deref()) else {
                continue;
            };
            if let Some(scopes) = self.tools.get(name) {
                for s in scopes.iter() {
                    if !needed.contains(s) {
                        needed.push(s.clone());
                    }
                }
            }
        }
        Ok((!needed.is_empty()).then_some(needed))
    }
}

/// The members of a JSON-RPC message this layer reads. Derived structs refuse a repeated
/// member (serde reports `duplicate field`), which is what makes an ambiguous body visible.
#[derive(Deserialize)]
struct Message {
    method: Option<String>,
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    name: Option<String>,
}

impl<S> Layer<S> for ToolScopes {
    type Service = ToolScopesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ToolScopesService {
            inner,
            scopes: self.clone(),
        }
    }
}

/// The service of a [`ToolScopes`] layer.
#[derive(Debug, Clone)]
pub struct ToolScopesService<S> {
    inner: S,
    scopes: ToolScopes,
}

impl<S> ToolScopesService<S> {
    portcullis_wire::inner_service_accessors!();
}

impl<S, B, ResB> Service<Request<B>> for ToolScopesService<S>
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
            let refusal = match scopes.needed(&bytes) {
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
                return Ok(crate::authorize::refusal(
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

/// A `Content-Encoding` other than `identity`: the bytes are not the JSON a server inside
/// (behind a decompression layer) would read.
fn is_encoded(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes() -> ToolScopes {
        ToolScopes::new()
            .tool("add_note", ["notes:read", "notes:write"])
            .tool("list_notes", ["notes:read"])
    }

    #[test]
    fn calls_are_found_in_single_messages_and_batches() {
        let s = scopes();
        let call = |name: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#
            )
        };
        assert_eq!(
            s.needed(call("add_note").as_bytes()).unwrap(),
            Some(vec!["notes:read".to_owned(), "notes:write".to_owned()])
        );
        assert_eq!(s.needed(call("whoami").as_bytes()).unwrap(), None);
        let batch = format!("[{}, {}]", call("list_notes"), call("add_note"));
        assert_eq!(
            s.needed(batch.as_bytes()).unwrap().map(|v| v.len()),
            Some(2),
            "the union, each scope once"
        );
        let list =
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"add_note"}}"#;
        assert_eq!(s.needed(list).unwrap(), None);
    }

    #[test]
    fn ambiguous_json_is_refused_and_non_json_is_left_to_the_server() {
        let s = scopes();
        for body in [
            &br#"{"method":"tools/call","params":{"name":"whoami","name":"add_note"}}"#[..],
            br#"{"method":"tools/list","method":"tools/call","params":{"name":"add_note"}}"#,
            br#"{"method":"tools/call","params":{"name":7}}"#,
            br#"[{"method":"tools/call","params":{"name":"add_note"}}, 3]"#,
        ] {
            let err = s.needed(body).unwrap_err();
            assert_eq!(
                err.code(),
                ErrorCode::InvalidRequest,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [&b"not json"[..], b"", b"{\"method\":", b"[1, 2"] {
            assert_eq!(s.needed(body).unwrap(), None);
        }
    }
}
