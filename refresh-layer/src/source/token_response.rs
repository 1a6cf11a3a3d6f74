//! Token responses (RFC 6749 §5.1, §5.2), read strictly, with `Debug` that hides tokens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;

use super::token_http::MAX_TOKEN_RESPONSE;
use crate::credential::Credential;
use crate::error::RefreshError;

/// A successful token response (RFC 6749 §5.1). `Debug` hides the tokens.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenSet {
    /// The access token.
    pub access_token: String,
    /// Its lifetime, when the server said (at most [`MAX_LIFETIME`](crate::MAX_LIFETIME)).
    pub expires_in: Option<Duration>,
    /// A new refresh token, when the server rotated it.
    pub refresh_token: Option<String>,
    /// The granted scope, when it differs from the requested one.
    pub scope: Option<String>,
    /// The OpenID Connect ID token, when the server sent one (kept only to read its `sub`;
    /// see [`TokenSet::subject`]).
    pub id_token: Option<String>,
}

impl TokenSet {
    /// Who these tokens belong to, when the response says: the `sub` of the ID token, else
    /// the `sub` of the access token if it is a JWT. `None` for opaque tokens.
    ///
    /// Read **without verifying any signature**: good only to compare with the subject of
    /// other token sets from the same token endpoint (reached over the same authenticated
    /// channel), as [`SharedGrant`](crate::source::shared_grant::SharedGrant) does to keep one identity per grant.
    /// Never use it to decide who a caller is.
    pub fn subject(&self) -> Option<String> {
        self.id_token
            .as_deref()
            .and_then(unverified_sub)
            .or_else(|| unverified_sub(&self.access_token))
    }
}

/// The `sub` claim of a compact JWS, without checking its signature; see [`TokenSet::subject`].
pub(super) fn unverified_sub(jwt: &str) -> Option<String> {
    use base64::Engine;
    let mut parts = jwt.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    if parts.next().is_some() || payload.len() > MAX_TOKEN_RESPONSE {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(Deserialize)]
    struct Sub {
        sub: Option<String>,
    }
    serde_json::from_slice::<Sub>(&bytes)
        .ok()?
        .sub
        .filter(|s| !s.is_empty())
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .field("id_token", &self.id_token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
pub(super) struct RawTokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    scope: Option<String>,
    id_token: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawErrorResponse {
    error: String,
    error_description: Option<String>,
}

pub(super) fn invalid(why: impl Into<Arc<str>>) -> RefreshError {
    RefreshError::InvalidResponse(why.into())
}

/// Parse a token endpoint's answer (RFC 6749 §5.1 success, §5.2 error).
///
/// ```
/// use portcullis::client::fuzzing::parse_token_response;
/// use http::StatusCode;
/// let t = parse_token_response(StatusCode::OK, br#"{"access_token":"a","token_type":"bearer","expires_in":60}"#).unwrap();
/// assert_eq!(t.expires_in, Some(std::time::Duration::from_secs(60)));
/// let e = parse_token_response(StatusCode::BAD_REQUEST, br#"{"error":"invalid_grant"}"#).unwrap_err();
/// assert!(e.is_sign_in_again());
/// ```
pub fn parse_token_response(status: StatusCode, body: &[u8]) -> Result<TokenSet, RefreshError> {
    if !status.is_success() {
        let parsed: Option<RawErrorResponse> = serde_json::from_slice(body).ok();
        return Err(match parsed {
            Some(e) if e.error == "invalid_grant" => RefreshError::SignInAgain {
                description: e.error_description,
            },
            Some(e) => RefreshError::TokenEndpoint {
                status,
                error: Some(e.error),
                description: e.error_description,
            },
            None => RefreshError::TokenEndpoint {
                status,
                error: None,
                description: None,
            },
        });
    }
    let raw: RawTokenResponse = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("not an RFC 6749 token response: {e}")))?;
    if !raw.token_type.eq_ignore_ascii_case("bearer") {
        return Err(invalid("token_type is not Bearer"));
    }
    let expires_in = match raw.expires_in {
        None | Some(serde_json::Value::Null) => None,
        // Some servers send the number as a string.
        Some(serde_json::Value::String(s)) => Some(
            s.trim()
                .parse::<u64>()
                .map_err(|_| invalid("expires_in is not a number"))?,
        ),
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| invalid("expires_in is not a non-negative integer"))?,
        ),
    }
    .map(|secs| Duration::from_secs(secs).min(crate::credential::MAX_LIFETIME));
    Ok(TokenSet {
        access_token: raw.access_token,
        expires_in,
        refresh_token: raw.refresh_token,
        scope: raw.scope,
        id_token: raw.id_token,
    })
}

