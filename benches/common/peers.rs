//! The same requests through the crates users compare us with, each configured the way its
//! documentation shows for static keys (no network), verifying the same tokens with the same
//! `iss`/`aud` requirements, one key per layer (the friendliest setup for them: no key lookup),
//! and each deserializing the same user claims ([`UserClaims`], or for aliri the same members
//! with aliri's types where its traits need them) once per request.
//!
//! - `jwt-authorizer` 0.15 (axum 0.7, jsonwebtoken 9 with ring): a tower layer.
//! - `axum-jwt-auth` 0.7 (jsonwebtoken 10 with `rust_crypto`): an extractor in the handler.
//! - `aliri_tower` 0.6 (aliri 0.6, ring): a tower-http `ValidateRequestHeaderLayer`. Without
//!   aliri's `openssl` feature it has no ES256, and it has no EdDSA at all.

use std::convert::Infallible;

use axum::body::Body;
use http::{Request, Response};
use jsonwebtoken::Algorithm;
use portcullis::testkit::TestIssuer;
use serde::Deserialize;
use tower::Service;

use super::{AUDIENCE, Case, ISSUER, Tokens, UserClaims, case, request};

/// The public key of `alg` as a one-key JWKS document.
fn jwks_text(issuer: &TestIssuer, alg: Algorithm) -> String {
    let jwk = issuer.jwks().find(issuer.kid(alg)).cloned().unwrap();
    serde_json::json!({ "keys": [jwk] }).to_string()
}

/// The HMAC key as a JWK (for verifiers that only take JWKs).
fn hmac_jwk(issuer: &TestIssuer) -> serde_json::Value {
    use base64::Engine;
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(issuer.hmac_secret());
    serde_json::json!({ "kty": "oct", "kid": issuer.kid(Algorithm::HS256), "alg": "HS256", "k": k })
}

/// The cases of one peer: accept per algorithm, then missing, expired, bad signature.
fn peer_cases<S, B, R>(
    peer: &str,
    tokens: &Tokens,
    mut layer_for: impl FnMut(Algorithm) -> Option<S>,
    request: fn(Option<&str>) -> Request<B>,
    rejects: u16,
) -> Vec<Case>
where
    S: Service<Request<B>, Response = Response<R>, Error = Infallible> + Clone + 'static,
    B: 'static,
{
    let mut out = Vec::new();
    let mut hs = None;
    for (alg, token, forged) in &tokens.valid {
        let Some(svc) = layer_for(*alg) else { continue };
        out.push(case(
            format!("{peer}/{alg:?}/accept"),
            svc.clone(),
            request,
            Some(format!("Bearer {token}")),
            200,
        ));
        out.push(case(
            format!("{peer}/{alg:?}/reject/bad-signature"),
            svc.clone(),
            request,
            Some(format!("Bearer {forged}")),
            rejects,
        ));
        if *alg == Algorithm::HS256 {
            hs = Some(svc);
        }
    }
    let hs = hs.expect("every peer verifies HS256");
    out.push(case(
        format!("{peer}/reject/missing"),
        hs.clone(),
        request,
        None,
        rejects,
    ));
    out.push(case(
        format!("{peer}/HS256/reject/expired"),
        hs,
        request,
        Some(format!("Bearer {}", tokens.expired_hs256)),
        rejects,
    ));
    out
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// jwt-authorizer's router for `alg` (axum 0.7).
pub(crate) fn jwt_authorizer_router(issuer: &TestIssuer, alg: Algorithm) -> Option<axum07::Router> {
    use axum07::Router;
    use jwt_authorizer::{IntoLayer, JwtAuthorizer, Validation};

    type Builder = JwtAuthorizer<UserClaims>;

    {
        let builder = match alg {
            Algorithm::HS256 => {
                Builder::from_secret(std::str::from_utf8(issuer.hmac_secret()).unwrap())
            }
            _ => Builder::from_jwks_text(&jwks_text(issuer, alg)),
        };
        let authorizer = block_on(
            builder
                .validation(Validation::new().iss(&[ISSUER]).aud(&[AUDIENCE]))
                .build(),
        )
        .unwrap();
        let router: Router = Router::new()
            .route("/", axum07::routing::get(|| async { "ok" }))
            .layer(authorizer.into_layer());
        Some(router)
    }
}

pub(super) fn jwt_authorizer(issuer: &TestIssuer, tokens: &Tokens) -> Vec<Case> {
    let layer_for =
        |alg| jwt_authorizer_router(issuer, alg).map(|r| r.into_service::<axum07::body::Body>());
    peer_cases(
        "jwt-authorizer",
        tokens,
        layer_for,
        request::<axum07::body::Body>,
        401,
    )
}

/// axum-jwt-auth's router for `alg` (its extractor in the handler).
pub(crate) fn axum_jwt_auth_router(issuer: &TestIssuer, alg: Algorithm) -> Option<axum::Router> {
    use axum::Router;
    use axum_jwt_auth::{Claims, Decoder, LocalDecoder};
    use jsonwebtoken10 as jwt10;
    use std::sync::Arc;

    {
        let (key, alg10) = match alg {
            Algorithm::HS256 => (
                jwt10::DecodingKey::from_secret(issuer.hmac_secret()),
                jwt10::Algorithm::HS256,
            ),
            _ => {
                let jwk: jwt10::jwk::Jwk = serde_json::from_value(
                    serde_json::to_value(issuer.jwks().find(issuer.kid(alg)).unwrap()).unwrap(),
                )
                .unwrap();
                let alg10 = serde_json::from_value(serde_json::to_value(alg).unwrap()).unwrap();
                (jwt10::DecodingKey::from_jwk(&jwk).unwrap(), alg10)
            }
        };
        let mut v = jwt10::Validation::new(alg10);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[AUDIENCE]);
        let decoder: Decoder<UserClaims> = Arc::new(
            LocalDecoder::builder()
                .keys(vec![key])
                .validation(v)
                .build()
                .unwrap(),
        );
        let router = Router::new()
            .route(
                "/",
                axum::routing::get(|_: Claims<UserClaims>| async { "ok" }),
            )
            .with_state(decoder);
        Some(router)
    }
}

