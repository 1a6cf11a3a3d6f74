//! The server cases, shared by the criterion bench (`server`) and the instruction counter
//! (`instructions`, run under callgrind). Each case sends one request through the same axum
//! router and trivial handler; futures are polled directly (every answer here is immediate).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis::server::AuthLayer;
use portcullis::server::jwt::JwtAuthenticator;
use portcullis::testkit::{TestIssuer, now};
use serde::Deserialize;
use serde_json::json;
use tower::Service;

pub(crate) mod peers;

pub(crate) const ISSUER: &str = "https://id.bench";
pub(crate) const AUDIENCE: &str = "bench-api";

/// The tokens every verifier gets: per algorithm a valid one and one with a flipped signature
/// byte, plus an expired HS256 token.
struct Tokens {
    valid: Vec<(Algorithm, String, String)>,
    expired_hs256: String,
}

pub(crate) fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("benchmarked services answer immediately"),
    }
}

/// The claims of the performance notes: 338 bytes of JSON.
pub(crate) fn claims(exp: u64) -> serde_json::Value {
    json!({
        "iss": ISSUER, "sub": "user-4711", "aud": AUDIENCE, "exp": exp,
        "iat": now(), "jti": "4f1c7a3e-9b2d-4e8f-a1c6-2d7e9f0b3a51", "scope": "read write profile",
        "azp": "bench-client", "email": "user4711@example.com", "name": "Bench User",
        "org_id": "org-123456", "roles": ["reader", "writer"]
    })
}

/// The user's own claims, as an API that reads its tokens declares them: every member of
/// [`claims`], once. Every verifier that deserializes user claims (Portcullis with
/// `.claims::<UserClaims>()`, each peer, the `jsonwebtoken::decode` yardstick and the floor)
/// builds this same struct from the same 338 bytes, so their counts compare the same work.
#[derive(Clone, Deserialize)]
#[allow(dead_code)]
pub(crate) struct UserClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub scope: String,
    pub azp: String,
    pub email: String,
    pub name: String,
    pub org_id: String,
    pub roles: Vec<String>,
}

fn router() -> Router {
    Router::new().route("/", get(|| async { "ok" }))
}

/// `GET /`, with `Authorization: <auth>` if given, in the body type of any axum version.
fn request<B: Default>(auth: Option<&str>) -> Request<B> {
    let mut r = Request::get("/");
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.body(B::default()).unwrap()
}

/// tower-http's static compare, and on success one `Arc` into the extensions.
#[allow(clippy::result_large_err)] // `ValidateRequest` fixes the closure's signature.
fn static_with_extension(
    who: std::sync::Arc<String>,
) -> impl FnMut(&mut Request<Body>) -> Result<(), http::Response<Body>> + Clone {
    move |req| {
        let ok = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == b"Bearer static-token");
        if !ok {
            let mut res = http::Response::new(Body::empty());
            *res.status_mut() = http::StatusCode::UNAUTHORIZED;
            return Err(res);
        }
        req.extensions_mut().insert(who.clone());
        Ok(())
    }
}

/// Portcullis with every test key, parsing the payload into `C` as well (`()`: registered
/// claims only).
pub(crate) fn jwt<C>(issuer: &TestIssuer, cache: usize) -> JwtAuthenticator<C> {
    issuer
        .verification_keys()
        .into_iter()
        .fold(JwtAuthenticator::builder(), |b, k| b.key(k))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .cache_capacity(cache)
        .claims::<C>()
        .build()
        .unwrap()
}

