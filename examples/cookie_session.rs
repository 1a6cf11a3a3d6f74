//! A cookie session for a single-page app on another origin: the notes API on
//! `http://localhost:<api port>`, the page that uses it on `http://localhost:<page port>`.
//!
//! ```text
//! cargo run --example cookie_session -- --api-port 8080 --page-port 3000
//! ```
//!
//! Open the page URL it prints and sign in as `demo` / `demo-password`. The whole path:
//! 1. `POST /session` (JSON only) checks the user and password, sets the session cookie
//!    `__Host-sid` (`HttpOnly`: page scripts never see it) and returns the session's CSRF token
//!    in its body (the page, on another origin, cannot read the API's cookies, so the body is
//!    how it gets the token).
//! 2. `GET /notes` needs only the cookie, which `fetch(…, {credentials: 'include'})` sends.
//! 3. `POST /notes` needs the cookie and the token in `x-csrf-token`; without it: 403
//!    `csrf_failed`.
//! 4. `DELETE /session` revokes the session (its `jti`) and clears the cookie: a copy of the
//!    cookie taken before is refused from then on (401 `token_revoked`).
//!
//! The two ports are two origins of one site: CORS applies (the API allows the page's origin
//! and the CSRF header), and cookies are first-party (`SameSite=Lax` works). Tested in
//! headless Chromium by `interop/tests/cookie-session.test.mjs`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use clap::Parser;
use portcullis::server::cors::CorsPreset;
use portcullis::server::jsonwebtoken::{self, Algorithm, EncodingKey, Header};
use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
use portcullis::server::{AuthLayer, CsrfKey, CsrfPolicy, Principal, Revocation};
use serde::{Deserialize, Serialize};
use serde_json::json;

// Demo secrets, public here: a real app reads both from its secret store (at least 32 random
// bytes each, the same on every replica) and never uses one key for both jobs.
const SESSION_SECRET: &[u8] = b"cookie-session example: signs session tokens, public";
const CSRF_SECRET: &[u8] = b"cookie-session example: mints CSRF tokens, public too";
const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "demo-password";
/// `__Host-`: browsers take this cookie only with `Secure`, `Path=/` and no `Domain`, so a
/// sibling subdomain cannot plant a second one beside ours (cookie tossing; the layer would
/// answer 400 "credential cookie sent more than once" to every request that carried both).
const SESSION_COOKIE: &str = "__Host-sid";
/// The session token's audience: a token minted for anything else is not a session here.
const AUDIENCE: &str = "notes-session";
/// Short: a stolen cookie is worth little for long, and a user signs in again after this.
const SESSION_SECONDS: u64 = 15 * 60;
/// Clock skew the authenticator allows past `exp` (its default, named so the signed-out list
/// keeps each entry exactly as long as its token could still be accepted).
const LEEWAY: Duration = Duration::from_secs(60);

#[derive(Parser)]
struct Args {
    /// The API's port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    api_port: u16,
    /// The page's port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    page_port: u16,
}

