//! The `Authorization` header as sent, read the way a strict RFC 6750 server reads it.

use portcullis_wire::grammar::is_b64token;

use crate::report::{CauseId, quoted};
use crate::token;

/// The fix for a header that is not `Bearer <token>`.
pub(super) const BEARER_FIX: &str =
    "send exactly `Authorization: Bearer <token>`: the scheme, one space, the token alone";

/// What the `Authorization` header as sent looks like, and the token in it.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SentHeader {
    /// What is wrong with it, if anything.
    pub problem: Option<(CauseId, String)>,
    /// The token in it, when one can be found (also in a malformed header).
    pub token: Option<String>,
}

/// Read an `Authorization` value the way a strict RFC 6750 server does.
pub(crate) fn inspect_authorization(value: &str) -> SentHeader {
    let looks_like_jwt = |t: &str| token::decode(t).is_ok();
    let Some((scheme, rest)) = value.split_once(' ') else {
        let detail = if looks_like_jwt(value) {
            "the Authorization header holds the token alone: the `Bearer ` scheme is missing"
                .to_owned()
        } else if value.is_empty() {
            return SentHeader {
                problem: Some((
                    CauseId::MalformedHeader,
                    "the Authorization header is empty".into(),
                )),
                token: None,
            };
        } else {
            "the Authorization header has no scheme".to_owned()
        };
        return SentHeader {
            problem: Some((CauseId::WrongScheme, detail)),
            token: looks_like_jwt(value).then(|| value.to_owned()),
        };
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        let inner = rest.trim();
        return SentHeader {
            problem: Some((
                CauseId::WrongScheme,
                format!(
                    "the Authorization scheme is {}; the API expects Bearer",
                    quoted(scheme)
                ),
            )),
            token: looks_like_jwt(inner).then(|| inner.to_owned()),
        };
    }
    // RFC 6750 §2.1: `Bearer 1*SP b64token`; a field value's trailing whitespace is not part
    // of it (RFC 9110 §5.5).
    let rest = rest.trim_start_matches(' ').trim_end();
    let last = rest.split_ascii_whitespace().last().unwrap_or("");
    let token = Some(last.trim_matches('"').to_owned()).filter(|t| !t.is_empty());
    let problem = if rest.is_empty() {
        Some("`Bearer` is followed by no token".to_owned())
    } else if rest.len() > 7
        && rest
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
    {
        Some(
            "the scheme is written twice (`Bearer Bearer …`): the token was stored with its prefix"
                .to_owned(),
        )
    } else if rest.contains(char::is_whitespace) {
        Some("the token contains whitespace".to_owned())
    } else if rest.starts_with('"') {
        Some("the token is in quotes".to_owned())
    } else if !is_b64token(rest.as_bytes()) {
        Some("the token has characters RFC 6750 does not allow in a bearer token".to_owned())
    } else {
        None
    };
    SentHeader {
        problem: problem.map(|p| (CauseId::MalformedHeader, p)),
        token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.e30.c2ln";

    fn problem(value: &str) -> Option<CauseId> {
        inspect_authorization(value).problem.map(|(id, _)| id)
    }

    #[test]
    fn authorization_values_are_read_like_a_strict_server() {
        assert_eq!(problem(&format!("Bearer {JWT}")), None);
        assert_eq!(problem(&format!("bearer {JWT}")), None);
        assert_eq!(problem(JWT), Some(CauseId::WrongScheme));
        assert_eq!(problem(&format!("Token {JWT}")), Some(CauseId::WrongScheme));
        // One or more spaces (RFC 6750 `1*SP`), not a tab.
        assert_eq!(problem(&format!("Bearer  {JWT}")), None);
        assert_eq!(
            problem(&format!("Bearer \t{JWT}")),
            Some(CauseId::MalformedHeader)
        );
        assert_eq!(
            problem(&format!("Bearer {JWT} {JWT}")),
            Some(CauseId::MalformedHeader)
        );
        assert_eq!(
            problem(&format!("Bearer Bearer {JWT}")),
            Some(CauseId::MalformedHeader)
        );
        assert_eq!(
            problem(&format!("Bearer \"{JWT}\"")),
            Some(CauseId::MalformedHeader)
        );
        assert_eq!(problem("Bearer "), Some(CauseId::MalformedHeader));
        assert_eq!(problem(""), Some(CauseId::MalformedHeader));
        // The token is still found, so it can be read.
        assert_eq!(
            inspect_authorization(&format!("Bearer Bearer {JWT}"))
                .token
                .as_deref(),
            Some(JWT)
        );
        assert_eq!(
            inspect_authorization(&format!("JWT {JWT}"))
                .token
                .as_deref(),
            Some(JWT)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_header_value_is_judged_without_panicking(v in "\\PC{0,40}") {
            let _ = inspect_authorization(&v);
            let _ = token::decode(&v);
        }

        #[test]
        fn a_well_formed_bearer_header_is_never_faulted(t in "[A-Za-z0-9._~+/-]{1,40}=*") {
            let read = inspect_authorization(&format!("Bearer {t}"));
            proptest::prop_assert_eq!(read.problem, None);
            proptest::prop_assert_eq!(read.token.as_deref(), Some(t.as_str()));
        }
    }
}
