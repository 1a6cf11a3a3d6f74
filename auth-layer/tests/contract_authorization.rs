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
    use auth_layer::{Problem, ProblemRenderer, RenderedProblem};
    struct Plain;
    impl ProblemRenderer for Plain {
        fn render(&self, p: &Problem<'_>) -> RenderedProblem {
            RenderedProblem {
                content_type: http::HeaderValue::from_static("text/plain"),
                body: format!("{} {}", p.status.as_u16(), p.code).into(),
            }
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