#[derive(Clone)]
struct Api {
    signer: EncodingKey,
    csrf: CsrfKey,
    revoked: Arc<SignedOut>,
    notes: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

#[derive(Serialize)]
struct SessionClaims<'a> {
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

#[derive(Deserialize)]
struct SignIn {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

/// The session cookie's attributes. `HttpOnly`: page scripts (an XSS) cannot read it.
/// `SameSite=Lax`: other sites' pages cannot make the browser send it with their writes.
/// `Secure` (which `__Host-` requires) is set even on `http://localhost`: Chromium and Firefox
/// count localhost as potentially trustworthy and accept `Secure` and `__Host-` cookies from
/// it; Safari historically did not, so try this demo in one of the other two. Production is
/// https anyway. No `Domain`: the cookie goes back to this host only (at any port: cookies
/// ignore ports).
fn session_cookie(value: &str, max_age: u64) -> String {
    format!("{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax")
}

/// Constant-time equality of two strings, through their SHA-256 digests: the time taken says
/// nothing about how much of a guess was right, nor (the digests being of equal length) about
/// the length of the secret.
fn same_secret(given: &str, expected: &str) -> bool {
    let (given, expected) = (
        digest(&SHA256, given.as_bytes()),
        digest(&SHA256, expected.as_bytes()),
    );
    verify_slices_are_equal(given.as_ref(), expected.as_ref()).is_ok()
}

/// `POST /session`: outside the auth layer (there is no session yet). It takes JSON only
/// (`application/json`, else 415): a page of another origin cannot send that without a CORS
/// preflight, which only the app's origin passes, and a cross-site form (`text/plain` or
/// url-encoded) is refused: no other site can sign a user in to the attacker's account (login
/// CSRF).
async fn sign_in(State(api): State<Api>, form: Result<Json<SignIn>, JsonRejection>) -> Response {
    let form = match form {
        Ok(Json(form)) => form,
        // A fixed title: the rejection's own text may quote the body, password included.
        Err(rejected) => {
            let status = rejected.status();
            let title = r#"Send {"username", "password"} as application/json"#;
            let problem = json!({"title": title, "status": status.as_u16()});
            return (status, Json(problem)).into_response();
        }
    };
    // Both checks always run (`&`, not `&&`), each in constant time: the answer's timing does
    // not tell whether the user name exists. A real app looks the user up in its store and
    // verifies the password against the stored hash (argon2 or scrypt), verifying a dummy
    // hash when there is no such user, for the same reason.
    let known = same_secret(&form.username, DEMO_USER) & same_secret(&form.password, DEMO_PASSWORD);
    if !known {
        let problem = json!({"title": "Wrong user name or password", "status": 401});
        return (StatusCode::UNAUTHORIZED, Json(problem)).into_response();
    }
    let now = unix_now();
    // The jti only has to be unique (the token is signed): the time and a counter are.
    static SESSIONS: AtomicU64 = AtomicU64::new(0);
    let claims = SessionClaims {
        sub: &form.username,
        aud: AUDIENCE,
        iat: now.as_secs(),
        exp: now.as_secs() + SESSION_SECONDS,
        jti: format!(
            "{}-{}",
            now.as_nanos(),
            SESSIONS.fetch_add(1, Ordering::Relaxed)
        ),
    };
    let Ok(token) = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &api.signer)
    else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // Bound to this cookie value: the page sends it back in `x-csrf-token` on every write.
    let csrf_token = api.csrf.mint(&token);
    let cookie = session_cookie(&token, SESSION_SECONDS);
    let body = json!({"user": form.username, "csrf_token": csrf_token});
    ([(SET_COOKIE, cookie)], Json(body)).into_response()
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The signed-out sessions' `jti`s, each kept only while its token could still be accepted
/// (until `exp` plus the leeway; later the token is refused as expired anyway), and dropped at
/// the next sign-out after that. So the list holds at most the sessions signed in during the
/// last `SESSION_SECONDS` plus the leeway, not every sign-out since the start (as `Denylist`
/// would), which matters with public demo credentials; a real app also rate-limits sign-in.
/// It lives in one process; replicas share `SharedRevocations` (Redis), which forgets each
/// entry at its `exp` in the same way.
#[derive(Default)]
struct SignedOut(Mutex<SignedOutState>);

#[derive(Default)]
struct SignedOutState {
    jtis: HashSet<String>,
    /// The same entries by the time they may go, soonest first.
    by_expiry: BinaryHeap<Reverse<(u64, String)>>,
}

impl SignedOut {
    /// Refuse `jti` from now on; first forget the entries whose tokens have expired by `now`.
    fn revoke(&self, jti: &str, exp: u64, now: u64) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(Reverse((until, _))) = state.by_expiry.peek()
            && *until < now
        {
            let Some(Reverse((_, expired))) = state.by_expiry.pop() else {
                break;
            };
            state.jtis.remove(&expired);
        }
        if state.jtis.insert(jti.to_owned()) {
            let until = exp.saturating_add(LEEWAY.as_secs());
            state.by_expiry.push(Reverse((until, jti.to_owned())));
        }
    }
}

impl Revocation for SignedOut {
    fn is_revoked(&self, me: &Principal) -> bool {
        let state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        me.token_id().is_some_and(|jti| state.jtis.contains(jti))
    }
}

/// `DELETE /session`: behind the auth layer, so it needs the cookie and the CSRF header.
async fn sign_out(State(api): State<Api>, me: Principal) -> impl IntoResponse {
    // Clearing the cookie is not enough: a copy of it would still verify until `exp`. The
    // layer's revocation hook refuses this jti from then on (`exp` is a required claim).
    if let (Some(jti), Some(exp)) = (me.token_id(), me.expires_at()) {
        api.revoked.revoke(jti, exp, unix_now().as_secs());
    }
    (
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, session_cookie("", 0))],
    )
}

