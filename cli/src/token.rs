//! Reading a JWT without verifying it: its header and claims, the members the doctor compares,
//! and times as people read them. The token itself is never printed; only what it decodes to.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::untrusted::{Shown, ShownJson};

/// A JWS in compact form, decoded (not verified).
#[derive(Debug, Clone)]
pub(crate) struct Decoded {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// `header.payload`, what the signature covers.
    pub signing_input: String,
    /// The third part, base64url as sent (for verification only, never printed).
    pub signature: String,
}

/// Why a credential is not a readable JWT. Says which part failed, never what it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotAJwt {
    /// Not three dot-separated parts.
    Parts(usize),
    /// A part is not base64url.
    Base64(&'static str),
    /// A part is not a JSON object.
    Json(&'static str),
}

impl std::fmt::Display for NotAJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotAJwt::Parts(n) => write!(f, "it has {n} dot-separated part(s), a JWT has 3"),
            NotAJwt::Base64(part) => write!(f, "its {part} is not base64url"),
            NotAJwt::Json(part) => write!(f, "its {part} is not a JSON object"),
        }
    }
}

/// Decode the header and claims of a compact JWS.
pub(crate) fn decode(token: &str) -> Result<Decoded, NotAJwt> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(NotAJwt::Parts(parts.len()));
    }
    let object = |part: &str, name: &'static str| -> Result<Map<String, Value>, NotAJwt> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| NotAJwt::Base64(name))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(NotAJwt::Json(name)),
        }
    };
    Ok(Decoded {
        header: object(parts[0], "header")?,
        claims: object(parts[1], "payload")?,
        signing_input: format!("{}.{}", parts[0], parts[1]),
        signature: parts[2].to_owned(),
    })
}

impl Decoded {
    fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name)?.as_str()
    }

    /// `alg`.
    pub(crate) fn alg(&self) -> Option<&str> {
        self.header_str("alg")
    }

    /// `kid`.
    pub(crate) fn kid(&self) -> Option<&str> {
        self.header_str("kid")
    }

    /// `iss`.
    pub(crate) fn iss(&self) -> Option<&str> {
        self.claims.get("iss")?.as_str()
    }

    /// `aud`, a string or an array of strings.
    pub(crate) fn aud(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// A NumericDate claim (`exp`, `nbf`, `iat`), in whole seconds.
    pub(crate) fn time(&self, name: &str) -> Option<i64> {
        let v = self.claims.get(name)?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    }

    /// The scopes: `scope` (space-separated), else `scp` (array or string).
    pub(crate) fn scopes(&self) -> Vec<&str> {
        fn from(v: &Value) -> Option<Vec<&str>> {
            Some(match v {
                Value::String(s) => s.split_ascii_whitespace().collect(),
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => return None,
            })
        }
        self.claims
            .get("scope")
            .and_then(from)
            .or_else(|| self.claims.get("scp").and_then(from))
            .unwrap_or_default()
    }
}

/// Seconds since the epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A NumericDate as HTTP writes dates (`Tue, 01 Dec 2026 07:10:00 GMT`).
pub(crate) fn date(secs: i64) -> String {
    match u64::try_from(secs) {
        // A token says what it likes: past year 9999 neither SystemTime nor HTTP dates go.
        Ok(s) if s <= LAST_HTTP_DATE => {
            httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s))
        }
        Ok(_) => format!("{secs} (after the year 9999)"),
        Err(_) => format!("{secs} (before 1970)"),
    }
}

