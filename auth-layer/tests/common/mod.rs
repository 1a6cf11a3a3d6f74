//! The fixture the contract suites share: a real axum server on 127.0.0.1:0 behind an
//! `AuthLayer` (JWT bearer and cookie, API key, scope and role routes, RFC 9728 metadata), the
//! issuer that mints its tokens, and the imports every suite uses.
#![allow(dead_code, unused_imports)]

pub(crate) use std::net::SocketAddr;
pub(crate) use std::sync::{Arc, OnceLock};

pub(crate) use auth_layer::jwt::JwtAuthenticator;
pub(crate) use auth_layer::{
    ApiKeys, AuthLayer, AuthMetrics, CredentialKind, CsrfKey, CsrfPolicy, Denylist, Principal,
    ProtectedResource, RequireRole, RequireScope,
};
pub(crate) use axum::Router;
pub(crate) use axum::routing::get;
pub(crate) use base64::Engine;
pub(crate) use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub(crate) use http::Request;
pub(crate) use jsonwebtoken::{Algorithm, Header};
pub(crate) use portcullis_testkit::loopback::*;
pub(crate) use portcullis_testkit::{ALGORITHMS, TestIssuer, now};
pub(crate) use portcullis_wire::ErrorCode;
pub(crate) use serde_json::{Value, json};

pub(crate) const ISS: &str = "https://id.test";
pub(crate) const AUD: &str = "api";

/// The key the fixture's session-bound CSRF tokens are minted with.
pub(crate) fn csrf_key() -> CsrfKey {
    CsrfKey::new(b"the fixture's csrf key, 32+ bytes long").unwrap()
}

pub(crate) struct Fixture {
    pub addr: SocketAddr,
    pub issuer: TestIssuer,
    pub metrics: Arc<AuthMetrics>,
}

/// A JWT authenticator for any audience with the shared issuer's `n`th verification key.
pub(crate) fn any_audience_jwt(n: usize) -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .any_audience()
        .key(issuer().verification_keys().remove(n))
        .build()
        .unwrap()
}

pub(crate) fn issuer() -> &'static TestIssuer {
    static I: OnceLock<TestIssuer> = OnceLock::new();
    I.get_or_init(|| TestIssuer::new(ISS))
}

pub(crate) async fn me(p: Principal) -> axum::Json<Value> {
    axum::Json(
        json!({"sub": p.subject(), "scopes": p.scopes().collect::<Vec<_>>(), "kind": format!("{:?}", p.kind())}),
    )
}

/// The handler sees the credential header marked sensitive.
pub(crate) async fn sensitive(req: Request<axum::body::Body>) -> String {
    let h = req.headers().get("authorization").unwrap();
    format!("{}", h.is_sensitive())
}

pub(crate) async fn fixture() -> Fixture {
    let issuer = TestIssuer::new(ISS);
    let denylist = Arc::new(Denylist::default());
    denylist.revoke_subject("mallory");
    let jwt = JwtAuthenticator::builder()
        .issuer(ISS)
        .audience(AUD)
        .token_type("at+jwt")
        .required_claims(["exp", "sub"])
        .revocation(denylist);
    let jwt = issuer
        .verification_keys()
        .into_iter()
        .fold(jwt, |b, k| b.key(k))
        .build()
        .unwrap();
    let keys = ApiKeys::new().with_key(
        "key-for-build-bot",
        Principal::builder(CredentialKind::ApiKey)
            .subject("build-bot")
            .scopes(["deploy"])
            .build(),
    );
    let layer = AuthLayer::builder()
        .realm("api")
        .bearer(jwt.clone())
        .cookie("at", jwt)
        .csrf(CsrfPolicy::session_bound(csrf_key()))
        .api_key("x-api-key", keys)
        .resource_metadata(
            ProtectedResource::new("http://api.test/v1")
                .authorization_server(ISS)
                .scopes_supported(["admin"]),
        )
        .build()
        .unwrap();
    let metrics = layer.metrics();
    let app = Router::new()
        .route("/me", get(me).post(me))
        .route("/sensitive", get(sensitive))
        .route(
            "/admin",
            get(me).route_layer(RequireScope::all(["admin", "write"])),
        )
        .route(
            "/finance",
            get(me).route_layer(RequireRole::any(["finance"])),
        )
        .layer(layer);
    Fixture {
        addr: serve(app).await,
        issuer,
        metrics,
    }
}

impl Fixture {
    pub(crate) fn token(&self, alg: Algorithm, claims: Value) -> String {
        let mut h = Header::new(alg);
        h.kid = Some(self.issuer.kid(alg).into());
        h.typ = Some("at+jwt".into());
        self.issuer.mint_with_header(h, claims)
    }

    pub(crate) fn claims(&self, scope: &str) -> Value {
        self.issuer.access_claims("alice", AUD, scope, 300)
    }

    pub(crate) async fn bearer(&self, path: &str, token: &str) -> Reply {
        let req = req_to(self.addr, path)
            .header("authorization", format!("Bearer {token}"))
            .body(empty())
            .unwrap();
        let reply = send(&client(), req).await;
        assert!(
            !String::from_utf8_lossy(&reply.body).contains(token)
                && !format!("{:?}", reply.headers).contains(token),
            "the token is echoed in the response"
        );
        reply
    }

    pub(crate) async fn with_headers(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = req_to(self.addr, path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        send(&client(), req.body(empty()).unwrap()).await
    }
}

pub(crate) fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

pub(crate) async fn fixture_with_cors() -> Fixture {
    use auth_layer::cors::CorsPreset;
    let issuer = TestIssuer::new(ISS);
    let jwt = issuer
        .verification_keys()
        .into_iter()
        .fold(JwtAuthenticator::builder().any_audience(), |b, k| b.key(k))
        .build()
        .unwrap();
    let layer = AuthLayer::bearer(jwt).unwrap();
    let metrics = layer.metrics();
    let app = Router::new()
        .route("/me", get(me))
        .route("/admin", get(me).route_layer(RequireScope::all(["admin"])))
        .layer(layer)
        .layer(
            CorsPreset::new()
                .allow_origin("http://localhost:3000")
                .allow_header("x-csrf-token")
                .build()
                .unwrap(),
        );
    Fixture {
        addr: serve(app).await,
        issuer,
        metrics,
    }
}
