//! The MCP server of `examples/mcp_server` (rmcp behind the auth layer) over real HTTP, with
//! the testkit's token endpoint as its authorization server: what the MCP authorization spec
//! asks of a resource server, and refresh-layer's discovery client going from the first 401
//! to a tool call, stepping up once for a tool that needs more scope.

use std::net::SocketAddr;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::Algorithm;
use portcullis::client::RefreshLayer;
use portcullis::client::source::discovery::Discovery;
use portcullis::testkit::TestTokenEndpoint;
use portcullis::testkit::loopback::{LoopbackClient, Reply, client, send};
use portcullis_examples_support::mcp_notes::{self as notes, Deployment, READ, WRITE};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

const PAGE: &str = "http://app.test";

struct Server {
    addr: SocketAddr,
    resource: String,
    endpoint: TestTokenEndpoint,
}

async fn start() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://{addr}/mcp");
    let (endpoint, jwt) = notes::embedded_provider(&resource, "agent", "agent-secret")
        .await
        .unwrap();
    let issuer = endpoint.issuer().issuer().to_owned();
    let deployment = Deployment {
        resource: resource.clone(),
        authorization_server: issuer,
        allow_origins: vec![PAGE.into()],
    };
    let app = notes::app(&deployment, jwt).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        addr,
        resource,
        endpoint,
    }
}

fn rpc(id: u64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

fn post(s: &Server, token: Option<&str>, body: String) -> Request<Full<Bytes>> {
    let mut r = Request::post(&s.resource)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Full::new(Bytes::from(body))).unwrap()
}

fn call(tool: &str, arguments: Value) -> String {
    rpc(
        7,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
}

#[tokio::test]
async fn the_server_answers_as_an_mcp_resource_server() {
    let s = start().await;
    let c = client();
    let metadata_url = format!("http://{}/.well-known/oauth-protected-resource/mcp", s.addr);
    publishes_its_metadata(&s, &c, &metadata_url).await;
    refuses_a_missing_or_foreign_token(&s, &c, &metadata_url).await;
    a_read_only_token_runs_only_read_tools(&s, &c, &metadata_url).await;
    browsers_get_a_readable_401(&s, &c).await;
}

async fn publishes_its_metadata(s: &Server, c: &LoopbackClient, metadata_url: &str) {
    for url in [
        metadata_url.to_owned(),
        format!("http://{}/.well-known/oauth-protected-resource", s.addr),
    ] {
        let r = send(c, Request::get(&url).body(Full::default()).unwrap()).await;
        assert_eq!(r.status, 200, "{url}");
        let m = r.json();
        assert_eq!(m["resource"], s.resource.as_str());
        assert_eq!(
            m["authorization_servers"],
            json!([s.endpoint.issuer().issuer()])
        );
        assert_eq!(m["scopes_supported"], json!([READ, WRITE]));
        assert_eq!(m["bearer_methods_supported"], json!(["header"]));
    }
}

async fn refuses_a_missing_or_foreign_token(s: &Server, c: &LoopbackClient, metadata_url: &str) {
    // No token: 401, naming the metadata and the scope to ask for.
    let r = send(c, post(s, None, rpc(1, "tools/list", json!({})))).await;
    r.assert_problem(401, "missing_credentials");
    let ch = r.challenge("Bearer");
    assert_eq!(ch.param("resource_metadata"), Some(metadata_url));
    assert_eq!(ch.param("scope"), Some(READ));

    // A token for another resource: refused, however good its signature and scopes.
    let other = s.endpoint.issuer().mint(
        Algorithm::ES256,
        s.endpoint.issuer().access_claims(
            "agent",
            "http://127.0.0.1:1/mcp",
            "notes:read notes:write",
            60,
        ),
    );
    send(c, post(s, Some(&other), rpc(1, "tools/list", json!({}))))
        .await
        .assert_problem(401, "invalid_audience");
}

async fn a_read_only_token_runs_only_read_tools(
    s: &Server,
    c: &LoopbackClient,
    metadata_url: &str,
) {
    // A read-only token: tools it may call run, add_note is 403 naming everything it needs.
    let read = s.endpoint.access_token("agent", READ, 60);
    let listed = send(c, post(s, Some(&read), rpc(1, "tools/list", json!({})))).await;
    assert_eq!(listed.status, 200);
    let mut names: Vec<String> = listed.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["add_note", "list_notes", "whoami"]);
    let who = send(c, post(s, Some(&read), call("whoami", json!({})))).await;
    assert_eq!(who.status, 200);
    let who = &who.json()["result"]["structuredContent"];
    assert_eq!(who["subject"], "agent");
    assert_eq!(who["scopes"], json!([READ]));
    assert_eq!(
        who["token_visible_to_tools"], false,
        "the layer removes the token before rmcp hands the request head to tools"
    );
    let refused = send(
        c,
        post(s, Some(&read), call("add_note", json!({"text": "x"}))),
    )
    .await;
    refused.assert_problem(403, "insufficient_scope");
    let ch = refused.challenge("Bearer");
    assert_eq!(ch.param("error"), Some("insufficient_scope"));
    assert_eq!(ch.param("scope"), Some("notes:read notes:write"));
    assert_eq!(ch.param("resource_metadata"), Some(metadata_url));
    // The same call hidden in a batch is refused too.
    let batch = format!(
        "[{}, {}]",
        rpc(1, "tools/list", json!({})),
        call("add_note", json!({"text": "x"}))
    );
    send(c, post(s, Some(&read), batch))
        .await
        .assert_problem(403, "insufficient_scope");
}

