//! The token endpoint's part in a sign-in: the `authorization_code` grant (RFC 6749 §4.1.3,
//! RFC 7636 §4.6, RFC 8707 §2.2) and the refresh tokens it starts, which rotate through the
//! endpoint's refresh-token families and are presented with the client's own authentication
//! (a public client names itself with `client_id`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use super::clients::Clients;
use super::codes::Codes;
use crate::endpoint_mode::TokenEndpointMode;
use crate::token_endpoint::{TestTokenEndpoint, oauth_error};

/// One `authorization_code` token request as the server saw it: never the code, the verifier
/// or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeenRedemption {
    /// The client it authenticated as, when it did.
    pub client_id: Option<String>,
    /// How it tried to authenticate: `none` (`client_id` alone), `client_secret_basic`,
    /// `client_secret_post` or `private_key_jwt` (a client assertion).
    pub client_auth: &'static str,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// Whether it carried a `code_verifier`.
    pub code_verifier: bool,
    /// RFC 8707 `resource`.
    pub resource: Option<String>,
    /// The RFC 6749 §5.2 error it was refused with; `None` when tokens were issued.
    pub error: Option<&'static str>,
}

/// A grant started by a code: whose it is, and for what.
struct CodeGrant {
    client_id: String,
    audience: String,
    resource: Option<String>,
    /// Shared with the code: set when the code is presented again.
    revoked: Arc<AtomicBool>,
}

/// The grants started by codes, by each refresh token they issued.
#[derive(Default)]
pub(crate) struct Grants {
    by_refresh_token: Mutex<HashMap<String, Arc<CodeGrant>>>,
    redemptions: Mutex<Vec<SeenRedemption>>,
}

/// What a token request is checked against.
pub(crate) struct Parts<'a> {
    pub(crate) endpoint: &'a TestTokenEndpoint,
    pub(crate) clients: &'a Clients,
    pub(crate) codes: &'a Codes,
}

/// A token request refused (RFC 6749 §5.2).
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl Refusal {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        Refusal {
            status,
            error,
            description: description.into(),
        }
    }

    fn response(&self) -> Response {
        oauth_error(self.status, self.error, &self.description)
    }
}

