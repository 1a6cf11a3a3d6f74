//! The claim roles are read from (`JwtAuthenticatorBuilder::roles_claim_path`), seen by
//! `RequireRole`: a Keycloak-shaped token passes, the same roles under another claim do not.
//! Over real HTTP: an axum server on 127.0.0.1:0 and a hyper-util client.

mod common;

use common::*;

/// The roles the principal holds, as the handler sees them.
async fn roles(p: Principal) -> axum::Json<Value> {
    axum::Json(json!(p.roles().collect::<Vec<_>>()))
}

/// `/finance` requires the role `finance`, read from Keycloak's `realm_access.roles`.
async fn keycloak_api() -> SocketAddr {
    let jwt = JwtAuthenticator::builder()
        .issuer(ISS)
        .audience(AUD)
        .key(issuer().verification_key(Algorithm::HS256))
        .roles_claim_path(["realm_access", "roles"])
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/finance",
            get(roles).route_layer(RequireRole::any(["finance"])),
        )
        .layer(AuthLayer::bearer(jwt).unwrap());
    serve(app).await
}

/// An access token for `alice` with `extra` members added to its claims.
fn token_with(extra: Value) -> String {
    let mut claims = issuer().access_claims("alice", AUD, "read", 300);
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    issuer().mint(Algorithm::HS256, claims)
}

async fn get_finance(addr: SocketAddr, token: &str) -> Reply {
    send(&client(), bearer_req(addr, "/finance", token)).await
}

#[tokio::test]
async fn keycloak_realm_roles_pass_require_role() {
    let addr = keycloak_api().await;
    let token = token_with(json!({
        "realm_access": {"other": {"roles": ["x"]}, "roles": ["offline_access", "finance"]},
        "resource_access": {"account": {"roles": ["manage-account"]}},
    }));
    let r = get_finance(addr, &token).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json(), json!(["offline_access", "finance"]));
}

#[tokio::test]
async fn the_same_roles_under_another_claim_are_403_forbidden() {
    let addr = keycloak_api().await;
    for extra in [
        json!({"roles": ["finance"]}),
        json!({"groups": ["finance"]}),
        json!({"resource_access": {"roles": ["finance"]}}),
        json!({"realm_access": {"groups": ["finance"]}}),
        json!({"realm_access": {"other": {"roles": ["finance"]}}}),
    ] {
        let r = get_finance(addr, &token_with(extra.clone())).await;
        r.assert_problem(403, "forbidden");
        assert!(r.headers.get("www-authenticate").is_none(), "{extra}");
    }
}

#[tokio::test]
async fn a_roles_claim_of_another_shape_is_401_token_malformed() {
    let addr = keycloak_api().await;
    for extra in [
        json!({"realm_access": ["finance"]}),
        json!({"realm_access": {"roles": [["finance"]]}}),
        json!({"realm_access": {"roles": 7}}),
    ] {
        let r = get_finance(addr, &token_with(extra.clone())).await;
        r.assert_problem(401, "token_malformed");
        assert_eq!(
            r.challenge("Bearer").param("error"),
            Some("invalid_token"),
            "{extra}"
        );
    }
}
