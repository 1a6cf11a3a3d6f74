//! The ways a test can make the authorization endpoint misbehave.

/// What [`AuthorizeMode::Deny`]'s `error_description` starts with: markup, a script and
/// control characters (terminal escapes, a line break, a NUL), as a hostile or broken
/// authorization server might send. A client shows it bounded and escaped, if at all.
pub const HOSTILE_DESCRIPTION: &str = concat!(
    "<script>alert(1)</script><b>denied</b>\u{1b}[31mred\u{1b}[0m\r\n",
    "Set-Cookie: x=1\u{0}\u{7}"
);

/// How the test authorization server's `/authorize` answers a valid request.
///
/// ```
/// use portcullis::testkit::AuthorizeMode;
/// let mode = AuthorizeMode::WrongIssuer("https://evil.test".into());
/// assert_ne!(mode, AuthorizeMode::Normal);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorizeMode {
    /// As an authorization server whose user already consented: redirect back at once with
    /// a code, the request's `state` and the RFC 9207 `iss` (the issuer).
    #[default]
    Normal,
    /// Redirect back with a code and a `state` other than the request's (a forged or
    /// mixed-up response).
    WrongState,
    /// Redirect back with a code and this `iss` (a mix-up attack, or a look-alike issuer such
    /// as the real one with a trailing slash).
    WrongIssuer(String),
    /// Redirect back with a code and no `iss` at all.
    OmitIssuer,
    /// The person declines: redirect back with `error=access_denied` and
    /// [`HOSTILE_DESCRIPTION`] (repeated to over 1 KiB) as its `error_description`.
    Deny,
}
