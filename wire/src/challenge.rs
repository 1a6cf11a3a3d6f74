//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1): parsing every challenge of a field value
//! (quoted strings, token68, several challenges per field), and rendering the ones a server
//! sends (RFC 6750 §3).

use std::fmt::Write as _;

use crate::grammar::{is_tchar, is_token, is_token68_char, quotable};

/// One challenge: a scheme and either auth-params or a token68.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Challenge {
    /// The auth-scheme as sent (compare with [`Challenge::is`]).
    pub scheme: String,
    /// Parameters in order; names lowercased (they are case-insensitive), values unquoted.
    pub params: Vec<(String, String)>,
    /// The token68 form (`Negotiate abc==`), when used instead of parameters.
    pub token68: Option<String>,
}

impl Challenge {
    /// True when the scheme is `scheme`, ignoring case.
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The first value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a `WWW-Authenticate` value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed WWW-Authenticate at byte {at}: {why}")]
#[non_exhaustive]
pub struct ChallengeParseError {
    /// Byte offset in the header value.
    pub at: usize,
    /// What was expected.
    pub why: &'static str,
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    fn err(&self, why: &'static str) -> ChallengeParseError {
        ChallengeParseError { at: self.i, why }
    }

    fn quoted(&mut self) -> Result<String, ChallengeParseError> {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated quoted-string")),
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out)
                        .map_err(|_| self.err("quoted-string is not UTF-8"));
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b) if b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80 => {
                            out.push(b);
                            self.i += 1;
                        }
                        _ => return Err(self.err("bad quoted-pair")),
                    }
                }
                Some(b)
                    if b == b'\t'
                        || b == b' '
                        || b == 0x21
                        || (0x23..=0x7e).contains(&b)
                        || b >= 0x80 =>
                {
                    out.push(b);
                    self.i += 1;
                }
                Some(_) => return Err(self.err("control character in quoted-string")),
            }
        }
    }

    /// After a comma: does an auth-param (`token BWS "="`, not a token68's trailing `=`) follow?
    fn param_follows(&self) -> bool {
        let mut j = self.i;
        while self.s.get(j).copied().is_some_and(is_tchar) {
            j += 1;
        }
        if j == self.i {
            return false;
        }
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if self.s.get(j) != Some(&b'=') {
            return false;
        }
        // `abc==` or `abc=,` is a token68 with padding, not a parameter.
        j += 1;
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        !matches!(self.s.get(j), None | Some(b'=' | b','))
    }
}

/// Parse one `WWW-Authenticate` field value into its challenges.
///
/// ```
/// use portcullis::wire::parse_challenges;
/// let c = parse_challenges(r#"Bearer realm="api", error="invalid_token", Basic realm="x""#).unwrap();
/// assert_eq!(c.len(), 2);
/// assert_eq!(c[0].param("error"), Some("invalid_token"));
/// assert!(c[1].is("basic"));
/// ```
pub fn parse_challenges(value: &str) -> Result<Vec<Challenge>, ChallengeParseError> {
    let mut c = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        // Empty list elements are allowed (`1#element` with empty items per RFC 9110 §5.6.1).
        while matches!(c.peek(), Some(b' ' | b'\t' | b',')) {
            c.i += 1;
        }
        if c.peek().is_none() {
            break;
        }
        let scheme = c.token();
        if scheme.is_empty() {
            return Err(c.err("expected an auth-scheme"));
        }
        let mut ch = Challenge {
            scheme: String::from_utf8_lossy(scheme).into_owned(),
            params: Vec::new(),
            token68: None,
        };
        let before_space = c.i;
        c.ows();
        let had_space = c.i > before_space;
        if had_space && c.peek().is_some_and(|b| b != b',') && !c.param_follows() {
            let start = c.i;
            while c.peek().is_some_and(is_token68_char) {
                c.i += 1;
            }
            while c.peek() == Some(b'=') {
                c.i += 1;
            }
            if c.i == start {
                return Err(c.err("expected token68 or auth-param"));
            }
            ch.token68 = Some(String::from_utf8_lossy(&c.s[start..c.i]).into_owned());
            c.ows();
            if c.peek().is_some_and(|b| b != b',') {
                return Err(c.err("expected ',' after token68"));
            }
        } else if had_space {
            loop {
                c.ows();
                if !c.param_follows() {
                    break;
                }
                let name = c.token().to_ascii_lowercase();
                c.ows();
                c.i += 1; // '=' (checked by param_follows)
                c.ows();
                let value = match c.peek() {
                    Some(b'"') => c.quoted()?,
                    _ => {
                        let t = c.token();
                        if t.is_empty() {
                            return Err(c.err("expected a token or quoted-string value"));
                        }
                        String::from_utf8_lossy(t).into_owned()
                    }
                };
                ch.params
                    .push((String::from_utf8_lossy(&name).into_owned(), value));
                c.ows();
                match c.peek() {
                    None => break,
                    Some(b',') => {
                        c.i += 1;
                        while matches!(c.peek(), Some(b' ' | b'\t' | b',')) {
                            c.i += 1;
                        }
                    }
                    Some(_) => return Err(c.err("expected ',' between auth-params")),
                }
            }
        }
        out.push(ch);
    }
    Ok(out)
}

