//! JWKS key sources over real HTTP: an in-process provider whose key set can rotate, break,
//! grow huge, or go away, and which counts every fetch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_layer::JwksError;
use auth_layer::jwt::{JwksKeySource, JwksKeySourceBuilder, JwtAuthenticator};
use auth_layer::{AuthLayer, Principal};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Header};
use portcullis_testkit::TestIssuer;
use portcullis_testkit::loopback::*;
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Serve {
    Keys,
    Html,
    Truncated,
    Huge,
    WrongTypes,
    Error500,
    Slow,
}

struct Provider {
    addr: std::net::SocketAddr,
    fetches: Arc<AtomicU64>,
    keys: Arc<Mutex<JwkSet>>,
    mode: Arc<Mutex<Serve>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Clone)]
struct ProviderState {
    fetches: Arc<AtomicU64>,
    keys: Arc<Mutex<JwkSet>>,
    mode: Arc<Mutex<Serve>>,
    issuer: Arc<Mutex<String>>,
}

async fn jwks(State(s): State<ProviderState>) -> Response {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    let mode = *s.mode.lock().unwrap();
    match mode {
        Serve::Keys => {
            let mut h = HeaderMap::new();
            h.insert("cache-control", "public, max-age=1".parse().unwrap());
            (h, axum::Json(s.keys.lock().unwrap().clone())).into_response()
        }
        Serve::Html => (
            [("content-type", "text/html")],
            "<html><body>Sign in</body></html>",
        )
            .into_response(),
        Serve::Truncated => (
            [("content-type", "application/json")],
            r#"{"keys":[{"kty":"RSA","n":"#,
        )
            .into_response(),
        Serve::Huge => (
            [("content-type", "application/json")],
            vec![b' '; 10 * 1024 * 1024],
        )
            .into_response(),
        Serve::WrongTypes => {
            axum::Json(json!({"keys": [{"kty": "RSA", "kid": "x", "n": 5, "e": []}, {"kty": 7}]}))
                .into_response()
        }
        Serve::Error500 => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Serve::Slow => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
    }
}

async fn provider(initial: JwkSet) -> Provider {
    let state = ProviderState {
        fetches: Arc::default(),
        keys: Arc::new(Mutex::new(initial)),
        mode: Arc::new(Mutex::new(Serve::Keys)),
        issuer: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    *state.issuer.lock().unwrap() = format!("http://{addr}");
    let app = Router::new()
        .route("/jwks", get(jwks))
        .route(
            "/.well-known/openid-configuration",
            get(|State(s): State<ProviderState>| async move {
                let iss = s.issuer.lock().unwrap().clone();
                axum::Json(json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks")}))
            }),
        )
        .with_state(state.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap()
    });
    Provider {
        addr,
        fetches: state.fetches,
        keys: state.keys,
        mode: state.mode,
        stop: Some(tx),
    }
}

impl Provider {
    fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }
    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
    fn set(&self, mode: Serve) {
        *self.mode.lock().unwrap() = mode;
    }
}

fn config(url: &str, refetch_ms: u64) -> JwksKeySourceBuilder {
    with_min_ttl(url, refetch_ms, 1)
}

fn with_min_ttl(url: &str, refetch_ms: u64, min_ttl_secs: u64) -> JwksKeySourceBuilder {
    JwksKeySource::builder(url)
        .min_ttl(Duration::from_secs(min_ttl_secs))
        .refetch_interval(Duration::from_millis(refetch_ms))
        .timeout(Duration::from_secs(2))
        // The provider is a plain-http server on loopback.
        .allow_http(true)
}

/// A key source over `p`'s key set, refetching at once when asked.
fn source_for(p: &Provider) -> JwksKeySource {
    config(&p.url(), 0).build().unwrap()
}

async fn api(source: JwksKeySource) -> std::net::SocketAddr {
    api_with_cache(source, 0).await
}

/// The API; `cache` entries of verified-token cache (0: off, so every request looks keys up).
async fn api_with_cache(source: JwksKeySource, cache: usize) -> std::net::SocketAddr {
    let jwt = JwtAuthenticator::builder()
        .any_audience()
        .key_source(source)
        .cache_capacity(cache)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|p: Principal| async move { p.subject().unwrap_or_default().to_owned() }),
        )
        .layer(AuthLayer::bearer(jwt).unwrap());
    serve(app).await
}

