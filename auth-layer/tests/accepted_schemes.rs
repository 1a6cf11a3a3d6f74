//! `AuthLayer::accepting`: copies of one layer, one per group of routes, each reading and
//! advertising only the credential kinds its routes take.
//! Over real HTTP: an axum server on 127.0.0.1:0 and a hyper-util client.

mod common;

use auth_layer::ConfigError;
use common::*;

const KEY: &str = "key-for-build-bot";

/// One layer accepting bearer tokens and API keys, and its two narrowed copies.
fn layers() -> (AuthLayer, AuthLayer, AuthLayer) {
    let keys = ApiKeys::new().with_key(
        KEY,
        Principal::builder(CredentialKind::ApiKey)
            .subject("build-bot")
            .build(),
    );
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

#[tokio::test]
async fn a_valid_api_key_on_the_bearer_only_route_is_401_missing_credentials() {
    let api = api().await;
    let r = api.get("/me", &[("x-api-key", KEY)]).await;
    r.assert_problem(401, "missing_credentials");
    assert_eq!(schemes(&r), ["Bearer"]);
    // And a user's token on the API-key route, whatever its scheme says.
    let bearer = format!("Bearer {}", user_token());
    for authorization in [bearer.as_str(), "Basic dXNlcjpwYXNz"] {
        let r = api
            .get("/deploy", &[("authorization", authorization)])
            .await;
        r.assert_problem(401, "missing_credentials");
        assert_eq!(schemes(&r), ["ApiKey"]);
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
