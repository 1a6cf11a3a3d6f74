//! The authorization endpoint of a server whose user has already consented (RFC 6749
//! §4.1.1–4.1.2, RFC 7636, RFC 8707, RFC 9207), and the codes it issues: random, single-use,
//! short-lived, bound to the client, the redirect URI, the PKCE challenge and the resource.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_wire::form::form_encode;

use super::clients::{Clients, absolute, redirect_matches};
use super::mode::{AuthorizeMode, HOSTILE_DESCRIPTION};
use crate::issuer::random_hex;

/// How long a code may wait to be redeemed (RFC 6749 §4.1.2: short, at most ten minutes).
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);

/// One request to `/authorize` as the server saw it: each parameter's first value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeenAuthorizeRequest {
    /// `response_type`.
    pub response_type: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// RFC 7636 `code_challenge`.
    pub code_challenge: Option<String>,
    /// RFC 7636 `code_challenge_method`.
    pub code_challenge_method: Option<String>,
    /// RFC 8707 `resource`.
    pub resource: Option<String>,
}

impl SeenAuthorizeRequest {
    fn of(p: &HashMap<String, String>) -> Self {
        let get = |name: &str| p.get(name).cloned();
        SeenAuthorizeRequest {
            response_type: get("response_type"),
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            scope: get("scope"),
            state: get("state"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
            resource: get("resource"),
        }
    }
}

/// What a code was issued for.
#[derive(Clone)]
pub(crate) struct Code {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: String,
    pub(crate) resource: Option<String>,
    pub(crate) scope: String,
    pub(crate) subject: String,
    expires: Instant,
    used: bool,
    /// Set when the code is presented again: the grant issued from it is revoked.
    pub(crate) revoked: Arc<AtomicBool>,
}

/// The codes issued, and what `/authorize` saw.
#[derive(Default)]
pub(crate) struct Codes {
    codes: Mutex<HashMap<String, Code>>,
    seen: Mutex<Vec<SeenAuthorizeRequest>>,
    replays: AtomicU64,
}

/// What `/authorize` needs besides the request.
pub(crate) struct Authorize<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) mode: AuthorizeMode,
    pub(crate) subject: String,
    pub(crate) clients: &'a Clients,
}

/// An answer shown to the person, not sent back to the client (RFC 6749 §4.1.2.1: a wrong
/// client or redirect URI is never redirected to).
fn not_redirected(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CACHE_CONTROL, "no-store")],
        format!("invalid authorization request: {why}"),
    )
        .into_response()
}

/// RFC 7636 §4.2: a challenge is 43 to 128 characters of the unreserved set.
fn challenge_ok(c: &str) -> bool {
    (43..=128).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The parameters, each once, and the name of one given more than once (RFC 6749 §3.1).
fn single(params: Vec<(String, String)>) -> (HashMap<String, String>, Option<String>) {
    let mut one = HashMap::new();
    let mut repeated = None;
    for (k, v) in params {
        match one.entry(k) {
            Entry::Occupied(e) => {
                repeated.get_or_insert_with(|| e.key().clone());
            }
            Entry::Vacant(e) => {
                e.insert(v);
            }
        }
    }
    (one, repeated)
}

/// The redirect back to the client, `state` and `iss` as the mode says.
struct Back<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    issuer: &'a str,
    mode: &'a AuthorizeMode,
}

impl Back<'_> {
    fn send(&self, mut params: Vec<(&str, String)>) -> Response {
        match (self.mode, self.state) {
            (AuthorizeMode::WrongState, s) => {
                params.push(("state", format!("forged-{}", s.unwrap_or_default())));
            }
            (_, Some(s)) => params.push(("state", s.to_owned())),
            (_, None) => {}
        }
        match self.mode {
            AuthorizeMode::OmitIssuer => {}
            AuthorizeMode::WrongIssuer(iss) => params.push(("iss", iss.clone())),
            _ => params.push(("iss", self.issuer.to_owned())),
        }
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let sep = if self.redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        let location = format!("{}{sep}{}", self.redirect_uri, form_encode(&pairs));
        (
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response()
    }

    fn error(&self, error: &str, description: &str) -> Response {
        self.send(vec![
            ("error", error.to_owned()),
            ("error_description", description.to_owned()),
        ])
    }
}

impl Codes {
    /// `GET /authorize`: a code sent back at once, or the error the request earns.
    pub(crate) fn authorize(&self, at: Authorize<'_>, params: Vec<(String, String)>) -> Response {
        let (p, repeated) = single(params);
        self.seen
            .lock()
            .expect("not poisoned")
            .push(SeenAuthorizeRequest::of(&p));
        let Some(client) = p.get("client_id").and_then(|id| at.clients.get(id)) else {
            return not_redirected("unknown client_id");
        };
        let registered = |r: &&String| client.redirect_uris.iter().any(|x| redirect_matches(x, r));
        let Some(redirect_uri) = p.get("redirect_uri").filter(registered) else {
            return not_redirected("redirect_uri is not one registered for this client");
        };
        if let Some(name) = repeated
            .as_ref()
            .filter(|n| *n == "client_id" || *n == "redirect_uri")
        {
            return not_redirected(&format!("{name} is given more than once"));
        }
        let back = Back {
            redirect_uri,
            state: p.get("state").map(String::as_str),
            issuer: at.issuer,
            mode: &at.mode,
        };
        if let Some((error, why)) = refusal(&p, repeated.as_deref(), &at.mode) {
            return back.error(error, &why);
        }
        let code = random_hex(32);
        let issued = Code {
            client_id: client.client_id,
            redirect_uri: redirect_uri.clone(),
            challenge: p["code_challenge"].clone(),
            resource: p.get("resource").cloned(),
            scope: p.get("scope").cloned().unwrap_or_default(),
            subject: at.subject,
            expires: Instant::now() + CODE_TTL,
            used: false,
            revoked: Arc::default(),
        };
        let mut codes = self.codes.lock().expect("not poisoned");
        // Spent and expired codes are kept a while longer, so a replay is still recognized.
        codes.retain(|_, c| c.expires + CODE_TTL > Instant::now());
        codes.insert(code.clone(), issued);
        drop(codes);
        back.send(vec![("code", code)])
    }

