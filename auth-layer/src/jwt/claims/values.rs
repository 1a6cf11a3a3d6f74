//! How the values of registered claims may look: NumericDates, optional strings, and lists
//! given as an array or a space-separated string.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};

use crate::principal::{List, Span, Text};

/// RFC 7519 NumericDate: a JSON number of seconds, possibly fractional; never negative.
pub(super) fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v: Option<f64> = Option::deserialize(d)?;
    match v {
        None => Ok(None),
        Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
        Some(_) => Err(de::Error::custom("NumericDate out of range")),
    }
}

/// `iss`, `sub`, `jti`: a string or null, copied into the text.
pub(super) struct OptionalString<'t>(pub(super) &'t mut Text);

impl<'de> Visitor<'de> for OptionalString<'_> {
    type Value = Option<Span>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(self.0.push(v)))
    }
}

/// A string or an array of strings (or null: none), as list members of the text; with
/// `split_spaces`, a string is a space-separated list (RFC 6749 §3.3 scopes).
pub(super) struct Strings<'t> {
    text: &'t mut Text,
    split_spaces: bool,
    start: u32,
}

impl<'t> Strings<'t> {
    pub(super) fn new(text: &'t mut Text, split_spaces: bool) -> Self {
        let start = text.list_start();
        Strings {
            text,
            split_spaces,
            start,
        }
    }
}

impl<'de> Visitor<'de> for Strings<'_> {
    type Value = List;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if self.split_spaces {
            for s in v.split(' ').filter(|s| !s.is_empty()) {
                self.text.push_item(s);
            }
        } else {
            self.text.push_item(v);
        }
        Ok(self.text.list_end(self.start))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.text.list_end(self.start))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element_seed(Item(&mut *self.text))?.is_some() {}
        Ok(self.text.list_end(self.start))
    }
}

/// One member of an array of strings.
struct Item<'t>(&'t mut Text);

impl<'de> DeserializeSeed<'de> for Item<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Item<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_item(v);
        Ok(())
    }
}
