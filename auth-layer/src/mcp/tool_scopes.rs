use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, Limited};
use tower::{Layer, Service};

use super::message::{Batch, Message};

use crate::body::AuthBody;
use crate::error::{AuthError, ErrorCode};
use crate::future::ResponseFuture;
use crate::principal::Principal;
use crate::response::misconfiguration::no_auth_layer;
use crate::state::layer_context;

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
    pass_unparseable: bool,
}

impl fmt::Debug for ToolScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolScopes")
            .field("tools", &self.tools)
            .field("max_body", &self.max_body)
            .field("pass_unparseable", &self.pass_unparseable)
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
            pass_unparseable: false,
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

    /// **Risky opt-in**: pass every body this layer cannot read (not exactly one JSON value in
    /// UTF-8, or not sent as `application/json` in UTF-8) to the server unchecked, as this
    /// layer did before. Safe only when the server behind reads JSON no more leniently than
    /// serde_json and refuses other content types itself (rmcp does); in front of Python's
    /// `mcp`, the TypeScript SDK or any server that takes a BOM, UTF-16 or `NaN`, it lets a
    /// call of a gated tool through unchecked. Ambiguous JSON (a repeated `method`) is refused
    /// all the same, and a call found in a body is checked whatever its `Content-Type`.
    pub fn pass_unparseable_bodies_unchecked(mut self) -> Self {
        self.pass_unparseable = true;
        self
    }

    /// The scopes the calls in one JSON-RPC body need, or why the body is refused. `Ok(None)`:
    /// nothing in it needs a scope (or, with the opt-in, this reading cannot parse it).
    fn needed(&self, body: &[u8]) -> Result<Option<Vec<String>>, AuthError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        let parsed = if first == Some(&b'[') {
            serde_json::from_slice::<Batch>(body).map(|b| b.0)
        } else {
            serde_json::from_slice::<Message>(body).map(|m| vec![m])
        };
        let messages = match parsed {
            // serde_json does not check the UTF-8 of strings it skips; a reader that replaces
            // bad bytes reads the same call, but one that guesses another encoding may not.
            Ok(_) if !self.pass_unparseable && std::str::from_utf8(body).is_err() => {
                return Err(not_one_json_value());
            }
            Ok(messages) => messages,
            // Not JSON by this reading (the syntax pass runs only here, off the path of every
            // well-formed call). Another reader may find a call in it all the same.
            Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() => {
                return if self.pass_unparseable {
                    Ok(None)
                } else {
                    Err(not_one_json_value())
                };
            }
            // Well-formed JSON this reading cannot place (a repeated `method` or `name`, a name
            // that is not a string, a member named like one in another case or with a control
            // or non-ASCII character, a batch of non-objects or of more than MAX_BATCH): the
            // server might read it otherwise, so it is refused rather than let through.
            Err(_) => {
                return Err(AuthError::with_detail(
                    ErrorCode::InvalidRequest,
                    "the JSON-RPC message is ambiguous or too large: a member is repeated, has the wrong type or an odd name, or the batch is too long",
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

fn not_one_json_value() -> AuthError {
    AuthError::with_detail(
        ErrorCode::InvalidRequest,
        "the body is not exactly one JSON value in UTF-8, so the tool it calls cannot be checked",
    )
}

fn not_utf8_json() -> AuthError {
    AuthError::with_detail(
        ErrorCode::InvalidRequest,
        "a request body must be sent as `Content-Type: application/json` in UTF-8 for the tool it calls to be checked",
    )
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
                return Ok(crate::policy::refusal(
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

/// Whether the request has exactly one `Content-Type`, `application/json` (any case) with
/// well-formed parameters, none of them a `charset` other than `utf-8` (any case, quoted or
/// not) and at most one `charset`. Anything else, a missing header included, is not: which
/// encoding a server would guess for it is its own affair.
fn is_utf8_json(headers: &http::HeaderMap) -> bool {
    let mut values = headers.get_all(http::header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let value = value.as_bytes();
    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    let (media_type, mut rest) = value.split_at(end);
    if !media_type
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/json")
    {
        return false;
    }
    let mut charset = false;
    // RFC 9110 §5.6.6: *( OWS ";" OWS [ token "=" ( token / quoted-string ) ] )
    loop {
        rest = rest.trim_ascii_start();
        let Some(after) = rest.strip_prefix(b";") else {
            return rest.is_empty();
        };
        rest = after.trim_ascii_start();
        if rest.is_empty() || rest[0] == b';' {
            continue;
        }
        let name_len = rest.iter().take_while(|&&b| is_tchar(b)).count();
        let (name, after) = rest.split_at(name_len);
        let Some(after) = after.strip_prefix(b"=") else {
            return false;
        };
        let (param, after) = if let Some(quoted) = after.strip_prefix(b"\"") {
            // Escapes in a charset's name have no use; refusing them keeps one reading.
            let Some(close) = quoted.iter().position(|&b| b == b'"' || b == b'\\') else {
                return false;
            };
            if quoted[close] != b'"' {
                return false;
            }
            (&quoted[..close], &quoted[close + 1..])
        } else {
            let len = after.iter().take_while(|&&b| is_tchar(b)).count();
            after.split_at(len)
        };
        if name.is_empty() || param.is_empty() {
            return false;
        }
        if name.eq_ignore_ascii_case(b"charset") {
            if charset || !param.eq_ignore_ascii_case(b"utf-8") {
                return false;
            }
            charset = true;
        }
        rest = after;
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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
    fn ambiguous_json_is_refused_and_so_is_non_json_unless_opted_in() {
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
        let lenient = scopes().pass_unparseable_bodies_unchecked();
        for body in [
            &b"not json"[..],
            b"{\"method\":",
            b"[1, 2",
            b"\xEF\xBB\xBF{}",
            b"{} {}",
            b"{\"x\":NaN}",
        ] {
            let err = s.needed(body).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
            assert_eq!(lenient.needed(body).unwrap(), None);
        }
        // Invalid UTF-8 in a string serde_json skips: the call is still found with the opt-in.
        let bad_utf8 =
            b"{\"method\":\"tools/call\",\"x\":\"\xFF\",\"params\":{\"name\":\"add_note\"}}";
        assert_eq!(
            s.needed(bad_utf8).unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
        assert_eq!(lenient.needed(bad_utf8).unwrap().map(|v| v.len()), Some(2));
    }

    #[test]
    fn a_member_named_like_method_params_or_name_in_another_case_is_ambiguous() {
        let s = scopes();
        for body in [
            r#"{"Method":"tools/call","params":{"name":"add_note"}}"#,
            r#"{"method":"tools/list","METHOD":"tools/call","params":{"name":"add_note"}}"#,
            r#"{"method":"tools/call","Params":{"name":"add_note"}}"#,
            "{\"method\":\"tools/call\",\"param\u{17F}\":{\"name\":\"add_note\"}}",
            r#"{"method":"tools/call","params":{"NAME":"add_note"}}"#,
            r#"{"method":"tools/call","params":{"name":"whoami","nAmE":"add_note"}}"#,
        ] {
            let err = s.needed(body.as_bytes()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest, "{body}");
        }
        // Names that only look alike are other members; escapes are read as what they say.
        let other =
            r#"{"method":"tools/call","params":{"name":"whoami","names":"add_note","nam":1}}"#;
        assert_eq!(s.needed(other.as_bytes()).unwrap(), None);
        let escaped = r#"{"m\u0065thod":"tools/call","params":{"n\u0061me":"add_note"}}"#;
        assert_eq!(
            s.needed(escaped.as_bytes()).unwrap().map(|v| v.len()),
            Some(2)
        );
    }

    #[test]
    fn utf8_json_content_types() {
        let is = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_str(v).unwrap(),
            );
            is_utf8_json(&h)
        };
        for ok in [
            "application/json",
            "APPLICATION/Json",
            "application/json;charset=utf-8",
            "application/json; charset=\"UTF-8\"",
            "application/json ; CHARSET=Utf-8 ; ; q=1",
            "application/json; profile=\"a;b\"; charset=utf-8",
        ] {
            assert!(is(ok), "{ok}");
        }
        for refused in [
            "",
            "text/plain",
            "application/json-rpc",
            "application/jsonx",
            "application/json, text/plain",
            "application/json; charset=utf-16",
            "application/json; charset=utf8",
            "application/json; charset=\"utf-8",
            "application/json; charset=\"utf\\-8\"",
            "application/json; charset=utf-8; charset=utf-8",
            "application/json; charset=",
            "application/json; charset",
            "application/json; =utf-8",
            "application/json; charset=utf-8 x",
            "application/json; profile=\"a;charset=utf-16\"x",
        ] {
            assert!(!is(refused), "{refused}");
        }
        assert!(!is_utf8_json(&http::HeaderMap::new()), "no Content-Type");
        let mut two = http::HeaderMap::new();
        for v in ["application/json", "application/json"] {
            two.append(http::header::CONTENT_TYPE, HeaderValue::from_static(v));
        }
        assert!(!is_utf8_json(&two), "two Content-Type fields");
    }
}
