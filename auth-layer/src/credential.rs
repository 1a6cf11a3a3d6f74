//! [`PresentedCredential`]: a secret as a request presented it, and [`CredentialKind`], where.

use std::fmt;
use std::ops::Range;

use http::HeaderValue;
use portcullis_wire::grammar::is_b64token;

use crate::error::{AuthError, ErrorCode};

/// The detail of a refusal of a credential kind a resource does not take, naming those it
/// does (`RequireCredential`'s and a narrowed layer's 403 alike).
pub(crate) fn only_these_kinds(kinds: impl IntoIterator<Item = CredentialKind>) -> String {
    let names: Vec<&str> = kinds.into_iter().map(CredentialKind::as_str).collect();
    format!(
        "this resource accepts only these credentials: {}",
        names.join(", ")
    )
}

/// How a request's credential was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    /// `Authorization: Bearer …`
    Bearer,
    /// A named cookie.
    Cookie,
    /// A named API-key header.
    ApiKey,
}

impl CredentialKind {
    /// How many kinds there are.
    pub(crate) const COUNT: usize = 3;

    /// Every kind, in [`index`](Self::index) order.
    pub(crate) const ALL: [CredentialKind; Self::COUNT] = [
        CredentialKind::Bearer,
        CredentialKind::Cookie,
        CredentialKind::ApiKey,
    ];

    /// This kind's place in a table indexed by kind.
    pub(crate) const fn index(self) -> usize {
        match self {
            CredentialKind::Bearer => 0,
            CredentialKind::Cookie => 1,
            CredentialKind::ApiKey => 2,
        }
    }

    /// A short lowercase name, used in tracing events.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Bearer => "bearer",
            CredentialKind::Cookie => "cookie",
            CredentialKind::ApiKey => "api_key",
        }
    }
}

/// A credential where the layer found it, borrowed from the request's headers: enough to
/// recall a verdict on it (a verified-token cache hit) without taking a reference to the
/// header's buffer; [`to_owned`](Self::to_owned) only when an authenticator has to run.
pub(crate) struct Found<'h> {
    kind: CredentialKind,
    value: &'h HeaderValue,
    range: Range<usize>,
}

impl fmt::Debug for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Found")
            .field("kind", &self.kind)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl<'h> Found<'h> {
    /// The credential at `range` of a header value, whose grammar the caller checked (all but
    /// the `b64token` grammar of a bearer token, see [`PresentedCredential::check_syntax`]).
    pub(crate) fn new(kind: CredentialKind, value: &'h HeaderValue, range: Range<usize>) -> Self {
        Found { kind, value, range }
    }

    pub(crate) fn kind(&self) -> CredentialKind {
        self.kind
    }

    pub(crate) fn secret_bytes(&self) -> &'h [u8] {
        &self.value.as_bytes()[self.range.clone()]
    }

    /// The credential as authenticators take it (shares the header's buffer).
    pub(crate) fn to_owned(&self) -> PresentedCredential {
        PresentedCredential {
            kind: self.kind,
            value: self.value.clone(),
            range: self.range.clone(),
        }
    }
}

/// See [`PresentedCredential::check_syntax`].
pub(crate) fn check_syntax(kind: CredentialKind, token: &[u8]) -> Result<(), AuthError> {
    if kind != CredentialKind::Bearer || is_b64token(token) {
        return Ok(());
    }
    Err(AuthError::with_detail(
        ErrorCode::InvalidRequest,
        if token.contains(&b' ') {
            "the bearer token contains a space; send exactly one token after the scheme"
        } else {
            "the bearer token contains characters outside RFC 6750 b64token"
        },
    ))
}

/// A credential as found in a request: its kind and its secret.
///
/// The secret is a slice of the request's own header value (no copy). `Debug` never shows it.
#[derive(Clone)]
pub struct PresentedCredential {
    kind: CredentialKind,
    value: HeaderValue,
    range: Range<usize>,
}

impl PresentedCredential {
    /// A credential from a string, as if it had been found in a request (for tests and for
    /// authenticators that are called outside the layer).
    ///
    /// ```
    /// use portcullis::server::{PresentedCredential, CredentialKind};
    /// let c = PresentedCredential::new(CredentialKind::ApiKey, "k-123").unwrap();
    /// assert!(c.secret_eq("k-123"));
    /// assert_eq!(format!("{c:?}"), "PresentedCredential { kind: ApiKey, secret: \"<redacted>\" }");
    /// ```
    pub fn new(kind: CredentialKind, secret: &str) -> Option<Self> {
        let value = HeaderValue::from_str(secret).ok()?;
        let len = value.len();
        Some(PresentedCredential {
            kind,
            value,
            range: 0..len,
        })
    }

    /// The grammar check deferred at extraction: a 400 `invalid_request` error for a bearer
    /// token outside RFC 6750 `b64token` (other credentials were checked when found). The
    /// layer runs it before a custom [`Authenticator`](crate::Authenticator) is called. It is
    /// deferred because scanning a whole token is most of the cost of a cache hit: the JWT
    /// authenticator skips it for tokens it verified before, and its own base64url decoding
    /// refuses the same characters.
    ///
    /// ```
    /// use portcullis::server::{PresentedCredential, CredentialKind};
    /// let ok = PresentedCredential::new(CredentialKind::Bearer, "a.b-c_d").unwrap();
    /// assert!(ok.check_syntax().is_ok());
    /// let bad = PresentedCredential::new(CredentialKind::Bearer, "a,b").unwrap();
    /// assert_eq!(bad.check_syntax().unwrap_err().status(), 400);
    /// ```
    pub fn check_syntax(&self) -> Result<(), AuthError> {
        check_syntax(self.kind, self.secret_bytes())
    }

    /// How the credential was presented.
    pub fn kind(&self) -> CredentialKind {
        self.kind
    }

    /// The secret itself. Named so that every use is easy to find in review: never log it,
    /// never put it in an error.
    pub fn expose_secret(&self) -> &str {
        // Every constructor checked that the range holds visible ASCII.
        std::str::from_utf8(&self.value.as_bytes()[self.range.clone()]).unwrap_or_default()
    }

    /// The secret's bytes, for lookups that must not pay for a UTF-8 check.
    pub(crate) fn secret_bytes(&self) -> &[u8] {
        &self.value.as_bytes()[self.range.clone()]
    }

    /// Compare the secret with `expected` in constant time.
    pub fn secret_eq(&self, expected: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            self.expose_secret().as_bytes(),
            expected.as_bytes(),
        )
        .is_ok()
    }
}

impl fmt::Debug for PresentedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedCredential")
            .field("kind", &self.kind)
            .field("secret", &"<redacted>")
            .finish()
    }
}