/// Flip one byte in the middle of the signature: still valid base64url, so the signature is
/// really checked (flipping the last character can fail base64 decoding before any crypto).
fn forge(token: &str) -> String {
    let sig_start = token.rfind('.').unwrap() + 1;
    let mid = sig_start + (token.len() - sig_start) / 2;
    let mut bytes = token.as_bytes().to_vec();
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

pub(crate) type Case = (String, Box<dyn FnMut()>);

/// One case through any service answering immediately; the first answer's status is checked
/// so a case measures the path its name says.
fn case<S, B, R>(
    name: String,
    mut svc: S,
    request: fn(Option<&str>) -> Request<B>,
    auth: Option<String>,
    expect: u16,
) -> Case
where
    S: Service<Request<B>, Response = http::Response<R>, Error = Infallible> + 'static,
    B: 'static,
{
    let res = ready(svc.call(request(auth.as_deref()))).unwrap();
    assert_eq!(res.status().as_u16(), expect, "{name} {:?}", res.headers());
    (
        name,
        Box::new(move || {
            let res = ready(svc.call(request(auth.as_deref()))).unwrap();
            black_box(res.status());
        }),
    )
}

fn router_case(name: String, svc: Router, auth: Option<String>, expect: u16) -> Case {
    case(name, svc, request::<Body>, auth, expect)
}

/// Every case, in report order.
pub(crate) fn cases() -> Vec<Case> {
    let issuer = TestIssuer::new(ISSUER);
    let tokens = tokens(&issuer);
    let mut out = baselines(&tokens);
    out.extend(portcullis_cases(&issuer, &tokens));
    out.extend(peers::jwt_authorizer(&issuer, &tokens));
    out.extend(peers::axum_jwt_auth(&issuer, &tokens));
    out.extend(peers::aliri_tower(&issuer, &tokens));
    out.extend(jsonwebtoken_cases(&issuer, tokens));
    out
}

fn tokens(issuer: &TestIssuer) -> Tokens {
    let exp = now() + 3600;
    Tokens {
        valid: [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ]
        .into_iter()
        .map(|a| {
            let token = issuer.mint(a, claims(exp));
            let forged = forge(&token);
            (a, token, forged)
        })
        .collect(),
        expired_hs256: issuer.mint(Algorithm::HS256, claims(now() - 3600)),
    }
}

/// The router without auth, and with tower-http's static bearer check.
fn baselines(tokens: &Tokens) -> Vec<Case> {
    let mut out = vec![router_case("baseline/no-auth".into(), router(), None, 200)];
    // The same requests as the accept cases, to the router without auth: building a request
    // with an 800-byte header is not the auth layer's cost, so each accept case is compared
    // with the baseline that carries its token.
    for (alg, token, _) in &tokens.valid {
        out.push(router_case(
            format!("baseline/no-auth/{alg:?}-token"),
            router(),
            Some(format!("Bearer {token}")),
            200,
        ));
    }
    // Deprecated upstream as "too basic", which is exactly why it is the static floor.
    #[allow(deprecated)]
    let static_bearer = router()
        .layer(tower_http::validate_request::ValidateRequestHeaderLayer::bearer("static-token"));
    out.push(router_case(
        "tower-http/static-bearer/accept".into(),
        static_bearer,
        Some("Bearer static-token".into()),
        200,
    ));
    // The same compare, plus what any layer that tells the handler who called must do: put
    // one value (an `Arc`, as a cached principal is) into the request's extensions. In this
    // router that is the fourth extension, which makes axum's map grow.
    let static_bearer_ext = router().layer(
        tower_http::validate_request::ValidateRequestHeaderLayer::custom(static_with_extension(
            std::sync::Arc::new(String::from("static-caller")),
        )),
    );
    out.push(router_case(
        "tower-http/static-bearer+extension/accept".into(),
        static_bearer_ext,
        Some("Bearer static-token".into()),
        200,
    ));
    out
}

/// Portcullis accepting (cache off and on, registered claims only and a user's struct) and
/// rejecting.
fn portcullis_cases(issuer: &TestIssuer, tokens: &Tokens) -> Vec<Case> {
    let mut out = Vec::new();
    for cache in [0, 10_000] {
        let label = if cache == 0 { "cache-off" } else { "cache-on" };
        // `()`: the registered claims only; `/claims`: the user's struct too, as most APIs do.
        let bare = router().layer(AuthLayer::bearer(jwt::<()>(issuer, cache)).unwrap());
        let typed = router().layer(AuthLayer::bearer(jwt::<UserClaims>(issuer, cache)).unwrap());
        for (alg, token, _) in &tokens.valid {
            for (app, suffix) in [(&bare, ""), (&typed, "/claims")] {
                out.push(router_case(
                    format!("portcullis/{alg:?}/accept/{label}{suffix}"),
                    app.clone(),
                    Some(format!("Bearer {token}")),
                    200,
                ));
            }
        }
    }
    // Roles read from another claim than `roles` (Okta's `groups`, Keycloak's nested
    // `realm_access.roles`), each token carrying the same two roles there instead of under
    // `roles`: the same work as the default case but for where the roles are found.
    for (label, path) in [
        ("groups", &["groups"][..]),
        ("nested", &["realm_access", "roles"][..]),
    ] {
        let mut moved = claims(now() + 3600);
        let roles = moved.as_object_mut().unwrap().remove("roles").unwrap();
        match *path {
            [name] => moved[name] = roles,
            [outer, inner] => moved[outer] = json!({ inner: roles }),
            _ => unreachable!("one or two names"),
        }
        let token = issuer.mint(Algorithm::HS256, moved);
        let jwt = issuer
            .verification_keys()
            .into_iter()
            .fold(JwtAuthenticator::builder(), |b, k| b.key(k))
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .cache_capacity(0)
            .roles_claim_path(path.iter().copied())
            .build()
            .unwrap();
        out.push(router_case(
            format!("portcullis/HS256/accept/cache-off/roles-{label}"),
            router().layer(AuthLayer::bearer(jwt).unwrap()),
            Some(format!("Bearer {token}")),
            200,
        ));
    }
    let app = router().layer(AuthLayer::bearer(jwt::<()>(issuer, 0)).unwrap());
    out.push(router_case(
        "portcullis/reject/missing".into(),
        app.clone(),
        None,
        401,
    ));
    out.push(router_case(
        "portcullis/HS256/reject/expired".into(),
        app.clone(),
        Some(format!("Bearer {}", tokens.expired_hs256)),
        401,
    ));
    for (alg, _, forged) in &tokens.valid {
        out.push(router_case(
            format!("portcullis/{alg:?}/reject/bad-signature"),
            app.clone(),
            Some(format!("Bearer {forged}")),
            401,
        ));
    }
    out
}

/// The yardstick: jsonwebtoken 11's own decode of the same tokens into the same struct (no
/// router); `decode-value` is the old basis, a `serde_json::Value` map, dearer than a struct.
/// And the HS256 floor.
fn jsonwebtoken_cases(issuer: &TestIssuer, tokens: Tokens) -> Vec<Case> {
    let mut out: Vec<Case> = Vec::new();
    let keys = issuer.jwks();
    for (alg, token, _) in tokens.valid {
        let key = match alg {
            Algorithm::HS256 => DecodingKey::from_secret(issuer.hmac_secret()),
            _ => DecodingKey::from_jwk(keys.find(issuer.kid(alg)).unwrap()).unwrap(),
        };
        let mut v = Validation::new(alg);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[AUDIENCE]);
        assert!(jsonwebtoken::decode::<UserClaims>(&token, &key, &v).is_ok());
        let (t, k, val) = (token.clone(), key.clone(), v.clone());
        out.push((
            format!("jsonwebtoken/decode/{alg:?}"),
            Box::new(move || {
                black_box(jsonwebtoken::decode::<UserClaims>(black_box(&t), &k, &val).is_ok());
            }),
        ));
        let t = token.clone();
        out.push((
            format!("jsonwebtoken/decode-value/{alg:?}"),
            Box::new(move || {
                black_box(
                    jsonwebtoken::decode::<serde_json::Value>(black_box(&t), &key, &v).is_ok(),
                );
            }),
        ));
        if alg == Algorithm::HS256 {
            out.push(floor_hs256(issuer.hmac_secret(), token));
        }
    }
    out
}

