//! After authentication: route policies (403), the RFC 9728 metadata, custom problem bodies, and the layer around axum routes and plain hyper services.
//! Over real HTTP: an axum server on 127.0.0.1:0 and a hyper-util client.

mod common;

use common::*;

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope_naming_the_scopes() {
    let f = fixture().await;
    let r = f
        .bearer("/admin", &f.token(Algorithm::HS256, f.claims("read write")))
        .await;
    r.assert_problem(403, "insufficient_scope");
    let c = r.challenge("Bearer");
    assert_eq!(c.param("error"), Some("insufficient_scope"));
    assert_eq!(c.param("scope"), Some("admin write"));
    assert_eq!(r.json()["required_scopes"], json!(["admin", "write"]));
    assert_eq!(r.json()["scope"], "admin write");
    assert_eq!(f.metrics.rejected(ErrorCode::InsufficientScope), 1);

    let mut c = f.claims("");
    c.as_object_mut().unwrap().remove("scope");
    c["scp"] = json!(["admin", "write"]);
    assert_eq!(
        f.bearer("/admin", &f.token(Algorithm::HS256, c))
            .await
            .status,
        200,
        "scp array"
    );
}

#[tokio::test]
async fn role_policy_refusal_is_403_forbidden_without_challenge() {
    let f = fixture().await;
    let r = f
        .bearer("/finance", &f.token(Algorithm::HS256, f.claims("admin")))
        .await;
    r.assert_problem(403, "forbidden");
    assert!(r.headers.get("www-authenticate").is_none());
    let mut c = f.claims("read");
    c["roles"] = json!(["finance"]);
    assert_eq!(
        f.bearer("/finance", &f.token(Algorithm::HS256, c))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn resource_metadata_is_served_without_credentials() {
    let f = fixture().await;
    let r = f
        .with_headers("/.well-known/oauth-protected-resource/v1", &[])
        .await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["resource"], "http://api.test/v1");
    assert_eq!(j["authorization_servers"], json!([ISS]));
    assert_eq!(j["bearer_methods_supported"], json!(["header"]));
}

#[tokio::test]
async fn a_replaced_renderer_changes_the_body_but_not_status_or_challenge() {
    use auth_layer::{ProblemRenderer, RenderedProblem};
    use portcullis_wire::Problem;
    struct Plain;
    impl ProblemRenderer for Plain {
        fn render(&self, p: &Problem<'_>) -> RenderedProblem {
            RenderedProblem::new(
                http::HeaderValue::from_static("text/plain"),
                format!("{} {}", p.status.as_u16(), p.code),
            )
        }
    }
    let jwt = JwtAuthenticator::builder()
        .any_audience()
        .key(issuer().verification_keys().remove(0))
        .build()
        .unwrap();
    let layer = AuthLayer::builder()
        .realm("shop")
        .bearer(jwt)
        .renderer(Plain)
        .problem_type_base("https://errors.example/")
        .build()
        .unwrap();
    let addr = serve(
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(layer),
    )
    .await;
    let r = send(
        &client(),
        req_to(addr, "/")
            .header("authorization", "Bearer a.b.c")
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(&r.body[..], b"401 token_malformed");
    assert_eq!(r.challenge("Bearer").param("realm"), Some("shop"));
    assert_eq!(r.challenge("Bearer").param("error"), Some("invalid_token"));
}

#[tokio::test]
async fn auth_layer_works_as_a_route_layer() {
    let jwt = JwtAuthenticator::builder()
        .any_audience()
        .key(issuer().verification_keys().remove(0))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/private", get(|| async { "private" }))
        .route_layer(AuthLayer::bearer(jwt).unwrap())
        .route("/public", get(|| async { "public" }));
    let addr = serve(app).await;
    let c = client();
    assert_eq!(
        send(&c, req_to(addr, "/public").body(empty()).unwrap())
            .await
            .status,
        200
    );
    send(&c, req_to(addr, "/private").body(empty()).unwrap())
        .await
        .assert_problem(401, "missing_credentials");
    let t = issuer().mint(Algorithm::HS256, issuer().access_claims("x", AUD, "", 60));
    let r = send(&c, bearer_req(addr, "/private", &t)).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn works_around_a_plain_hyper_service() {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceBuilder;

    let issuer = issuer();
    let jwt = any_audience_jwt(0);
    let svc = ServiceBuilder::new()
        .layer(AuthLayer::bearer(jwt).unwrap())
        .service_fn(|req: Request<hyper::body::Incoming>| async move {
            let sub = req
                .extensions()
                .get::<Principal>()
                .and_then(|p| p.subject().map(str::to_owned));
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::from(sub.unwrap_or_default()),
            )))
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (io, _) = listener.accept().await.unwrap();
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(io), svc));
        }
    });
    let c = client();
    send(&c, req_to(addr, "/").body(empty()).unwrap())
        .await
        .assert_problem(401, "missing_credentials");
    let t = issuer.mint(Algorithm::HS512, issuer.access_claims("carol", AUD, "", 60));
    let r = send(&c, bearer_req(addr, "/", &t)).await;
    assert_eq!(&r.body[..], b"carol");
}

