//! `application/x-www-form-urlencoded` bodies, as token and introspection endpoints read them
//! (RFC 6749 Appendix B, the WHATWG URL standard's serializer).
//!
//! ```
//! use portcullis::wire::form::form_encode;
//! assert_eq!(
//!     form_encode(&[("grant_type", "client_credentials"), ("scope", "read write")]),
//!     "grant_type=client_credentials&scope=read+write"
//! );
//! ```

/// `name=value` pairs joined with `&`, each side encoded with [`form_component`].
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_component(k), form_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One name or value: the WHATWG `application/x-www-form-urlencoded` byte serializer
/// (alphanumerics and `*-._` as they are, space as `+`, every other byte of the UTF-8 as
/// `%XX`).
///
/// ```
/// use portcullis::wire::form::form_component;
/// assert_eq!(form_component("a b+c/ü"), "a+b%2Bc%2F%C3%BC");
/// ```
pub fn form_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_follows_appendix_b() {
        assert_eq!(
            form_encode(&[("a b", "c&d=e+f/ü")]),
            "a+b=c%26d%3De%2Bf%2F%C3%BC"
        );
    }

    /// RFC 6749 Appendix B's example: the client id ` %&+£€` as it goes into a form or into
    /// HTTP Basic.
    #[test]
    fn the_rfc_6749_appendix_b_example_encodes_as_written() {
        assert_eq!(form_component(" %&+£€"), "+%25%26%2B%C2%A3%E2%82%AC");
        assert_eq!(form_encode(&[]), "");
        assert_eq!(form_encode(&[("k", "")]), "k=");
    }
}
