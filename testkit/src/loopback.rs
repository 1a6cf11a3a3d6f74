//! Real HTTP on loopback for integration tests: serve a router on `127.0.0.1:0`, call it with
//! hyper-util's client, and check each answer against the wire contract (RFC 6750 challenges,
//! RFC 9457 problem bodies). Helpers panic with a message that says what was wrong, as test
//! assertions do.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use portcullis::testkit::loopback::{client, empty, req_to, send, serve};
//! let addr = serve(axum::Router::new().route("/", axum::routing::get(|| async { "hi" }))).await;
//! let reply = send(&client(), req_to(addr, "/").body(empty()).unwrap()).await;
//! assert_eq!(reply.status, 200);
//! # }
//! ```

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis_wire::{Challenge, PROBLEM_JSON, parse_challenges};

mod request;

pub use request::TestRequest;

/// Serve an axum router on a fresh loopback port until the test ends.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// hyper-util's client for plain-HTTP loopback calls.
pub type LoopbackClient = Client<HttpConnector, Full<Bytes>>;

/// A new loopback client.
pub fn client() -> LoopbackClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// What came back, with the challenges parsed strictly (a malformed header fails the test).
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// Every challenge of every `WWW-Authenticate` field.
    pub challenges: Vec<Challenge>,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The problem body's `code`.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The one challenge of `scheme`; each RFC 6750 parameter at most once.
    pub fn challenge(&self, scheme: &str) -> &Challenge {
        let mut found = self.challenges.iter().filter(|c| c.is(scheme));
        let c = found
            .next()
            .unwrap_or_else(|| panic!("no {scheme} challenge in {:?}", self.challenges));
        assert!(found.next().is_none(), "two {scheme} challenges");
        for p in ["realm", "scope", "error", "error_description", "error_uri"] {
            let n = c.params.iter().filter(|(k, _)| k == p).count();
            assert!(n <= 1, "{p} appears {n} times in {c:?}");
        }
        c
    }

    /// The contract for every failure: problem+json, no-store, body status and code agree.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "status; body {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some(PROBLEM_JSON));
        assert_eq!(self.header("cache-control"), Some("no-store"));
        let j = self.json();
        assert_eq!(j["code"], code);
        assert_eq!(j["status"], status);
        assert!(
            j["type"].as_str().is_some_and(|t| t.ends_with(code)),
            "type {j}"
        );
        assert!(j["title"].is_string() && j["detail"].is_string(), "{j}");
        if status == 401 {
            assert!(
                !self.challenges.is_empty(),
                "a 401 always carries a challenge"
            );
            for c in &self.challenges {
                assert!(
                    c.param("realm").is_some(),
                    "every challenge has a realm: {c:?}"
                );
            }
        }
    }
}

/// Send `req` and read the whole answer; challenges are parsed strictly.
pub async fn send(client: &LoopbackClient, req: Request<Full<Bytes>>) -> Reply {
    let res = client
        .request(req)
        .await
        .expect("request reaches the server");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let challenges = parts
        .headers
        .get_all("www-authenticate")
        .iter()
        .flat_map(|v| {
            parse_challenges(v.to_str().expect("challenge is ASCII"))
                .unwrap_or_else(|e| panic!("malformed WWW-Authenticate {v:?}: {e}"))
        })
        .collect();
    Reply {
        status: parts.status,
        headers: parts.headers,
        challenges,
        body,
    }
}

/// A GET request builder for `path` on `addr` ([`TestRequest`] writes requests of every
/// method with their credentials and body).
pub fn req_to(addr: SocketAddr, path: &str) -> http::request::Builder {
    Request::get(format!("http://{addr}{path}"))
}

/// A GET request for `path` on `addr` carrying `Authorization: Bearer <token>`.
pub fn bearer_req(addr: SocketAddr, path: &str, token: &str) -> Request<Full<Bytes>> {
    req_to(addr, path)
        .header("authorization", format!("Bearer {token}"))
        .body(empty())
        .expect("a valid request")
}

/// An empty request body.
pub fn empty() -> Full<Bytes> {
    Full::new(Bytes::new())
}
