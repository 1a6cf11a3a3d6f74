//! What `mcp::ToolScopesLayer` adds to a request: reading the JSON-RPC body and finding the tool,
//! against the same request through the auth layer alone; and, for scale, one whole MCP
//! `tools/call` through the stack of `examples/mcp_server` (rmcp, stateless). See
//! `benches/RESULTS.md`.
//!
//! `cargo bench -p portcullis-benches --bench mcp`

#[allow(dead_code)]
mod common;

use std::hint::black_box;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use jsonwebtoken::Algorithm;
use portcullis::server::AuthLayer;
use portcullis::server::mcp::ToolScopesLayer;
use portcullis::testkit::{TestIssuer, now};
use portcullis_examples_support::mcp_notes as notes;
use serde_json::json;
use tower::{Layer, Service, ServiceExt};

/// A `tools/call` as MCP clients send it (220 bytes).
fn call(tool: &str) -> String {
    json!({
        "jsonrpc": "2.0", "id": 42, "method": "tools/call",
        "params": {
            "name": tool,
            "arguments": {"text": "Buy milk, eggs and flour before the shop closes at six."},
            "_meta": {"progressToken": "c7b1d2e4-5f60-4a8b-9c0d-1e2f3a4b5c6d"}
        }
    })
    .to_string()
}

fn request(token: &str, body: &str) -> Request<Body> {
    Request::post("http://127.0.0.1:1/mcp")
        .header("host", "127.0.0.1:1")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn echo(body: Bytes) -> String {
    body.len().to_string()
}

fn mcp(c: &mut Criterion) {
    let issuer = TestIssuer::new(common::ISSUER);
    let token = issuer.mint(Algorithm::ES256, common::claims(now() + 3600));
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    let auth = || AuthLayer::bearer(common::jwt::<()>(&issuer, 1024)).unwrap();
    let plain = Router::new().route("/mcp", post(echo)).layer(auth());
    let scoped = Router::new()
        .route_service(
            "/mcp",
            ToolScopesLayer::new()
                .tool("add_note", ["read", "write"])
                .tool("purge", ["admin"])
                .layer(post(echo).with_state(())),
        )
        .layer(auth());
    // Each `tool-scopes` case has an `auth-only` case with the same body: like for like.
    let cases = [
        ("auth-only/tools-call", plain.clone(), call("add_note"), 200),
        ("auth-only/tools-list", plain, list.clone(), 200),
        (
            "tool-scopes/tools-call-allowed",
            scoped.clone(),
            call("add_note"),
            200,
        ),
        (
            "tool-scopes/tools-call-refused",
            scoped.clone(),
            call("purge"),
            403,
        ),
        ("tool-scopes/tools-list", scoped, list, 200),
    ];
    let mut g = c.benchmark_group("mcp");
    for (name, mut svc, body, expect) in cases {
        let status = common::ready(svc.call(request(&token, &body)))
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), expect, "{name}");
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    common::ready(svc.call(request(&token, &body)))
                        .unwrap()
                        .status(),
                )
            })
        });
    }

    // The whole MCP server: rmcp answers on its own tasks, so this one runs on a runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deployment = notes::Deployment {
        resource: "http://127.0.0.1:1/mcp".into(),
        authorization_server: common::ISSUER.into(),
        allow_origins: Vec::new(),
    };
    let jwt = portcullis::server::jwt::JwtAuthenticator::builder()
        .key(issuer.verification_key(Algorithm::ES256))
        .issuer(common::ISSUER)
        .any_audience()
        .build()
        .unwrap();
    let app = notes::app(&deployment, jwt).unwrap();
    let whoami = call("whoami");
    let res = rt
        .block_on(app.clone().oneshot(request(&token, &whoami)))
        .unwrap();
    assert_eq!(res.status(), 200);
    g.bench_function("rmcp/whoami-through-the-example-stack", |b| {
        b.to_async(&rt).iter(|| async {
            let res = app.clone().oneshot(request(&token, &whoami)).await.unwrap();
            let body = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            black_box(body.len())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(40)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = mcp
}
criterion_main!(benches);
