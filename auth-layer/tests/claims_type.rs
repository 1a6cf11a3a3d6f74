//! A claims type that does not match the authenticator is an error when the layer is built;
//! at run time, a credential without claims on a claims route is the client's 403, and claims
//! of another shape are a `403 invalid_claims` no client refreshes on.
//! Over real HTTP: an axum server on 127.0.0.1:0, requests written with the testkit's
//! `TestRequest`.

mod common;

use auth_layer::{Authentication, Authenticator, Claims, ClaimsType, ConfigError};
use axum::routing::post;
use common::*;

#[derive(Clone, serde::Deserialize)]
struct Org {
    org_id: String,
}

#[derive(Clone, serde::Deserialize)]
struct Tenant {
    #[allow(dead_code)]
    tenant: String,
}

fn jwt_of<C: serde::de::DeserializeOwned + Send + Sync + 'static>() -> JwtAuthenticator<C> {
    JwtAuthenticator::builder()
        .audience(AUD)
        .key(issuer().verification_key(Algorithm::HS256))
        .claims::<C>()
        .build()
        .unwrap()
}

fn plain_jwt() -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .audience(AUD)
        .key(issuer().verification_key(Algorithm::HS256))
        .build()
        .unwrap()
}

/// An authenticator of the user's own that does not say what claims it attaches.
struct Opaque;

impl Authenticator for Opaque {
    fn authenticate(&self, c: &auth_layer::PresentedCredential) -> Authentication {
        Authentication::ready(Ok(Principal::builder(c.kind()).subject("x").build()))
    }
}

#[test]
fn a_mismatched_claims_type_is_refused_when_the_layer_is_built() {
    let mismatch = AuthLayer::builder()
        .bearer(jwt_of::<Org>())
        .claims::<Tenant>()
        .build()
        .unwrap_err();
    match &mismatch {
        ConfigError::ClaimsTypeMismatch {
            credential,
            expected,
            found,
        } => {
            assert_eq!(*credential, "bearer");
            assert!(expected.ends_with("Tenant"), "{expected}");
            assert!(found.ends_with("Org"), "{found}");
        }
        other => panic!("{other:?}"),
    }
    // The message says what to change.
    assert!(mismatch.to_string().contains(".claims::<"), "{mismatch}");
    // An authenticator without `.claims::<T>()` attaches none: a mismatch too.
    let none = AuthLayer::builder()
        .bearer(plain_jwt())
        .claims::<Org>()
        .build()
        .unwrap_err();
    assert!(
        matches!(none, ConfigError::ClaimsTypeMismatch { found: "()", .. }),
        "{none:?}"
    );
    // The cookie source is checked as well as the bearer one.
    let cookie = AuthLayer::builder()
        .bearer(jwt_of::<Org>())
        .cookie("sid", jwt_of::<Tenant>())
        .disable_csrf_protection()
        .claims::<Org>()
        .build()
        .unwrap_err();
    assert!(
        matches!(
            cookie,
            ConfigError::ClaimsTypeMismatch {
                credential: "cookie",
                ..
            }
        ),
        "{cookie:?}"
    );
}

#[test]
fn matching_or_undeclared_claims_types_build() {
    assert!(
        AuthLayer::builder()
            .bearer(jwt_of::<Org>())
            .claims::<Org>()
            .build()
            .is_ok()
    );
    // Without a declaration nothing is compared (the check is opt-in per layer).
    assert!(AuthLayer::builder().bearer(jwt_of::<Org>()).build().is_ok());
    // An authenticator that does not say what it attaches cannot be checked, and is not
    // refused; API keys are not token sources and are never compared.
    assert_eq!(Opaque.claims_type(), None);
    assert!(
        AuthLayer::builder()
            .bearer(Opaque)
            .api_key("x-api-key", ApiKeys::new())
            .claims::<Org>()
            .build()
            .is_ok()
    );
    assert_eq!(jwt_of::<Org>().claims_type(), Some(ClaimsType::of::<Org>()));
    assert_eq!(plain_jwt().claims_type(), Some(ClaimsType::none()));
}

