//! One sign-in: the authorization request, the person's round trip through the user agent,
//! the checks on the redirect (state, RFC 9207 `iss`), and the code redeemed once.

use std::time::Duration;

use http::Uri;
use tokio::sync::watch;

use super::pkce::Pkce;
use super::registration::Client;
use super::user_agent::{AuthorizationRequest, AuthorizationResponse, UserAgent};
use crate::error::{AuthorizationError, RefreshError};
use crate::source::discovery::finder::{Finder, Found, bounded};
use crate::source::oauth2::OAuth2;
use crate::source::token_response::TokenSet;
use portcullis_wire::form::form_encode;

/// What one sign-in needs besides the server.
pub(crate) struct SignInRequest<'a> {
    pub(crate) client: &'a Client,
    pub(crate) redirect_uri: String,
    pub(crate) scope: Option<&'a str>,
    /// How long the person has left (the sign-in's deadline, less what waiting took).
    pub(crate) timeout: Duration,
    /// The sign-in timeout configured, the one an error names.
    pub(crate) limit: Duration,
    /// The RFC 8707 resource, exactly as the resource's metadata gives it.
    pub(crate) resource: &'a str,
    /// When the redirect must carry RFC 9207 `iss`.
    pub(crate) iss: IssRule,
}

fn fail(e: AuthorizationError) -> RefreshError {
    RefreshError::Authorization(e)
}

/// RFC 7636 §4.2 and OAuth 2.1: `S256`, listed by the server, or no sign-in at all.
pub(crate) fn require_s256(found: &Found) -> Result<(), RefreshError> {
    let listed = found
        .server
        .code_challenge_methods_supported
        .clone()
        .unwrap_or_default();
    if listed.iter().any(|m| m == "S256") {
        Ok(())
    } else {
        Err(fail(AuthorizationError::PkceNotSupported {
            supported: bounded(&listed),
        }))
    }
}

/// The authorization URL: the endpoint's own query kept, the request's parameters after it.
fn authorization_url(endpoint: &Uri, params: &[(&str, &str)]) -> Result<Uri, AuthorizationError> {
    let base = endpoint.to_string();
    let sep = if endpoint.query().is_some() { '&' } else { '?' };
    format!("{base}{sep}{}", form_encode(params))
        .parse()
        .map_err(|_| AuthorizationError::UserAgent("the authorization URL is not a URL".into()))
}

/// When the redirect must carry RFC 9207 `iss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IssRule {
    /// Only when present (it must then be the issuer).
    WhenPresent,
    /// Always: the server advertises `authorization_response_iss_parameter_supported`.
    Advertised,
    /// Always: the issuer was not pinned, and nothing else rules out a mix-up (a server the
    /// resource chose could have relayed the person to another server and be handed that
    /// server's code).
    Unpinned,
}

/// The checks on the redirect, before anything is redeemed: an error is the server's
/// refusal; the state must be this request's; RFC 9207's `iss`, when present, must be the
/// issuer exactly (§2.4: no normalization), and must be present as `rule` says.
pub(crate) fn check_redirect(
    response: AuthorizationResponse,
    state: &str,
    issuer: &str,
    rule: IssRule,
) -> Result<String, AuthorizationError> {
    let clip = |s: String| s.chars().take(200).collect::<String>();
    if response.state.as_deref() != Some(state) {
        return Err(AuthorizationError::StateMismatch);
    }
    match (response.iss, rule) {
        (Some(iss), _) if iss != issuer => {
            return Err(AuthorizationError::IssuerMismatch {
                expected: issuer.to_owned(),
                got: clip(iss),
            });
        }
        (None, IssRule::Advertised) => {
            return Err(AuthorizationError::MissingIssuer {
                expected: issuer.to_owned(),
            });
        }
        (None, IssRule::Unpinned) => {
            return Err(AuthorizationError::IssuerNotSent {
                issuer: issuer.to_owned(),
            });
        }
        _ => {}
    }
    if let Some(error) = response.error {
        return Err(AuthorizationError::Denied {
            error: clip(error),
            description: response.error_description.map(clip),
        });
    }
    response
        .code
        .ok_or_else(|| AuthorizationError::InvalidRedirect("no code and no error".into()))
}