/// A route added after `.layer(AuthLayer)` is not behind the layer. Extracting a principal
/// there, or putting a scope on it, is a server misconfiguration: 500 saying so, not a 401
/// telling a client with a valid token that it sent no credentials. A public route beside them
/// answers as usual.
#[tokio::test]
async fn a_route_outside_the_layer_that_needs_a_principal_is_a_500_naming_the_mistake() {
    use auth_layer::Claims;
    #[derive(Clone, serde::Deserialize)]
    struct Org {
        #[allow(dead_code)]
        org_id: String,
    }
    let app = Router::new()
        .route("/inside", get(me))
        .layer(AuthLayer::bearer(any_audience_jwt(0)).unwrap())
        .route("/public", get(|| async { "hello" }))
        .route("/principal", get(me))
        .route(
            "/maybe",
            get(|p: Option<Principal>| async move { format!("{}", p.is_some()) }),
        )
        .route("/claims", get(|Claims(_): Claims<Org>| async { "claims" }))
        .route(
            "/scoped",
            get(|| async { "scoped" }).route_layer(RequireScope::all(["read"])),
        );
    let addr = serve(app).await;
    let token = issuer().mint(
        Algorithm::HS256,
        issuer().access_claims("alice", AUD, "read", 60),
    );
    let c = client();
    assert_eq!(
        send(&c, bearer_req(addr, "/inside", &token)).await.status,
        200
    );
    let public = send(&c, bearer_req(addr, "/public", &token)).await;
    assert_eq!(
        (public.status.as_u16(), &public.body[..]),
        (200, &b"hello"[..])
    );
    for path in ["/principal", "/maybe", "/claims", "/scoped"] {
        let r = send(&c, bearer_req(addr, path, &token)).await;
        assert_eq!(r.status, 500, "{path}");
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains("no AuthLayer wraps"), "{path}: {body}");
        assert!(
            r.challenges.is_empty(),
            "{path}: no challenge for a server mistake"
        );
    }
}

/// One layer accepts a bearer token and an API key; one route takes the API key only, the next
/// route both. No second layer, no `Router::merge`.
#[tokio::test]
async fn a_route_can_accept_only_some_credential_kinds() {
    use auth_layer::policy::RequireCredential;
    let keys = ApiKeys::new().with_key(
        "key-for-build-bot",
        Principal::builder(CredentialKind::ApiKey)
            .subject("build-bot")
            .build(),
    );
    let layer = AuthLayer::builder()
        .bearer(any_audience_jwt(0))
        .api_key("x-api-key", keys)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/deploy",
            get(me).route_layer(RequireCredential::any_of([CredentialKind::ApiKey])),
        )
        .route("/me", get(me))
        .layer(layer);
    let addr = serve(app).await;
    let c = client();
    let token = issuer().mint(
        Algorithm::HS256,
        issuer().access_claims("alice", AUD, "read", 60),
    );
    let with_key = |path: &str| {
        req_to(addr, path)
            .header("x-api-key", "key-for-build-bot")
            .body(empty())
            .unwrap()
    };
    let r = send(&c, with_key("/deploy")).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["sub"].as_str()),
        (200, Some("build-bot"))
    );
    let r = send(&c, bearer_req(addr, "/deploy", &token)).await;
    r.assert_problem(403, "forbidden");
    assert!(
        r.json()["detail"].as_str().unwrap().contains("api_key"),
        "{}",
        r.json()
    );
    assert!(
        r.challenges.is_empty(),
        "a forbidden answer has no challenge"
    );
    for req in [with_key("/me"), bearer_req(addr, "/me", &token)] {
        assert_eq!(send(&c, req).await.status, 200);
    }
}

