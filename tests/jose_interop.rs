//! Tokens signed by the `jose` npm package (one per JWS algorithm) verify through the auth
//! layer over real HTTP.
//!
//! By default the committed vectors (`interop/fixtures/jose-vectors.json`, produced by
//! `interop/jose-vectors.mjs`) are used; `.ci/run` regenerates them with the real `jose`
//! package and points `PORTCULLIS_JOSE_VECTORS` at the fresh file.

mod support;

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
use portcullis::server::{AuthLayer, Principal};
use serde::Deserialize;
use support::*;

#[derive(Deserialize)]
struct Vectors {
    generated_by: String,
    issuer: String,
    audience: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    alg: Algorithm,
    kid: String,
    secret: Option<String>,
    jwk: Option<Jwk>,
    token: String,
}

fn load() -> Vectors {
    let path = std::env::var("PORTCULLIS_JOSE_VECTORS").unwrap_or_else(|_| {
        format!(
            "{}/interop/fixtures/jose-vectors.json",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let v: Vectors = serde_json::from_str(&text).unwrap();
    eprintln!(
        "verifying {} tokens from {path} ({})",
        v.vectors.len(),
        v.generated_by
    );
    v
}

#[tokio::test]
async fn jose_signed_tokens_of_every_algorithm_verify_over_http() {
    let v = load();
    assert!(
        v.generated_by.starts_with("jose "),
        "vectors come from the jose package"
    );
    assert_eq!(v.vectors.len(), 12, "one vector per JWS algorithm");
    let mut b = JwtAuthenticator::builder()
        .issuer(v.issuer.clone())
        .audience(v.audience.clone())
        .token_type("at+jwt")
        .cache_capacity(0);
    for vec in &v.vectors {
        let key = match (&vec.secret, &vec.jwk) {
            (Some(secret), _) => JwtKey::hmac(&URL_SAFE_NO_PAD.decode(secret).unwrap(), &[vec.alg])
                .unwrap()
                .with_kid(vec.kid.clone()),
            (None, Some(jwk)) => JwtKey::from_jwk(jwk).unwrap(),
            _ => panic!("vector {} has no key", vec.kid),
        };
        assert_eq!(key.kid(), Some(vec.kid.as_str()));
        b = b.key(key);
    }
    let app = Router::new()
        .route(
            "/",
            get(|p: Principal| async move { p.subject().unwrap_or_default().to_owned() }),
        )
        .layer(AuthLayer::bearer(b.build().unwrap()).unwrap());
    let addr = serve(app).await;
    let c = client();
    for vec in &v.vectors {
        let r = send(
            &c,
            req_to(addr, "/")
                .header("authorization", format!("Bearer {}", vec.token))
                .body(empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}: {:?}", vec.alg, r.body);
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            format!("jose-{:?}", vec.alg)
        );

        // The same token with one signature byte changed must fail.
        let (input, sig) = vec.token.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        raw[0] ^= 0x01;
        let bad = format!("{input}.{}", URL_SAFE_NO_PAD.encode(raw));
        let r = send(&c, bearer_req(addr, "/", &bad)).await;
        r.assert_problem(401, "invalid_signature");
    }
}
