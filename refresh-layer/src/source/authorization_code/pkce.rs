//! The secrets of one authorization request: the PKCE verifier and its `S256` challenge
//! (RFC 7636 §4.1–4.2), and the `state`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::AuthorizationError;

/// 32 random bytes, base64url: 43 characters of the unreserved set (RFC 7636 §4.1 asks for
/// 43 to 128 and at least 256 bits of entropy). Also the loopback start page's nonce and
/// cookie: values nobody can guess.
pub(super) fn random_token() -> Result<String, AuthorizationError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| AuthorizationError::UserAgent("no randomness for the sign-in".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// One authorization request's verifier, challenge and state.
pub(crate) struct Pkce {
    pub(crate) verifier: String,
    pub(crate) challenge: String,
    pub(crate) state: String,
}

impl Pkce {
    pub(crate) fn new() -> Result<Self, AuthorizationError> {
        let verifier = random_token()?;
        let challenge = s256(&verifier);
        Ok(Pkce {
            verifier,
            challenge,
            state: random_token()?,
        })
    }
}

/// `BASE64URL(SHA256(ASCII(verifier)))`.
pub(crate) fn s256(verifier: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B: the worked example, an oracle that is not this code.
    #[test]
    fn s256_matches_the_rfc_example() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_long_unreserved_and_fresh() {
        let a = Pkce::new().unwrap();
        let b = Pkce::new().unwrap();
        assert_eq!(a.verifier.len(), 43);
        assert!(
            a.verifier
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
        );
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(a.state, b.state);
        assert_ne!(a.state, a.verifier);
    }
}