/// The MCP-shaped API: `/mcp` for any token of its audience, `/mcp/write` for `mcp:write`,
/// with a challenge scope and the metadata also served at the root.
async fn mcp_api() -> std::net::SocketAddr {
    let jwt = JwtAuthenticator::builder()
        .audience("http://mcp.test/mcp")
        .key(issuer().verification_key(Algorithm::ES256))
        .build()
        .unwrap();
    let layer = AuthLayer::builder()
        .bearer(jwt)
        .resource_metadata(
            ProtectedResource::new("http://mcp.test/mcp")
                .authorization_server(ISS)
                .scopes_supported(["mcp:read", "mcp:write"])
                .challenge_scope("mcp:read")
                .also_at_root(true),
        )
        .build()
        .unwrap();
    serve(
        Router::new()
            .route("/mcp", get(|| async { "ok" }))
            .route(
                "/mcp/write",
                get(|| async { "written" }).route_layer(RequireScope::all(["mcp:write"])),
            )
            .layer(layer),
    )
    .await
}

/// What an MCP server needs of its challenges: the 401 names the metadata and the scope to ask
/// for, the 403 names the missing scope (once: the challenge scope does not repeat it), and the
/// document is at the path-suffixed URI and, when asked, at the root one.
#[tokio::test]
async fn a_challenge_scope_is_named_by_every_401_and_the_metadata_can_be_served_at_the_root() {
    let addr = mcp_api().await;
    let c = client();
    let get_with = |path: &str, token: Option<&str>| {
        let mut r = req_to(addr, path);
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r.body(empty()).unwrap()
    };
    let missing = send(&c, get_with("/mcp", None)).await;
    missing.assert_problem(401, "missing_credentials");
    let ch = missing.challenge("Bearer");
    assert_eq!(ch.param("scope"), Some("mcp:read"));
    assert_eq!(
        ch.param("resource_metadata"),
        Some("http://mcp.test/.well-known/oauth-protected-resource/mcp")
    );
    let now = now() as i64;
    let claims = |aud: &str, scope: &str| json!({"iss": ISS, "sub": "agent", "aud": aud, "iat": now, "exp": now + 60, "scope": scope});
    // A token for another resource: 401 invalid_audience, with the same challenge scope.
    let other = issuer().mint(
        Algorithm::ES256,
        claims("http://other.test/mcp", "mcp:read"),
    );
    let wrong = send(&c, get_with("/mcp", Some(&other))).await;
    wrong.assert_problem(401, "invalid_audience");
    assert_eq!(wrong.challenge("Bearer").param("scope"), Some("mcp:read"));
    // A token without mcp:write: 403 naming only what is missing.
    let read = issuer().mint(Algorithm::ES256, claims("http://mcp.test/mcp", "mcp:read"));
    assert_eq!(send(&c, get_with("/mcp", Some(&read))).await.status, 200);
    let forbidden = send(&c, get_with("/mcp/write", Some(&read))).await;
    forbidden.assert_problem(403, "insufficient_scope");
    let raw = forbidden.headers["www-authenticate"].to_str().unwrap();
    assert_eq!(raw.matches("scope=").count(), 1, "{raw}");
    assert_eq!(
        forbidden.challenge("Bearer").param("scope"),
        Some("mcp:write")
    );
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let r = send(&c, get_with(path, None)).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["resource"], "http://mcp.test/mcp");
        assert!(r.json().get("challenge_scope").is_none());
    }
    assert!(matches!(
        quoted_challenge_scope(),
        Err(auth_layer::ConfigError::InvalidScope(_))
    ));
}

/// A layer whose challenge scope holds a quote, which no challenge can carry.
fn quoted_challenge_scope() -> Result<AuthLayer, auth_layer::ConfigError> {
    AuthLayer::builder()
        .bearer(
            JwtAuthenticator::builder()
                .any_audience()
                .key(issuer().verification_key(Algorithm::ES256))
                .build()
                .unwrap(),
        )
        .resource_metadata(ProtectedResource::new("http://mcp.test/mcp").challenge_scope("a\"b"))
        .build()
}