fn token(issuer: &TestIssuer, alg: Algorithm, kid: &str) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    issuer.mint_with_header(h, issuer.access_claims("jwks-user", "api", "read", 300))
}

/// The issuer's public keys, with every kid given a suffix (a "rotated" key set).
fn renamed(issuer: &TestIssuer, suffix: &str) -> JwkSet {
    let mut set = issuer.jwks();
    for k in &mut set.keys {
        k.common.key_id = k.common.key_id.as_ref().map(|kid| format!("{kid}{suffix}"));
    }
    set
}

async fn call(addr: std::net::SocketAddr, token: &str) -> Reply {
    send(&client(), bearer_req(addr, "/", token)).await
}

#[tokio::test]
async fn keys_of_every_family_verify_and_a_rotation_is_picked_up_without_restart() {
    let a = TestIssuer::new("https://id.test");
    let p = provider(a.jwks()).await;
    let source = source_for(&p);
    let addr = api(source.clone()).await;
    for (alg, kid) in [
        (Algorithm::RS256, "rsa"),
        (Algorithm::ES256, "p256"),
        (Algorithm::ES384, "p384"),
        (Algorithm::EdDSA, "ed"),
    ] {
        let r = call(addr, &token(&a, alg, kid)).await;
        assert_eq!(r.status, 200, "{alg:?}");
    }
    assert_eq!(p.fetches(), 1, "one fetch served every key");

    // The provider rotates to new keys: the new kid is fetched once and verifies.
    let b = TestIssuer::new("https://id.test");
    p.keys.lock().unwrap().keys.extend(renamed(&b, "-2").keys);
    assert_eq!(
        call(addr, &token(&b, Algorithm::RS256, "rsa-2"))
            .await
            .status,
        200
    );
    assert_eq!(p.fetches(), 2);
    // A key whose alg disagrees with the token's header is refused.
    call(addr, &token(&a, Algorithm::ES384, "p256"))
        .await
        .assert_problem(401, "algorithm_not_allowed");
}

#[tokio::test]
async fn a_thousand_concurrent_requests_with_a_new_kid_cause_exactly_one_fetch() {
    let a = TestIssuer::new("https://id.test");
    let p = provider(a.jwks()).await;
    // A long minimum lifetime: the provider's `max-age=1` must not start a background refresh
    // while the thousand requests run on a slow machine; only the new kid may cause a fetch.
    let source = with_min_ttl(&p.url(), 60_000, 3600).build().unwrap();
    source.refresh().await.unwrap();
    let addr = api(source).await;
    let b = TestIssuer::new("https://id.test");
    p.keys.lock().unwrap().keys.extend(renamed(&b, "-new").keys);
    let t = token(&b, Algorithm::ES256, "p256-new");
    let c = client();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (c, t) = (c.clone(), t.clone());
            tokio::spawn(async move { send(&c, bearer_req(addr, "/", &t)).await.status })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(
        p.fetches(),
        2,
        "the warm-up fetch and exactly one for the new kid"
    );

    // A kid that does not exist: one more fetch at most, then unknown_key, rate limited.
    let bogus = token(&b, Algorithm::ES256, "nobody");
    for _ in 0..50 {
        call(addr, &bogus).await.assert_problem(401, "unknown_key");
    }
    assert!(
        p.fetches() <= 3,
        "unknown kids are rate limited: {} fetches",
        p.fetches()
    );
}

#[tokio::test]
async fn provider_gone_cached_keys_keep_working_and_a_new_kid_is_503() {
    let a = TestIssuer::new("https://id.test");
    let mut p = provider(a.jwks()).await;
    let source = source_for(&p);
    let addr = api(source).await;
    assert_eq!(
        call(addr, &token(&a, Algorithm::RS256, "rsa")).await.status,
        200
    );
    p.stop.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        call(addr, &token(&a, Algorithm::EdDSA, "ed")).await.status,
        200,
        "cached keys keep working"
    );
    let b = TestIssuer::new("https://id.test");
    let r = call(addr, &token(&b, Algorithm::RS256, "rotated-away")).await;
    r.assert_problem(503, "key_set_unavailable");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert!(
        r.headers.get("www-authenticate").is_none(),
        "not the client's fault: no challenge"
    );
}

