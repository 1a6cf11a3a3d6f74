//! Reading what a server says about an authentication failure: the `WWW-Authenticate`
//! challenges (RFC 9110 §11.6.1 grammar, quoted strings, several challenges per header) and an
//! RFC 9457 problem body, into one typed [`AuthFailure`].

use std::fmt;

use http::{HeaderMap, StatusCode};
use serde::Deserialize;

/// One challenge: a scheme and either auth-params or a token68.
#[derive(Debug, Clone, PartialEq, Eq)]
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
pub struct ChallengeParseError {
    /// Byte offset in the header value.
    pub at: usize,
    /// What was expected.
    pub why: &'static str,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
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
/// use refresh_layer::parse_challenges;
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
            while c.peek().is_some_and(is_token68) {
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

/// An RFC 9457 problem body, with the members Portcullis servers add.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct ProblemDetails {
    /// `type` URI.
    #[serde(rename = "type")]
    pub type_uri: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `status`.
    pub status: Option<u16>,
    /// `detail`.
    pub detail: Option<String>,
    /// The stable machine-readable `code` (e.g. `token_expired`).
    pub code: Option<String>,
    /// The RFC 6750 `error` mirrored from the challenge.
    pub error: Option<String>,
    /// Space-separated scopes the request needed.
    pub scope: Option<String>,
    /// Scopes the request needed, as an array.
    #[serde(default)]
    pub required_scopes: Vec<String>,
}

/// What a server said about a failed request: status, challenges and problem body.
///
/// ```
/// use refresh_layer::AuthFailure;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("www-authenticate", r#"Bearer realm="api", error="invalid_token""#.parse().unwrap());
/// headers.insert("content-type", "application/problem+json".parse().unwrap());
/// let f = AuthFailure::parse(http::StatusCode::UNAUTHORIZED, &headers, br#"{"code":"token_expired"}"#);
/// assert_eq!(f.bearer_error(), Some("invalid_token"));
/// assert_eq!(f.code(), Some("token_expired"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AuthFailure {
    /// The response status.
    pub status: StatusCode,
    /// Every challenge of every `WWW-Authenticate` field (unparseable fields are skipped).
    pub challenges: Vec<Challenge>,
    /// The problem body, if the response had a JSON one.
    pub problem: Option<ProblemDetails>,
}

impl AuthFailure {
    /// Read a failure from a response's status, headers and (possibly empty) body.
    pub fn parse(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let challenges = Self::challenges_of(headers);
        let is_json = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let ct = ct.split(';').next().unwrap_or("").trim();
                ct.eq_ignore_ascii_case("application/problem+json")
                    || ct.eq_ignore_ascii_case("application/json")
            });
        let problem = if is_json {
            serde_json::from_slice(body).ok()
        } else {
            None
        };
        AuthFailure {
            status,
            challenges,
            problem,
        }
    }

    pub(crate) fn challenges_of(headers: &HeaderMap) -> Vec<Challenge> {
        headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| parse_challenges(v).ok())
            .flatten()
            .collect()
    }

    /// The first Bearer challenge, if any.
    pub fn bearer(&self) -> Option<&Challenge> {
        self.challenges.iter().find(|c| c.is("Bearer"))
    }

    /// The RFC 6750 `error` of the Bearer challenge (`invalid_token`, `insufficient_scope`, …).
    pub fn bearer_error(&self) -> Option<&str> {
        self.bearer()?.param("error")
    }

    /// The problem body's stable `code`.
    pub fn code(&self) -> Option<&str> {
        self.problem.as_ref()?.code.as_deref()
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(code) = self.code() {
            write!(f, " {code}")?;
        } else if let Some(e) = self.bearer_error() {
            write!(f, " {e}")?;
        }
        Ok(())
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
        fn round_trips_rendered_params(realm in "[ -!#-\\[\\]-~]{0,20}", err in "[a-z_]{1,12}") {
            let v = format!("Bearer realm=\"{realm}\", error=\"{err}\"");
            let c = parse_challenges(&v).unwrap();
            proptest::prop_assert_eq!(c[0].param("realm"), Some(realm.as_str()));
            proptest::prop_assert_eq!(c[0].param("error"), Some(err.as_str()));
        }
    }
}