async fn browsers_get_a_readable_401(s: &Server, c: &LoopbackClient) {
    // Browsers: the preflight is answered without credentials, and the 401 is readable.
    let preflight = Request::options(&s.resource)
        .header("origin", PAGE)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-protocol-version",
        )
        .body(Full::default())
        .unwrap();
    let r = send(c, preflight).await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(r.header("access-control-allow-origin"), Some(PAGE));
    let mut from_page = post(s, None, rpc(1, "tools/list", json!({})));
    from_page
        .headers_mut()
        .insert("origin", http::HeaderValue::from_static(PAGE));
    let r: Reply = send(c, from_page).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), Some(PAGE));
    assert!(
        r.header("access-control-expose-headers")
            .is_some_and(|h| h.to_ascii_lowercase().contains("www-authenticate")),
        "{:?}",
        r.headers
    );
}

/// refresh-layer's discovery client against the server: 401 → metadata → authorization
/// server → token for this resource with the challenge's scope → call; then a 403 for
/// `add_note` → one token with the scopes it names → one retry.
#[tokio::test]
async fn the_discovery_client_gets_in_and_steps_up_once() {
    let s = start().await;
    let http = Client::builder(TokioExecutor::new()).build_http();
    let source = Discovery::builder(&s.resource, "agent")
        .client_secret("agent-secret")
        .trust_issuer(s.endpoint.issuer().issuer())
        .client_credentials(http.clone())
        .unwrap();
    let api = RefreshLayer::builder(source)
        .allow_origin(format!("http://{}", s.addr))
        .step_up(true)
        .build()
        .unwrap()
        .layer(http);
    let rpc_call = async |body: String| -> Value {
        let res = api.clone().oneshot(post(&s, None, body)).await.unwrap();
        assert_eq!(res.status(), 200);
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v.get("error").is_none(), "{v}");
        v["result"].clone()
    };
    let init = rpc_call(rpc(
        1,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    ))
    .await;
    assert_eq!(init["serverInfo"]["name"], "portcullis-notes");
    let who = rpc_call(call("whoami", json!({}))).await;
    assert_eq!(who["structuredContent"]["scopes"], json!([READ]));
    let added = rpc_call(call("add_note", json!({"text": "first"}))).await;
    assert_eq!(added["structuredContent"]["count"], 1);
    let listed = rpc_call(call("list_notes", json!({}))).await;
    assert_eq!(listed["structuredContent"]["notes"], json!(["first"]));

    let seen = s.endpoint.token_requests();
    let scopes: Vec<_> = seen.iter().map(|r| r.scope.as_deref()).collect();
    assert_eq!(
        scopes,
        [Some(READ), Some("notes:read notes:write")],
        "one token from the 401's scope, one step-up"
    );
    assert!(
        seen.iter()
            .all(|r| r.resource.as_deref() == Some(s.resource.as_str())),
        "{seen:?}"
    );
}
