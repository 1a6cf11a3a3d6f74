//! What a body is sent as: only `application/json` in UTF-8, uncompressed, is read the same
//! way by this layer and by every server behind it.

/// Whether the request has exactly one `Content-Type`, `application/json` (any case) with
/// well-formed parameters, none of them a `charset` other than `utf-8` (any case, quoted or
/// not) and at most one `charset`. Anything else, a missing header included, is not: which
/// encoding a server would guess for it is its own affair.
pub(super) fn is_utf8_json(headers: &http::HeaderMap) -> bool {
    let mut values = headers.get_all(http::header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let value = value.as_bytes();
    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    let (media_type, mut rest) = value.split_at(end);
    if !media_type
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/json")
    {
        return false;
    }
    let mut charset = false;
    // RFC 9110 §5.6.6: *( OWS ";" OWS [ token "=" ( token / quoted-string ) ] )
    loop {
        rest = rest.trim_ascii_start();
        let Some(after) = rest.strip_prefix(b";") else {
            return rest.is_empty();
        };
        rest = after.trim_ascii_start();
        if rest.is_empty() || rest[0] == b';' {
            continue;
        }
        let name_len = rest.iter().take_while(|&&b| is_tchar(b)).count();
        let (name, after) = rest.split_at(name_len);
        let Some(after) = after.strip_prefix(b"=") else {
            return false;
        };
        let (param, after) = if let Some(quoted) = after.strip_prefix(b"\"") {
            // Escapes in a charset's name have no use; refusing them keeps one reading.
            let Some(close) = quoted.iter().position(|&b| b == b'"' || b == b'\\') else {
                return false;
            };
            if quoted[close] != b'"' {
                return false;
            }
            (&quoted[..close], &quoted[close + 1..])
        } else {
            let len = after.iter().take_while(|&&b| is_tchar(b)).count();
            after.split_at(len)
        };
        if name.is_empty() || param.is_empty() {
            return false;
        }
        if name.eq_ignore_ascii_case(b"charset") {
            if charset || !param.eq_ignore_ascii_case(b"utf-8") {
                return false;
            }
            charset = true;
        }
        rest = after;
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A `Content-Encoding` other than `identity`: the bytes are not the JSON a server inside
/// (behind a decompression layer) would read.
pub(super) fn is_encoded(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn utf8_json_content_types() {
        let is = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_str(v).unwrap(),
            );
            is_utf8_json(&h)
        };
        for ok in [
            "application/json",
            "APPLICATION/Json",
            "application/json;charset=utf-8",
            "application/json; charset=\"UTF-8\"",
            "application/json ; CHARSET=Utf-8 ; ; q=1",
            "application/json; profile=\"a;b\"; charset=utf-8",
        ] {
            assert!(is(ok), "{ok}");
        }
        for refused in [
            "",
            "text/plain",
            "application/json-rpc",
            "application/jsonx",
            "application/json, text/plain",
            "application/json; charset=utf-16",
            "application/json; charset=utf8",
            "application/json; charset=\"utf-8",
            "application/json; charset=\"utf\\-8\"",
            "application/json; charset=utf-8; charset=utf-8",
            "application/json; charset=",
            "application/json; charset",
            "application/json; =utf-8",
            "application/json; charset=utf-8 x",
            "application/json; profile=\"a;charset=utf-16\"x",
        ] {
            assert!(!is(refused), "{refused}");
        }
        assert!(!is_utf8_json(&http::HeaderMap::new()), "no Content-Type");
        let mut two = http::HeaderMap::new();
        for v in ["application/json", "application/json"] {
            two.append(http::header::CONTENT_TYPE, HeaderValue::from_static(v));
        }
        assert!(!is_utf8_json(&two), "two Content-Type fields");
    }
}
