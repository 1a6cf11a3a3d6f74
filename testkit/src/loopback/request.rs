//! [`TestRequest`]: one request to a loopback server, of any method, with the credentials an
//! API test sends, read back as a [`Reply`].

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::Full;

use super::{LoopbackClient, Reply, client, send};

/// A request being written for a server on loopback: a method, a path, the credential and body
/// of the case under test; [`send`](TestRequest::send) gives the [`Reply`].
///
/// Setters panic on a header value HTTP cannot carry, as test assertions do: a test that
/// means to send an invalid header builds its `http::Request` by hand.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use axum::{Router, routing::post};
/// use portcullis::testkit::loopback::{TestRequest, serve};
///
/// let app = Router::new().route("/notes", post(|body: String| async move { body }));
/// let addr = serve(app).await;
/// let reply = TestRequest::post(addr, "/notes")
///     .bearer("a-token")
///     .json(&serde_json::json!({ "text": "hi" }))
///     .send()
///     .await;
/// assert_eq!(reply.status, 200);
/// assert_eq!(reply.json()["text"], "hi");
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct TestRequest {
    request: Request<Full<Bytes>>,
}

impl TestRequest {
    /// A request of `method` for `path` (with its query) on `addr`, with no body. `path` starts
    /// with `/`: anything else could name another host (`@elsewhere/…`) that the credential
    /// would then be sent to, so it panics.
    pub fn new(method: Method, addr: SocketAddr, path: &str) -> Self {
        assert!(
            path.starts_with('/'),
            "{path:?} is not a path: it must start with '/'"
        );
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = method;
        *request.uri_mut() = format!("http://{addr}{path}")
            .parse()
            .unwrap_or_else(|e| panic!("{path:?} is not a path and query: {e}"));
        TestRequest { request }
    }

    /// `GET path`.
    pub fn get(addr: SocketAddr, path: &str) -> Self {
        TestRequest::new(Method::GET, addr, path)
    }

    /// `HEAD path`.
    pub fn head(addr: SocketAddr, path: &str) -> Self {
        TestRequest::new(Method::HEAD, addr, path)
    }

    /// `POST path`.
    pub fn post(addr: SocketAddr, path: &str) -> Self {
        TestRequest::new(Method::POST, addr, path)
    }

    /// `PUT path`.
    pub fn put(addr: SocketAddr, path: &str) -> Self {
        TestRequest::new(Method::PUT, addr, path)
    }

    /// `PATCH path`.
    pub fn patch(addr: SocketAddr, path: &str) -> Self {
        TestRequest::new(Method::PATCH, addr, path)
    }

    /// `DELETE path`.
    pub fn delete(addr: SocketAddr, path: &str) -> Self {
        TestRequest::new(Method::DELETE, addr, path)
    }

    /// `OPTIONS path` (a CORS preflight, with [`header`](Self::header)s for `Origin` and
    /// `Access-Control-Request-Method`).
    pub fn options(addr: SocketAddr, path: &str) -> Self {
        TestRequest::new(Method::OPTIONS, addr, path)
    }

    /// Add a header (added, not replaced: a repeated header is a case to test too).
    pub fn header(self, name: &str, value: impl AsRef<str>) -> Self {
        self.append(name, value.as_ref(), false)
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.append("authorization", &format!("Bearer {token}"), true)
    }

    /// The cookie `name=value` (one `Cookie` header per call).
    pub fn cookie(self, name: &str, value: &str) -> Self {
        self.append("cookie", &format!("{name}={value}"), true)
    }

    /// `value` in the API-key header `header` (the one given to `AuthLayerBuilder::api_key`).
    pub fn api_key(self, header: &str, value: &str) -> Self {
        self.append(header, value, true)
    }

    /// Credentials are marked sensitive, so `Debug` (a failing assertion's message, a log)
    /// does not print them.
    fn append(mut self, name: &str, value: &str, sensitive: bool) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("{name:?} is not a header name: {e}"));
        let mut value = HeaderValue::from_str(value)
            .unwrap_or_else(|e| panic!("the value for {name} cannot be sent: {e}"));
        value.set_sensitive(sensitive);
        self.request.headers_mut().append(name, value);
        self
    }

    /// The body, sent as it is (set `content-type` with [`header`](Self::header)).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        *self.request.body_mut() = Full::new(body.into());
        self
    }

    /// `value` as JSON, with `content-type: application/json`.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("the value serializes to JSON");
        self.header("content-type", "application/json").body(body)
    }

    /// The request as written, to send some other way.
    pub fn into_request(self) -> Request<Full<Bytes>> {
        self.request
    }

    /// Send it with a new [`client`] and read the whole answer.
    pub async fn send(self) -> Reply {
        self.send_with(&client()).await
    }

    /// Send it with `client` (to reuse its connections) and read the whole answer.
    pub async fn send_with(self, client: &LoopbackClient) -> Reply {
        send(client, self.request).await
    }
}
