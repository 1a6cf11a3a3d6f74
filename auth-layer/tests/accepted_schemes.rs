//! `AuthLayer::accepting`: copies of one layer, one per group of routes, each reading and
//! advertising only the credential kinds its routes take.
//! Over real HTTP: an axum server on 127.0.0.1:0 and a hyper-util client.

mod common;

use auth_layer::ConfigError;
use common::*;

const KEY: &str = "key-for-build-bot";

/// The one API key the suite knows, for the subject `build-bot`.
fn build_bot_keys() -> ApiKeys {
    ApiKeys::new().with_key(
        KEY,
        Principal::builder(CredentialKind::ApiKey)
            .subject("build-bot")
            .build(),
    )
}

/// One layer accepting bearer tokens and API keys, and its two narrowed copies.
fn layers() -> (AuthLayer, AuthLayer, AuthLayer) {
    let keys = build_bot_keys();
    let full = AuthLayer::builder()
        .realm("api")
        .bearer(any_audience_jwt(0))
        .api_key("x-api-key", keys)
        .build()
        .unwrap();
    let users = full.accepting([CredentialKind::Bearer]).unwrap();
    let machines = full.accepting([CredentialKind::ApiKey]).unwrap();
    (full, users, machines)
}

struct Api {
    addr: SocketAddr,
    metrics: Arc<AuthMetrics>,
}

/// `/me` takes bearer tokens only, `/deploy` API keys only, `/either` both: each copy is the
/// route layer of its own routes, with no broader auth layer around them.
async fn api() -> Api {
    let (full, users, machines) = layers();
    let app = Router::new()
        .merge(Router::new().route("/me", get(me)).route_layer(users))
        .merge(
            Router::new()
                .route("/deploy", get(me))
                .route_layer(machines),
        )
        .route("/either", get(me).route_layer(full.clone()));
    Api {
        addr: serve(app).await,
        metrics: full.metrics(),
    }
}

impl Api {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = req_to(self.addr, path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        send(&client(), req.body(empty()).unwrap()).await
    }
}

fn user_token() -> String {
    issuer().mint(
        Algorithm::HS256,
        issuer().access_claims("alice", AUD, "read", 300),
    )
}

fn schemes(r: &Reply) -> Vec<String> {
    r.challenges.iter().map(|c| c.scheme.clone()).collect()
}

#[tokio::test]
async fn a_401_of_the_bearer_only_copy_has_exactly_one_bearer_challenge() {
    let api = api().await;
    let r = api.get("/me", &[]).await;
    r.assert_problem(401, "missing_credentials");
    assert_eq!(schemes(&r), ["Bearer"]);
    assert_eq!(r.challenge("Bearer").param("realm"), Some("api"));
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("bearer token") && !detail.contains("API key"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_401_of_the_api_key_only_copy_has_only_the_api_key_challenge() {
    let api = api().await;
    let r = api.get("/deploy", &[]).await;
    r.assert_problem(401, "missing_credentials");
    assert_eq!(schemes(&r), ["ApiKey"]);
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("x-api-key") && !detail.contains("bearer"),
        "{detail}"
    );
    // An invalid key is answered with that scheme alone too.
    let r = api.get("/deploy", &[("x-api-key", "not-a-key")]).await;
    r.assert_problem(401, "invalid_api_key");
    assert_eq!(schemes(&r), ["ApiKey"]);
}

/// The detail of a 403 `forbidden`, after checking that it carries no challenge: a new token
/// would not help, so nothing may invite the client to fetch one.
fn forbidden_detail(r: &Reply) -> String {
    r.assert_problem(403, "forbidden");
    assert!(
        r.headers.get("www-authenticate").is_none(),
        "a 403 for the wrong kind has no challenge: {:?}",
        r.headers
    );
    r.json()["detail"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_bearer_token_on_the_api_key_route_is_403_forbidden_naming_the_api_key() {
    let api = api().await;
    // Valid or not, Bearer in any case: the client holds a credential of the layer's, just
    // not of a kind this route takes. It is never checked here.
    let valid = format!("Bearer {}", user_token());
    for authorization in [valid.as_str(), "bearer not-even-a-jwt"] {
        let r = api
            .get("/deploy", &[("authorization", authorization)])
            .await;
        let detail = forbidden_detail(&r);
        assert_eq!(
            detail, "this resource accepts only these credentials: api_key",
            "{authorization}"
        );
    }
    assert_eq!(api.metrics.rejected(ErrorCode::Forbidden), 2);
    assert_eq!(api.metrics.accepted(), 0);
}

#[tokio::test]
async fn an_api_key_on_the_bearer_route_is_403_forbidden_naming_bearer() {
    let api = api().await;
    let r = api.get("/me", &[("x-api-key", KEY)]).await;
    let detail = forbidden_detail(&r);
    assert_eq!(
        detail,
        "this resource accepts only these credentials: bearer"
    );
}

#[tokio::test]
async fn nothing_of_any_configured_kind_is_401_with_only_the_routes_scheme() {
    let api = api().await;
    // No credential at all, or only what no kind of the layer is: another scheme, another
    // header.
    let cases: [&[(&str, &str)]; 3] = [
        &[],
        &[("authorization", "Basic dXNlcjpwYXNz")],
        &[("x-api-token", KEY)],
    ];
    for headers in cases {
        let r = api.get("/deploy", headers).await;
        r.assert_problem(401, "missing_credentials");
        assert_eq!(schemes(&r), ["ApiKey"], "{headers:?}");
        let r = api.get("/me", headers).await;
        // The bearer copy reads the Authorization header: another scheme there is named.
        let code = match headers {
            [("authorization", _)] => "unsupported_scheme",
            _ => "missing_credentials",
        };
        r.assert_problem(401, code);
        assert_eq!(schemes(&r), ["Bearer"], "{headers:?}");
    }
}

#[tokio::test]
async fn each_copy_accepts_its_own_kind_and_ignores_the_other_header() {
    let api = api().await;
    let bearer = format!("Bearer {}", user_token());
    // Both headers: to each copy the other kind's header is just a header, not a second
    // credential (which the full layer answers 400).
    let both = [("authorization", bearer.as_str()), ("x-api-key", KEY)];
    let r = api.get("/me", &both).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["sub"].clone()),
        (200, json!("alice"))
    );
    let r = api.get("/deploy", &both).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["sub"].clone()),
        (200, json!("build-bot"))
    );
    api.get("/either", &both)
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn the_full_layer_still_lists_both_schemes() {
    let api = api().await;
    let r = api.get("/either", &[]).await;
    r.assert_problem(401, "missing_credentials");
    assert_eq!(schemes(&r), ["Bearer", "ApiKey"]);
    assert_eq!(
        r.json()["detail"],
        ErrorCode::MissingCredentials.default_detail()
    );
}

