//! The auth layer's test harness (crate `portcullis-test-harness`, not published): drives a
//! real `AuthService` with arbitrary header bytes and checks the invariants every answer must
//! keep ([`Harness`]), and sends arbitrary bodies through a real `ToolScopes` service, with an
//! oracle more lenient than serde_json ([`check_tool_call_as`], [`lenient_calls_gated`]).
//! [`lenient`] is the corpus of bodies only lenient readers find a call in.
//!
//! Shared by the proptest suites (`auth-layer/tests/{robustness,contract_mcp}.rs`), the
//! real-backend suite (`tests/mcp_lenient_backends.rs`) and the `cargo fuzz` targets.

pub mod lenient;

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use auth_layer::jwt::{JwtAuthenticator, JwtKey};
use auth_layer::{ApiKeys, AuthLayer, CredentialKind, CsrfKey, CsrfPolicy, Principal};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::Algorithm;
use tower::{Layer, Service, service_fn};

/// Appended to credentials so that an echo of them in a response is detectable exactly.
pub const MARKER: &str = "Zq9MARKERx7";

/// The HMAC key of the tokens the harness accepts (HS256, `kid` `k`, audience `api`).
pub const SECRET: &[u8] = b"fuzzing-secret-of-at-least-32-bytes!!";

fn now_ready<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        // Static keys and a ready inner service: every answer is immediate.
        Poll::Pending => panic!("the auth service did not answer synchronously"),
    }
}

/// Two auth layers (bearer and cookie JWTs, session-bound CSRF, an API key; and a bearer JWT
/// with a required `typ`) in front of a service that always answers 200.
#[derive(Debug)]
pub struct Harness {
    /// Bearer and cookie JWTs, CSRF, an API key.
    layer: AuthLayer,
    /// The same, with a required `typ` (RFC 9068 `at+jwt`): the header is read further.
    typed: AuthLayer,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// The layers, built with static keys (nothing to fetch: every answer is immediate).
    pub fn new() -> Self {
        let builder = || {
            JwtAuthenticator::builder()
                .key(
                    JwtKey::hmac(SECRET, &[Algorithm::HS256])
                        .unwrap()
                        .with_kid("k"),
                )
                .audience("api")
        };
        let jwt = builder().build().unwrap();
        let typed = AuthLayer::builder()
            .bearer(builder().token_type("at+jwt").build().unwrap())
            .build()
            .unwrap();
        let keys = ApiKeys::new().with_key(
            "known-key",
            Principal::builder(CredentialKind::ApiKey).build(),
        );
        let layer = AuthLayer::builder()
            .bearer(jwt.clone())
            .cookie("at", jwt)
            .csrf(CsrfPolicy::session_bound(CsrfKey::new(SECRET).unwrap()))
            .api_key("x-api-key", keys)
            .build()
            .unwrap();
        Harness { layer, typed }
    }

    /// Send one request with these raw header values; check the answer.
    pub fn check(&self, authorization: &[&[u8]], cookie: Option<&[u8]>, api_key: Option<&[u8]>) {
        self.check_with(&self.layer, authorization, cookie, api_key);
    }

