//! A cookie session for a single-page app on another origin: the notes API on
//! `http://localhost:<api port>`, the page that uses it on `http://localhost:<page port>`.
//!
//! ```text
//! cargo run --example cookie_session -- --api-port 8080 --page-port 3000
//! ```
//!
//! Open the page URL it prints and sign in as `demo` / `demo-password`. The whole path:
//! 1. `POST /session` checks the user and password, sets the session cookie (`HttpOnly`: page
//!    scripts never see it) and returns the session's CSRF token in its body (the page, on
//!    another origin, cannot read the API's cookies, so the body is how it gets the token).
//! 2. `GET /notes` needs only the cookie, which `fetch(…, {credentials: 'include'})` sends.
//! 3. `POST /notes` needs the cookie and the token in `x-csrf-token`; without it: 403
//!    `csrf_failed`.
//! 4. `DELETE /session` revokes the session (its `jti`) and clears the cookie: a copy of the
//!    cookie taken before is refused from then on (401 `token_revoked`).
//!
//! The two ports are two origins of one site: CORS applies (the API allows the page's origin
//! and the CSRF header), and cookies are first-party (`SameSite=Lax` works). Tested in
//! headless Chromium by `interop/tests/cookie-session.test.mjs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use clap::Parser;
use portcullis::server::cors::CorsPreset;
use portcullis::server::jsonwebtoken::{self, Algorithm, EncodingKey, Header};
use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
use portcullis::server::{AuthLayer, CsrfKey, CsrfPolicy, Denylist, Principal};
use serde::{Deserialize, Serialize};
use serde_json::json;

// Demo secrets, public here: a real app reads both from its secret store (at least 32 random
// bytes each, the same on every replica) and never uses one key for both jobs.
const SESSION_SECRET: &[u8] = b"cookie-session example: signs session tokens, public";
const CSRF_SECRET: &[u8] = b"cookie-session example: mints CSRF tokens, public too";
const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "demo-password";
const SESSION_COOKIE: &str = "sid";
/// The session token's audience: a token minted for anything else is not a session here.
const AUDIENCE: &str = "notes-session";
/// Short: a stolen cookie is worth little for long, and a user signs in again after this.
const SESSION_SECONDS: u64 = 15 * 60;

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
    revoked: Arc<Denylist>,
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
/// `Secure` is set even on `http://localhost`, which browsers count as a secure context and
/// accept `Secure` cookies from; production (https) must set it too. No `Domain`: the cookie
/// goes back to this host only (at any port: cookies ignore ports).
fn session_cookie(value: &str, max_age: u64) -> String {
    format!("{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax")
}

/// `POST /session`: outside the auth layer (there is no session yet). It takes JSON only, so a
/// page of another origin must pass a CORS preflight first, which only the app's origin does.
async fn sign_in(State(api): State<Api>, Json(form): Json<SignIn>) -> Response {
    // A real app checks a password hash from its user store, in constant time.
    if form.username != DEMO_USER || form.password != DEMO_PASSWORD {
        let problem = json!({"title": "Wrong user name or password", "status": 401});
        return (StatusCode::UNAUTHORIZED, Json(problem)).into_response();
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
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

/// `DELETE /session`: behind the auth layer, so it needs the cookie and the CSRF header.
async fn sign_out(State(api): State<Api>, me: Principal) -> impl IntoResponse {
    // Clearing the cookie is not enough: a copy of it would still verify until `exp`. The
    // layer's revocation hook refuses this jti from now on. (This list lives in one process and
    // only grows; replicas share `SharedRevocations`, which forgets each entry at its `exp`.)
    if let Some(jti) = me.token_id() {
        api.revoked.revoke_token_id(jti);
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

async fn add_note(State(api): State<Api>, me: Principal, Json(note): Json<NewNote>) -> Response {
    let mut notes = api.notes.lock().unwrap_or_else(|e| e.into_inner());
    let mine = notes
        .entry(me.subject().unwrap_or_default().to_owned())
        .or_default();
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
    let revoked = Arc::new(Denylist::default());
    let sessions = JwtAuthenticator::builder()
        .key(JwtKey::hmac(SESSION_SECRET, &[Algorithm::HS256])?)
        .audience(AUDIENCE)
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