#[tokio::test]
async fn a_kind_the_layer_was_not_built_with_is_a_config_error() {
    let (full, users, _) = layers();
    assert_eq!(
        full.accepting([CredentialKind::Cookie]).err(),
        Some(ConfigError::CredentialNotConfigured("cookie"))
    );
    // A copy narrows further, never wider.
    assert_eq!(
        users.accepting([CredentialKind::ApiKey]).err(),
        Some(ConfigError::CredentialNotConfigured("api_key"))
    );
    assert!(users.accepting([CredentialKind::Bearer]).is_ok());
    assert_eq!(
        full.accepting([]).err(),
        Some(ConfigError::NoCredentialSource)
    );
}

#[tokio::test]
async fn the_copies_count_in_the_shared_metrics() {
    let api = api().await;
    let bearer = format!("Bearer {}", user_token());
    assert_eq!(
        api.get("/me", &[("authorization", &bearer)]).await.status,
        200
    );
    assert_eq!(api.get("/deploy", &[("x-api-key", KEY)]).await.status, 200);
    assert_eq!(api.get("/me", &[]).await.status, 401);
    assert_eq!(api.get("/deploy", &[]).await.status, 401);
    assert_eq!(api.get("/either", &[]).await.status, 401);
    assert_eq!(api.metrics.accepted(), 2);
    assert_eq!(api.metrics.rejected(ErrorCode::MissingCredentials), 3);
}

/// The headers a page may need allowed in CORS (`CorsPreset::allow_headers_of`) are those the
/// copy reads: a bearer-only copy names none, an API-key copy its header, the CSRF header only
/// where cookies are read.
#[test]
fn a_copy_names_only_the_request_headers_it_reads() {
    let (full, users, machines) = layers();
    let names = |l: &AuthLayer| {
        l.request_headers()
            .map(|h| h.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&full), ["x-api-key"]);
    assert!(names(&users).is_empty(), "{:?}", names(&users));
    assert_eq!(names(&machines), ["x-api-key"]);
    let with_cookie = AuthLayer::builder()
        .bearer(any_audience_jwt(0))
        .cookie("sid", any_audience_jwt(0))
        .csrf(CsrfPolicy::session_bound(csrf_key()))
        .build()
        .unwrap();
    assert_eq!(names(&with_cookie), ["x-csrf-token"]);
    let bearer_only = with_cookie.accepting([CredentialKind::Bearer]).unwrap();
    assert!(names(&bearer_only).is_empty(), "{:?}", names(&bearer_only));
}

