//! Holes an adversarial review found in the server layer, each pinned over real HTTP: a panic
//! on a JOSE header, preflight-shaped requests reaching handlers, CSRF decided by the wrong
//! thing or by a planted pair, and insecure defaults of the JWT builder.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use auth_layer::jwt::{JwtAuthenticator, JwtKey};
use auth_layer::{
    AuthLayer, Authentication, Authenticator, CredentialKind, CsrfKey, CsrfPolicy,
    PresentedCredential, Principal,
};
use axum::Router;
use axum::routing::{any, get, post};
use http::Request;
use jsonwebtoken::{Algorithm, Header};
use portcullis_testkit::TestIssuer;
use portcullis_testkit::loopback::*;

const ISS: &str = "https://id.test";
const AUD: &str = "api";

fn jwt(issuer: &TestIssuer) -> JwtAuthenticator {
    issuer
        .verification_keys()
        .into_iter()
        .fold(
            JwtAuthenticator::builder()
                .issuer(ISS)
                .audience(AUD)
                .token_type("at+jwt"),
            |b, k| b.key(k),
        )
        .build()
        .unwrap()
}

fn token_with_typ(issuer: &TestIssuer, typ: &str) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(issuer.kid(Algorithm::HS256).into());
    h.typ = Some(typ.into());
    issuer.mint_with_header(h, issuer.access_claims("alice", AUD, "read", 300))
}

async fn get_with(addr: std::net::SocketAddr, path: &str, token: &str) -> Reply {
    send(
        &client(),
        req_to(addr, path)
            .header("authorization", format!("Bearer {token}"))
            .body(empty())
            .unwrap(),
    )
    .await
}

/// A multi-byte character where the `application/` prefix would end used to panic the
/// connection's task before the signature was checked. It is an ordinary wrong `typ` now.
#[tokio::test]
async fn a_non_ascii_token_type_is_401_invalid_token_type_not_a_panic() {
    let issuer = TestIssuer::new(ISS);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(AuthLayer::bearer(jwt(&issuer)).unwrap());
    let addr = serve(app).await;
    for typ in [
        "applicationé/at+jwt",
        "applicatioé",
        "é",
        "APPLICATION/é+jwt",
    ] {
        get_with(addr, "/", &token_with_typ(&issuer, typ))
            .await
            .assert_problem(401, "invalid_token_type");
    }
    // The prefix and case rules still hold for a good `typ`.
    for typ in ["at+jwt", "application/at+jwt", "Application/AT+JWT"] {
        assert_eq!(
            get_with(addr, "/", &token_with_typ(&issuer, typ))
                .await
                .status,
            200,
            "{typ}"
        );
    }
}

fn preflight(
    addr: std::net::SocketAddr,
    path: &str,
) -> Request<http_body_util::Full<bytes::Bytes>> {
    Request::options(format!("http://{addr}{path}"))
        .header("origin", "https://evil.test")
        .header("access-control-request-method", "POST")
        .body(empty())
        .unwrap()
}

