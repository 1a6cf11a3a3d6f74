//! JWT verification: every algorithm family, every refusal with its code, revocation, the verified-token cache and typed claims.
//! Over real HTTP: an axum server on 127.0.0.1:0 and a hyper-util client.

mod common;

use common::*;

#[tokio::test]
async fn every_algorithm_family_verifies() {
    let f = fixture().await;
    for &alg in ALGORITHMS {
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
async fn verified_token_cache_serves_repeats_and_counts() {
    let issuer = issuer();
    let jwt = any_audience_jwt(1);
    let stats_handle = jwt.clone();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(AuthLayer::bearer(jwt).unwrap());
    let addr = serve(app).await;
    let t = issuer.mint(Algorithm::RS256, issuer.access_claims("dave", AUD, "", 60));
    let c = client();
    for _ in 0..5 {
        let r = send(&c, bearer_req(addr, "/", &t)).await;
        assert_eq!(r.status, 200);
    }
    let stats = stats_handle.cache_stats().unwrap();
    assert_eq!((stats.misses(), stats.hits()), (1, 4));
    // A token differing only in its signature is not served from the cache.
    let forged = format!("{}x", &t[..t.len() - 1]);
    let r = send(&c, bearer_req(addr, "/", &forged)).await;
    assert_eq!(r.status, 401);
}

#[derive(Clone, serde::Deserialize)]
struct OrgClaims {
    org_id: String,
}

#[tokio::test]
async fn typed_claims_reach_handlers_through_the_extractor() {
    use auth_layer::Claims;
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
    let r = send(&client(), bearer_req(addr, "/org", &t)).await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"org-42"[..]));
    // A token whose claims do not fit the type is refused with a code no client refreshes on
    // (a new token from the same grant has the same claims), not a 500.
    claims["org_id"] = json!(42);
    let t = issuer.mint(Algorithm::ES256, claims.clone());
    let r = send(&client(), bearer_req(addr, "/org", &t)).await;
    r.assert_problem(403, "invalid_claims");
    assert!(r.header("www-authenticate").is_none());
    // A required custom claim that is absent: the same answer.
    claims.as_object_mut().unwrap().remove("org_id");
    let t = issuer.mint(Algorithm::ES256, claims);
    let r = send(&client(), bearer_req(addr, "/org", &t)).await;
    r.assert_problem(403, "invalid_claims");
}

#[derive(Clone, serde::Deserialize)]
struct ScopedOrgClaims {
    org_id: String,
    // The user's type may read registered claims too; the layer still sees them.
    scope: String,
}

/// The API of the typed-claims cases: its own claims type read alongside the registered
/// claims, and a scope to authorize with.
async fn typed_claims_api(issuer: &TestIssuer) -> std::net::SocketAddr {
    let jwt = JwtAuthenticator::builder()
        .audience(AUD)
        .key(issuer.verification_key(Algorithm::HS256))
        .claims::<ScopedOrgClaims>()
        .cache_capacity(0)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/org",
            get(
                |auth_layer::Claims(c): auth_layer::Claims<ScopedOrgClaims>| async move {
                    format!("{} {}", c.org_id, c.scope)
                },
            )
            .route_layer(RequireScope::all(["read"])),
        )
        .layer(AuthLayer::bearer(jwt).unwrap());
    serve(app).await
}