/// A copy that reads the session cookie checks its CSRF proof as the layer does: the copy
/// shares the layer's CSRF check.
#[tokio::test]
async fn a_cookie_reading_copy_still_enforces_csrf() {
    let full = AuthLayer::builder()
        .bearer(any_audience_jwt(0))
        .cookie("sid", any_audience_jwt(0))
        .csrf(CsrfPolicy::session_bound(csrf_key()))
        .build()
        .unwrap();
    let browser = full.accepting([CredentialKind::Cookie]).unwrap();
    let addr =
        serve(Router::new().route("/me", axum::routing::post(me).route_layer(browser))).await;
    let t = user_token();
    let c = client();
    let post = |headers: &[(&str, String)]| {
        let mut req = Request::post(format!("http://{addr}/me"));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.body(empty()).unwrap()
    };
    // What a page of another site makes the browser send: the cookie, no proof.
    let cross_site = [
        ("cookie", format!("sid={t}")),
        ("origin", "https://evil.example".to_owned()),
        ("sec-fetch-site", "cross-site".to_owned()),
    ];
    let r = send(&c, post(&cross_site)).await;
    r.assert_problem(403, "csrf_failed");
    // The same cookie with the token minted for it passes: the 403 was the CSRF check's.
    let r = send(
        &c,
        post(&[
            ("cookie", format!("sid={t}")),
            ("x-csrf-token", csrf_key().mint(&t)),
        ]),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["sub"].clone()),
        (200, json!("alice"))
    );
}

/// The credential headers the handler received, by name.
async fn credential_headers(req: Request<axum::body::Body>) -> axum::Json<Value> {
    let h = req.headers();
    axum::Json(json!({
        "authorization": h.contains_key("authorization"),
        "x-api-key": h.contains_key("x-api-key"),
        "cookie": h.get("cookie").map(|v| v.to_str().unwrap().to_owned()),
    }))
}

/// With `strip_credentials(true)` the copy removes every place its layer reads a credential
/// from, the ones it does not read itself included, before the handler runs.
#[tokio::test]
async fn a_stripping_copy_removes_headers_it_does_not_read_as_well_as_its_own() {
    let keys = build_bot_keys();
    let full = AuthLayer::builder()
        .bearer(any_audience_jwt(0))
        .cookie("sid", any_audience_jwt(0))
        .disable_csrf_protection()
        .api_key("x-api-key", keys)
        .strip_credentials(true)
        .build()
        .unwrap();
    let machines = full.accepting([CredentialKind::ApiKey]).unwrap();
    let addr =
        serve(Router::new().route("/deploy", get(credential_headers).route_layer(machines))).await;
    let bearer = format!("Bearer {}", user_token());
    let req = req_to(addr, "/deploy")
        .header("authorization", &bearer)
        .header("cookie", "sid=not-read-here; theme=dark")
        .header("x-api-key", KEY)
        .body(empty())
        .unwrap();
    let r = send(&client(), req).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"authorization": false, "x-api-key": false, "cookie": "theme=dark"})
    );
}

/// A copy of an optional layer is optional too: a request with no credential reaches the
/// handler, as anonymous.
#[tokio::test]
async fn an_optional_layers_copy_lets_an_anonymous_request_through() {
    let keys = build_bot_keys();
    let full = AuthLayer::builder()
        .bearer(any_audience_jwt(0))
        .api_key("x-api-key", keys)
        .optional(true)
        .build()
        .unwrap();
    let machines = full.accepting([CredentialKind::ApiKey]).unwrap();
    let who = |p: Option<Principal>| async move {
        p.map_or("anonymous".to_owned(), |p| {
            p.subject().unwrap_or("?").to_owned()
        })
    };
    let addr = serve(Router::new().route("/deploy", get(who).route_layer(machines))).await;
    let c = client();
    let r = send(&c, req_to(addr, "/deploy").body(empty()).unwrap()).await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"anonymous"[..]));
    let r = send(
        &c,
        req_to(addr, "/deploy")
            .header("x-api-key", KEY)
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"build-bot"[..]));
    // A credential the copy does not read is not read in optional mode either: its request
    // is anonymous here, never authenticated as the bearer token's subject.
    let bearer = format!("Bearer {}", user_token());
    let r = send(
        &c,
        req_to(addr, "/deploy")
            .header("authorization", &bearer)
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"anonymous"[..]));
    assert_eq!(full.metrics().anonymous(), 2);
}

/// An optional copy lets a request whose credential it does not read through as anonymous;
/// that credential is still a secret: removed before the handler when the layer strips, and
/// marked sensitive when it does not.
#[tokio::test]
async fn an_optional_copy_strips_and_marks_a_credential_it_does_not_read() {
    let full = |strip: bool| {
        AuthLayer::builder()
            .bearer(any_audience_jwt(0))
            .api_key("x-api-key", ApiKeys::new())
            .optional(true)
            .strip_credentials(strip)
            .build()
            .unwrap()
    };
    let seen = |req: Request<axum::body::Body>| async move {
        let auth = req.headers().get("authorization");
        json!({
            "authorization": auth.is_some(),
            "sensitive": auth.is_some_and(|v| v.is_sensitive()),
        })
        .to_string()
    };
    for (strip, expected) in [
        (true, json!({"authorization": false, "sensitive": false})),
        (false, json!({"authorization": true, "sensitive": true})),
    ] {
        let machines = full(strip).accepting([CredentialKind::ApiKey]).unwrap();
        let addr = serve(Router::new().route("/deploy", get(seen).route_layer(machines))).await;
        let r = send(
            &client(),
            req_to(addr, "/deploy")
                .header("authorization", format!("Bearer {}", user_token()))
                .body(empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), expected, "strip {strip}");
    }
}