/// A bearer credential for `access_token`, expiring after `ttl` when known.
pub(crate) fn bearer_of(
    access_token: &str,
    ttl: Option<Duration>,
) -> Result<Credential, RefreshError> {
    let mut c = Credential::bearer(access_token)
        .map_err(|_| invalid("access_token is not a valid bearer token"))?;
    if let Some(ttl) = ttl {
        c = c.expires_in(ttl);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_response_variants() {
        let ok = |b: &str| parse_token_response(StatusCode::OK, b.as_bytes());
        assert_eq!(
            ok(r#"{"access_token":"a","token_type":"Bearer","expires_in":"30"}"#)
                .unwrap()
                .expires_in,
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            ok(r#"{"access_token":"a","token_type":"bearer","refresh_token":"r2"}"#)
                .unwrap()
                .refresh_token
                .as_deref(),
            Some("r2")
        );
        assert!(matches!(
            ok(r#"{"access_token":"a","token_type":"mac"}"#),
            Err(RefreshError::InvalidResponse(_))
        ));
        assert!(matches!(
            ok(r#"{"access_token":"a","token_type":"bearer","expires_in":-5}"#),
            Err(RefreshError::InvalidResponse(_))
        ));
        // A lifetime the clock cannot hold is clamped, never an overflow.
        assert_eq!(
            ok(r#"{"access_token":"a","token_type":"bearer","expires_in":18446744073709551615}"#)
                .unwrap()
                .expires_in,
            Some(crate::credential::MAX_LIFETIME)
        );
        assert!(matches!(
            ok("<html>"),
            Err(RefreshError::InvalidResponse(_))
        ));
        let e = parse_token_response(
            StatusCode::UNAUTHORIZED,
            br#"{"error":"invalid_client","error_description":"bad"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(e, RefreshError::TokenEndpoint { error: Some(ref s), .. } if s == "invalid_client")
        );
        let e = parse_token_response(StatusCode::INTERNAL_SERVER_ERROR, b"oops").unwrap_err();
        assert!(
            matches!(e, RefreshError::TokenEndpoint { status, error: None, .. } if status == 500)
        );
    }

    #[test]
    fn a_token_endpoints_error_is_shown_as_a_code_or_escaped_never_raw() {
        let shown = |body: &str| {
            parse_token_response(StatusCode::BAD_REQUEST, body.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            shown(r#"{"error":"invalid_scope"}"#),
            "the token endpoint answered 400 Bad Request (invalid_scope)"
        );
        let hostile = shown(&format!(
            r#"{{"error":"x\u001b[2J\r\nroot# {}"}}"#,
            "y".repeat(500)
        ));
        assert!(!hostile.chars().any(char::is_control), "{hostile:?}");
        assert!(hostile.contains(r"\u{1b}"), "{hostile}");
        assert!(hostile.len() < 300, "{}", hostile.len());
    }

    #[test]
    fn the_subject_is_read_from_the_id_token_first_then_a_jwt_access_token() {
        use base64::Engine;
        let jwt = |claims: &str| {
            let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            format!("{}.{}.c2ln", b(r#"{"alg":"ES256"}"#), b(claims))
        };
        let set = |access: String, id: Option<String>| TokenSet {
            access_token: access,
            expires_in: None,
            refresh_token: None,
            scope: None,
            id_token: id,
        };
        let at = jwt(r#"{"sub":"client-or-user"}"#);
        assert_eq!(
            set(at.clone(), None).subject().as_deref(),
            Some("client-or-user")
        );
        assert_eq!(
            set(at.clone(), Some(jwt(r#"{"sub":"alice"}"#)))
                .subject()
                .as_deref(),
            Some("alice")
        );
        assert_eq!(set("opaque-token".into(), None).subject(), None);
        assert_eq!(set(jwt(r#"{"sub":""}"#), None).subject(), None);
        assert_eq!(set(jwt(r#"{"sub":7}"#), None).subject(), None);
        assert_eq!(set("a.!!.c".into(), None).subject(), None);
        assert_eq!(set(format!("{at}.extra"), None).subject(), None);
        let parsed = parse_token_response(
            StatusCode::OK,
            format!(
                r#"{{"access_token":"opaque","token_type":"bearer","id_token":"{}"}}"#,
                jwt(r#"{"sub":"bob"}"#)
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(parsed.subject().as_deref(), Some("bob"));
        assert!(!format!("{parsed:?}").contains("eyJ"));
    }

    #[test]
    fn debug_hides_tokens() {
        let t = parse_token_response(
            StatusCode::OK,
            br#"{"access_token":"SECRET1","token_type":"bearer","refresh_token":"SECRET2"}"#,
        )
        .unwrap();
        let d = format!("{t:?}");
        assert!(!d.contains("SECRET"), "{d}");
    }

    proptest::proptest! {
        #[test]
        fn token_response_parser_never_panics(status in 100u16..600, body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Ok(s) = StatusCode::from_u16(status) {
                let _ = parse_token_response(s, &body);
            }
        }
    }
}