/// A claims route behind a layer taking bearer tokens of `Org` and an API key.
async fn claims_api() -> SocketAddr {
    let keys = ApiKeys::new().with_key(
        "the-ci-key",
        Principal::builder(CredentialKind::ApiKey)
            .subject("ci")
            .build(),
    );
    let layer = AuthLayer::builder()
        .bearer(jwt_of::<Org>())
        .api_key("x-api-key", keys)
        .claims::<Org>()
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/org",
            post(|Claims(o): Claims<Org>| async move { o.org_id }),
        )
        .layer(layer);
    serve(app).await
}

fn org_token(org_id: Value) -> String {
    let mut claims = issuer().access_claims("erin", AUD, "", 60);
    claims["org_id"] = org_id;
    issuer().mint(Algorithm::HS256, claims)
}

#[tokio::test]
async fn a_credential_without_claims_on_a_claims_route_is_403_not_500() {
    let addr = claims_api().await;
    let r = TestRequest::post(addr, "/org")
        .api_key("x-api-key", "the-ci-key")
        .send()
        .await;
    r.assert_problem(403, "forbidden");
    assert!(
        r.json()["detail"].as_str().unwrap().contains("claims"),
        "{}",
        r.json()
    );
    let ok = TestRequest::post(addr, "/org")
        .bearer(&org_token(json!("org-7")))
        .send()
        .await;
    assert_eq!((ok.status.as_u16(), &ok.body[..]), (200, &b"org-7"[..]));
}

#[tokio::test]
async fn claims_of_another_shape_are_403_invalid_claims_without_a_challenge() {
    let addr = claims_api().await;
    for org_id in [json!(7), Value::Null] {
        let r = TestRequest::post(addr, "/org")
            .bearer(&org_token(org_id.clone()))
            .send()
            .await;
        r.assert_problem(403, "invalid_claims");
        assert!(
            r.challenges.is_empty(),
            "no challenge invites a new token: {:?}",
            r.challenges
        );
    }
    let mut claims = issuer().access_claims("erin", AUD, "", 60);
    claims.as_object_mut().unwrap().remove("org_id");
    let r = TestRequest::post(addr, "/org")
        .bearer(&issuer().mint(Algorithm::HS256, claims))
        .send()
        .await;
    r.assert_problem(403, "invalid_claims");
    assert!(!ErrorCode::InvalidClaims.client_refreshes());
}

#[tokio::test]
async fn a_token_without_claims_on_a_claims_route_is_the_servers_500_not_the_clients_403() {
    // The usual mistake: the authenticator was never told the claims type, the layer was not
    // told either. Every valid token then reaches a handler that cannot get its claims: that
    // is the server's configuration, not something the client can change.
    let app = Router::new()
        .route(
            "/org",
            post(|Claims(o): Claims<Org>| async move { o.org_id }),
        )
        .layer(AuthLayer::bearer(plain_jwt()).unwrap());
    let addr = serve(app).await;
    let r = TestRequest::post(addr, "/org")
        .bearer(&org_token(json!("org-7")))
        .send()
        .await;
    assert_eq!(r.status, 500, "{:?}", r.body);
    assert!(
        String::from_utf8_lossy(&r.body).contains("claims type"),
        "{:?}",
        r.body
    );
}

#[tokio::test]
async fn an_undeclared_mismatch_is_still_a_500_naming_the_misconfiguration() {
    // The layer is not told the handlers' type: the mismatch shows only at run time.
    let app = Router::new()
        .route(
            "/org",
            post(|Claims(o): Claims<Org>| async move { o.org_id }),
        )
        .layer(AuthLayer::bearer(jwt_of::<Tenant>()).unwrap());
    let addr = serve(app).await;
    let mut claims = issuer().access_claims("erin", AUD, "", 60);
    claims["tenant"] = json!("t-1");
    let r = TestRequest::post(addr, "/org")
        .bearer(&issuer().mint(Algorithm::HS256, claims))
        .send()
        .await;
    assert_eq!(r.status, 500);
    assert!(
        String::from_utf8_lossy(&r.body).contains("claims type"),
        "{:?}",
        r.body
    );
}