/// Routes that answer any method (`any()`, a fallback, a nested service or proxy) must not run
/// for a request that merely looks like a preflight: without a CORS layer outside, the auth
/// layer answers it itself.
#[tokio::test]
async fn preflight_shaped_requests_never_run_a_handler_unauthenticated() {
    let issuer = TestIssuer::new(ISS);
    let ran = Arc::new(AtomicUsize::new(0));
    let app = |pass: bool| {
        let (a, b) = (ran.clone(), ran.clone());
        Router::new()
            .route(
                "/admin/wipe",
                any(move || async move {
                    a.fetch_add(1, Ordering::SeqCst);
                    "wiped"
                }),
            )
            .fallback(move || async move {
                b.fetch_add(1, Ordering::SeqCst);
                "proxied"
            })
            .layer(
                AuthLayer::builder()
                    .bearer(jwt(&issuer))
                    .pass_preflights(pass)
                    .build()
                    .unwrap(),
            )
    };
    let guarded = serve(app(false)).await;
    for path in ["/admin/wipe", "/anything/else"] {
        let r = send(&client(), preflight(guarded, path)).await;
        assert_eq!(r.status, 204, "{path}");
        assert!(r.headers.get("www-authenticate").is_none());
        assert!(r.body.is_empty());
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no handler ran");
    // A plain OPTIONS (not preflight-shaped) is authenticated like any request.
    let plain = Request::options(format!("http://{guarded}/admin/wipe"))
        .body(empty())
        .unwrap();
    send(&client(), plain)
        .await
        .assert_problem(401, "missing_credentials");
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    // Opting in hands preflights to the inner service, as before.
    let open = serve(app(true)).await;
    assert_eq!(
        send(&client(), preflight(open, "/admin/wipe")).await.status,
        200
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

/// Maps a session cookie to a principal it builds itself, claiming a header credential: the
/// CSRF check must follow where the credential was found, not what the principal says.
struct PrebuiltSessions;

impl Authenticator for PrebuiltSessions {
    fn authenticate(&self, credential: &PresentedCredential) -> Authentication {
        if credential.secret_eq("s3ss10n") {
            Authentication::ready(Ok(Principal::builder(CredentialKind::Bearer)
                .subject("alice")
                .build()))
        } else {
            Authentication::ready(Err(portcullis_wire::ErrorCode::TokenRevoked.into()))
        }
    }
}

async fn cookie_api(csrf: CsrfPolicy) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let app = Router::new()
        .route(
            "/transfer",
            post(move || async move {
                r.fetch_add(1, Ordering::SeqCst);
                "sent"
            }),
        )
        .layer(
            AuthLayer::builder()
                .cookie("sid", PrebuiltSessions)
                .csrf(csrf)
                .build()
                .unwrap(),
        );
    (serve(app).await, ran)
}

fn post_with(
    addr: std::net::SocketAddr,
    headers: &[(&str, String)],
) -> Request<http_body_util::Full<bytes::Bytes>> {
    let mut req = Request::post(format!("http://{addr}/transfer"));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.body(empty()).unwrap()
}

#[tokio::test]
async fn csrf_is_decided_by_where_the_credential_was_found() {
    let (addr, ran) = cookie_api(CsrfPolicy::session_bound(csrf_key())).await;
    let r = send(
        &client(),
        post_with(addr, &[("cookie", "sid=s3ss10n".into())]),
    )
    .await;
    r.assert_problem(403, "csrf_failed");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

fn csrf_key() -> CsrfKey {
    CsrfKey::new(b"hardening suite csrf key, 32+ bytes").unwrap()
}

/// Even the right token does not make a request from another site's page ours: the request
/// must also come from our own origin or a trusted one. The browser says where it comes from
/// in `Sec-Fetch-Site` and `Origin`; these requests send what Chromium sends. (A planted
/// cookie and header pair fails the token check too; see `csrf_session_binding.rs`.)
#[tokio::test]
async fn a_request_from_another_origin_is_refused_even_with_the_sessions_token() {
    let (addr, ran) = cookie_api(
        CsrfPolicy::session_bound(csrf_key()).trusted_origin("http://app.localhost:3000"),
    )
    .await;
    let host = format!("{addr}");
    let token = csrf_key().mint("s3ss10n");
    let from = |site: &str, origin: &str| {
        vec![
            ("cookie", "sid=s3ss10n".to_owned()),
            ("x-csrf-token", token.clone()),
            ("sec-fetch-site", site.to_owned()),
            ("origin", origin.to_owned()),
        ]
    };
    for (site, origin) in [
        ("same-site", "http://evil.localhost:3000"),
        ("cross-site", "https://evil.test"),
    ] {
        send(&client(), post_with(addr, &from(site, origin)))
            .await
            .assert_problem(403, "csrf_failed");
    }
    // An old browser without Sec-Fetch-Site: Origin must be the host or trusted.
    let mut old = from("", "https://evil.test");
    old.retain(|(k, _)| *k != "sec-fetch-site");
    send(&client(), post_with(addr, &old))
        .await
        .assert_problem(403, "csrf_failed");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no cross-origin request ran");

    // Our own pages pass: same origin, a trusted origin, or no browser at all.
    let own = [
        from("same-origin", &format!("http://{host}")),
        from("same-site", "http://app.localhost:3000"),
        vec![
            ("cookie", "sid=s3ss10n".to_owned()),
            ("x-csrf-token", token.clone()),
        ],
    ];
    for headers in own {
        assert_eq!(send(&client(), post_with(addr, &headers)).await.status, 200);
    }
    assert_eq!(ran.load(Ordering::SeqCst), 3);
}

/// Without an audience, a token the same issuer minted for another API would be accepted:
/// the builder refuses to build unless the audience is named or waived on purpose.
#[test]
fn a_jwt_authenticator_needs_an_audience_or_an_explicit_waiver() {
    let key = || JwtKey::hmac(&[7u8; 32], &[Algorithm::HS256]).unwrap();
    let err = JwtAuthenticator::builder()
        .key(key())
        .issuer(ISS)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("any_audience"), "{err}");
    assert!(
        JwtAuthenticator::builder()
            .key(key())
            .any_audience()
            .build()
            .is_ok()
    );
    assert!(
        JwtAuthenticator::builder()
            .key(key())
            .audience(AUD)
            .build()
            .is_ok()
    );
}

/// RFC 7518 §3.2: an HMAC key at least as long as the hash output.
#[test]
fn hmac_secrets_are_at_least_as_long_as_their_hash() {
    for (alg, min) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        assert!(JwtKey::hmac(&vec![1; min - 1], &[alg]).is_err(), "{alg:?}");
        assert!(JwtKey::hmac(&vec![1; min], &[alg]).is_ok(), "{alg:?}");
    }
    assert!(JwtKey::hmac(&[1; 48], &[Algorithm::HS256, Algorithm::HS512]).is_err());
}