async fn list_notes(State(api): State<Api>, me: Principal) -> Json<Vec<String>> {
    let notes = api.notes.lock().unwrap_or_else(|e| e.into_inner());
    Json(
        notes
            .get(me.subject().unwrap_or_default())
            .cloned()
            .unwrap_or_default(),
    )
}

/// Bounds on what one user keeps in this in-memory store (its demo credentials are public).
const MAX_NOTES: usize = 100;
const MAX_NOTE_BYTES: usize = 1024;

async fn add_note(State(api): State<Api>, me: Principal, Json(note): Json<NewNote>) -> Response {
    let mut notes = api.notes.lock().unwrap_or_else(|e| e.into_inner());
    let mine = notes
        .entry(me.subject().unwrap_or_default().to_owned())
        .or_default();
    if note.text.len() > MAX_NOTE_BYTES || mine.len() >= MAX_NOTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_NOTES} notes of {MAX_NOTE_BYTES} bytes each"),
        )
            .into_response();
    }
    mine.push(note.text.clone());
    (
        StatusCode::CREATED,
        Json(json!({"id": mine.len(), "text": note.text})),
    )
        .into_response()
}

/// The API: notes behind the auth layer (session cookie + CSRF), sign-in in front of it, and
/// CORS for the page's origin outside everything, so 401 and 403 bodies are readable too.
fn api_router(page_origin: &str) -> Result<Router, Box<dyn std::error::Error>> {
    let revoked = Arc::new(SignedOut::default());
    let sessions = JwtAuthenticator::builder()
        .key(JwtKey::hmac(SESSION_SECRET, &[Algorithm::HS256])?)
        .audience(AUDIENCE)
        .leeway(LEEWAY)
        // Sign-out revokes by jti: a token without one could never be signed out.
        .required_claims(["exp", "sub", "jti"])
        .revocation(revoked.clone())
        .build()?;
    let csrf = CsrfKey::new(CSRF_SECRET)?;
    let auth = AuthLayer::builder()
        .realm("notes")
        .cookie(SESSION_COOKIE, sessions)
        // The page is another origin of this site: name it, or its writes are refused.
        .csrf(CsrfPolicy::session_bound(csrf.clone()).trusted_origin(page_origin))
        .build()?;
    // Allows `x-csrf-token` (the CSRF policy's header) in preflights, taken from the layer.
    let cors = CorsPreset::new()
        .allow_origin(page_origin)
        .allow_headers_of(&auth)
        .build()?;
    let api = Api {
        signer: EncodingKey::from_secret(SESSION_SECRET),
        csrf,
        revoked,
        notes: Arc::default(),
    };
    Ok(Router::new()
        .route("/notes", get(list_notes).post(add_note))
        .route("/session", delete(sign_out))
        .layer(auth)
        // Added after the auth layer: public.
        .route("/session", post(sign_in))
        .with_state(api)
        .layer(cors))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let api_listener = tokio::net::TcpListener::bind(("127.0.0.1", args.api_port)).await?;
    let page_listener = tokio::net::TcpListener::bind(("127.0.0.1", args.page_port)).await?;
    // `localhost` for both: two origins of one site, as an app and its API usually are.
    let api_url = format!("http://localhost:{}", api_listener.local_addr()?.port());
    let page_url = format!("http://localhost:{}", page_listener.local_addr()?.port());
    let api = api_router(&page_url)?;
    let page_html = PAGE.replace("__API__", &api_url);
    let page = Router::new().route("/", get(move || async move { Html(page_html) }));
    println!("listening on {api_url} (api), page {page_url}");
    println!("open {page_url} and sign in as {DEMO_USER} / {DEMO_PASSWORD}");
    tokio::try_join!(
        axum::serve(api_listener, api).into_future(),
        axum::serve(page_listener, page).into_future(),
    )?;
    Ok(())
}