/// `Fri, 31 Dec 9999 23:59:59 GMT`, the last date HTTP can write.
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// How far `at` is from `now`: `in 4 min`, `3 h ago`, `now`.
pub(crate) fn relative(at: i64, now: i64) -> String {
    let d = at.saturating_sub(now);
    let n = d.unsigned_abs();
    let amount = match n {
        0 => return "now".into(),
        1..120 => format!("{n} s"),
        120..7_200 => format!("{} min", n / 60),
        7_200..172_800 => format!("{} h", n / 3_600),
        _ => format!("{} days", n / 86_400),
    };
    if d > 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// The registered time claims, in the order they are shown.
pub(crate) const TIME_CLAIMS: [&str; 3] = ["iat", "nbf", "exp"];

/// Header and claims as JSON, untouched, and beside them each time claim as a date and how far
/// it is from `now` (`"times": {"exp": "Tue, … GMT, in 4 min"}`).
pub(crate) fn annotated(token: &Decoded, now: i64) -> Value {
    let times: Map<String, Value> = TIME_CLAIMS
        .iter()
        .filter_map(|name| {
            let t = token.time(name)?;
            Some((name.to_string(), Value::String(readable(t, now))))
        })
        .collect();
    serde_json::json!({ "header": token.header, "claims": token.claims, "times": times })
}

/// `Tue, 01 Dec 2026 07:10:00 GMT, in 4 min`.
pub(crate) fn readable(t: i64, now: i64) -> String {
    format!("{}, {}", date(t), relative(t, now))
}

/// The header and claims as text, with readable times; never the signature. Names and
/// values are the token's words: shown escaped.
pub(crate) fn render(token: &Decoded, now: i64) -> String {
    let mut out = String::from("header:\n");
    for (k, v) in &token.header {
        out.push_str(&format!("  {}: {}\n", Shown(k), ShownJson(v)));
    }
    out.push_str("claims:\n");
    for (k, v) in &token.claims {
        out.push_str(&format!("  {}: {}", Shown(k), ShownJson(v)));
        if TIME_CLAIMS.contains(&k.as_str())
            && let Some(t) = token.time(k)
        {
            out.push_str(&format!("  ({})", readable(t, now)));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn reads_the_members_the_doctor_compares() {
        let t = decode(&jwt(
            r#"{"alg":"ES256","kid":"k1"}"#,
            r#"{"iss":"https://id","aud":["a","b"],"exp":100,"nbf":50.5,"scp":["x","y"]}"#,
        ))
        .unwrap();
        assert_eq!(
            (t.alg(), t.kid(), t.iss()),
            (Some("ES256"), Some("k1"), Some("https://id"))
        );
        assert_eq!(t.aud(), ["a", "b"]);
        assert_eq!(
            (t.time("exp"), t.time("nbf"), t.time("iat")),
            (Some(100), Some(50), None)
        );
        assert_eq!(t.scopes(), ["x", "y"]);
        let t = decode(&jwt(
            r#"{"alg":"HS256"}"#,
            r#"{"aud":"a","scope":"read  write"}"#,
        ))
        .unwrap();
        assert_eq!(t.aud(), ["a"]);
        assert_eq!(t.scopes(), ["read", "write"]);
    }

    #[test]
    fn says_which_part_is_not_a_jwt() {
        assert_eq!(decode("opaque-token").unwrap_err(), NotAJwt::Parts(1));
        assert_eq!(decode("a.b.c.d").unwrap_err(), NotAJwt::Parts(4));
        assert_eq!(decode("!!.e30.x").unwrap_err(), NotAJwt::Base64("header"));
        let not_object = format!("e30.{}.x", URL_SAFE_NO_PAD.encode("[1]"));
        assert_eq!(decode(&not_object).unwrap_err(), NotAJwt::Json("payload"));
    }

    #[test]
    fn times_read_as_people_say_them() {
        assert_eq!(relative(1_000 + 240, 1_000), "in 4 min");
        assert_eq!(relative(1_000 - 3 * 3_600, 1_000), "3 h ago");
        assert_eq!(relative(1_000 - 59, 1_000), "59 s ago");
        assert_eq!(relative(1_000, 1_000), "now");
        assert_eq!(relative(1_000 + 3 * 86_400, 1_000), "in 3 days");
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(date(1_764_573_000), "Mon, 01 Dec 2025 07:10:00 GMT");
    }

    proptest::proptest! {
        #[test]
        fn any_numeric_date_is_shown_without_panicking(t in proptest::num::i64::ANY, now in proptest::num::i64::ANY) {
            let _ = readable(t, now);
        }
    }

    #[test]
    fn dates_beyond_http_are_said_plainly() {
        assert_eq!(date(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(
            date(i64::MAX),
            format!("{} (after the year 9999)", i64::MAX)
        );
        assert_eq!(
            relative(i64::MAX, i64::MIN),
            format!("in {} days", u64::MAX / 2 / 86_400)
        );
    }

    #[test]
    fn the_rendering_shows_claims_not_the_signature() {
        let t = decode(&jwt(r#"{"alg":"HS256"}"#, r#"{"exp":0,"sub":"alice"}"#)).unwrap();
        let text = render(&t, 60);
        assert!(text.contains("sub: \"alice\""), "{text}");
        assert!(
            text.contains("exp: 0  (Thu, 01 Jan 1970 00:00:00 GMT, 60 s ago)"),
            "{text}"
        );
        assert!(!text.contains("c2ln"), "{text}");
        let json = annotated(&t, 60);
        assert_eq!(
            json["times"]["exp"],
            "Thu, 01 Jan 1970 00:00:00 GMT, 60 s ago"
        );
        assert_eq!(json["claims"]["exp"], 0);
    }
}
