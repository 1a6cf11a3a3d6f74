//! The doctor's HTTP client: hyper-util over rustls with the system's roots, every exchange
//! bounded in time and in body size.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis_wire::buffered_client::{BoxError, BufferedClient, buffered};
use tower::ServiceExt;

/// Bodies larger than this are refused (metadata, key sets and problem bodies are small).
const MAX_BODY: usize = 1 << 20;

/// What came back from one exchange.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body (at most 1 MiB).
    pub body: Bytes,
}

impl Answer {
    /// Every value of `name`, as text (values that are not text are skipped).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The first value of `name`, as text.
    pub(crate) fn first(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }
}

/// A client for `http` and `https` URLs.
#[derive(Clone)]
pub(crate) struct Http {
    client: BufferedClient<Full<Bytes>>,
    timeout: Duration,
}

impl Http {
    /// A client whose every exchange ends within `timeout`.
    pub(crate) fn new(timeout: Duration) -> Result<Self, BoxError> {
        // The doctor probes what the user names, plain-http development servers included.
        let https = portcullis_wire::https::connector(true, timeout)?;
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Http {
            client: buffered(client, MAX_BODY),
            timeout,
        })
    }

    /// Send `req` and read the whole answer.
    pub(crate) async fn send(&self, req: Request<Full<Bytes>>) -> Result<Answer, BoxError> {
        let res: Response<Bytes> =
            tokio::time::timeout(self.timeout, self.client.clone().oneshot(req))
                .await
                .map_err(|_| format!("no answer within {} s", self.timeout.as_secs_f32()))??;
        let (parts, body) = res.into_parts();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `GET url` asking for JSON; the document when the answer is 200 and a JSON object.
    pub(crate) async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::default())
            .map_err(|e| format!("not a URL: {e}"))?;
        let answer = self.send(req).await.map_err(|e| e.to_string())?;
        if answer.status != StatusCode::OK {
            return Err(format!("answered {}", answer.status));
        }
        match serde_json::from_slice(&answer.body) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(v),
            _ => Err("answered with something that is not a JSON object".into()),
        }
    }
}
