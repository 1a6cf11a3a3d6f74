//! The JOSE header: what can be decided from it without the key, and a per-thread memo of the
//! last one read.
//!
//! An issuer signs every token with the same header (per key), so nearly every token a server
//! sees carries a header it has read before. Reading one (base64url, JSON, the algorithm's
//! name, the `kid` copied out) costs about a tenth of an HS256 verification. The memo is one
//! slot per thread, not a shared map: no lock, no contention between cores, nothing an
//! attacker can grow. It answers only for the exact bytes it read, and for the authenticator
//! that read them, since the `typ` check depends on its configuration. A header that was
//! refused is never remembered.

use std::borrow::Cow;
use std::cell::RefCell;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use crate::error::{AuthError, ErrorCode};

/// A token refused as malformed, with what was wrong with it.
pub(super) fn malformed(detail: &'static str) -> AuthError {
    AuthError::with_detail(ErrorCode::TokenMalformed, detail)
}

/// What a JOSE header decided: the algorithm and the key id.
#[derive(Clone)]
pub(super) struct JoseHeader {
    pub(super) alg: Algorithm,
    pub(super) kid: Option<Arc<str>>,
}

/// Headers longer than this are read every time (a memo slot holds at most this much).
const MEMO_MAX: usize = 512;

/// Identifies an authenticator's header rules for the memo.
pub(super) fn next_reader_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

struct Memo {
    reader: u64,
    bytes: Box<[u8]>,
    header: JoseHeader,
}

thread_local! {
    static LAST: RefCell<Option<Memo>> = const { RefCell::new(None) };
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    crit: Option<serde::de::IgnoredAny>,
}

/// `typ` without an `application/` prefix (RFC 7515 §4.1.9). Compared as bytes: the header
/// is attacker-chosen, and slicing a `str` at a byte offset panics inside a multi-byte
/// character (`"applicationé/…"`).
pub(super) fn normalize_typ(t: &str) -> &str {
    const PREFIX: &[u8] = b"application/";
    match t.as_bytes().split_at_checked(PREFIX.len()) {
        Some((head, _)) if head.eq_ignore_ascii_case(PREFIX) => &t[PREFIX.len()..],
        _ => t,
    }
}

/// Read the base64url header segment `encoded` with `reader`'s rules (`token_type`: the `typ`
/// required, already normalized), from the memo when this thread read the same bytes for the
/// same reader last.
pub(super) fn read(
    reader: u64,
    encoded: &[u8],
    token_type: Option<&str>,
) -> Result<JoseHeader, AuthError> {
    let remembered = LAST.with_borrow(|last| match last {
        Some(m) if m.reader == reader && *m.bytes == *encoded => Some(m.header.clone()),
        _ => None,
    });
    if let Some(header) = remembered {
        return Ok(header);
    }
    let header = parse(encoded, token_type)?;
    if encoded.len() <= MEMO_MAX {
        LAST.set(Some(Memo {
            reader,
            bytes: encoded.into(),
            header: header.clone(),
        }));
    }
    Ok(header)
}

fn parse(encoded: &[u8], token_type: Option<&str>) -> Result<JoseHeader, AuthError> {
    let json = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| malformed("the JOSE header is not base64url"))?;
    let header: Header<'_> = serde_json::from_slice(&json)
        .map_err(|_| malformed("the JOSE header is not a JSON object"))?;
    let alg_name = header
        .alg
        .ok_or_else(|| malformed("the JOSE header has no alg"))?;
    let alg = Algorithm::from_str(&alg_name).map_err(|_| {
        AuthError::with_detail(
            ErrorCode::AlgorithmNotAllowed,
            "the token algorithm is not a supported signature algorithm",
        )
    })?;
    if header.crit.is_some() {
        return Err(malformed(
            "the JOSE header has critical extensions this server does not understand",
        ));
    }
    if let Some(want) = token_type {
        let ok = header
            .typ
            .as_deref()
            .is_some_and(|t| normalize_typ(t).eq_ignore_ascii_case(want));
        if !ok {
            return Err(AuthError::new(ErrorCode::InvalidTokenType));
        }
    }
    Ok(JoseHeader {
        alg,
        kid: header.kid.map(|k| Arc::from(&*k)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.encode(json).into_bytes()
    }

    #[test]
    fn the_memo_answers_only_for_the_same_bytes_and_reader() {
        let a = b64(r#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#);
        let b = b64(r#"{"alg":"RS256","kid":"k2","typ":"JWT"}"#);
        let (strict, lax) = (next_reader_id(), next_reader_id());
        let h = read(strict, &a, Some("at+jwt")).unwrap();
        assert_eq!((h.alg, h.kid.as_deref()), (Algorithm::HS256, Some("k1")));
        // Same bytes again: remembered, same answer.
        let h = read(strict, &a, Some("at+jwt")).unwrap();
        assert_eq!((h.alg, h.kid.as_deref()), (Algorithm::HS256, Some("k1")));
        // Other bytes are read, and refused by the rules of the reader asking.
        assert_eq!(
            read(strict, &b, Some("at+jwt")).err().unwrap().code(),
            ErrorCode::InvalidTokenType
        );
        // A refusal is not remembered: the same bytes are refused again; another reader
        // with other rules is not answered from this reader's memo.
        assert!(read(strict, &b, Some("at+jwt")).is_err());
        let h = read(lax, &b, None).unwrap();
        assert_eq!((h.alg, h.kid.as_deref()), (Algorithm::RS256, Some("k2")));
        assert!(read(strict, &b, Some("at+jwt")).is_err());
        // One byte different is a different header.
        let mut c = a.clone();
        c[3] = if c[3] == b'A' { b'B' } else { b'A' };
        assert!(read(strict, &c, Some("at+jwt")).map(|h| h.kid) != Ok(Some("k1".into())));
    }

    #[test]
    fn typ_prefix_is_stripped_without_splitting_characters() {
        assert_eq!(normalize_typ("application/at+jwt"), "at+jwt");
        assert_eq!(normalize_typ("APPLICATION/JWT"), "JWT");
        assert_eq!(normalize_typ("applicationé/x"), "applicationé/x");
    }
}