/// The single-page app. It keeps the CSRF token from the sign-in body in memory (a reload
/// means signing in again, or an endpoint that returns the token for the current session).
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>Notes</title>
<form id="sign-in"><input name="username" value="demo"> <input name="password" type="password">
  <button>Sign in</button></form>
<form id="add"><input name="text" placeholder="a note"> <button>Add</button></form>
<button id="list">List</button> <button id="sign-out">Sign out</button>
<pre id="out"></pre>
<script>
const API = '__API__';
let csrfToken = null;

// Every call sends the session cookie (`credentials: 'include'`); writes add the CSRF token.
async function call(method, path, body, { csrf = true } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (csrf && csrfToken && method !== 'GET') headers['x-csrf-token'] = csrfToken;
  const res = await fetch(API + path, {
    method, headers, credentials: 'include',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = text;
  try { data = JSON.parse(text); } catch {}
  return { status: res.status, body: data };
}

const notes = {
  async signIn(username, password) {
    const r = await call('POST', '/session', { username, password });
    if (r.status === 200) csrfToken = r.body.csrf_token;
    return r;
  },
  list: () => call('GET', '/notes'),
  add: (text, options) => call('POST', '/notes', { text }, options),
  async signOut() {
    const r = await call('DELETE', '/session');
    if (r.status === 204) csrfToken = null;
    return r;
  },
  csrfToken: () => csrfToken,
};
window.notes = notes;

const show = (r) => { document.getElementById('out').textContent = JSON.stringify(r, null, 2); };
const form = (id, fn) => document.getElementById(id).addEventListener('submit', async (e) => {
  e.preventDefault();
  show(await fn(new FormData(e.target)));
});
form('sign-in', (f) => notes.signIn(f.get('username'), f.get('password')));
form('add', (f) => notes.add(f.get('text')));
document.getElementById('list').onclick = async () => show(await notes.list());
document.getElementById('sign-out').onclick = async () => show(await notes.signOut());
</script>
"#;

// `cargo test -p portcullis --example cookie_session` (the expiry of sign-outs is not visible
// over HTTP: an expired token is refused whether its entry is there or not).
#[cfg(test)]
mod tests {
    use super::*;
    use portcullis::server::CredentialKind;

    fn session(jti: &str) -> Principal {
        Principal::builder(CredentialKind::Cookie)
            .token_id(jti)
            .build()
    }

    #[test]
    fn a_signed_out_jti_is_kept_while_its_token_could_verify_and_dropped_after() {
        let list = SignedOut::default();
        let leeway = LEEWAY.as_secs();
        list.revoke("first", 1_000, 900);
        // At `exp` plus the leeway the first token could still be accepted: kept.
        list.revoke("second", 2_000, 1_000 + leeway);
        assert!(list.is_revoked(&session("first")));
        // A second later it is refused as expired anyway: the next sign-out drops it.
        list.revoke("third", 3_000, 1_000 + leeway + 1);
        assert!(!list.is_revoked(&session("first")));
        assert!(list.is_revoked(&session("second")) && list.is_revoked(&session("third")));
        assert_eq!(list.0.lock().unwrap().jtis.len(), 2);
        assert_eq!(list.0.lock().unwrap().by_expiry.len(), 2);
    }
}
