//! Every row of the wire contract's server table (CORS, CSRF and JWKS rows aside), over real
//! HTTP: an axum server on 127.0.0.1:0 and a hyper-util client.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Request;
use jsonwebtoken::{Algorithm, Header};
use portcullis::server::jwt::JwtAuthenticator;
use portcullis::server::{
    ApiKeys, AuthLayer, AuthMetrics, CredentialKind, Denylist, ErrorCode, Principal,
    ProtectedResource, RequireRole, RequireScope,
};
use portcullis::testkit::{ALGORITHMS, TestIssuer, now};
use serde_json::{Value, json};
use support::*;

const ISS: &str = "https://id.test";
const AUD: &str = "api";

struct Fixture {
    addr: SocketAddr,
    issuer: TestIssuer,
    metrics: Arc<AuthMetrics>,
}

fn issuer() -> &'static TestIssuer {
    static I: OnceLock<TestIssuer> = OnceLock::new();
    I.get_or_init(|| TestIssuer::new(ISS))
}

async fn me(p: Principal) -> axum::Json<Value> {
    axum::Json(json!({"sub": p.subject(), "scopes": p.scopes(), "kind": format!("{:?}", p.kind())}))
}

/// The handler sees the credential header marked sensitive.
async fn sensitive(req: Request<axum::body::Body>) -> String {
    let h = req.headers().get("authorization").unwrap();
    format!("{}", h.is_sensitive())
}