/// Renders one challenge: `Scheme name="value", name2="value2"`.
///
/// Values are written as quoted strings with every character outside
/// [`grammar::is_quotable`](crate::grammar::is_quotable) removed (RFC 6750 §3 allows no
/// escapes in `error_description` and `scope`), so the result is always a valid header value.
///
/// ```
/// use portcullis::wire::ChallengeBuilder;
/// let c = ChallengeBuilder::new("Bearer")
///     .unwrap()
///     .param("realm", "api")
///     .param("error", "invalid_token")
///     .param("error_description", "bad \"x\"\n")
///     .finish();
/// assert_eq!(c, r#"Bearer realm="api", error="invalid_token", error_description="bad x""#);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ChallengeBuilder {
    out: String,
    params: usize,
}

/// An auth-scheme that is not an RFC 9110 token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an authentication scheme is an RFC 9110 token")]
pub struct InvalidScheme;

impl ChallengeBuilder {
    /// Start a challenge for `scheme`.
    pub fn new(scheme: &str) -> Result<Self, InvalidScheme> {
        if !is_token(scheme) {
            return Err(InvalidScheme);
        }
        Ok(ChallengeBuilder {
            out: scheme.to_owned(),
            params: 0,
        })
    }

    /// Add `name="value"`. `name` is written as given (use lowercase RFC 6750 names); `value`
    /// keeps only its quotable characters.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        debug_assert!(is_token(name), "a parameter name is a token");
        self.out.push_str(if self.params == 0 { " " } else { ", " });
        self.params += 1;
        let _ = write!(self.out, "{name}=\"{}\"", quotable(value));
        self
    }

    /// The rendered challenge.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_strings_with_commas_and_escapes() {
        let c = parse_challenges(r#"Bearer realm="a, \"b\"", scope="x y""#).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("realm"), Some(r#"a, "b""#));
        assert_eq!(c[0].param("scope"), Some("x y"));
    }

    #[test]
    fn parses_several_challenges_and_token68() {
        let c = parse_challenges(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple", Negotiate abc==,Bearer"#,
        )
        .unwrap();
        let schemes: Vec<_> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Newauth", "Basic", "Negotiate", "Bearer"]);
        assert_eq!(c[0].param("type"), Some("1"));
        assert_eq!(c[2].token68.as_deref(), Some("abc=="));
        assert!(c[3].params.is_empty());
    }

    #[test]
    fn param_names_are_case_insensitive_and_bws_allowed() {
        let c = parse_challenges(r#"bearer REALM = "x" , Error=invalid_token"#).unwrap();
        assert!(c[0].is("Bearer"));
        assert_eq!(c[0].param("realm"), Some("x"));
        assert_eq!(c[0].param("error"), Some("invalid_token"));
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        for bad in [
            r#"Bearer realm="x"#,
            "=",
            r#"Bearer realm="x" y"#,
            "Bearer a=\"",
            "Bearer a b",
        ] {
            assert!(parse_challenges(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,64}") {
            let _ = parse_challenges(&s);
        }

        #[test]
        fn what_the_builder_renders_parses_back(
            realm in "\\PC{0,20}",
            desc in "\\PC{0,40}",
            scope in "[a-z:]{1,8}( [a-z:]{1,8}){0,3}",
        ) {
            let sent = ChallengeBuilder::new("Bearer")
                .unwrap()
                .param("realm", &realm)
                .param("error_description", &desc)
                .param("scope", &scope)
                .finish();
            proptest::prop_assert!(http::HeaderValue::from_str(&sent).is_ok());
            let c = parse_challenges(&sent).unwrap();
            proptest::prop_assert_eq!(c.len(), 1);
            let (realm, desc) = (quotable(&realm), quotable(&desc));
            proptest::prop_assert_eq!(c[0].param("realm"), Some(realm.as_str()));
            proptest::prop_assert_eq!(c[0].param("error_description"), Some(desc.as_str()));
            proptest::prop_assert_eq!(c[0].param("scope"), Some(scope.as_str()));
        }

        #[test]
        fn round_trips_rendered_params(realm in "[ -!#-\\[\\]-~]{0,20}", err in "[a-z_]{1,12}") {
            let v = format!("Bearer realm=\"{realm}\", error=\"{err}\"");
            let c = parse_challenges(&v).unwrap();
            proptest::prop_assert_eq!(c[0].param("realm"), Some(realm.as_str()));
            proptest::prop_assert_eq!(c[0].param("error"), Some(err.as_str()));
        }
    }
}