/// How a request tried to authenticate (what [`SeenRedemption::client_auth`] says).
fn tried(headers: &HeaderMap, form: &HashMap<String, String>) -> &'static str {
    if form.contains_key("client_assertion") {
        "private_key_jwt"
    } else if headers.contains_key("authorization") {
        "client_secret_basic"
    } else if form.contains_key("client_secret") {
        "client_secret_post"
    } else {
        "none"
    }
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(verifier))`.
fn s256(verifier: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

impl Grants {
    /// Whether this is a token request for a sign-in's grants: a code, or a refresh token a
    /// code started.
    pub(crate) fn answers(&self, form: &HashMap<String, String>) -> bool {
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => true,
            Some("refresh_token") => form.get("refresh_token").is_some_and(|rt| {
                let grants = self.by_refresh_token.lock().expect("not poisoned");
                grants.contains_key(rt)
            }),
            _ => false,
        }
    }

    /// The token request, answered as the endpoint answers its own: recorded, counted, its
    /// failure mode applied.
    pub(crate) async fn token(
        &self,
        p: Parts<'_>,
        headers: HeaderMap,
        form: HashMap<String, String>,
    ) -> Response {
        let endpoint = p.endpoint;
        endpoint.record(&headers, &form);
        endpoint.state.calls.fetch_add(1, Ordering::SeqCst);
        let mode = *endpoint.state.mode.lock().expect("not poisoned");
        let code = form.get("grant_type").map(String::as_str) == Some("authorization_code");
        let res = match TestTokenEndpoint::apply_mode(mode).await {
            Some(failure) => failure,
            None if code => self.redeem(&p, &headers, &form),
            None => self.refresh(&p, &headers, &form),
        };
        if let TokenEndpointMode::AnswerLate(d) = mode {
            tokio::time::sleep(d).await;
        }
        res
    }

    fn redeem(
        &self,
        p: &Parts<'_>,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
    ) -> Response {
        let mut seen = SeenRedemption {
            client_id: None,
            client_auth: tried(headers, form),
            redirect_uri: form.get("redirect_uri").cloned(),
            code_verifier: form.contains_key("code_verifier"),
            resource: form.get("resource").cloned(),
            error: None,
        };
        let result = self.redeem_checked(p, headers, form, &mut seen);
        seen.error = result.as_ref().err().map(|r| r.error);
        self.redemptions.lock().expect("not poisoned").push(seen);
        result.unwrap_or_else(|r| r.response())
    }

    fn redeem_checked(
        &self,
        p: &Parts<'_>,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
        seen: &mut SeenRedemption,
    ) -> Result<Response, Refusal> {
        let client = p
            .clients
            .authenticate(headers, form, p.endpoint.issuer().issuer())
            .map_err(|why| Refusal::new("invalid_client", why))?;
        seen.client_id = Some(client.client_id.clone());
        let code = form
            .get("code")
            .ok_or_else(|| Refusal::new("invalid_request", "code is required"))?;
        let c = p
            .codes
            .redeem(code, &client.client_id)
            .map_err(|why| Refusal::new("invalid_grant", why))?;
        if form.get("redirect_uri") != Some(&c.redirect_uri) {
            return Err(Refusal::new(
                "invalid_grant",
                "redirect_uri is not the authorization request's",
            ));
        }
        let verifier = form
            .get("code_verifier")
            .ok_or_else(|| Refusal::new("invalid_request", "code_verifier is required"))?;
        if s256(verifier) != c.challenge {
            return Err(Refusal::new(
                "invalid_grant",
                "code_verifier does not match the code_challenge",
            ));
        }
        if form.get("resource") != c.resource.as_ref() {
            return Err(Refusal::new(
                "invalid_target",
                "resource is not the authorization request's",
            ));
        }
        let audience = c
            .resource
            .clone()
            .unwrap_or_else(|| p.endpoint.state.audience.clone());
        let grant = Arc::new(CodeGrant {
            client_id: client.client_id,
            audience,
            resource: c.resource,
            revoked: c.revoked,
        });
        let rt = p.endpoint.issue_refresh_token(&c.subject, &c.scope);
        Ok(self.issue(p.endpoint, grant, &c.subject, &c.scope, rt))
    }

    fn refresh(
        &self,
        p: &Parts<'_>,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
    ) -> Response {
        match self.refresh_checked(p, headers, form) {
            Ok(res) => res,
            Err(refusal) => {
                // Counted as the endpoint counts its own refresh requests: answered or not.
                p.endpoint
                    .state
                    .refresh_grants
                    .fetch_add(1, Ordering::SeqCst);
                refusal.response()
            }
        }
    }

    fn refresh_checked(
        &self,
        p: &Parts<'_>,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
    ) -> Result<Response, Refusal> {
        let grant = form
            .get("refresh_token")
            .and_then(|rt| {
                self.by_refresh_token
                    .lock()
                    .expect("not poisoned")
                    .get(rt)
                    .cloned()
            })
            .ok_or_else(|| Refusal::new("invalid_grant", "unknown refresh token"))?;
        let client = p
            .clients
            .authenticate(headers, form, p.endpoint.issuer().issuer())
            .map_err(|why| Refusal::new("invalid_client", why))?;
        if client.client_id != grant.client_id {
            return Err(Refusal::new(
                "invalid_grant",
                "the refresh token was issued to another client",
            ));
        }
        if grant.revoked.load(Ordering::SeqCst) {
            return Err(Refusal::new(
                "invalid_grant",
                "revoked: the code it was issued for was presented again",
            ));
        }
        if form
            .get("resource")
            .is_some_and(|r| Some(r) != grant.resource.as_ref())
        {
            return Err(Refusal::new(
                "invalid_target",
                "resource is not the one the grant is for",
            ));
        }
        Ok(match p.endpoint.rotate_refresh_token(form) {
            Ok((subject, scope, next)) => self.issue(p.endpoint, grant, &subject, &scope, next),
            Err((error, why)) => oauth_error(StatusCode::BAD_REQUEST, error, why),
        })
    }

    /// Access and refresh tokens for `grant`: a JWT signed by the endpoint's issuer for the
    /// grant's audience, the endpoint's algorithm, lifetime and extra claims.
    fn issue(
        &self,
        endpoint: &TestTokenEndpoint,
        grant: Arc<CodeGrant>,
        subject: &str,
        scope: &str,
        refresh_token: String,
    ) -> Response {
        let ttl = endpoint.access_ttl().as_secs();
        let secs = i64::try_from(ttl).unwrap_or(i64::MAX);
        let access = endpoint.mint_access(subject, &grant.audience, &grant.client_id, scope, secs);
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": refresh_token,
        });
        if !scope.is_empty() {
            body["scope"] = json!(scope);
        }
        self.by_refresh_token
            .lock()
            .expect("not poisoned")
            .insert(refresh_token, grant);
        let mut res = Json(body).into_response();
        res.headers_mut()
            .insert("cache-control", "no-store".parse().expect("static"));
        res
    }

    /// The `authorization_code` requests that reached the grant so far.
    pub(crate) fn redemptions(&self) -> Vec<SeenRedemption> {
        self.redemptions.lock().expect("not poisoned").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn s256_is_the_rfcs() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
