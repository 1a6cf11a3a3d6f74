//! The CSRF token of a cookie session is bound to that session: an HMAC of the session cookie
//! the request was authenticated with, under a key the app configures. Over real HTTP: each
//! "replica" is an axum server on 127.0.0.1:0 with its own `AuthLayer` and its own `CsrfKey`
//! instance, and a sign-in route (outside the layer) that sets the session cookie and mints
//! the token, as an app does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use auth_layer::{
    AuthLayer, Authentication, Authenticator, CredentialKind, CsrfKey, CsrfPolicy,
    PresentedCredential, Principal,
};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::response::IntoResponse;
use axum::routing::post;
use http::Request;
use portcullis_testkit::loopback::*;
use portcullis_wire::ErrorCode;

const APP: &str = "http://app.localhost:3000";
const SECRET: &[u8] = b"the csrf secret every replica reads from the store";

/// The session store every replica shares: `<user>-s3ss10n` is `user`'s session.
/// `asynchronous` answers through a future, the path of authenticators that do I/O.
struct Sessions {
    asynchronous: bool,
}

impl Authenticator for Sessions {
    fn authenticate(&self, credential: &PresentedCredential) -> Authentication {
        let principal = credential
            .expose_secret()
            .strip_suffix("-s3ss10n")
            .filter(|user| ["alice", "mallory"].contains(user))
            .map(|user| {
                Principal::builder(CredentialKind::Cookie)
                    .subject(user)
                    .build()
            })
            .ok_or_else(|| ErrorCode::TokenRevoked.into());
        if self.asynchronous {
            Authentication::pending(async move { principal })
        } else {
            Authentication::ready(principal)
        }
    }
}

/// Sets `user`'s session cookie and gives the page the session's CSRF token.
async fn sign_in(State(key): State<CsrfKey>, Path(user): Path<String>) -> impl IntoResponse {
    let session = format!("{user}-s3ss10n");
    let cookie = format!("sid={session}; Path=/; HttpOnly; SameSite=Lax");
    (
        [(SET_COOKIE, cookie)],
        axum::Json(serde_json::json!({ "csrf_token": key.mint(&session) })),
    )
}

struct Replica {
    addr: std::net::SocketAddr,
    ran: Arc<AtomicUsize>,
}

/// A replica whose layer checks tokens with `csrf`; its sign-in mints with `minting`.
async fn replica(csrf: CsrfPolicy, minting: CsrfKey, asynchronous: bool) -> Replica {
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
                .cookie("sid", Sessions { asynchronous })
                .csrf(csrf.trusted_origin(APP))
                .build()
                .unwrap(),
        )
        .merge(
            Router::new()
                .route("/sign-in/{user}", post(sign_in))
                .with_state(minting),
        );
    Replica {
        addr: serve(app).await,
        ran,
    }
}

/// A replica configured from `secret` alone, as every replica of one deployment is.
async fn replica_with(secret: &[u8]) -> Replica {
    let key = CsrfKey::new(secret).unwrap();
    replica(CsrfPolicy::session_bound(key.clone()), key, false).await
}