    /// The code `code` for the client `client_id`, spent by this call. A code presented again
    /// revokes what was issued from it (RFC 6749 §4.1.2).
    pub(crate) fn redeem(&self, code: &str, client_id: &str) -> Result<Code, &'static str> {
        let mut codes = self.codes.lock().expect("not poisoned");
        let c = codes.get_mut(code).ok_or("unknown code")?;
        if c.used {
            c.revoked.store(true, Ordering::SeqCst);
            self.replays.fetch_add(1, Ordering::SeqCst);
            return Err("the code was already used: the tokens issued from it are revoked");
        }
        if c.client_id != client_id {
            return Err("the code was issued to another client");
        }
        c.used = true;
        if Instant::now() >= c.expires {
            return Err("the code expired");
        }
        Ok(c.clone())
    }

    /// What `/authorize` saw so far.
    pub(crate) fn seen(&self) -> Vec<SeenAuthorizeRequest> {
        self.seen.lock().expect("not poisoned").clone()
    }

    /// Codes presented a second time.
    pub(crate) fn replays(&self) -> u64 {
        self.replays.load(Ordering::SeqCst)
    }
}

/// The RFC 6749 §4.1.2.1 error a request from a known client earns, if any.
fn refusal(
    p: &HashMap<String, String>,
    repeated: Option<&str>,
    mode: &AuthorizeMode,
) -> Option<(&'static str, String)> {
    let get = |name: &str| p.get(name).map(String::as_str);
    if let Some(name) = repeated {
        // RFC 8707 allows several resources; this kit issues a token for one.
        let error = if name == "resource" {
            "invalid_target"
        } else {
            "invalid_request"
        };
        return Some((error, format!("{name} is given more than once")));
    }
    match get("response_type") {
        Some("code") => {}
        None => return Some(("invalid_request", "response_type is required".into())),
        Some(_) => return Some(("unsupported_response_type", "only code".into())),
    }
    if get("code_challenge_method") != Some("S256")
        || !get("code_challenge").is_some_and(challenge_ok)
    {
        return Some(("invalid_request", "PKCE with S256 is required".into()));
    }
    if get("resource").is_some_and(|r| !absolute(r)) {
        return Some(("invalid_target", "resource is an absolute URI".into()));
    }
    if *mode == AuthorizeMode::Deny {
        let hostile = HOSTILE_DESCRIPTION.repeat(1024 / HOSTILE_DESCRIPTION.len() + 1);
        return Some(("access_denied", hostile));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn location(res: &Response) -> String {
        assert_eq!(res.status(), StatusCode::FOUND);
        res.headers()[header::LOCATION].to_str().unwrap().to_owned()
    }

    #[test]
    fn a_code_is_single_use_and_bound_to_its_client() {
        let clients = Clients::default();
        let client = clients
            .register(vec!["http://127.0.0.1/cb".into()], "none")
            .ok()
            .unwrap();
        let codes = Codes::default();
        let at = || Authorize {
            issuer: "http://id.test",
            mode: AuthorizeMode::Normal,
            subject: "alice".into(),
            clients: &clients,
        };
        let ok = [
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", "http://127.0.0.1:5000/cb"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "s1"),
        ];
        let loc = location(&codes.authorize(at(), params(&ok)));
        assert!(loc.starts_with("http://127.0.0.1:5000/cb?code="), "{loc}");
        assert!(loc.ends_with("&state=s1&iss=http%3A%2F%2Fid.test"), "{loc}");
        let code = loc["http://127.0.0.1:5000/cb?code=".len()..]
            .split('&')
            .next()
            .unwrap();
        assert!(codes.redeem(code, "someone-else").is_err());
        let redeemed = codes.redeem(code, &client.client_id).ok().unwrap();
        assert_eq!(redeemed.challenge, CHALLENGE);
        assert!(codes.redeem(code, &client.client_id).is_err());
        assert!(redeemed.revoked.load(Ordering::SeqCst), "a replay revokes");
        assert_eq!(codes.replays(), 1);

        // PKCE plain, or none: sent back as invalid_request, with the state.
        let mut plain = ok.to_vec();
        plain[4] = ("code_challenge_method", "plain");
        let loc = location(&codes.authorize(at(), params(&plain)));
        assert!(
            loc.contains("error=invalid_request") && loc.contains("state=s1"),
            "{loc}"
        );
        // A redirect URI not registered is never redirected to.
        let mut elsewhere = ok.to_vec();
        elsewhere[2] = ("redirect_uri", "http://evil.test/cb");
        let res = codes.authorize(at(), params(&elsewhere));
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(codes.seen().len(), 3);
    }
}
