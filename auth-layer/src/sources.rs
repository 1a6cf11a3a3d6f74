//! Finding the credential in a request: `Authorization: Bearer`, a named cookie, or a named
//! API-key header.
//!
//! Scheme matching is case-insensitive (RFC 9110 §11.1); everything else is strict, and a
//! malformed credential is reported precisely (400 `invalid_request`) rather than treated as
//! missing, so a client bug surfaces as a clear error instead of a confusing 401.

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};

use portcullis_wire::grammar::{is_cookie_octet, is_tchar, is_visible_ascii};

use crate::credential::{CredentialKind, Found};
use crate::error::{AuthError, ErrorCode};

/// Where the layer looks for credentials.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub(crate) bearer: bool,
    pub(crate) cookie: Option<String>,
    pub(crate) api_key: Option<HeaderName>,
    /// When false (the default, RFC 6750 §2), a credential in two places is a 400; when true
    /// the first by precedence (header, API key, cookie) wins.
    pub(crate) allow_multiple: bool,
    /// Where [`extract`](Self::extract) looks, by kind: everywhere for a built layer (the
    /// `Authorization` header included when bearer tokens are not accepted, so that another
    /// scheme is answered `unsupported_scheme`); in a copy made by
    /// [`AuthLayer::accepting`](crate::AuthLayer::accepting), only where its kinds are sent.
    /// The other places are just headers to its routes (see
    /// [`carries_unread`](Self::carries_unread) for what a credential there is answered), still
    /// marked sensitive and stripped: the service does both by the places configured, not by
    /// `reads`.
    pub(crate) reads: [bool; CredentialKind::COUNT],
}

const TWO_PLACES: &str =
    "credentials were sent in more than one place; send exactly one (RFC 6750 section 2)";

impl Sources {
    /// Whether credentials of `kind` are read here (a copy made by `accepting` reads some).
    pub(crate) fn reads(&self, kind: CredentialKind) -> bool {
        self.reads[kind.index()]
    }

    /// The API-key header, when it is read here.
    pub(crate) fn read_api_key(&self) -> Option<&HeaderName> {
        self.api_key
            .as_ref()
            .filter(|_| self.reads(CredentialKind::ApiKey))
    }

    /// The credential cookie's name, when it is read here.
    pub(crate) fn read_cookie(&self) -> Option<&str> {
        self.cookie
            .as_deref()
            .filter(|_| self.reads(CredentialKind::Cookie))
    }

    /// Find the one credential of the request, or `Ok(None)` when there is none.
    pub(crate) fn extract<'h>(
        &self,
        headers: &'h HeaderMap,
    ) -> Result<Option<Found<'h>>, AuthError> {
        let bearer = if self.reads(CredentialKind::Bearer) {
            self.authorization(headers)?
        } else {
            None
        };
        let api_key = match self.read_api_key() {
            Some(name) => api_key(headers, name)?,
            None => None,
        };
        let cookie = match self.read_cookie() {
            Some(name) => cookie(headers, name)?,
            None => None,
        };
        let found = bearer.is_some() as u8 + api_key.is_some() as u8 + cookie.is_some() as u8;
        if found > 1 && !self.allow_multiple {
            return Err(AuthError::with_detail(
                ErrorCode::InvalidRequest,
                TWO_PLACES,
            ));
        }
        Ok(bearer.or(api_key).or(cookie))
    }

    /// Whether the request carries, in a place this copy does not read, a credential of a kind
    /// the layer it was copied from reads: a `Bearer` Authorization header, the API-key header,
    /// the credential cookie — present, well-formed or not, as that layer would have seen it.
    /// Asked only once [`extract`](Self::extract) found nothing, to tell "no credential" from
    /// "a credential of another kind".
    pub(crate) fn carries_unread(&self, headers: &HeaderMap) -> bool {
        let unread = |kind: CredentialKind| !self.reads(kind);
        let bearer = unread(CredentialKind::Bearer)
            && self.bearer
            && headers.get_all(AUTHORIZATION).iter().any(|value| {
                let scheme = value.as_bytes().split(|&b| b == b' ').next();
                scheme.is_some_and(|s| s.eq_ignore_ascii_case(b"bearer"))
            });
        let api_key = unread(CredentialKind::ApiKey)
            && (self.api_key.as_ref()).is_some_and(|name| headers.contains_key(name));
        // A cookie sent twice or malformed is an error to the layer that reads it: present.
        let cookie = unread(CredentialKind::Cookie)
            && (self.cookie.as_ref())
                .is_some_and(|name| !matches!(cookie(headers, name), Ok(None)));
        bearer || api_key || cookie
    }

    fn authorization<'h>(&self, headers: &'h HeaderMap) -> Result<Option<Found<'h>>, AuthError> {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(invalid(
                "the request carries more than one Authorization header",
            ));
        }
        parse_authorization(value, self.bearer).map(Some)
    }
}