/// Signs `user` in at `r`: the session cookie's value and the CSRF token handed out.
async fn sign_in_at(r: &Replica, user: &str) -> (String, String) {
    let req = Request::post(format!("http://{}/sign-in/{user}", r.addr))
        .body(empty())
        .unwrap();
    let reply = send(&client(), req).await;
    assert_eq!(reply.status, 200);
    let session = reply
        .header("set-cookie")
        .and_then(|c| c.strip_prefix("sid="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let token = reply.json()["csrf_token"].as_str().unwrap().to_owned();
    (session, token)
}

/// How the page's request says where it comes from.
#[derive(Clone, Copy, Debug)]
enum From {
    /// The trusted app on another origin of the site.
    TrustedApp,
    /// A page of the API's own origin.
    SameOrigin,
    /// No `Origin`, no `Sec-Fetch-Site`: an old browser, or a client that is not one.
    Unsaid,
}

const EVERY_ORIGIN: [From; 3] = [From::TrustedApp, From::SameOrigin, From::Unsaid];

async fn transfer(r: &Replica, from: From, cookie: &str, token: Option<&str>) -> Reply {
    let mut req = Request::post(format!("http://{}/transfer", r.addr)).header("cookie", cookie);
    if let Some(token) = token {
        req = req.header("x-csrf-token", token);
    }
    req = match from {
        From::TrustedApp => req
            .header("origin", APP)
            .header("sec-fetch-site", "same-site"),
        From::SameOrigin => req
            .header("origin", format!("http://{}", r.addr))
            .header("sec-fetch-site", "same-origin"),
        From::Unsaid => req,
    };
    send(&client(), req.body(empty()).unwrap()).await
}

/// A sibling subdomain (or a man in the middle on plain `http`) can set a `csrf_token` cookie
/// for the whole site and make a request carry it with a matching header next to the victim's
/// real session cookie. Whatever the origin says, that pair is no proof: only the token minted
/// for the session is.
#[tokio::test]
async fn a_planted_csrf_pair_next_to_the_victims_session_is_403_from_any_origin() {
    for asynchronous in [false, true] {
        let key = CsrfKey::new(SECRET).unwrap();
        let r = replica(CsrfPolicy::session_bound(key.clone()), key, asynchronous).await;
        let (alice, token) = sign_in_at(&r, "alice").await;
        for from in EVERY_ORIGIN {
            let planted = format!("sid={alice}; csrf_token=planted");
            transfer(&r, from, &planted, Some("planted"))
                .await
                .assert_problem(403, "csrf_failed");
            transfer(&r, from, &planted, None)
                .await
                .assert_problem(403, "csrf_failed");
        }
        assert_eq!(r.ran.load(Ordering::SeqCst), 0, "no planted request ran");
        for from in EVERY_ORIGIN {
            let reply = transfer(&r, from, &format!("sid={alice}"), Some(&token)).await;
            assert_eq!(reply.status, 200, "{from:?}, async {asynchronous}");
        }
        assert_eq!(r.ran.load(Ordering::SeqCst), 3);
    }
}

/// The token is checked against the cookie the layer authenticated, not against any other
/// value the request carries: the attacker's own session's token (from signing in as
/// themselves) does not work with the victim's cookie, and a second session cookie makes the
/// request ambiguous, which is refused before any check.
#[tokio::test]
async fn only_the_token_minted_for_the_authenticating_session_cookie_passes() {
    for asynchronous in [false, true] {
        let key = CsrfKey::new(SECRET).unwrap();
        let r = replica(CsrfPolicy::session_bound(key.clone()), key, asynchronous).await;
        let (alice, alice_token) = sign_in_at(&r, "alice").await;
        let (mallory, mallory_token) = sign_in_at(&r, "mallory").await;
        for from in EVERY_ORIGIN {
            transfer(&r, from, &format!("sid={alice}"), Some(&mallory_token))
                .await
                .assert_problem(403, "csrf_failed");
            transfer(&r, from, &format!("sid={mallory}"), Some(&alice_token))
                .await
                .assert_problem(403, "csrf_failed");
            let two = format!("sid={alice}; sid={mallory}");
            transfer(&r, from, &two, Some(&mallory_token))
                .await
                .assert_problem(400, "invalid_request");
        }
        // An unknown session is 401 before any CSRF question.
        transfer(&r, From::TrustedApp, "sid=eve-s3ss10n", Some(&alice_token))
            .await
            .assert_problem(401, "token_revoked");
        assert_eq!(r.ran.load(Ordering::SeqCst), 0);
        let reply = transfer(
            &r,
            From::TrustedApp,
            &format!("sid={mallory}"),
            Some(&mallory_token),
        )
        .await;
        assert_eq!(reply.status, 200);
    }
}

/// Replicas share no memory, only the configured secret: each builds its own key from it,
/// and a token minted by any of them is accepted by all. A replica with another secret
/// accepts none of them.
#[tokio::test]
async fn replicas_configured_with_the_same_key_accept_each_others_tokens() {
    let one = replica_with(SECRET).await;
    let two = replica_with(SECRET).await;
    let other = replica_with(b"another deployment's secret, 32+ bytes").await;
    let (alice, from_one) = sign_in_at(&one, "alice").await;
    let (_, from_two) = sign_in_at(&two, "alice").await;
    assert_eq!(from_one, from_two, "the same session, the same token");
    let cookie = format!("sid={alice}");
    for r in [&one, &two] {
        let reply = transfer(r, From::TrustedApp, &cookie, Some(&from_one)).await;
        assert_eq!(reply.status, 200);
    }
    transfer(&other, From::TrustedApp, &cookie, Some(&from_one))
        .await
        .assert_problem(403, "csrf_failed");
    let (_, from_other) = sign_in_at(&other, "alice").await;
    transfer(&one, From::TrustedApp, &cookie, Some(&from_other))
        .await
        .assert_problem(403, "csrf_failed");
}

/// Rotating the key: replicas deployed with the new key keep accepting tokens minted with the
/// previous one (sessions signed in before the deploy) while they list it; a key they do not
/// list is refused, and so is the previous one once it is dropped.
#[tokio::test]
async fn a_token_of_the_previous_key_passes_during_rotation_and_an_unknown_key_is_403() {
    let old_secret: &[u8] = b"the secret before the rotation, 32+ bytes";
    let new_secret: &[u8] = b"the secret after the rotation, 32+ bytes!";
    let key = |s: &[u8]| CsrfKey::new(s).unwrap();
    let before = replica_with(old_secret).await;
    let rotating = replica(
        CsrfPolicy::session_bound(key(new_secret)).previous_key(key(old_secret)),
        key(new_secret),
        false,
    )
    .await;
    let after = replica_with(new_secret).await;
    let stranger = replica_with(b"a secret nobody configured, 32+ bytes").await;

    let (alice, minted_before) = sign_in_at(&before, "alice").await;
    let (_, minted_during) = sign_in_at(&rotating, "alice").await;
    let (_, minted_elsewhere) = sign_in_at(&stranger, "alice").await;
    let cookie = format!("sid={alice}");
    let status = async |r: &Replica, token: &str| {
        let reply = transfer(r, From::TrustedApp, &cookie, Some(token)).await;
        reply.status.as_u16()
    };
    assert_eq!(status(&rotating, &minted_before).await, 200, "previous key");
    assert_eq!(status(&rotating, &minted_during).await, 200, "current key");
    assert_eq!(
        status(&rotating, &minted_elsewhere).await,
        403,
        "unknown key"
    );
    assert_eq!(status(&after, &minted_during).await, 200);
    assert_eq!(
        status(&after, &minted_before).await,
        403,
        "previous key dropped"
    );
    transfer(
        &rotating,
        From::TrustedApp,
        &cookie,
        Some(&minted_elsewhere),
    )
    .await
    .assert_problem(403, "csrf_failed");
}

/// A layer that reads a session cookie cannot be built without choosing a CSRF protection,
/// and a CSRF key cannot be shorter than the HMAC's output: there is nothing to default to.
#[test]
fn a_cookie_layer_needs_a_csrf_choice_and_a_full_length_key() {
    let built = AuthLayer::builder()
        .cookie(
            "sid",
            Sessions {
                asynchronous: false,
            },
        )
        .build();
    assert_eq!(
        built.err(),
        Some(auth_layer::ConfigError::CsrfNotConfigured)
    );
    let short = CsrfKey::new(b"sixteen-byte-key").unwrap_err();
    assert_eq!(
        short,
        auth_layer::ConfigError::CsrfKeyTooShort { min: 32, got: 16 }
    );
    assert!(!short.to_string().contains("sixteen"), "{short}");
}