#[tokio::test]
async fn a_provider_that_never_answered_gives_503_not_401() {
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let source = config(&format!("http://{dead}/jwks"), 0).build().unwrap();
    let addr = api(source).await;
    let a = TestIssuer::new("https://id.test");
    call(addr, &token(&a, Algorithm::RS256, "rsa"))
        .await
        .assert_problem(503, "key_set_unavailable");
}

#[tokio::test]
async fn garbage_from_the_provider_never_replaces_the_good_set() {
    let a = TestIssuer::new("https://id.test");
    let p = provider(a.jwks()).await;
    // A long lifetime, so only the refetches this test causes happen.
    let source = with_min_ttl(&p.url(), 0, 3600).build().unwrap();
    let addr = api(source.clone()).await;
    let good = token(&a, Algorithm::ES256, "p256");
    assert_eq!(call(addr, &good).await.status, 200);
    let b = TestIssuer::new("https://id.test");
    for mode in [
        Serve::Html,
        Serve::Truncated,
        Serve::Huge,
        Serve::WrongTypes,
        Serve::Error500,
        Serve::Slow,
    ] {
        p.set(mode);
        let before = source.failures();
        // An unknown kid forces a refetch, which fails: we cannot tell, so 503.
        let r = call(addr, &token(&b, Algorithm::ES256, "p256")).await;
        assert_eq!(
            r.status, 401,
            "{mode:?}: b's p256 is signed by another key under a known kid"
        );
        let r = call(addr, &token(&b, Algorithm::RS256, &format!("new-{mode:?}"))).await;
        r.assert_problem(503, "key_set_unavailable");
        // (Stale-if-error retries after refetch_interval, 0 here, so more may have failed.)
        assert!(source.failures() > before, "{mode:?}");
        assert_eq!(
            call(addr, &good).await.status,
            200,
            "{mode:?} replaced the good set"
        );
    }
    let err = {
        p.set(Serve::Huge);
        source.refresh().await.unwrap_err()
    };
    assert!(matches!(err, JwksError::TooLarge(_)), "{err:?}");
}

#[tokio::test]
async fn max_age_drives_a_background_refresh() {
    let a = TestIssuer::new("https://id.test");
    let p = provider(a.jwks()).await;
    let source = source_for(&p);
    let addr = api(source).await;
    let t = token(&a, Algorithm::RS256, "rsa");
    assert_eq!(call(addr, &t).await.status, 200);
    assert_eq!(p.fetches(), 1);
    // max-age=1 (clamped to min_ttl 1 s): after 0.8 s a request triggers a background refresh.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(call(addr, &t).await.status, 200);
    for _ in 0..50 {
        if p.fetches() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.fetches(), 2);
}