/// Payload, signing secret, and the answer each must get: one success, then a wrong shape
/// paired with every refusal the layer makes before it.
fn typed_claims_cases(good: &[u8]) -> Vec<(String, &[u8], u16, &'static str)> {
    let (past, future) = (now() - 3600, now() + 3600);
    vec![
        (
            format!(r#"{{"aud":"api","exp":{future},"org_id":"o-1","scope":"read"}}"#),
            good,
            200,
            "",
        ),
        // The shape is wrong and so is something the layer checks: the layer's refusal wins.
        (
            format!(r#"{{"aud":"api","exp":{past},"org_id":42,"scope":"read"}}"#),
            good,
            401,
            "token_expired",
        ),
        (
            format!(r#"{{"aud":"web","exp":{future},"org_id":42,"scope":"read"}}"#),
            good,
            401,
            "invalid_audience",
        ),
        (
            format!(r#"{{"aud":"api","exp":{future},"org_id":42,"scope":"read"}}"#),
            b"another-secret-of-thirty-two-bytes!",
            401,
            "invalid_signature",
        ),
        (
            format!(r#"{{"aud":"api","exp":{future},"org_id":42,"scope":"read"}}"#),
            good,
            403,
            "invalid_claims",
        ),
        // `exp` spelled with an escape is `exp`.
        (
            format!(r#"{{"aud":"api","\u0065xp":{past},"org_id":"o-1","scope":"read"}}"#),
            good,
            401,
            "token_expired",
        ),
        // A claim given twice has no single meaning.
        (
            format!(r#"{{"aud":"api","exp":{past},"exp":{future},"org_id":"o-1","scope":"read"}}"#),
            good,
            401,
            "token_malformed",
        ),
        // The scope the user's type reads is the scope the layer authorizes with.
        (
            format!(r#"{{"aud":"api","exp":{future},"org_id":"o-1","scope":"write"}}"#),
            good,
            403,
            "insufficient_scope",
        ),
    ]
}

/// Reading the API's own claims type in the same pass as the registered claims changes no
/// answer: every refusal keeps its code and its order (a bad shape is reported last), and
/// member names the layer checks are recognised however they are written.
#[tokio::test]
async fn typed_claims_keep_every_refusal_and_its_order() {
    let issuer = issuer();
    let addr = typed_claims_api(issuer).await;
    let c = client();
    let header = b64(&json!({"alg": "HS256", "kid": "hs"}));
    let sign = |payload: &str, secret: &[u8]| {
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
        let key = jsonwebtoken::EncodingKey::from_secret(secret);
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).unwrap();
        format!("{input}.{sig}")
    };
    let cases = typed_claims_cases(issuer.hmac_secret());
    for (payload, secret, status, code) in &cases {
        let r = send(&c, bearer_req(addr, "/org", &sign(payload, secret))).await;
        if *status == 200 {
            assert_eq!(
                (r.status.as_u16(), &r.body[..]),
                (200, &b"o-1 read"[..]),
                "{payload}"
            );
        } else {
            r.assert_problem(*status, code);
        }
    }
}

/// Two layers with different `typ` rules in one server: a header one of them accepted (and
/// the server's threads remembered) is still refused by the other, every time.
#[tokio::test(flavor = "current_thread")]
async fn a_header_accepted_by_one_layer_is_judged_afresh_by_another() {
    let issuer = issuer();
    let jwt = |typ: Option<&str>| {
        let b = JwtAuthenticator::builder()
            .audience(AUD)
            .key(issuer.verification_key(Algorithm::HS256))
            .cache_capacity(0);
        match typ {
            Some(t) => b.token_type(t),
            None => b,
        }
        .build()
        .unwrap()
    };
    let app = Router::new()
        .route("/lax", get(|| async { "ok" }))
        .layer(AuthLayer::bearer(jwt(None)).unwrap())
        .merge(
            Router::new()
                .route("/strict", get(|| async { "ok" }))
                .layer(AuthLayer::bearer(jwt(Some("at+jwt"))).unwrap()),
        );
    // One runtime thread serves both layers, so they share its header memo.
    let addr = serve(app).await;
    let c = client();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("hs".into()); // typ "JWT"
    let t = issuer.mint_with_header(h, issuer.access_claims("ann", AUD, "", 60));
    for _ in 0..2 {
        assert_eq!(send(&c, bearer_req(addr, "/lax", &t)).await.status, 200);
        send(&c, bearer_req(addr, "/strict", &t))
            .await
            .assert_problem(401, "invalid_token_type");
    }
}

/// A third dot anywhere in the middle makes a token malformed with the same detail however
/// else it would be judged (signature, key id, claims).
#[tokio::test]
async fn tokens_of_more_than_three_parts_are_malformed_whatever_else_they_are() {
    let f = fixture().await;
    let good = f.token(Algorithm::HS256, f.claims("read"));
    let rs = f.token(Algorithm::RS256, f.claims("read"));
    let (h, rest) = good.split_once('.').unwrap();
    let (p, sig) = rest.split_once('.').unwrap();
    let unknown_kid = b64(&json!({"alg": "HS256", "kid": "nobody", "typ": "at+jwt"}));
    // Refused for its type too, had it three parts.
    let id_token = b64(&json!({"alg": "HS256", "kid": "hs"}));
    for t in [
        format!("{h}.{p}.{p}.{sig}"),
        format!("{h}.{p}.{sig}.{sig}"),
        format!("{good}.x"),
        format!("{unknown_kid}.{p}.x.{sig}"),
        format!("{id_token}.{p}.x.{sig}"),
        format!("{rs}.{sig}"),
    ] {
        let r = f.bearer("/me", &t).await;
        r.assert_problem(401, "token_malformed");
        let detail = r.json()["detail"].as_str().unwrap_or_default().to_owned();
        assert!(detail.contains("three"), "{t}: {detail}");
    }
}
