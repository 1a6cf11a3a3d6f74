//! The registered claims (RFC 7519 §4.1, RFC 9068 §2.2) read from every token, parsed once.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// The claims the layer itself checks or exposes on the [`Principal`](crate::Principal).
/// Unknown members are skipped without being buffered.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Registered {
    pub(crate) iss: Option<String>,
    pub(crate) sub: Option<String>,
    #[serde(default, deserialize_with = "string_or_seq")]
    pub(crate) aud: Vec<String>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) nbf: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) iat: Option<u64>,
    pub(crate) jti: Option<String>,
    /// RFC 8693 / RFC 9068: space-separated.
    #[serde(default, deserialize_with = "space_separated_or_seq")]
    pub(crate) scope: Vec<String>,
    /// Azure AD and others: an array (some send a space-separated string).
    #[serde(default, deserialize_with = "space_separated_or_seq")]
    pub(crate) scp: Vec<String>,
    #[serde(default, deserialize_with = "string_or_seq")]
    pub(crate) roles: Vec<String>,
    // Only their presence matters (`required_claims`): skipped, not copied.
    pub(crate) client_id: Option<serde::de::IgnoredAny>,
    pub(crate) azp: Option<serde::de::IgnoredAny>,
}

impl Registered {
    /// Whether a claim named in the validation's required list is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        match name {
            "iss" => self.iss.is_some(),
            "sub" => self.sub.is_some(),
            "aud" => !self.aud.is_empty(),
            "exp" => self.exp.is_some(),
            "nbf" => self.nbf.is_some(),
            "iat" => self.iat.is_some(),
            "jti" => self.jti.is_some(),
            "scope" => !self.scope.is_empty() || !self.scp.is_empty(),
            "client_id" => self.client_id.is_some(),
            "azp" => self.azp.is_some(),
            _ => false,
        }
    }
}

/// The registered claims whose presence [`required_claims`](super::JwtAuthenticatorBuilder::required_claims) can demand.
pub const CHECKABLE_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "client_id",
    "azp",
];

/// RFC 7519 NumericDate: a JSON number of seconds, possibly fractional; never negative.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v: Option<f64> = Option::deserialize(d)?;
    match v {
        None => Ok(None),
        Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
        Some(_) => Err(de::Error::custom("NumericDate out of range")),
    }
}

struct Strings {
    split_spaces: bool,
}

impl<'de> Visitor<'de> for Strings {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(if self.split_spaces {
            v.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            vec![v.to_owned()]
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(s) = seq.next_element::<String>()? {
            out.push(s);
        }
        Ok(out)
    }
}

fn string_or_seq<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(Strings {
        split_spaces: false,
    })
}

fn space_separated_or_seq<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(Strings { split_spaces: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_and_scopes_accept_both_shapes() {
        let r: Registered = serde_json::from_str(
            r#"{"aud":"api","scope":"a  b","scp":["c"],"roles":"admin","exp":1.5e9,"x":{"y":[1]}}"#,
        )
        .unwrap();
        assert_eq!(r.aud, ["api"]);
        assert_eq!(r.scope, ["a", "b"]);
        assert_eq!(r.scp, ["c"]);
        assert_eq!(r.roles, ["admin"]);
        assert_eq!(r.exp, Some(1_500_000_000));
    }

    #[test]
    fn bad_dates_are_errors() {
        assert!(serde_json::from_str::<Registered>(r#"{"exp":-1}"#).is_err());
        assert!(serde_json::from_str::<Registered>(r#"{"exp":"soon"}"#).is_err());
        assert!(serde_json::from_str::<Registered>(r#"{"aud":[1]}"#).is_err());
    }
}
