//! The character classes of HTTP authentication (RFC 9110 §5.6, RFC 6750 §2.1 and §3,
//! RFC 6265 §4.1.1, RFC 3986 §2.3), each written once for both sides.
//!
//! Byte predicates take `u8` so that parsers can run over header bytes without a UTF-8 check.

/// RFC 9110 `tchar`: what a token (an auth-scheme, a parameter name) is made of.
///
/// ```
/// use portcullis::wire::grammar::is_tchar;
/// assert!(is_tchar(b'B') && is_tchar(b'~'));
/// assert!(!is_tchar(b' ') && !is_tchar(b'"') && !is_tchar(b'='));
/// ```
pub const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// RFC 9110 `token`: one or more [`tchar`](is_tchar).
///
/// ```
/// use portcullis::wire::grammar::is_token;
/// assert!(is_token("Bearer"));
/// assert!(!is_token("") && !is_token("Be arer"));
/// ```
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// The characters of an RFC 9110 `token68` (and of an RFC 6750 `b64token`) before the padding:
/// `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`.
pub const fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// [`is_token68_char`] as a table: one lookup per byte, so a whole-token scan has no branch.
const TOKEN68: [u8; 256] = {
    let mut t = [0; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = is_token68_char(b as u8) as u8;
        b += 1;
    }
    t
};

/// RFC 6750 §2.1 `b64token` (the same as RFC 9110 `token68`):
/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// ```
/// use portcullis::wire::grammar::is_b64token;
/// assert!(is_b64token(b"eyJ.abc_-~+/=="));
/// assert!(!is_b64token(b"=") && !is_b64token(b"a=b") && !is_b64token(b"a b"));
/// ```
pub fn is_b64token(token: &[u8]) -> bool {
    let body = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    // No early exit: a branch-free AND over the bytes unrolls, and valid tokens (the common
    // case) are read to the end anyway.
    body > 0
        && token[..body]
            .iter()
            .fold(1u8, |ok, &b| ok & TOKEN68[usize::from(b)])
            == 1
}

/// RFC 6265 `cookie-octet`: printable ASCII without space, `"`, `,`, `;` and `\`.
pub const fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// Non-empty and visible ASCII only (`VCHAR`): what an API key or other opaque secret in a
/// header field may be made of.
pub fn is_visible_ascii(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_graphic)
}

/// The characters RFC 6750 §3 allows inside the quoted `error_description` and `scope`
/// values (`%x20-21 / %x23-5B / %x5D-7E`): printable ASCII without `"` and `\`, so no
/// escaping is ever needed.
pub const fn is_quotable(b: u8) -> bool {
    matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// `s` with every character outside [`is_quotable`] removed (not escaped): what a server may
/// put between the quotes of a challenge parameter.
///
/// ```
/// use portcullis::wire::grammar::quotable;
/// assert_eq!(quotable("bad \"x\" \\ é\n"), "bad x  ");
/// ```
pub fn quotable(s: &str) -> String {
    s.chars()
        .filter(|&c| u8::try_from(c).is_ok_and(is_quotable))
        .collect()
}

/// RFC 3986 percent-encoding of everything but the unreserved characters
/// (`ALPHA / DIGIT / "-" / "." / "_" / "~"`): safe in a query component and in
/// `application/x-www-form-urlencoded` bodies.
///
/// ```
/// use portcullis::wire::grammar::percent_encode;
/// assert_eq!(percent_encode("a b&c=é"), "a%20b%26c%3D%C3%A9");
/// ```
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn b64token_edges() {
        assert!(is_b64token(b"a"));
        assert!(is_b64token(b"a=="));
        assert!(!is_b64token(b"="));
        assert!(!is_b64token(b"a=b"));
        assert!(!is_b64token(b""));
    }

    #[test]
    fn classes_match_their_rfc_sets() {
        for b in 0..=255u8 {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), tchar, "{b:#x}");
            let cookie = (0x21..=0x7e).contains(&b) && !b"\",;\\".contains(&b);
            assert_eq!(is_cookie_octet(b), cookie, "{b:#x}");
            let quotable = (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\';
            assert_eq!(is_quotable(b), quotable, "{b:#x}");
        }
    }

    proptest! {
        #[test]
        fn b64token_is_body_then_padding(s in proptest::collection::vec(any::<u8>(), 0..40)) {
            let body = s.len() - s.iter().rev().take_while(|&&b| b == b'=').count();
            let expected = body > 0 && s[..body].iter().all(|&b| is_token68_char(b));
            prop_assert_eq!(is_b64token(&s), expected);
        }

        #[test]
        fn percent_encoding_round_trips(s in ".*") {
            let enc = percent_encode(&s);
            prop_assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            let mut bytes = Vec::new();
            let mut it = enc.bytes();
            while let Some(b) = it.next() {
                if b == b'%' {
                    let hex = [it.next().unwrap(), it.next().unwrap()];
                    bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).unwrap(), 16).unwrap());
                } else {
                    bytes.push(b);
                }
            }
            prop_assert_eq!(bytes, s.into_bytes());
        }

        #[test]
        fn quotable_keeps_only_quotable(s in ".*") {
            prop_assert!(quotable(&s).bytes().all(is_quotable));
        }
    }
}
