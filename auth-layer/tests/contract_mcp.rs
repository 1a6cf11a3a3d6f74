//! `mcp::ToolScopes` and `strip_credentials` over real HTTP: per-tool 403s rendered by the
//! auth layer, bodies passed on byte for byte, bounded reading, and what the service behind
//! sees of the credential.

mod common;

use auth_layer::mcp::ToolScopesLayer;
use axum::body::Bytes;
use axum::routing::post;
use common::*;
use http::HeaderMap;
use portcullis_test_harness::lenient;

/// What the service behind the layers saw: the body, the credential headers left, the caller.
async fn echo(headers: HeaderMap, p: Option<Principal>, body: Bytes) -> axum::Json<Value> {
    axum::Json(json!({
        "body": String::from_utf8_lossy(&body),
        "authorization": headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()),
        "api_key": headers.get("x-api-key").is_some(),
        "cookie": headers.get("cookie").map(|v| v.to_str().unwrap().to_owned()),
        "sub": p.as_ref().and_then(|p| p.subject().map(str::to_owned)),
    }))
}

fn tool_scopes() -> ToolScopesLayer {
    ToolScopesLayer::new()
        .tool("delete_all", ["admin", "write"])
        .max_body(1024)
}

fn jwt() -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .any_audience()
        .key(issuer().verification_key(Algorithm::ES256))
        .build()
        .unwrap()
}

async fn server(optional: bool) -> SocketAddr {
    server_with(optional, tool_scopes()).await
}

async fn server_with(optional: bool, tool_scopes: ToolScopesLayer) -> SocketAddr {
    let keys = ApiKeys::new().with_key(
        "key-for-build-bot",
        Principal::builder(CredentialKind::ApiKey)
            .subject("build-bot")
            .build(),
    );
    let layer = AuthLayer::builder()
        .bearer(jwt())
        .cookie("at", jwt())
        .disable_csrf_protection()
        .api_key("x-api-key", keys)
        .allow_multiple_credentials(true)
        .optional(optional)
        .strip_credentials(true)
        .resource_metadata(ProtectedResource::new("http://mcp.test/mcp").authorization_server(ISS))
        .build()
        .unwrap();
    let app = Router::new()
        .route_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(tool_scopes)
                .service(post(echo).get(echo).delete(echo).with_state(())),
        )
        .layer(layer);
    serve(app).await
}

fn call(tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}}).to_string()
}

fn token(scope: &str) -> String {
    issuer().mint(
        Algorithm::ES256,
        issuer().access_claims("alice", AUD, scope, 60),
    )
}

/// POST `body` with these headers; `Content-Type: application/json` unless one is given.
async fn post_as(addr: SocketAddr, headers: &[(&str, &str)], body: String) -> Reply {
    let mut r = req_to(addr, "/mcp").method("POST");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        r = r.header("content-type", "application/json");
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    send(&client(), r.body(body.into()).unwrap()).await
}

/// POST raw bytes as `authorization`, with exactly this `Content-Type` (none for `None`).
async fn post_bytes(
    addr: SocketAddr,
    authorization: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut r = req_to(addr, "/mcp")
        .method("POST")
        .header("authorization", authorization);
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    send(&client(), r.body(body.into()).unwrap()).await
}