    fn check_with(
        &self,
        layer: &AuthLayer,
        authorization: &[&[u8]],
        cookie: Option<&[u8]>,
        api_key: Option<&[u8]>,
    ) {
        let mut req = Request::get("/").body(Full::<Bytes>::default()).unwrap();
        let mut sent = Vec::new();
        let h = req.headers_mut();
        for a in authorization {
            let Ok(v) = HeaderValue::from_bytes(a) else {
                return;
            };
            h.append("authorization", v);
            sent.push(*a);
        }
        if let Some(c) = cookie {
            let Ok(v) = HeaderValue::from_bytes(c) else {
                return;
            };
            h.append("cookie", v);
            sent.push(c);
        }
        if let Some(k) = api_key {
            let Ok(v) = HeaderValue::from_bytes(k) else {
                return;
            };
            h.append("x-api-key", v);
            sent.push(k);
        }
        let mut svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
        }));
        let res = now_ready(svc.call(req)).unwrap();
        let status = res.status().as_u16();
        assert!(matches!(status, 200 | 400 | 401 | 403), "status {status}");
        if status == 401 {
            assert!(
                res.headers().contains_key("www-authenticate"),
                "401 without challenge"
            );
        }
        let headers = format!("{:?}", res.headers());
        let body = now_ready(res.into_body().collect()).unwrap().to_bytes();
        if status != 200 {
            let json: serde_json::Value =
                serde_json::from_slice(&body).expect("problem body is JSON");
            assert_eq!(json["status"], status);
        }
        for s in sent {
            let text = String::from_utf8_lossy(s);
            if let Some(pos) = text.find(MARKER) {
                let secret = &text[pos..];
                assert!(
                    !String::from_utf8_lossy(&body).contains(secret),
                    "body echoes a credential"
                );
                assert!(!headers.contains(secret), "headers echo a credential");
            }
        }
    }

    /// A JWT built from arbitrary header JSON, payload JSON and signature bytes.
    pub fn check_jwt(&self, header: &[u8], payload: &[u8], signature: &[u8]) {
        let token = format!(
            "{}.{}.{}{MARKER}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(signature)
        );
        self.check(&[format!("Bearer {token}").as_bytes()], None, None);
        self.check(&[], Some(format!("at={token}").as_bytes()), None);
    }

    /// A JWT with an arbitrary JOSE header (bytes, base64url-encoded) and a well-formed
    /// payload, sent to the layer that reads `typ` too.
    pub fn check_jose_header(&self, header: &[u8]) {
        let payload = br#"{"aud":"api","exp":4102444800,"sub":"fuzz"}"#;
        let token = format!(
            "{}.{}.c2lnbmF0dXJl{MARKER}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
        );
        let auth = format!("Bearer {token}");
        self.check_with(&self.typed, &[auth.as_bytes()], None, None);
        self.check(&[auth.as_bytes()], None, None);
    }
}

/// The tool the [`check_tool_call`] service gates (scope `admin`; the caller has only `read`).
pub const GATED: &str = "gated";
const TOOL_BODY_MAX: usize = 64 * 1024;

/// `Content-Type`s to send with a body, and whether each says UTF-8 JSON (the only ones a
/// body may pass with).
pub const CONTENT_TYPES: &[(Option<&str>, bool)] = &[
    (Some("application/json"), true),
    (None, false),
    (Some("application/json; charset=utf-8"), true),
    (Some("application/json;charset=\"UTF-8\""), true),
    (Some("Application/JSON"), true),
    (Some("application/json; charset=utf-16"), false),
    (Some("application/json; charset=utf-32"), false),
    (Some("application/json; charset=iso-8859-1"), false),
    (Some("text/plain"), false),
    (Some("application/json-rpc"), false),
    (Some("application/json, text/plain"), false),
    (
        Some("application/json; charset=utf-8; charset=utf-16"),
        false,
    ),
];

/// Whether `name` equals `want` (ASCII) as Go's `encoding/json` matches member names: any
/// case, U+017F for `s`, U+212A for `k`.
fn folds_to(name: &str, want: &str) -> bool {
    let folded: String = name
        .chars()
        .map(|c| match c {
            '\u{17F}' => 's',
            '\u{212A}' => 'k',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    folded == want
}

/// Every member of `v` whose name folds to `want`.
fn members<'a>(
    v: &'a serde_json::Value,
    want: &'a str,
) -> impl Iterator<Item = &'a serde_json::Value> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter(move |(k, _)| folds_to(k, want))
        .map(|(_, v)| v)
}

/// A `tools/call` of [`GATED`] by the most generous reading: member names in any case, any
/// of repeated members.
fn is_gated_call(m: &serde_json::Value) -> bool {
    members(m, "method").any(|v| v.as_str() == Some("tools/call"))
        && members(m, "params")
            .flat_map(|p| members(p, "name"))
            .any(|n| n.as_str() == Some(GATED))
}

fn has_gated_call(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Array(batch) => batch.iter().any(is_gated_call),
        v => is_gated_call(v),
    }
}

/// Whether an independent reading of `body` (a `serde_json::Value`, the last of repeated members
/// winning, as many JSON-RPC stacks read it) finds a `tools/call` of [`GATED`].
fn calls_gated(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| has_gated_call(&v))
}