fn invalid(detail: &'static str) -> AuthError {
    AuthError::with_detail(ErrorCode::InvalidRequest, detail)
}

/// Parse one `Authorization` value as `Bearer 1*SP token`; the `b64token` grammar of the token
/// is checked later, by [`PresentedCredential::check_syntax`](crate::PresentedCredential::check_syntax).
pub(crate) fn parse_authorization(
    value: &HeaderValue,
    bearer_accepted: bool,
) -> Result<Found<'_>, AuthError> {
    let bytes = value.as_bytes();
    let scheme_end = bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len());
    let scheme = &bytes[..scheme_end];
    if scheme.is_empty() || !scheme.iter().all(|&b| is_tchar(b)) {
        return Err(invalid(
            "the Authorization header does not start with an authentication scheme",
        ));
    }
    if !bearer_accepted || !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthError::with_detail(
            ErrorCode::UnsupportedScheme,
            "the Authorization scheme is not accepted here; use Bearer",
        ));
    }
    let rest = &bytes[scheme_end..];
    let start = scheme_end + rest.iter().take_while(|&&b| b == b' ').count();
    let token = &bytes[start..];
    if token.is_empty() {
        return Err(invalid("the Bearer scheme is not followed by a token"));
    }
    Ok(Found::new(
        CredentialKind::Bearer,
        value,
        start..bytes.len(),
    ))
}

fn api_key<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<Found<'h>>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid("the API key header was sent more than once"));
    }
    if value.as_bytes().is_empty() {
        return Err(invalid("the API key header is empty"));
    }
    if !is_visible_ascii(value.as_bytes()) {
        return Err(invalid(
            "the API key contains spaces or characters that are not visible ASCII",
        ));
    }
    Ok(Some(Found::new(
        CredentialKind::ApiKey,
        value,
        0..value.len(),
    )))
}

/// Find cookie `name` in every `Cookie` header (`name=value; name2=value2`).
pub(crate) fn cookie<'h>(
    headers: &'h HeaderMap,
    name: &str,
) -> Result<Option<Found<'h>>, AuthError> {
    let mut found = None;
    for value in headers.get_all(COOKIE) {
        let bytes = value.as_bytes();
        let mut pos = 0;
        for pair in bytes.split(|&b| b == b';') {
            let pair_start = pos;
            pos += pair.len() + 1;
            let lead = pair.iter().take_while(|&&b| b == b' ').count();
            let pair = &pair[lead..];
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if &pair[..eq] != name.as_bytes() {
                continue;
            }
            if found.is_some() {
                return Err(invalid("the credential cookie was sent more than once"));
            }
            let mut start = pair_start + lead + eq + 1;
            let mut end = pair_start + lead + pair.len();
            // Trailing spaces before the next ';' are not part of the value.
            while end > start && bytes[end - 1] == b' ' {
                end -= 1;
            }
            if end - start >= 2 && bytes[start] == b'"' && bytes[end - 1] == b'"' {
                start += 1;
                end -= 1;
            }
            let secret = &bytes[start..end];
            if secret.is_empty() {
                return Err(invalid("the credential cookie is empty"));
            }
            if !secret.iter().all(|&b| is_cookie_octet(b)) {
                return Err(invalid(
                    "the credential cookie contains characters outside RFC 6265 cookie-octet",
                ));
            }
            found = Some(Found::new(CredentialKind::Cookie, value, start..end));
        }
    }
    Ok(found)
}