async fn fixture() -> Fixture {
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
    fn token(&self, alg: Algorithm, claims: Value) -> String {
        let mut h = Header::new(alg);
        h.kid = Some(self.issuer.kid(alg).into());
        h.typ = Some("at+jwt".into());
        self.issuer.mint_with_header(h, claims)
    }

    fn claims(&self, scope: &str) -> Value {
        self.issuer.access_claims("alice", AUD, scope, 300)
    }

    async fn bearer(&self, path: &str, token: &str) -> Reply {
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

    async fn with_headers(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = req_to(self.addr, path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        send(&client(), req.body(empty()).unwrap()).await
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

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
async fn every_algorithm_family_verifies() {
    let f = fixture().await;
    for alg in ALGORITHMS {
        let r = f.bearer("/me", &f.token(alg, f.claims("read write"))).await;
        assert_eq!(r.status, 200, "{alg:?}: {:?}", r.body);
        assert_eq!(r.json()["sub"], "alice");
        assert_eq!(r.json()["scopes"], json!(["read", "write"]));
    }
    assert_eq!(f.metrics.accepted(), 12);
}

#[tokio::test]
async fn not_a_jwt_is_401_token_malformed() {
    let f = fixture().await;
    let header = b64(&json!({"alg": "HS256", "kid": "hs", "typ": "at+jwt"}));
    // Correctly signed: the claims of an HMAC token are only read once its signature holds.
    let key = jsonwebtoken::EncodingKey::from_secret(f.issuer.hmac_secret());
    let signed = |payload: &str| {
        let input = format!("{header}.{payload}");
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).unwrap();
        format!("{input}.{sig}")
    };
    for t in [
        "abc".to_owned(),
        "a.b.c.d.e".to_owned(),
        signed("a+b/"),
        signed(&b64(&json!({"exp": "tomorrow"}))),
        signed(&URL_SAFE_NO_PAD.encode("[1,2]")),
        format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("not json")),
        "x".repeat(17 * 1024),
    ] {
        let r = f.bearer("/me", &t).await;
        r.assert_problem(401, "token_malformed");
        assert_eq!(r.challenge("Bearer").param("error"), Some("invalid_token"));
    }
}

#[tokio::test]
async fn bad_signature_is_401_invalid_signature() {
    let f = fixture().await;
    for alg in [
        Algorithm::HS256,
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let good = f.token(alg, f.claims("read"));
        let (signing_input, _) = good.rsplit_once('.').unwrap();
        // A signature made by another key of the same algorithm.
        let other = TestIssuer::new(ISS);
        let mut h = Header::new(alg);
        h.kid = Some(f.issuer.kid(alg).into());
        h.typ = Some("at+jwt".into());
        let forged = other.mint_with_header(h, f.claims("read"));
        f.bearer("/me", &forged)
            .await
            .assert_problem(401, "invalid_signature");
        // A tampered payload under the original signature.
        let sig = good.rsplit('.').next().unwrap();
        let (h64, _) = signing_input.split_once('.').unwrap();
        let tampered = format!("{h64}.{}.{sig}", b64(&f.claims("admin write")));
        let r = f.bearer("/admin", &tampered).await;
        r.assert_problem(401, "invalid_signature");
    }
}

#[tokio::test]
async fn alg_none_and_hs_rs_confusion_are_401_algorithm_not_allowed() {
    let f = fixture().await;
    let claims = b64(&f.claims("admin write"));
    for alg in ["none", "None", "HS999", ""] {
        let t = format!(
            "{}.{claims}.",
            b64(&json!({"alg": alg, "kid": "hs", "typ": "at+jwt"}))
        );
        let t = if alg.is_empty() {
            format!("{t}x")
        } else {
            format!("{t}sig")
        };
        let r = f.bearer("/me", &t).await;
        r.assert_problem(401, "algorithm_not_allowed");
    }
    // The classic confusion: HS256 keyed with the RSA public key, naming the RSA key.
    let rsa_public = serde_json::to_vec(&f.issuer.jwks().keys[0]).unwrap();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("rsa".into());
    h.typ = Some("at+jwt".into());
    let t = jsonwebtoken::encode(
        &h,
        &f.claims("admin"),
        &jsonwebtoken::EncodingKey::from_secret(&rsa_public),
    )
    .unwrap();
    f.bearer("/me", &t)
        .await
        .assert_problem(401, "algorithm_not_allowed");
    // ES256 naming the P-384 key.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("p384".into());
    h.typ = Some("at+jwt".into());
    let t = f.issuer.mint_with_header(h, f.claims("read"));
    f.bearer("/me", &t)
        .await
        .assert_problem(401, "algorithm_not_allowed");
}

#[tokio::test]
async fn unknown_kid_is_401_unknown_key() {
    let f = fixture().await;
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("rotated-away".into());
    h.typ = Some("at+jwt".into());
    let r = f
        .bearer("/me", &f.issuer.mint_with_header(h, f.claims("read")))
        .await;
    r.assert_problem(401, "unknown_key");
    // Several keys and no kid: the server does not guess.
    let mut h = Header::new(Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    let r = f
        .bearer("/me", &f.issuer.mint_with_header(h, f.claims("read")))
        .await;
    r.assert_problem(401, "unknown_key");
}

#[tokio::test]
async fn expired_token_is_401_token_expired_within_leeway_is_accepted() {
    let f = fixture().await;
    let mut c = f.claims("read");
    c["exp"] = json!(now() - 120);
    let r = f.bearer("/me", &f.token(Algorithm::RS256, c.clone())).await;
    r.assert_problem(401, "token_expired");
    let ch = r.challenge("Bearer");
    assert_eq!(ch.param("error"), Some("invalid_token"));
    assert_eq!(ch.param("error_description"), Some("the token has expired"));
    c["exp"] = json!(now() - 30);
    assert_eq!(
        f.bearer("/me", &f.token(Algorithm::RS256, c)).await.status,
        200,
        "60 s leeway"
    );
}

/// The order of the checks follows their cost: an HMAC token's claims are not read before
/// its signature holds, while an RSA/EC token's `exp` is read first so an expired token is
/// refused without the (30–65 times dearer) signature check. Either way: 401.
#[tokio::test]
async fn forged_hmac_tokens_fail_on_the_signature_and_expired_asymmetric_ones_on_exp() {
    let f = fixture().await;
    let mut c = f.claims("read");
    c["exp"] = json!(now() - 3600);
    let forge = |t: String| {
        let mid = t.rfind('.').unwrap() + (t.len() - t.rfind('.').unwrap()) / 2;
        let mut b = t.into_bytes();
        b[mid] = if b[mid] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    f.bearer("/me", &forge(f.token(Algorithm::HS256, c.clone())))
        .await
        .assert_problem(401, "invalid_signature");
    f.bearer("/me", &forge(f.token(Algorithm::RS256, c)))
        .await
        .assert_problem(401, "token_expired");
}

#[tokio::test]
async fn future_nbf_or_iat_is_401_token_not_yet_valid() {
    let f = fixture().await;
    for claim in ["nbf", "iat"] {
        let mut c = f.claims("read");
        c[claim] = json!(now() + 600);
        f.bearer("/me", &f.token(Algorithm::ES256, c))
            .await
            .assert_problem(401, "token_not_yet_valid");
    }
}

#[tokio::test]
async fn wrong_issuer_audience_type_or_missing_claim_are_401() {
    let f = fixture().await;
    let mut c = f.claims("read");
    c["iss"] = json!("https://evil.test");
    f.bearer("/me", &f.token(Algorithm::HS256, c))
        .await
        .assert_problem(401, "invalid_issuer");

    let mut c = f.claims("read");
    c["aud"] = json!(["other-api", "billing"]);
    f.bearer("/me", &f.token(Algorithm::HS256, c))
        .await
        .assert_problem(401, "invalid_audience");

    let mut c = f.claims("read");
    c["aud"] = json!(["other-api", AUD]);
    assert_eq!(
        f.bearer("/me", &f.token(Algorithm::HS256, c)).await.status,
        200,
        "aud array containing ours"
    );

    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("hs".into()); // typ defaults to "JWT": an ID token, not an access token
    let r = f
        .bearer("/me", &f.issuer.mint_with_header(h, f.claims("read")))
        .await;
    r.assert_problem(401, "invalid_token_type");

    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("hs".into());
    h.typ = Some("application/AT+JWT".into());
    assert_eq!(
        f.bearer("/me", &f.issuer.mint_with_header(h, f.claims("read")))
            .await
            .status,
        200
    );

    for claim in ["sub", "exp"] {
        let mut c = f.claims("read");
        c.as_object_mut().unwrap().remove(claim);
        let r = f.bearer("/me", &f.token(Algorithm::HS256, c)).await;
        r.assert_problem(401, "missing_claim");
        assert!(r.json()["detail"].as_str().unwrap().contains(claim));
    }
}

#[tokio::test]
async fn revoked_subject_is_401_token_revoked_even_when_cached() {
    let f = fixture().await;
    let t = f.token(
        Algorithm::HS256,
        f.issuer.access_claims("mallory", AUD, "read", 300),
    );
    f.bearer("/me", &t)
        .await
        .assert_problem(401, "token_revoked");
    f.bearer("/me", &t)
        .await
        .assert_problem(401, "token_revoked");
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
    let jwt = JwtAuthenticator::builder()
        .any_audience()
        .key(issuer.verification_keys().remove(0))
        .build()
        .unwrap();
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
    let r = send(
        &c,
        req_to(addr, "/")
            .header("authorization", format!("Bearer {t}"))
            .body(empty())
            .unwrap(),
    )
    .await;
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

#[tokio::test]
async fn works_around_a_plain_hyper_service() {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceBuilder;

    let issuer = issuer();
    let jwt = JwtAuthenticator::builder()
        .any_audience()
        .key(issuer.verification_keys().remove(0))
        .build()
        .unwrap();
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
    let r = send(
        &c,
        req_to(addr, "/")
            .header("authorization", format!("Bearer {t}"))
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(&r.body[..], b"carol");
}

#[tokio::test]
async fn verified_token_cache_serves_repeats_and_counts() {
    let issuer = issuer();
    let jwt = JwtAuthenticator::builder()
        .any_audience()
        .key(issuer.verification_keys().remove(1))
        .build()
        .unwrap();
    let stats_handle = jwt.clone();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(AuthLayer::bearer(jwt).unwrap());
    let addr = serve(app).await;
    let t = issuer.mint(Algorithm::RS256, issuer.access_claims("dave", AUD, "", 60));
    let c = client();
    for _ in 0..5 {
        let r = send(
            &c,
            req_to(addr, "/")
                .header("authorization", format!("Bearer {t}"))
                .body(empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let stats = stats_handle.cache_stats().unwrap();
    assert_eq!((stats.misses(), stats.hits()), (1, 4));
    // A token differing only in its signature is not served from the cache.
    let forged = format!("{}x", &t[..t.len() - 1]);
    let r = send(
        &c,
        req_to(addr, "/")
            .header("authorization", format!("Bearer {forged}"))
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401);
}

#[derive(Clone, serde::Deserialize)]
struct OrgClaims {
    org_id: String,
}

#[tokio::test]
async fn typed_claims_reach_handlers_through_the_extractor() {
    use portcullis::server::Claims;
    let issuer = issuer();
    let jwt = JwtAuthenticator::builder()
        .any_audience()
        .key(issuer.verification_keys().remove(2))
        .claims::<OrgClaims>()
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/org",
            get(|Claims(c): Claims<OrgClaims>| async move { c.org_id }),
        )
        .layer(AuthLayer::bearer(jwt).unwrap());
    let addr = serve(app).await;
    let mut claims = issuer.access_claims("erin", AUD, "", 60);
    claims["org_id"] = json!("org-42");
    let t = issuer.mint(Algorithm::ES256, claims.clone());
    let r = send(
        &client(),
        req_to(addr, "/org")
            .header("authorization", format!("Bearer {t}"))
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"org-42"[..]));
    // A token whose claims do not fit the type is malformed, not a 500.
    claims["org_id"] = json!(42);
    let t = issuer.mint(Algorithm::ES256, claims);
    let r = send(
        &client(),
        req_to(addr, "/org")
            .header("authorization", format!("Bearer {t}"))
            .body(empty())
            .unwrap(),
    )
    .await;
    r.assert_problem(401, "token_malformed");
}

#[tokio::test]
async fn a_replaced_renderer_changes_the_body_but_not_status_or_challenge() {
    use portcullis::server::{Problem, ProblemRenderer, RenderedProblem};
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
    let r = send(
        &c,
        req_to(addr, "/private")
            .header("authorization", format!("Bearer {t}"))
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
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
    let r = send(
        &c,
        post(vec![
            ("cookie", format!("at={t}; csrf_token=n0nce")),
            ("x-csrf-token", "other".into()),
        ]),
    )
    .await;
    r.assert_problem(403, "csrf_failed");
    let r = send(
        &c,
        post(vec![
            ("cookie", format!("at={t}; csrf_token=n0nce")),
            ("x-csrf-token", "n0nce".into()),
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
    use portcullis::server::cors::CorsPreset;
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

async fn fixture_with_cors() -> Fixture {
    use portcullis::server::cors::CorsPreset;
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