/// The texts lenient decoders make of `body`: UTF-8 with bad bytes replaced, UTF-16 and UTF-32
/// either way round; each without a leading BOM.
fn decodings(body: &[u8]) -> Vec<String> {
    let mut texts = vec![String::from_utf8_lossy(body).into_owned()];
    if body.len().is_multiple_of(2) {
        for be in [false, true] {
            let units = body.chunks_exact(2).map(|c| {
                let pair = [c[0], c[1]];
                if be {
                    u16::from_be_bytes(pair)
                } else {
                    u16::from_le_bytes(pair)
                }
            });
            texts.push(
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or('\u{FFFD}'))
                    .collect(),
            );
        }
    }
    if body.len().is_multiple_of(4) {
        for be in [false, true] {
            texts.push(
                body.chunks_exact(4)
                    .map(|c| {
                        let quad = [c[0], c[1], c[2], c[3]];
                        let u = if be {
                            u32::from_be_bytes(quad)
                        } else {
                            u32::from_le_bytes(quad)
                        };
                        char::from_u32(u).unwrap_or('\u{FFFD}')
                    })
                    .collect(),
            );
        }
    }
    for t in &mut texts {
        if let Some(rest) = t.strip_prefix('\u{FEFF}') {
            *t = rest.to_owned();
        }
    }
    texts
}

/// The deepest nesting of brackets in `text`, counting those in strings too (an upper bound).
fn depth(text: &str) -> usize {
    let (mut d, mut max) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                d += 1;
                max = max.max(d);
            }
            b']' | b'}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Whether a reader more lenient than serde_json finds a `tools/call` of [`GATED`] in `body`:
/// the `json5` crate (JSON5: comments, trailing commas, `NaN`/`Infinity`, single quotes, …)
/// over every decoding of the bytes, the whole text and each line of it (NDJSON), and values
/// read back to back; member names matched in any case.
pub fn lenient_calls_gated(body: &[u8]) -> bool {
    decodings(body).iter().any(|text| {
        // json5 recurses without a limit: very deep texts are left to the other readings.
        if depth(text) > 64 {
            return false;
        }
        let json5 =
            |t: &str| json5::from_str::<serde_json::Value>(t).is_ok_and(|v| has_gated_call(&v));
        json5(text)
            || text.lines().any(json5)
            || serde_json::Deserializer::from_str(text)
                .into_iter::<serde_json::Value>()
                .map_while(Result::ok)
                .any(|v| has_gated_call(&v))
    })
}

/// [`check_tool_call_as`] with `Content-Type: application/json`.
pub fn check_tool_call(body: &[u8]) {
    check_tool_call_as(CONTENT_TYPES[0], body);
}

/// Sends `body` with `content_type` through a real `ToolScopes` service as a caller lacking the
/// gated tool's scope, and checks: no panic and no 5xx; what passes reaches the service byte
/// for byte, is empty or UTF-8 JSON sent as such, and holds no gated call by any reading
/// (serde_json's or a lenient one); a body over the limit is 413.
pub fn check_tool_call_as((content_type, utf8_json): (Option<&'static str>, bool), body: &[u8]) {
    use auth_layer::mcp::{ToolScopesBody, ToolScopesLayer};
    let layer = ToolScopesLayer::new()
        .tool(GATED, ["admin"])
        .max_body(TOOL_BODY_MAX);
    let mut svc = layer.layer(service_fn(
        |req: Request<ToolScopesBody<Full<Bytes>>>| async move {
            let bytes = req.into_body().collect().await.unwrap().to_bytes();
            Ok::<_, Infallible>(Response::new(Full::new(bytes)))
        },
    ));
    let mut req = Request::post("http://mcp.test/mcp")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    if let Some(ct) = content_type {
        req.headers_mut()
            .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    req.extensions_mut().insert(
        Principal::builder(CredentialKind::Bearer)
            .subject("fuzz")
            .scopes(["read"])
            .build(),
    );
    let res = now_ready(svc.call(req)).unwrap();
    let status = res.status().as_u16();
    let out = now_ready(res.into_body().collect()).unwrap().to_bytes();
    if body.len() > TOOL_BODY_MAX {
        assert_eq!(status, 413);
        return;
    }
    let shown = || format!("{content_type:?} {:?}", String::from_utf8_lossy(body));
    match status {
        200 => {
            assert_eq!(&out[..], body, "the body reached the service changed");
            assert!(!calls_gated(body), "a gated call passed: {}", shown());
            assert!(
                !lenient_calls_gated(body),
                "a lenient reader finds a gated call in what passed: {}",
                shown()
            );
            if !body.is_empty() {
                assert!(
                    utf8_json,
                    "a body passed with another content type: {}",
                    shown()
                );
                assert!(
                    std::str::from_utf8(body).is_ok()
                        && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(),
                    "a body that is not one JSON value in UTF-8 passed: {}",
                    shown()
                );
            }
        }
        400 | 403 => {}
        other => panic!("status {other} for {}", shown()),
    }
}
