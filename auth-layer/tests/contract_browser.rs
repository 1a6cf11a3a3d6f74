//! What browsers need: preflights never challenged, CSRF proof for cookie-authenticated unsafe requests, CORS credential headers on every answer.
//! Over real HTTP: an axum server on 127.0.0.1:0 and a hyper-util client.

mod common;

use common::*;

#[tokio::test]
async fn preflight_is_never_challenged() {
    let f = fixture().await;
    let req = Request::options(format!("http://{}/me", f.addr))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .body(empty())
        .unwrap();
    let r = send(&client(), req).await;
    assert_ne!(r.status, 401);
    assert!(r.headers.get("www-authenticate").is_none());
}

/// With the verified-token cache on (the default), a token first seen in a header and then sent
/// as a cookie must still need its CSRF proof: cache hits keep how the token was presented.
#[tokio::test]
async fn a_token_cached_from_a_header_still_needs_csrf_proof_as_a_cookie() {
    let f = fixture().await;
    let t = f.token(Algorithm::HS256, f.claims("read"));
    let c = client();
    let post = |name: &'static str, value: String| {
        Request::post(format!("http://{}/me", f.addr))
            .header(name, value)
            .body(empty())
            .unwrap()
    };
    assert_eq!(
        send(&c, post("authorization", format!("Bearer {t}")))
            .await
            .status,
        200
    );
    send(&c, post("cookie", format!("at={t}")))
        .await
        .assert_problem(403, "csrf_failed");
    assert_eq!(
        send(&c, post("authorization", format!("Bearer {t}")))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn cookie_authenticated_unsafe_request_without_csrf_proof_is_403_csrf_failed() {
    let f = fixture().await;
    let t = f.token(Algorithm::HS256, f.claims("read"));
    let post = |headers: Vec<(&'static str, String)>| {
        let mut req = Request::post(format!("http://{}/me", f.addr));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.body(empty()).unwrap()
    };
    let c = client();
    let r = send(&c, post(vec![("cookie", format!("at={t}"))])).await;
    r.assert_problem(403, "csrf_failed");
    assert!(
        r.headers.get("www-authenticate").is_none(),
        "a new token would not help: no challenge"
    );
    // A cookie and header pair of the attacker's choosing proves nothing about the session.
    let r = send(
        &c,
        post(vec![
            ("cookie", format!("at={t}; csrf_token=n0nce")),
            ("x-csrf-token", "n0nce".into()),
        ]),
    )
    .await;
    r.assert_problem(403, "csrf_failed");
    // The token minted for this session cookie does.
    let r = send(
        &c,
        post(vec![
            ("cookie", format!("at={t}")),
            ("x-csrf-token", csrf_key().mint(&t)),
        ]),
    )
    .await;
    assert_eq!(r.status, 200);
    // A bearer header is not sent by browsers on their own: no CSRF proof needed.
    let r = send(&c, post(vec![("authorization", format!("Bearer {t}"))])).await;
    assert_eq!(r.status, 200);
    // Safe methods need none either.
    let r = f
        .with_headers("/me", &[("cookie", &format!("at={t}"))])
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn every_answer_to_an_allowed_origin_carries_cors_credential_headers() {
    use auth_layer::cors::CorsPreset;
    let f = fixture_with_cors().await;
    let origin = "http://localhost:3000";
    let t = f.token(Algorithm::HS256, f.claims("read"));
    let bearer = format!("Bearer {t}");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);
    let cases: Vec<Case> = vec![
        ("/me", vec![("authorization", &bearer)], 200),
        ("/me", vec![("authorization", "Bearer a b")], 400),
        ("/me", vec![], 401),
        ("/admin", vec![("authorization", &bearer)], 403),
    ];
    for (path, headers, status) in &cases {
        let mut h = headers.clone();
        h.push(("origin", origin));
        let r = f.with_headers(path, &h).await;
        assert_eq!(r.status.as_u16(), *status);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some(origin),
            "{status}"
        );
        assert_eq!(
            r.header("access-control-allow-credentials"),
            Some("true"),
            "{status}"
        );
        let vary = r
            .headers
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",");
        assert!(vary.contains("origin"), "{status}: vary {vary}");
        let expose = r
            .header("access-control-expose-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            expose.contains("www-authenticate") && expose.contains("retry-after"),
            "{status}: {expose}"
        );

        // A disallowed origin changes nothing about the auth answer; it just gets no CORS headers.
        let mut h = headers.clone();
        h.push(("origin", "http://evil.test"));
        let r = f.with_headers(path, &h).await;
        assert_eq!(r.status.as_u16(), *status);
        assert!(r.headers.get("access-control-allow-origin").is_none());
    }
    // The preflight names authorization explicitly (a wildcard does not cover it).
    let req = Request::options(format!("http://{}/me", f.addr))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,x-csrf-token",
        )
        .body(empty())
        .unwrap();
    let r = send(&client(), req).await;
    assert!(r.status.is_success());
    let allow = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allow.split(',').any(|h| h.trim() == "authorization"),
        "{allow}"
    );
    assert!(r.headers.get("www-authenticate").is_none());
    assert!(
        CorsPreset::new().allow_origin("*").build().is_err(),
        "wildcard with credentials is a build error"
    );
}

/// A page's write sends the CSRF header, and a machine page the API-key header: the preflight
/// allows them when the preset takes them from the layer, and only then (whatever the CSRF
/// policy's header is called).
#[tokio::test]
async fn a_preflight_for_the_layers_csrf_and_api_key_headers_is_allowed_only_when_composed() {
    use auth_layer::cors::CorsPreset;
    let origin = "http://localhost:3000";
    let auth = AuthLayer::builder()
        .cookie("sid", ApiKeys::new())
        .csrf(
            CsrfPolicy::session_bound(csrf_key())
                .header("x-xsrf-token")
                .trusted_origin(origin),
        )
        .api_key("x-api-key", ApiKeys::new())
        .build()
        .unwrap();
    let names: Vec<&str> = auth.request_headers().map(|h| h.as_str()).collect();
    assert_eq!(names, ["x-api-key", "x-xsrf-token"]);
    let app = |cors: CorsPreset| {
        Router::new()
            .route("/notes", get(me).post(me))
            .layer(auth.clone())
            .layer(cors.allow_origin(origin).build().unwrap())
    };
    let composed = serve(app(CorsPreset::new().allow_headers_of(&auth))).await;
    let plain = serve(app(CorsPreset::new())).await;
    let allowed = |addr: SocketAddr, asked: &'static str| async move {
        let req = Request::options(format!("http://{addr}/notes"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", asked)
            .body(empty())
            .unwrap();
        let r = send(&client(), req).await;
        assert!(r.status.is_success(), "{asked}: {}", r.status);
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        let list = r
            .header("access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let list: Vec<String> = list.split(',').map(|h| h.trim().to_owned()).collect();
        asked.split(',').all(|h| list.iter().any(|l| l == h))
    };
    for asked in ["x-xsrf-token", "x-api-key", "content-type,x-xsrf-token"] {
        assert!(allowed(composed, asked).await, "composed: {asked}");
        assert!(!allowed(plain, asked).await, "plain: {asked}");
    }
    // A layer without a CSRF header or an API key adds nothing.
    let origin_only = AuthLayer::builder()
        .cookie("sid", ApiKeys::new())
        .csrf(CsrfPolicy::origin_only())
        .build()
        .unwrap();
    assert_eq!(origin_only.request_headers().count(), 0);
}