#[tokio::test]
async fn oidc_discovery_checks_the_issuer() {
    let a = TestIssuer::new("https://id.test");
    let p = provider(a.jwks()).await;
    let issuer = format!("http://{}", p.addr);
    let source = JwksKeySource::discovery(&issuer)
        .refetch_interval(Duration::ZERO)
        .min_ttl(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .allow_http(true)
        .discover()
        .await
        .unwrap();
    assert_eq!(source.fetches(), 1, "keys fetched at discovery");
    let addr = api(source).await;
    assert_eq!(
        call(addr, &token(&a, Algorithm::RS256, "rsa")).await.status,
        200
    );
    let wrong = format!("http://localhost:{}", p.addr.port());
    match JwksKeySource::discovery(&wrong)
        .refetch_interval(Duration::ZERO)
        .min_ttl(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .allow_http(true)
        .discover()
        .await
    {
        Err(JwksError::IssuerMismatch { found, .. }) => assert_eq!(found, issuer),
        other => panic!("{other:?}"),
    }
}

/// Keys come over https unless plain http is allowed on purpose: the same loopback provider
/// is refused by the default settings, before any request is made.
#[tokio::test]
async fn plain_http_key_sets_need_an_explicit_opt_in() {
    let a = TestIssuer::new("https://id.test");
    let p = provider(a.jwks()).await;
    let issuer = format!("http://{}", p.addr);
    assert!(matches!(
        JwksKeySource::discover(&issuer).await,
        Err(JwksError::InsecureUrl(_))
    ));
    assert!(matches!(
        JwksKeySource::new(&p.url()),
        Err(auth_layer::ConfigError::InsecureKeySetUrl(_))
    ));
    assert_eq!(p.fetches(), 0, "nothing was fetched over plain http");
}

/// A JWKS is a public document: an HMAC secret published in it would let anyone mint tokens.
/// The forged admin token is refused (its key was skipped), and the public keys beside it
/// still verify.
#[tokio::test]
async fn a_symmetric_key_published_in_a_jwks_cannot_mint_tokens() {
    use base64::Engine;
    let a = TestIssuer::new("https://id.test");
    let secret = b"a-secret-anyone-can-read-in-the-jwks-document";
    let mut set = a.jwks();
    let oct: jsonwebtoken::jwk::Jwk = serde_json::from_value(json!({
        "kty": "oct", "kid": "hs", "alg": "HS256",
        "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
    }))
    .unwrap();
    set.keys.insert(0, oct);
    let p = provider(set).await;
    let addr = api(source_for(&p)).await;
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("hs".into());
    let forged = jsonwebtoken::encode(
        &h,
        &a.access_claims("mallory", "api", "admin", 300),
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap();
    call(addr, &forged).await.assert_problem(401, "unknown_key");
    assert_eq!(
        call(addr, &token(&a, Algorithm::RS256, "rsa")).await.status,
        200
    );
}

/// Two keys published under one `kid` (an RSA and an EC key) both verify their own tokens:
/// the later one does not shadow the earlier.
#[tokio::test]
async fn keys_sharing_a_kid_are_picked_by_the_tokens_algorithm() {
    let a = TestIssuer::new("https://id.test");
    let mut set = a.jwks();
    let mut ec = set
        .keys
        .iter()
        .find(|k| k.common.key_id.as_deref() == Some("p256"))
        .unwrap()
        .clone();
    ec.common.key_id = Some("rsa".into());
    set.keys.push(ec);
    let p = provider(set).await;
    let addr = api(source_for(&p)).await;
    assert_eq!(
        call(addr, &token(&a, Algorithm::RS256, "rsa")).await.status,
        200
    );
    assert_eq!(
        call(addr, &token(&a, Algorithm::ES256, "rsa")).await.status,
        200
    );
    call(addr, &token(&a, Algorithm::ES384, "rsa"))
        .await
        .assert_problem(401, "algorithm_not_allowed");
}

/// A token verified (and cached) with a key that the provider then withdraws is refused once
/// the key set no longer has that key: the cache does not outlive the key.
#[tokio::test]
async fn a_cached_verdict_ends_when_its_key_leaves_the_key_set() {
    let a = TestIssuer::new("https://id.test");
    let p = provider(a.jwks()).await;
    let source = source_for(&p);
    let addr = api_with_cache(source.clone(), 10_000).await;
    let t = token(&a, Algorithm::RS256, "rsa");
    assert_eq!(call(addr, &t).await.status, 200);
    assert_eq!(call(addr, &t).await.status, 200, "served from the cache");
    // The provider withdraws every key of `a` (a compromise, say).
    let b = TestIssuer::new("https://id.test");
    *p.keys.lock().unwrap() = renamed(&b, "-2");
    source.refresh().await.unwrap();
    call(addr, &t).await.assert_problem(401, "unknown_key");
}

/// A token of more than three parts is refused as such, and never makes the layer fetch keys
/// for the key id its header names.
#[tokio::test]
async fn a_token_of_five_parts_is_malformed_and_fetches_nothing() {
    let a = TestIssuer::new("https://id.test");
    let p = provider(a.jwks()).await;
    let source = source_for(&p);
    let addr = api(source).await;
    assert_eq!(
        call(addr, &token(&a, Algorithm::RS256, "rsa")).await.status,
        200
    );
    let fetched = p.fetches();
    // A header naming a key id the set does not have, in a JWE-shaped token.
    let t = token(&a, Algorithm::RS256, "never-seen");
    let (head, rest) = t.split_once('.').unwrap();
    let five = format!("{head}.e30.{rest}.x");
    let r = call(addr, &five).await;
    r.assert_problem(401, "token_malformed");
    assert!(
        r.json()["detail"].as_str().unwrap().contains("three"),
        "{:?}",
        r.json()
    );
    assert_eq!(p.fetches(), fetched, "no key fetch for a malformed token");
}