pub(super) fn axum_jwt_auth(issuer: &TestIssuer, tokens: &Tokens) -> Vec<Case> {
    let layer_for = |alg| axum_jwt_auth_router(issuer, alg);
    peer_cases("axum-jwt-auth", tokens, layer_for, request::<Body>, 401)
}

/// [`UserClaims`] as aliri needs it: the same members, the registered ones in aliri's types
/// (its validator reads them through `CoreClaims`, the scope through `HasScope`). One pass, no
/// `#[serde(flatten)]` (aliri's own `BasicClaimsWithScope` flattens, which buffers).
#[derive(Clone, Deserialize)]
#[allow(dead_code)]
struct AliriUserClaims {
    iss: Option<aliri::jwt::Issuer>,
    sub: Option<aliri::jwt::Subject>,
    #[serde(default)]
    aud: aliri::jwt::Audiences,
    exp: Option<aliri_clock::UnixTime>,
    nbf: Option<aliri_clock::UnixTime>,
    iat: u64,
    jti: String,
    scope: aliri_oauth2::Scope,
    azp: String,
    email: String,
    name: String,
    org_id: String,
    roles: Vec<String>,
}

impl aliri::jwt::CoreClaims for AliriUserClaims {
    fn nbf(&self) -> Option<aliri_clock::UnixTime> {
        self.nbf
    }
    fn exp(&self) -> Option<aliri_clock::UnixTime> {
        self.exp
    }
    fn aud(&self) -> &aliri::jwt::Audiences {
        &self.aud
    }
    fn iss(&self) -> Option<&aliri::jwt::IssuerRef> {
        self.iss.as_deref()
    }
    fn sub(&self) -> Option<&aliri::jwt::SubjectRef> {
        self.sub.as_deref()
    }
}

impl aliri_oauth2::HasScope for AliriUserClaims {
    fn scope(&self) -> &aliri_oauth2::Scope {
        &self.scope
    }
}

/// aliri_tower's router for `alg` (HS256 and RS256 only, see above).
pub(crate) fn aliri_tower_router(issuer: &TestIssuer, alg: Algorithm) -> Option<axum::Router> {
    use aliri::jwa;
    use aliri::jwt::{Audience, CoreValidator, Issuer};
    use aliri_oauth2::Authority;
    use aliri_tower::Oauth2Authorizer;
    use axum::Router;

    {
        let (jwk, alg) = match alg {
            Algorithm::HS256 => (hmac_jwk(issuer), jwa::Algorithm::HS256),
            Algorithm::RS256 => (
                serde_json::to_value(issuer.jwks().find(issuer.kid(alg)).unwrap()).unwrap(),
                jwa::Algorithm::RS256,
            ),
            _ => return None,
        };
        // From text: aliri's base64 fields borrow while deserializing.
        let jwks: aliri::Jwks =
            serde_json::from_str(&serde_json::json!({ "keys": [jwk] }).to_string()).unwrap();
        assert_eq!(jwks.keys().len(), 1, "aliri took the key");
        let validator = CoreValidator::default()
            .add_approved_algorithm(alg)
            .add_allowed_audience(Audience::from_static(AUDIENCE))
            .require_issuer(Issuer::from_static(ISSUER));
        let authorizer = Oauth2Authorizer::new()
            .with_claims::<AliriUserClaims>()
            .with_terse_error_handler::<Body>();
        let router = Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .layer(authorizer.jwt_layer(Authority::new(jwks, validator)));
        Some(router)
    }
}

pub(super) fn aliri_tower(issuer: &TestIssuer, tokens: &Tokens) -> Vec<Case> {
    let layer_for = |alg| aliri_tower_router(issuer, alg);
    peer_cases("aliri_tower", tokens, layer_for, request::<Body>, 401)
}