/// The least any HS256 verifier with user claims can do, with no checks at all: split the
/// token, verify the HMAC with a key set up once, base64-decode the payload and parse it into
/// the user's struct once. What a layer adds over its router baseline is compared with this.
fn floor_hs256(secret: &[u8], token: String) -> Case {
    use aws_lc_rs::hmac;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let floor = move |token: &str| -> Option<UserClaims> {
        let (input, sig) = token.rsplit_once('.')?;
        let (_, payload) = input.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        hmac::verify(&key, input.as_bytes(), &sig).ok()?;
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        serde_json::from_slice(&json).ok()
    };
    assert!(floor(&token).is_some(), "the floor accepts the token");
    (
        "floor/HS256/verify+parse".into(),
        Box::new(move || {
            black_box(floor(black_box(&token)).is_some());
        }),
    )
}

/// Client side: one request through a service that answers at once, bare, with tower-http's
/// `AddAuthorization`, and with the refresh layer injecting a current bearer token.
pub(crate) fn client_cases() -> Vec<Case> {
    use bytes::Bytes;
    use http_body_util::Full;
    use portcullis::client::{Credential, RefreshLayer};
    use tower::{Layer, ServiceExt};

    let inner = tower::service_fn(|req: Request<Full<Bytes>>| async move {
        black_box(req.headers().len());
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::<Bytes>::default()))
    });
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJlLW9mLXRoaXJ0eS10d28tYnl0ZXM";
    let req = || {
        Request::get("http://api.bench/items")
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    let mut out: Vec<Case> = Vec::new();
    let bare = inner;
    out.push((
        "client/baseline".into(),
        Box::new(move || {
            black_box(ready(bare.oneshot(req())).unwrap().status());
        }),
    ));
    #[allow(deprecated)]
    let add = tower_http::auth::AddAuthorizationLayer::bearer(token)
        .as_sensitive(true)
        .layer(inner);
    out.push((
        "client/tower-http/add-authorization".into(),
        Box::new(move || {
            black_box(ready(add.clone().oneshot(req())).unwrap().status());
        }),
    ));
    for report in [true, false] {
        let c = Credential::bearer(token).unwrap();
        let refresh = RefreshLayer::builder(c.clone())
            .allow_origin("http://api.bench")
            .initial_credential(c)
            .report_outcome(report)
            .build()
            .unwrap()
            .layer(inner);
        let name = if report {
            "client/portcullis/inject"
        } else {
            "client/portcullis/inject/no-outcome"
        };
        out.push((
            name.into(),
            Box::new(move || {
                black_box(ready(refresh.clone().oneshot(req())).unwrap().status());
            }),
        ));
    }
    out
}
