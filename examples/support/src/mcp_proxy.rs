//! The gateway itself: `/mcp` behind the auth layer and [`ToolScopesLayer`], forwarded to an MCP
//! server written in any language (Python's `mcp`, the TypeScript SDK, …) over plain HTTP.
//! The body the server receives is the one `ToolScopes` read, byte for byte; answers (JSON or
//! an SSE stream) come back as they are produced.
//!
//! `examples/mcp_gateway/main.rs` runs it; `tests/mcp_lenient_backends.rs` builds it in
//! process in front of real Python and Node MCP servers.

use axum::Router;
use axum::body::Body;
use http::header::{self, HeaderName};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis::server::AuthLayer;
use portcullis::server::mcp::{ToolScopesBody, ToolScopesLayer};
use std::time::Duration;

use tower::limit::ConcurrencyLimitLayer;
use tower::service_fn;

/// Requests handled at once: each may hold a body of up to `ToolScopes`' limit (4 MiB by
/// default) while it is read, so this bounds what slow or hostile clients can make the gateway
/// hold (64 × 4 MiB).
const CONCURRENT_REQUESTS: usize = 64;
/// How long the MCP server behind may take to start answering.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1): never forwarded.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// `/mcp` behind `auth` and `tool_scopes`, forwarded to `upstream` (the MCP server's endpoint
/// URL, e.g. `http://127.0.0.1:8000/mcp`). Build `auth` with `strip_credentials(true)` so the
/// server behind never sees the caller's token.
pub fn app(upstream: Uri, auth: AuthLayer, tool_scopes: ToolScopesLayer) -> Router {
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();
    let forward = service_fn(move |req: Request<ToolScopesBody<Body>>| {
        let client = client.clone();
        let upstream = upstream.clone();
        async move { Ok::<_, std::convert::Infallible>(forward(&client, upstream, req).await) }
    });
    Router::new()
        .route_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(tool_scopes)
                .service(forward),
        )
        .layer(auth)
        .layer(ConcurrencyLimitLayer::new(CONCURRENT_REQUESTS))
}

/// Remove the hop-by-hop headers, and those the `Connection` header names (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
}

async fn forward(
    client: &Client<HttpConnector, Body>,
    upstream: Uri,
    req: Request<ToolScopesBody<Body>>,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // hyper frames the body it sends from its own length.
    parts.headers.remove(header::CONTENT_LENGTH);
    // The upstream's own name: servers that guard against DNS rebinding check it.
    if let Some(authority) = upstream.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, host);
    }
    parts.uri = upstream;
    parts.extensions = http::Extensions::new();
    parts.version = http::Version::HTTP_11;
    let sent = client.request(Request::from_parts(parts, Body::new(body)));
    match tokio::time::timeout(UPSTREAM_TIMEOUT, sent).await {
        Ok(Ok(res)) => {
            let (mut parts, body) = res.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Err(_) => {
            let mut res = Response::new(Body::from(
                "the MCP server behind the gateway did not answer in time",
            ));
            *res.status_mut() = StatusCode::GATEWAY_TIMEOUT;
            res
        }
        Ok(Err(_)) => {
            let mut res = Response::new(Body::from(
                "the MCP server behind the gateway did not answer",
            ));
            *res.status_mut() = StatusCode::BAD_GATEWAY;
            res
        }
    }
}
