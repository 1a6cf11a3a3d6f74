//! The user's claims type read in the same pass as the registered claims: a deserializer that
//! watches the payload's object go by.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::value::RawValue;

use super::registered::{Collector, Field, FieldKey, Registered};
use super::roles::RolesClaim;

/// The registered claims and the user's `C`, from one pass over `payload`.
///
/// `C` is any type whose `Deserialize` reads a JSON object (a struct, a map,
/// `serde_json::Value`, an untagged or internally tagged enum, a newtype around one of
/// those). Members `C` does not visit are still read for the registered claims.
pub(crate) fn read_with<C: DeserializeOwned>(
    payload: &[u8],
    roles: &RolesClaim,
) -> serde_json::Result<(Registered, C)> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let mut collector = Collector::new(payload.len(), roles);
    let user = C::deserialize(Tee {
        de: &mut de,
        collector: &mut collector,
    })?;
    de.end()?;
    Ok((collector.claims, user))
}

/// The deserializer `C` is read from: the payload's object, watched on the way through.
struct Tee<'a, 'b, 'r, 'de> {
    de: &'a mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
    collector: &'b mut Collector<'r>,
}

impl<'de> Deserializer<'de> for Tee<'_, '_, '_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> serde_json::Result<V::Value> {
        self.de.deserialize_map(TeeVisitor {
            user: visitor,
            collector: self.collector,
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> serde_json::Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> serde_json::Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// Hands the object to the user's visitor through [`TeeMap`], then reads whatever members the
/// user's visitor left unread.
struct TeeVisitor<'b, 'r, V> {
    user: V,
    collector: &'b mut Collector<'r>,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for TeeVisitor<'_, '_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let mut tee = TeeMap {
            inner: map,
            collector: self.collector,
            pending: None,
            done: false,
        };
        let value = self.user.visit_map(&mut tee)?;
        tee.finish()?;
        Ok(value)
    }
}

struct TeeMap<'b, 'r, A> {
    inner: A,
    collector: &'b mut Collector<'r>,
    /// The registered claim whose name was just handed out; its value comes next.
    pending: Option<Field>,
    done: bool,
}

impl<'de, A: MapAccess<'de>> TeeMap<'_, '_, A> {
    fn finish(&mut self) -> Result<(), A::Error> {
        if let Some(field) = self.pending.take() {
            self.inner.next_value_seed(self.collector.slot(field))?;
        }
        let roles = self.collector.roles.member();
        while !self.done {
            match self.inner.next_key_seed(FieldKey(roles))? {
                None => self.done = true,
                Some(Some(f)) => self.inner.next_value_seed(self.collector.slot(f))?,
                Some(None) => {
                    self.inner.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for TeeMap<'_, '_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if self.done {
            return Ok(None);
        }
        // The name is borrowed from the payload unless it had escapes.
        let Some(CowStr(key)) = self.inner.next_key::<CowStr<'de>>()? else {
            self.done = true;
            return Ok(None);
        };
        self.pending = Field::from_name(&key, self.collector.roles.member());
        match key {
            Cow::Borrowed(k) => seed.deserialize(BorrowedStrDeserializer::new(k)),
            Cow::Owned(k) => seed.deserialize(StringDeserializer::new(k)),
        }
        .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let Some(field) = self.pending.take() else {
            return self.inner.next_value_seed(seed);
        };
        let nested_roles =
            matches!(field, Field::Roles) && !self.collector.roles.nested().is_empty();
        if matches!(field, Field::ClientId | Field::Azp) || nested_roles {
            // Any JSON value counts for these two, and roles nested in an object are in an
            // object: both readers get it from its text.
            let raw: &'de RawValue = self.inner.next_value()?;
            self.collector
                .slot(field)
                .deserialize(raw)
                .map_err(de::Error::custom)?;
            return seed.deserialize(raw).map_err(de::Error::custom);
        }
        // Every other registered claim is null, a number, a string or an array of strings:
        // read once into that, then replayed to both readers (no second parse, no copy of
        // text the user's type does not keep).
        let claim: Claim<'de> = self.inner.next_value()?;
        self.collector.slot(field).deserialize(claim.replay())?;
        seed.deserialize(claim.replay())
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// A registered claim's value as the JSON gave it, in the forms the registered claims can take
/// (anything else is refused: no registered claim accepts it).
enum Claim<'de> {
    Null,
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'de, str>),
    /// Only `Str` members.
    Strs(Vec<Claim<'de>>),
}

/// A string borrowed from the payload unless it had escapes.
struct CowStr<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Claim<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Claim<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("null, a number, a string or an array of strings")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Claim<'de>, E> {
                Ok(Claim::Null)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Claim<'de>, E> {
                Ok(Claim::U64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Claim<'de>, E> {
                Ok(Claim::I64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Claim<'de>, E> {
                Ok(Claim::F64(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Claim<'de>, E> {
                Ok(Claim::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Claim<'de>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(CowStr(s)) = seq.next_element()? {
                    out.push(Claim::Str(s));
                }
                Ok(Claim::Strs(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Claim<'de> {
    /// A deserializer that presents the value again, as serde_json presented it.
    fn replay<E>(&self) -> Replay<'_, 'de, E> {
        Replay {
            claim: self,
            error: PhantomData,
        }
    }
}

struct Replay<'c, 'de, E> {
    claim: &'c Claim<'de>,
    error: PhantomData<E>,
}

impl<'de, E: de::Error> Deserializer<'de> for Replay<'_, '_, E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.claim {
            Claim::Null => visitor.visit_unit(),
            Claim::U64(v) => visitor.visit_u64(*v),
            Claim::I64(v) => visitor.visit_i64(*v),
            Claim::F64(v) => visitor.visit_f64(*v),
            Claim::Str(s) => visitor.visit_str(s),
            Claim::Strs(items) => {
                let mut seq = de::value::SeqDeserializer::new(items.iter().map(Claim::replay));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.claim {
            Claim::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, E> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, E> {
        match self.claim {
            // A unit variant named by the string, as serde_json reads one.
            Claim::Str(s) => visitor.visit_enum(de::value::StrDeserializer::new(s)),
            _ => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

impl<'d, E: de::Error> de::IntoDeserializer<'d, E> for Replay<'_, '_, E> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}