#[tokio::test]
async fn a_gated_tool_is_403_naming_its_scopes_and_other_bodies_pass_unchanged() {
    let addr = server(false).await;
    let reader = format!("Bearer {}", token("read"));
    let r = post_as(addr, &[("authorization", &reader)], call("delete_all")).await;
    r.assert_problem(403, "insufficient_scope");
    let ch = r.challenge("Bearer");
    assert_eq!(ch.param("scope"), Some("admin write"));
    assert_eq!(
        ch.param("resource_metadata"),
        Some("http://mcp.test/.well-known/oauth-protected-resource/mcp")
    );

    // The same call on another method is read too.
    let r = send(
        &client(),
        req_to(addr, "/mcp")
            .method("GET")
            .header("authorization", &reader)
            .header("content-type", "application/json")
            .body(call("delete_all").into())
            .unwrap(),
    )
    .await;
    r.assert_problem(403, "insufficient_scope");

    // Allowed calls, other tools, other methods: the body arrives byte for byte.
    let admin = format!("Bearer {}", token("admin write"));
    for (auth, body) in [
        (&admin, call("delete_all")),
        (&reader, call("search")),
        (
            &reader,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.into(),
        ),
    ] {
        let r = post_as(addr, &[("authorization", auth)], body.clone()).await;
        assert_eq!(r.status, 200, "{body}");
        assert_eq!(r.json()["body"], body.as_str());
        assert_eq!(r.json()["sub"], "alice");
    }

    // Ambiguous JSON and what is not JSON at all are refused, not guessed at.
    let dup = r#"{"method":"tools/call","params":{"name":"search","name":"delete_all"}}"#;
    for body in [dup, "not json at all"] {
        post_as(addr, &[("authorization", &reader)], body.into())
            .await
            .assert_problem(400, "invalid_request");
    }

    // Too long to check: 413, never passed on unchecked.
    let long = format!(
        r#"{{"method":"tools/call","params":{{"name":"delete_all","pad":"{}"}}}}"#,
        "x".repeat(2000)
    );
    let r = post_as(addr, &[("authorization", &admin)], long).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["status"], 413);

    // Compressed: not the JSON a server behind a decompression layer would read; refused.
    let r = post_as(
        addr,
        &[("authorization", &reader), ("content-encoding", "gzip")],
        call("search"),
    )
    .await;
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["status"], 415);
    let r = post_as(
        addr,
        &[("authorization", &reader), ("content-encoding", "identity")],
        call("search"),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn the_service_behind_never_sees_the_credential() {
    let addr = server(false).await;
    let bearer = format!("Bearer {}", token("read"));
    let r = post_as(addr, &[("authorization", &bearer)], "{}".into()).await;
    assert_eq!(r.json()["authorization"], Value::Null);
    let r = post_as(addr, &[("x-api-key", "key-for-build-bot")], "{}".into()).await;
    assert_eq!(
        (r.json()["api_key"].as_bool(), r.json()["sub"].as_str()),
        (Some(false), Some("build-bot"))
    );
    // Cookie: only the credential cookie goes; with several credentials, all go.
    let cookie = format!("theme=dark; at={}; lang=en", token("read"));
    let r = post_as(
        addr,
        &[("cookie", &cookie), ("x-api-key", "key-for-build-bot")],
        "{}".into(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["cookie"], "theme=dark; lang=en");
    assert_eq!(r.json()["api_key"], false);
}

#[tokio::test]
async fn an_anonymous_call_of_a_gated_tool_is_401_and_a_missing_auth_layer_is_500() {
    let addr = server(true).await;
    let r = post_as(addr, &[], call("delete_all")).await;
    r.assert_problem(401, "missing_credentials");
    assert_eq!(post_as(addr, &[], call("search")).await.status, 200);

    let bare = Router::new().route_service(
        "/mcp",
        tower::ServiceBuilder::new()
            .layer(tool_scopes())
            .service(post(echo).with_state(())),
    );
    let addr = serve(bare).await;
    let r = post_as(addr, &[], call("delete_all")).await;
    assert_eq!(r.status, 500, "a server mistake, not the client's");
}

#[tokio::test]
async fn a_body_in_which_another_json_reader_finds_a_call_is_400_invalid_request() {
    let addr = server(false).await;
    let reader = format!("Bearer {}", token("read"));
    let first = r#"{"jsonrpc":"2.0","id":0,"method":"tools/list"}"#;
    let mut not_refused = Vec::new();
    for case in lenient::bodies(&call("delete_all"), first) {
        let r = post_bytes(addr, &reader, case.content_type, case.body).await;
        if r.status == 400 {
            r.assert_problem(400, "invalid_request");
        } else {
            not_refused.push(format!("{}: {}", case.name, r.status));
        }
    }
    assert!(not_refused.is_empty(), "answered: {not_refused:#?}");
}

#[tokio::test]
async fn a_body_not_sent_as_utf8_json_is_400_invalid_request_whatever_it_calls() {
    let addr = server(false).await;
    let reader = format!("Bearer {}", token("read"));
    let mut not_refused = Vec::new();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/json-rpc"),
        Some("application/jsonrequest"),
        Some("application/x-www-form-urlencoded"),
        Some("application/json, text/plain"),
        Some("application/json; charset=utf-16"),
        Some("application/json; charset=iso-8859-1"),
        Some("application/json; charset=utf8"),
        Some("application/json; charset=utf-8; charset=utf-16"),
        Some(r#"application/json; charset="utf-8"x"#),
        Some("application/json; charset"),
    ] {
        // An ungated tool: the body itself is what is refused.
        let r = post_bytes(addr, &reader, content_type, call("search").into_bytes()).await;
        if r.status == 400 {
            r.assert_problem(400, "invalid_request");
        } else {
            not_refused.push(format!("{content_type:?}: {}", r.status));
        }
    }
    assert!(not_refused.is_empty(), "answered: {not_refused:#?}");
}

#[tokio::test]
async fn utf8_json_in_any_spelling_and_requests_without_a_body_pass() {
    let addr = server(false).await;
    let reader = format!("Bearer {}", token("read"));
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        r#"application/json;charset="UTF-8""#,
        "Application/JSON; Charset=UTF-8",
        "application/json ; charset=utf-8 ; q=1",
    ] {
        let body = call("search");
        let r = post_bytes(addr, &reader, Some(content_type), body.clone().into_bytes()).await;
        assert_eq!(r.status, 200, "{content_type}");
        assert_eq!(r.json()["body"], body.as_str());
    }
    // The SSE stream's GET and the session-ending DELETE: no body, no content type.
    for method in ["GET", "DELETE"] {
        let r = send(
            &client(),
            req_to(addr, "/mcp")
                .method(method)
                .header("authorization", &reader)
                .body(empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(r.json()["body"], "");
    }
}

#[tokio::test]
async fn the_named_opt_in_passes_unparseable_bodies_unchecked_and_still_checks_json() {
    let addr = server_with(false, tool_scopes().pass_unparseable_bodies_unchecked()).await;
    let reader = format!("Bearer {}", token("read"));
    let first = r#"{"jsonrpc":"2.0","id":0,"method":"tools/list"}"#;
    for case in lenient::bodies(&call("delete_all"), first) {
        let r = post_bytes(addr, &reader, case.content_type, case.body.clone()).await;
        // What serde_json reads is still checked (members in another case are ambiguous);
        // what it cannot read goes to the server as it came.
        if serde_json::from_slice::<Value>(&case.body).is_ok() {
            r.assert_problem(400, "invalid_request");
        } else {
            assert_eq!(r.status, 200, "{}", case.name);
            assert_eq!(
                r.json()["body"],
                String::from_utf8_lossy(&case.body).as_ref(),
                "{}",
                case.name
            );
        }
    }
    // A readable call is checked whatever the content type says.
    let r = post_bytes(
        addr,
        &reader,
        Some("text/plain"),
        call("delete_all").into_bytes(),
    )
    .await;
    r.assert_problem(403, "insufficient_scope");
}

/// Member names a reader may match otherwise (one Go reader padded keys with zeros, so
/// `name\u0000` was `name` and the last one won) are refused, not skipped; so are batches
/// longer than the layer reads, before they are held in memory.
#[tokio::test]
async fn odd_member_names_and_overlong_batches_are_400_not_skipped() {
    let addr = server_with(false, tool_scopes().max_body(4 << 20)).await;
    let reader = format!("Bearer {}", token("read"));
    let json = Some("application/json");
    let post = |body: String| post_bytes(addr, &reader, json, body.into_bytes());
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","name\u0000":"delete_all"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method\u0000":"tools/call","params":{"name":"delete_all"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","nam\u00e9":"delete_all"}}"#,
    ] {
        post(body.to_owned())
            .await
            .assert_problem(400, "invalid_request");
    }
    let list = r#"{"method":"tools/list"}"#;
    let batch = |n: usize| format!("[{}]", vec![list; n].join(","));
    assert_eq!(
        post(batch(100)).await.status,
        200,
        "a batch the layer reads"
    );
    post(batch(101))
        .await
        .assert_problem(400, "invalid_request");
    post(format!("[{}]", vec!["{}"; 1_000_000].join(",")))
        .await
        .assert_problem(400, "invalid_request");
}