/// Remove cookie `name` from every `Cookie` header, keeping the other cookies (and their
/// order); a header left empty is dropped.
pub(crate) fn remove_cookie(headers: &mut HeaderMap, name: &str) {
    let http::header::Entry::Occupied(entry) = headers.entry(COOKIE) else {
        return;
    };
    let (_, values) = entry.remove_entry_mult();
    let kept: Vec<HeaderValue> = values
        .filter_map(|value| {
            let rest: Vec<&[u8]> = value
                .as_bytes()
                .split(|&b| b == b';')
                .map(|pair| {
                    let lead = pair.iter().take_while(|&&b| b == b' ').count();
                    &pair[lead..]
                })
                .filter(|pair| {
                    let key = pair.split(|&b| b == b'=').next().unwrap_or_default();
                    !pair.is_empty() && key != name.as_bytes()
                })
                .collect();
            if rest.is_empty() {
                return None;
            }
            let mut v = HeaderValue::from_bytes(&rest.join(&b"; "[..])).ok()?;
            // The other cookies may be credentials of other systems.
            v.set_sensitive(true);
            Some(v)
        })
        .collect();
    for v in kept {
        headers.append(COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> Sources {
        Sources {
            bearer: true,
            cookie: Some("at".into()),
            api_key: Some(HeaderName::from_static("x-api-key")),
            allow_multiple: false,
            reads: [true; CredentialKind::COUNT],
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn code(pairs: &[(&str, &str)]) -> ErrorCode {
        sources().extract(&headers(pairs)).unwrap_err().code()
    }

    fn secret(pairs: &[(&str, &str)]) -> (CredentialKind, String) {
        let h = headers(pairs);
        let c = sources().extract(&h).unwrap().unwrap();
        (c.kind(), c.to_owned().expose_secret().to_owned())
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_allows_several_spaces() {
        assert_eq!(secret(&[("authorization", "Bearer abc")]).1, "abc");
        assert_eq!(
            secret(&[("authorization", "bEaReR    a.b-c_~+/==")]).1,
            "a.b-c_~+/=="
        );
    }

    #[test]
    fn malformed_bearer_values_are_invalid_request() {
        for v in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a=b",
            "Bearer ==",
            "Bearer a,b",
        ] {
            let h = headers(&[("authorization", v)]);
            // What the layer does: extract, then the deferred grammar check.
            let err = sources()
                .extract(&h)
                .and_then(|c| c.map_or(Ok(()), |c| c.to_owned().check_syntax()))
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest, "{v:?}");
            let token = v.trim_start_matches("Bearer").trim();
            if !token.is_empty() {
                assert!(
                    !err.detail().contains(token),
                    "detail echoes the token of {v:?}"
                );
            }
        }
        assert_eq!(
            code(&[("authorization", "Bearer\tabc")]),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn other_schemes_are_unsupported() {
        for v in ["Basic dXNlcjpwYXNz", "Token abc", "Bearerx abc"] {
            assert_eq!(
                code(&[("authorization", v)]),
                ErrorCode::UnsupportedScheme,
                "{v}"
            );
        }
    }

    #[test]
    fn two_authorization_headers_are_invalid_request() {
        assert_eq!(
            code(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn credentials_in_two_places_are_invalid_request_unless_allowed() {
        let h = headers(&[("authorization", "Bearer a"), ("cookie", "at=b")]);
        assert_eq!(
            sources().extract(&h).unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
        let lenient = Sources {
            allow_multiple: true,
            ..sources()
        };
        let c = lenient.extract(&h).unwrap().unwrap();
        assert_eq!(c.kind(), CredentialKind::Bearer);
    }

    #[test]
    fn cookie_is_found_among_others_and_unquoted() {
        assert_eq!(
            secret(&[("cookie", "theme=dark; at=tok.en; lang=en")]),
            (CredentialKind::Cookie, "tok.en".into())
        );
        assert_eq!(secret(&[("cookie", "at=\"q\"")]).1, "q");
        assert_eq!(secret(&[("cookie", "a=1"), ("cookie", "at=x ")]).1, "x");
        assert!(
            sources()
                .extract(&headers(&[("cookie", "att=x; xat=y")]))
                .unwrap()
                .is_none()
        );
        assert_eq!(code(&[("cookie", "at=a; at=b")]), ErrorCode::InvalidRequest);
        assert_eq!(code(&[("cookie", "at=")]), ErrorCode::InvalidRequest);
    }

    #[test]
    fn api_key_header_is_strict() {
        assert_eq!(
            secret(&[("x-api-key", "k1")]),
            (CredentialKind::ApiKey, "k1".into())
        );
        assert_eq!(code(&[("x-api-key", "")]), ErrorCode::InvalidRequest);
        assert_eq!(code(&[("x-api-key", "a b")]), ErrorCode::InvalidRequest);
        assert_eq!(
            code(&[("x-api-key", "a"), ("x-api-key", "b")]),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn nothing_found_is_none() {
        assert!(sources().extract(&HeaderMap::new()).unwrap().is_none());
    }

    /// Where a narrowed copy does not look, even a malformed or second credential is not
    /// extracted (no error, no credential). That those headers are still marked sensitive and
    /// stripped is the service's part, tested there
    /// (`a_copy_marks_and_strips_places_it_does_not_read`).
    #[test]
    fn places_not_read_are_just_headers() {
        let only = |kind: CredentialKind| {
            let mut reads = [false; CredentialKind::COUNT];
            reads[kind.index()] = true;
            Sources { reads, ..sources() }
        };
        let h = headers(&[
            ("authorization", "Basic dXNlcjpwYXNz"),
            ("x-api-key", "k1"),
            ("cookie", "at=x; at=y"),
        ]);
        let found = only(CredentialKind::ApiKey).extract(&h).unwrap().unwrap();
        assert_eq!(found.kind(), CredentialKind::ApiKey);
        let h = headers(&[("x-api-key", "a b"), ("cookie", "at=tok")]);
        assert!(only(CredentialKind::Bearer).extract(&h).unwrap().is_none());
        let found = only(CredentialKind::Cookie).extract(&h).unwrap().unwrap();
        assert_eq!(found.kind(), CredentialKind::Cookie);
    }

    #[test]
    fn a_credential_of_an_unread_kind_is_told_apart_from_none() {
        let only = |kind: CredentialKind| {
            let mut reads = [false; CredentialKind::COUNT];
            reads[kind.index()] = true;
            Sources { reads, ..sources() }
        };
        let api_key_copy = only(CredentialKind::ApiKey);
        for present in [
            &[("authorization", "Bearer abc")][..],
            &[("authorization", "bearer")],
            &[("cookie", "theme=dark; at=tok")],
            &[("cookie", "at=a; at=b")],
        ] {
            assert!(
                api_key_copy.carries_unread(&headers(present)),
                "{present:?}"
            );
        }
        for absent in [
            &[][..],
            &[("authorization", "Basic dXNlcjpwYXNz")],
            &[("authorization", "Bearerx abc")],
            &[("cookie", "att=tok; theme=dark")],
            &[("x-other", "k1")],
        ] {
            assert!(!api_key_copy.carries_unread(&headers(absent)), "{absent:?}");
        }
        // Only kinds the original layer reads count: without bearer tokens configured, a
        // Bearer header is no credential of it.
        let no_bearer = Sources {
            bearer: false,
            ..only(CredentialKind::ApiKey)
        };
        assert!(!no_bearer.carries_unread(&headers(&[("authorization", "Bearer abc")])));
        // What the copy reads itself is not "unread".
        let bearer_copy = only(CredentialKind::Bearer);
        assert!(!bearer_copy.carries_unread(&headers(&[("authorization", "Bearer abc")])));
        assert!(bearer_copy.carries_unread(&headers(&[("x-api-key", "k1")])));
        // A built layer reads every place: nothing is ever unread.
        let h = headers(&[
            ("authorization", "Bearer a"),
            ("x-api-key", "k"),
            ("cookie", "at=t"),
        ]);
        assert!(!sources().carries_unread(&h));
    }

    #[test]
    fn removing_the_credential_cookie_keeps_the_others() {
        let mut h = headers(&[("cookie", "a=1; sid=secret;b=2"), ("cookie", "sid=x")]);
        h.append(COOKIE, HeaderValue::from_static("c=3"));
        remove_cookie(&mut h, "sid");
        let left: Vec<_> = h
            .get_all(COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(left, ["a=1; b=2", "c=3"]);
        assert!(h.get_all(COOKIE).iter().all(HeaderValue::is_sensitive));
        // A cookie whose name only starts with the credential's stays.
        let mut h = headers(&[("cookie", "sid2=keep; sid=go")]);
        remove_cookie(&mut h, "sid");
        assert_eq!(h[COOKIE], "sid2=keep");
    }
}
