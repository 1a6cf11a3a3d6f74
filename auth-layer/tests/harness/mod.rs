//! Drives a real `AuthService` with arbitrary header bytes and checks the invariants every
//! answer must keep. Shared by the proptest suite and the `cargo fuzz` target.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use auth_layer::jwt::{JwtAuthenticator, JwtKey};
use auth_layer::{ApiKeys, AuthLayer, CredentialKind, Csrf, CsrfKey, Principal};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::Algorithm;
use tower::{Layer, Service, service_fn};

/// Appended to credentials so that an echo of them in a response is detectable exactly.
pub const MARKER: &str = "Zq9MARKERx7";

pub const SECRET: &[u8] = b"fuzzing-secret-of-at-least-32-bytes!!";

fn now_ready<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        // Static keys and a ready inner service: every answer is immediate.
        Poll::Pending => panic!("the auth service did not answer synchronously"),
    }
}

pub struct Harness {
    layer: AuthLayer,
    /// The same, with a required `typ` (RFC 9068 `at+jwt`): the header is read further.
    typed: AuthLayer,
}

impl Harness {
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
            .csrf(Csrf::session_bound(CsrfKey::new(SECRET).unwrap()))
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

/// Whether an independent reading of `body` (a `serde_json::Value`, the last of repeated members
/// winning, as many JSON-RPC stacks read it) finds a `tools/call` of [`GATED`].
fn calls_gated(body: &[u8]) -> bool {
    let is_call = |m: &serde_json::Value| {
        m.get("method").and_then(|v| v.as_str()) == Some("tools/call")
            && m.get("params")
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str())
                == Some(GATED)
    };
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(batch)) => batch.iter().any(is_call),
        Ok(v) => is_call(&v),
        Err(_) => false,
    }
}

/// Sends `body` through a real `ToolScopes` service as a caller lacking the gated tool's
/// scope, and checks: no panic and no 5xx; what passes reaches the service byte for byte;
/// a body any reading finds a gated call in never passes; a body over the limit is 413.
pub fn check_tool_call(body: &[u8]) {
    use auth_layer::mcp::{ToolScopes, ToolScopesBody};
    let layer = ToolScopes::new()
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
    match status {
        200 => {
            assert_eq!(&out[..], body, "the body reached the service changed");
            assert!(
                !calls_gated(body),
                "a gated call passed: {:?}",
                String::from_utf8_lossy(body)
            );
        }
        400 | 403 => {}
        other => panic!("status {other} for {:?}", String::from_utf8_lossy(body)),
    }
}
