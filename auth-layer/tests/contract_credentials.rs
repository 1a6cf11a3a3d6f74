//! Finding the credential: where it may be, how it must be written, and the 400/401 answers when it is absent or malformed.
//! Over real HTTP: an axum server on 127.0.0.1:0 and a hyper-util client.

mod common;

use common::*;

#[tokio::test]
async fn missing_credentials_is_401_with_one_bare_challenge_per_scheme() {
    let f = fixture().await;
    let r = f.with_headers("/me", &[]).await;
    r.assert_problem(401, "missing_credentials");
    let bearer = r.challenge("Bearer");
    assert_eq!(bearer.param("realm"), Some("api"));
    assert_eq!(
        bearer.param("error"),
        None,
        "RFC 6750 3.1: no error code without credentials"
    );
    assert_eq!(
        bearer.param("resource_metadata"),
        Some("http://api.test/.well-known/oauth-protected-resource/v1")
    );
    assert_eq!(r.challenge("ApiKey").param("realm"), Some("api"));
    assert_eq!(f.metrics.rejected(ErrorCode::MissingCredentials), 1);
}

#[tokio::test]
async fn unsupported_scheme_is_401_without_error() {
    let f = fixture().await;
    for v in ["Basic dXNlcjpwYXNz", "Token abc", "Digest username=\"x\""] {
        let r = f.with_headers("/me", &[("authorization", v)]).await;
        r.assert_problem(401, "unsupported_scheme");
        assert_eq!(r.challenge("Bearer").param("error"), None, "{v}");
    }
}

#[tokio::test]
async fn malformed_bearer_is_400_invalid_request_with_a_precise_detail() {
    let f = fixture().await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("authorization", "Bearer")], "not followed by a token"),
        (&[("authorization", "Bearer a b")], "contains a space"),
        (
            &[("authorization", "Bearer a,b")],
            "outside RFC 6750 b64token",
        ),
        (
            &[("authorization", "Bearer x"), ("authorization", "Bearer y")],
            "more than one Authorization",
        ),
        (
            &[("authorization", "Bearer x"), ("cookie", "at=y")],
            "more than one place",
        ),
        (
            &[("authorization", "Bearer x"), ("x-api-key", "k")],
            "more than one place",
        ),
        (&[("x-api-key", "a b")], "API key"),
        (
            &[("cookie", "at=a; at=b")],
            "cookie was sent more than once",
        ),
    ];
    for (headers, detail) in cases {
        let r = f.with_headers("/me", headers).await;
        r.assert_problem(400, "invalid_request");
        let c = r.challenge("Bearer");
        assert_eq!(c.param("error"), Some("invalid_request"), "{headers:?}");
        let desc = c.param("error_description").unwrap();
        assert!(desc.contains(detail), "{headers:?}: {desc}");
        assert_eq!(r.json()["detail"].as_str().unwrap(), desc);
        assert_eq!(r.json()["error"], "invalid_request");
    }
    // JWT-shaped tokens with one character outside the grammar, in each part and for a key
    // the server has and one it does not: still a malformed request, not an invalid token.
    let good = f.token(Algorithm::HS256, f.claims("read"));
    let dots: Vec<usize> = good.match_indices('.').map(|(i, _)| i).collect();
    for (at, c) in [(3, '%'), (dots[0] + 5, ','), (good.len() - 3, '!')] {
        let mut t = good.clone();
        t.replace_range(at..at + 1, &c.to_string());
        let r = f.bearer("/me", &t).await;
        r.assert_problem(400, "invalid_request");
    }
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("rotated-away".into());
    let unknown = f.issuer.mint_with_header(h, f.claims("read"));
    f.bearer("/me", &format!("{unknown}!"))
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn several_spaces_after_the_scheme_and_any_case_are_accepted() {
    let f = fixture().await;
    let t = f.token(Algorithm::HS256, f.claims("read"));
    let r = f
        .with_headers("/me", &[("authorization", &format!("bEARER    {t}"))])
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn api_keys_are_accepted_and_unknown_is_401_with_api_key_challenge() {
    let f = fixture().await;
    let r = f
        .with_headers("/me", &[("x-api-key", "key-for-build-bot")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["sub"], "build-bot");
    let r = f
        .with_headers("/me", &[("x-api-key", "key-for-someone-else")])
        .await;
    r.assert_problem(401, "invalid_api_key");
    assert_eq!(
        r.challenges[0].scheme, "ApiKey",
        "the failing scheme's challenge comes first"
    );
    assert!(!String::from_utf8_lossy(&r.body).contains("key-for-someone-else"));
}

#[tokio::test]
async fn cookie_token_is_accepted() {
    let f = fixture().await;
    let t = f.token(Algorithm::EdDSA, f.claims("read"));
    let r = f
        .with_headers("/me", &[("cookie", &format!("theme=dark; at={t}"))])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["kind"], "Cookie");
}

#[tokio::test]
async fn credential_headers_reach_the_handler_marked_sensitive() {
    let f = fixture().await;
    let r = f
        .bearer("/sensitive", &f.token(Algorithm::HS256, f.claims("read")))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], b"true");
}

#[tokio::test]
async fn optional_mode_lets_anonymous_through_but_still_refuses_bad_tokens() {
    let issuer = issuer();
    let jwt = any_audience_jwt(0);
    let app = Router::new()
        .route(
            "/",
            get(|p: Option<Principal>| async move {
                p.and_then(|p| p.subject().map(str::to_owned))
                    .unwrap_or("anonymous".into())
            }),
        )
        .route(
            "/private",
            get(|| async { "ok" }).route_layer(RequireScope::all(["read"])),
        )
        .layer(
            AuthLayer::builder()
                .bearer(jwt)
                .optional(true)
                .build()
                .unwrap(),
        );
    let addr = serve(app).await;
    let c = client();
    let r = send(&c, req_to(addr, "/").body(empty()).unwrap()).await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"anonymous"[..]));
    let r = send(&c, req_to(addr, "/private").body(empty()).unwrap()).await;
    r.assert_problem(401, "missing_credentials");
    let t = issuer.mint(
        Algorithm::HS256,
        issuer.access_claims("bob", AUD, "read", 60),
    );
    let r = send(&c, bearer_req(addr, "/", &t)).await;
    assert_eq!(&r.body[..], b"bob");
    let r = send(
        &c,
        req_to(addr, "/")
            .header("authorization", "Bearer garbage")
            .body(empty())
            .unwrap(),
    )
    .await;
    r.assert_problem(401, "token_malformed");
}