/// Send the person to the authorization server and redeem the code that comes back.
pub(crate) async fn sign_in(
    finder: &Finder,
    found: &Found,
    oauth: &OAuth2,
    user_agent: &dyn UserAgent,
    request: SignInRequest<'_>,
    mut cancel: watch::Receiver<u64>,
) -> Result<TokenSet, RefreshError> {
    require_s256(found)?;
    let endpoint = finder
        .endpoint(
            found,
            found.server.authorization_endpoint.as_ref(),
            "authorization_endpoint",
        )
        .await?;
    let pkce = Pkce::new().map_err(fail)?;
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", request.client.client_id.as_str()),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", pkce.state.as_str()),
    ];
    if let Some(scope) = request.scope {
        params.push(("scope", scope));
        // OpenID Connect Core §11: a provider drops `offline_access` (and issues no refresh
        // token) unless the person is asked to consent to it.
        if scope
            .split_ascii_whitespace()
            .any(|s| s == "offline_access")
        {
            params.push(("prompt", "consent"));
        }
    }
    // RFC 8707: the token is for this resource, and only this one.
    params.push(("resource", request.resource));
    let url = authorization_url(&endpoint, &params).map_err(fail)?;
    let asked = AuthorizationRequest {
        url,
        redirect_uri: request.redirect_uri.clone(),
        state: pkce.state.clone(),
    };
    let response = tokio::select! {
        r = tokio::time::timeout(request.timeout, user_agent.authorize(asked)) => match r {
            Ok(r) => r.map_err(fail)?,
            Err(_) => return Err(fail(AuthorizationError::Timeout(request.limit))),
        },
        _ = cancel.changed() => return Err(fail(AuthorizationError::Cancelled)),
    };
    let code = check_redirect(response, &pkce.state, &found.issuer, request.iss).map_err(fail)?;
    oauth
        .redeem_code(&code, &pkce.verifier, &request.redirect_uri)
        .await
        .map_err(|e| match e {
            // The code, not a refresh token, was refused: a new sign-in can still succeed,
            // so this must not park the layer as a dead refresh token would.
            RefreshError::SignInAgain { description } => {
                fail(AuthorizationError::CodeRejected { description })
            }
            other => other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(state: &str, iss: Option<&str>) -> AuthorizationResponse {
        AuthorizationResponse {
            code: Some("c0de".into()),
            state: Some(state.into()),
            iss: iss.map(str::to_owned),
            ..AuthorizationResponse::default()
        }
    }

    /// RFC 9207 §2.4: the `iss` is compared as a string; a trailing slash, another case or
    /// a default port is another issuer.
    #[test]
    fn the_iss_is_compared_exactly() {
        let issuer = "https://id.test/tenant";
        assert_eq!(
            check_redirect(
                response("s", Some(issuer)),
                "s",
                issuer,
                IssRule::Advertised
            )
            .unwrap(),
            "c0de"
        );
        for other in [
            "https://id.test/tenant/",
            "https://ID.test/tenant",
            "https://id.test:443/tenant",
            "https://id.test",
        ] {
            assert!(
                matches!(
                    check_redirect(
                        response("s", Some(other)),
                        "s",
                        issuer,
                        IssRule::WhenPresent
                    ),
                    Err(AuthorizationError::IssuerMismatch { .. })
                ),
                "{other}"
            );
        }
        assert_eq!(
            check_redirect(response("s", None), "s", issuer, IssRule::Advertised),
            Err(AuthorizationError::MissingIssuer {
                expected: issuer.into()
            })
        );
        assert_eq!(
            check_redirect(response("s", None), "s", issuer, IssRule::Unpinned),
            Err(AuthorizationError::IssuerNotSent {
                issuer: issuer.into()
            })
        );
        assert!(check_redirect(response("s", None), "s", issuer, IssRule::WhenPresent).is_ok());
    }

    #[test]
    fn the_state_must_be_this_requests() {
        assert_eq!(
            check_redirect(
                response("other", None),
                "s",
                "https://id.test",
                IssRule::WhenPresent
            ),
            Err(AuthorizationError::StateMismatch)
        );
        let mut r = response("s", None);
        r.state = None;
        assert_eq!(
            check_redirect(r, "s", "https://id.test", IssRule::WhenPresent),
            Err(AuthorizationError::StateMismatch)
        );
    }

    /// An error redirect is checked like a code (state, iss) before it is believed, and what
    /// the server wrote is kept bounded.
    #[test]
    fn a_refusal_is_typed_and_bounded() {
        let mut r = response("s", None);
        r.code = None;
        r.error = Some("access_denied".into());
        r.error_description = Some("x".repeat(10_000));
        match check_redirect(r, "s", "https://id.test", IssRule::WhenPresent) {
            Err(AuthorizationError::Denied { error, description }) => {
                assert_eq!(error, "access_denied");
                assert_eq!(description.unwrap().len(), 200);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_authorization_url_keeps_the_endpoints_query() {
        let plain: Uri = "https://id.test/authorize".parse().unwrap();
        let with: Uri = "https://id.test/authorize?tenant=a".parse().unwrap();
        let p = [("state", "a b"), ("resource", "https://api.test/mcp")];
        assert_eq!(
            authorization_url(&plain, &p).unwrap().to_string(),
            "https://id.test/authorize?state=a+b&resource=https%3A%2F%2Fapi.test%2Fmcp"
        );
        assert!(
            authorization_url(&with, &p)
                .unwrap()
                .to_string()
                .starts_with("https://id.test/authorize?tenant=a&state=")
        );
    }
}
