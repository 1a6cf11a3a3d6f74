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

use crate::principal::{List, Span, Text};

/// The claims the layer itself checks or exposes on the [`Principal`](crate::Principal).
/// Unknown members are skipped without being buffered; a registered claim given twice makes
/// the payload unreadable (two readers of one token must not see different values).
///
/// The strings are copied once, into the [`Text`] the principal will keep: no allocation per
/// claim, per scope or per role.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Registered {
    pub(crate) text: Text,
    pub(crate) iss: Option<Span>,
    pub(crate) sub: Option<Span>,
    pub(crate) aud: List,
    pub(crate) exp: Option<u64>,
    pub(crate) nbf: Option<u64>,
    pub(crate) iat: Option<u64>,
    pub(crate) jti: Option<Span>,
    /// RFC 8693 / RFC 9068: space-separated.
    pub(crate) scope: List,
    /// Azure AD and others: an array (some send a space-separated string).
    pub(crate) scp: List,
    pub(crate) roles: List,
    // Only their presence matters (`required_claims`): skipped, not copied.
    pub(crate) client_id: bool,
    pub(crate) azp: bool,
}

impl Registered {
    /// Room for the strings of a payload of `len` bytes: registered claims are usually under
    /// half of it, and the buffer is kept by the principal (and the cache) as long as it lives.
    fn for_payload(len: usize) -> Self {
        Registered {
            text: Text::with_capacity(len / 2 + 16),
            ..Registered::default()
        }
    }

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
            "client_id" => self.client_id,
            "azp" => self.azp,
            _ => false,
        }
    }

    pub(crate) fn str(&self, span: Option<Span>) -> Option<&str> {
        span.map(|s| self.text.get(s))
    }

    pub(crate) fn audiences(&self) -> impl Iterator<Item = &str> + '_ {
        self.text.list(&self.aud)
    }

    #[cfg(test)]
    fn strings(&self, list: &List) -> Vec<&str> {
        self.text.list(list).collect()
    }
}

/// A registered claim, by member name.
#[derive(Clone, Copy)]
enum Field {
    Iss,
    Sub,
    Aud,
    Exp,
    Nbf,
    Iat,
    Jti,
    Scope,
    Scp,
    Roles,
    ClientId,
    Azp,
}

/// A three-letter member name as one integer, so that nine names are told apart by one match.
const fn tag(name: &[u8; 3]) -> u32 {
    u32::from_le_bytes([name[0], name[1], name[2], 0])
}

const ISS: u32 = tag(b"iss");
const SUB: u32 = tag(b"sub");
const AUD: u32 = tag(b"aud");
const EXP: u32 = tag(b"exp");
const NBF: u32 = tag(b"nbf");
const IAT: u32 = tag(b"iat");
const JTI: u32 = tag(b"jti");
const SCP: u32 = tag(b"scp");
const AZP: u32 = tag(b"azp");

impl Field {
    /// Called for every member of every payload, most of them not registered claims.
    fn from_name(name: &str) -> Option<Field> {
        let b = name.as_bytes();
        match *b {
            [x, y, z] => Some(match tag(&[x, y, z]) {
                ISS => Field::Iss,
                SUB => Field::Sub,
                AUD => Field::Aud,
                EXP => Field::Exp,
                NBF => Field::Nbf,
                IAT => Field::Iat,
                JTI => Field::Jti,
                SCP => Field::Scp,
                AZP => Field::Azp,
                _ => return None,
            }),
            _ => match b {
                b"scope" => Some(Field::Scope),
                b"roles" => Some(Field::Roles),
                b"client_id" => Some(Field::ClientId),
                _ => None,
            },
        }
    }
}

/// [`Registered`] being filled member by member, remembering which members were seen.
struct Collector {
    claims: Registered,
    seen: u16,
}

impl Collector {
    fn new(payload_len: usize) -> Self {
        Collector {
            claims: Registered::for_payload(payload_len),
            seen: 0,
        }
    }

    /// The seed that reads `field`'s value into the claims.
    fn slot(&mut self, field: Field) -> Slot<'_> {
        Slot {
            field,
            collector: self,
        }
    }
}

/// Reads one registered claim's value; what each claim may look like is decided here only.
struct Slot<'a> {
    field: Field,
    collector: &'a mut Collector,
}

impl<'de> DeserializeSeed<'de> for Slot<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let bit = 1u16 << self.field as u16;
        if self.collector.seen & bit != 0 {
            return Err(de::Error::custom("a registered claim appears twice"));
        }
        self.collector.seen |= bit;
        let c = &mut self.collector.claims;
        match self.field {
            Field::Iss => c.iss = d.deserialize_option(OptionalString(&mut c.text))?,
            Field::Sub => c.sub = d.deserialize_option(OptionalString(&mut c.text))?,
            Field::Jti => c.jti = d.deserialize_option(OptionalString(&mut c.text))?,
            Field::Aud => c.aud = d.deserialize_any(Strings::new(&mut c.text, false))?,
            Field::Roles => c.roles = d.deserialize_any(Strings::new(&mut c.text, false))?,
            Field::Scope => c.scope = d.deserialize_any(Strings::new(&mut c.text, true))?,
            Field::Scp => c.scp = d.deserialize_any(Strings::new(&mut c.text, true))?,
            Field::Exp => c.exp = numeric_date(d)?,
            Field::Nbf => c.nbf = numeric_date(d)?,
            Field::Iat => c.iat = numeric_date(d)?,
            // `null` counts as absent, as an `Option` member would.
            Field::ClientId => c.client_id = Option::<IgnoredAny>::deserialize(d)?.is_some(),
            Field::Azp => c.azp = Option::<IgnoredAny>::deserialize(d)?.is_some(),
        }
        Ok(())
    }
}

/// A member name, read only as far as which registered claim it is (no copy).
struct FieldKey(Option<Field>);

impl<'de> Deserialize<'de> for FieldKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = FieldKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldKey, E> {
                Ok(FieldKey(Field::from_name(v)))
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

/// Reads the registered claims from a JSON object (of so many bytes), skipping every other
/// member unbuffered.
struct RegisteredVisitor(usize);

impl<'de> Visitor<'de> for RegisteredVisitor {
    type Value = Registered;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Registered, A::Error> {
        let mut c = Collector::new(self.0);
        while let Some(FieldKey(field)) = map.next_key()? {
            match field {
                Some(f) => map.next_value_seed(c.slot(f))?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(c.claims)
    }
}

/// The registered claims alone.
pub(crate) fn read(payload: &[u8]) -> serde_json::Result<Registered> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let claims = de.deserialize_map(RegisteredVisitor(payload.len()))?;
    de.end()?;
    Ok(claims)
}

/// The registered claims and the user's `C`, from one pass over `payload`.
///
/// `C` is any type whose `Deserialize` reads a JSON object (a struct, a map,
/// `serde_json::Value`, an untagged or internally tagged enum, a newtype around one of
/// those). Members `C` does not visit are still read for the registered claims.
pub(crate) fn read_with<C: DeserializeOwned>(
    payload: &[u8],
) -> serde_json::Result<(Registered, C)> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let mut collector = Collector::new(payload.len());
    let user = C::deserialize(Tee {
        de: &mut de,
        collector: &mut collector,
    })?;
    de.end()?;
    Ok((collector.claims, user))
}

/// The deserializer `C` is read from: the payload's object, watched on the way through.
struct Tee<'a, 'b, 'de> {
    de: &'a mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
    collector: &'b mut Collector,
}

impl<'de> Deserializer<'de> for Tee<'_, '_, 'de> {
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
struct TeeVisitor<'b, V> {
    user: V,
    collector: &'b mut Collector,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for TeeVisitor<'_, V> {
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

struct TeeMap<'b, A> {
    inner: A,
    collector: &'b mut Collector,
    /// The registered claim whose name was just handed out; its value comes next.
    pending: Option<Field>,
    done: bool,
}

impl<'de, A: MapAccess<'de>> TeeMap<'_, A> {
    fn finish(&mut self) -> Result<(), A::Error> {
        if let Some(field) = self.pending.take() {
            self.inner.next_value_seed(self.collector.slot(field))?;
        }
        while !self.done {
            match self.inner.next_key::<FieldKey>()? {
                None => self.done = true,
                Some(FieldKey(Some(f))) => self.inner.next_value_seed(self.collector.slot(f))?,
                Some(FieldKey(None)) => {
                    self.inner.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for TeeMap<'_, A> {
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
        self.pending = Field::from_name(&key);
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
        if let Field::ClientId | Field::Azp = field {
            // Any JSON value counts for these two: both readers get it from its text.
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

/// `iss`, `sub`, `jti`: a string or null, copied into the text.
struct OptionalString<'t>(&'t mut Text);

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
struct Strings<'t> {
    text: &'t mut Text,
    split_spaces: bool,
    start: u32,
}

impl<'t> Strings<'t> {
    fn new(text: &'t mut Text, split_spaces: bool) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_and_scopes_accept_both_shapes() {
        let r = read(
            br#"{"aud":"api","scope":"a  b","scp":["c"],"roles":"admin","exp":1.5e9,"x":{"y":[1]}}"#,
        )
        .unwrap();
        assert_eq!(r.strings(&r.aud), ["api"]);
        assert_eq!(r.strings(&r.scope), ["a", "b"]);
        assert_eq!(r.strings(&r.scp), ["c"]);
        assert_eq!(r.strings(&r.roles), ["admin"]);
        assert_eq!(r.exp, Some(1_500_000_000));
    }

    #[test]
    fn every_registered_name_and_only_those_are_recognised() {
        // Every claim `required_claims` can name, and the two it cannot (they are lists).
        let names = CHECKABLE_CLAIMS.iter().copied().chain(["scp", "roles"]);
        for n in names {
            assert!(Field::from_name(n).is_some(), "{n}");
        }
        for n in [
            "", "is", "isss", "Iss", "ex\0", "email", "scopes", "role", "client", "azp ",
        ] {
            assert!(Field::from_name(n).is_none(), "{n:?}");
        }
    }

    #[test]
    fn bad_dates_are_errors() {
        assert!(read(br#"{"exp":-1}"#).is_err());
        assert!(read(br#"{"exp":"soon"}"#).is_err());
        assert!(read(br#"{"aud":[1]}"#).is_err());
        assert!(read(br#"{"sub":7}"#).is_err());
        assert!(read(br#"{"roles":[["x"]]}"#).is_err());
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Mine {
        sub: String,
        exp: u64,
        org_id: String,
        #[serde(default)]
        roles: Vec<String>,
    }

    const PAYLOAD: &str = r#"{"iss":"https://id","sub":"u1","aud":["api","x"],"exp":2000000000,"iat":1,"jti":"j","scope":"a b","azp":"cli","email":"e@x","org_id":"o-1","nested":{"exp":1},"roles":["admin"]}"#;

    #[test]
    fn one_pass_yields_what_two_passes_did() {
        let (r, mine) = read_with::<Mine>(PAYLOAD.as_bytes()).unwrap();
        assert_eq!(r, read(PAYLOAD.as_bytes()).unwrap());
        assert_eq!(r.exp, Some(2_000_000_000));
        assert_eq!(r.strings(&r.aud), ["api", "x"]);
        assert!(r.azp && !r.client_id);
        assert_eq!(mine, serde_json::from_str::<Mine>(PAYLOAD).unwrap());
        // Members nested in other values are not registered claims.
        assert_eq!(r.strings(&r.scope), ["a", "b"]);
        assert_eq!(r.str(r.iss), Some("https://id"));
        assert_eq!(r.strings(&r.roles), ["admin"]);
    }

    #[test]
    fn registered_claims_the_users_type_never_names_are_still_read() {
        #[derive(serde::Deserialize)]
        struct OnlyOrg {
            org_id: String,
        }
        let (r, o) = read_with::<OnlyOrg>(PAYLOAD.as_bytes()).unwrap();
        assert_eq!(o.org_id, "o-1");
        assert_eq!(r, read(PAYLOAD.as_bytes()).unwrap());
    }

    #[test]
    fn maps_flatten_and_newtypes_read_the_same_object() {
        let (r, v) = read_with::<serde_json::Value>(PAYLOAD.as_bytes()).unwrap();
        assert_eq!(
            v,
            serde_json::from_str::<serde_json::Value>(PAYLOAD).unwrap()
        );
        assert_eq!(r, read(PAYLOAD.as_bytes()).unwrap());

        #[derive(serde::Deserialize)]
        struct Flat {
            sub: String,
            #[serde(flatten)]
            rest: std::collections::HashMap<String, serde_json::Value>,
        }
        let (r, f) = read_with::<Flat>(PAYLOAD.as_bytes()).unwrap();
        assert_eq!(f.sub, "u1");
        assert_eq!(f.rest["exp"], 2_000_000_000);
        assert_eq!(r.exp, Some(2_000_000_000));

        #[derive(serde::Deserialize)]
        struct Wrapped(Mine);
        let (r, w) = read_with::<Wrapped>(PAYLOAD.as_bytes()).unwrap();
        assert_eq!(w.0.org_id, "o-1");
        assert_eq!(r.str(r.sub), Some("u1"));
    }

    /// A member name written with escapes is the same name: `"\u0065xp"` is `exp`, and must
    /// be checked as the expiry whichever reader sees it first.
    #[test]
    fn escaped_member_names_are_recognised() {
        let p = br#"{"exp":5,"sub":"u1","org_id":"o","exp2":1}"#;
        let r = read(p).unwrap();
        assert_eq!((r.exp, r.str(r.sub)), (Some(5), Some("u1")));
        #[derive(serde::Deserialize)]
        struct T {
            exp: u64,
        }
        let (r2, t) = read_with::<T>(p).unwrap();
        assert_eq!(r2, r);
        assert_eq!(t.exp, 5);
    }

    #[test]
    fn a_claim_given_twice_is_refused_by_both_readers() {
        for p in [
            r#"{"exp":1,"exp":2000000000}"#,
            r#"{"aud":"a","x":1,"aud":"b"}"#,
            r#"{"iss":null,"iss":"https://evil"}"#,
        ] {
            assert!(read(p.as_bytes()).is_err(), "{p}");
            assert!(read_with::<serde_json::Value>(p.as_bytes()).is_err(), "{p}");
        }
    }

    /// A hand-written `Deserialize` that reads the first member's name (with `VALUE`, its value
    /// too) and stops.
    struct Stops<const VALUE: bool>(String);

    impl<'de, const VALUE: bool> Deserialize<'de> for Stops<VALUE> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<const VALUE: bool>;
            impl<'de, const VALUE: bool> Visitor<'de> for V<VALUE> {
                type Value = Stops<VALUE>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                    let name: String = m.next_key()?.unwrap_or_default();
                    if VALUE {
                        m.next_value::<IgnoredAny>()?;
                    }
                    Ok(Stops(name))
                }
            }
            d.deserialize_map(V::<VALUE>)
        }
    }

    /// A user's type may stop after the members it wants; the rest are still read, so an
    /// `exp` after them is not missed.
    #[test]
    fn members_left_unread_by_the_users_type_are_still_checked() {
        let p = br#"{"org_id":"o","exp":7,"aud":"api"}"#;
        let (r, first) = read_with::<Stops<true>>(p).unwrap();
        assert_eq!(first.0, "org_id");
        assert_eq!((r.exp, r.strings(&r.aud)), (Some(7), vec!["api"]));
        // Stopping between a registered name and its value is covered too.
        let (r, _) = read_with::<Stops<false>>(br#"{"exp":9,"x":[1,{"exp":1}]}"#).unwrap();
        assert_eq!(r.exp, Some(9));
    }

    #[test]
    fn payloads_that_are_not_objects_are_refused() {
        for p in ["[1]", "\"exp\"", "null", "{\"exp\":1} {}", "{\"exp\":1"] {
            assert!(read(p.as_bytes()).is_err(), "{p}");
            assert!(read_with::<serde_json::Value>(p.as_bytes()).is_err(), "{p}");
            assert!(read_with::<Mine>(p.as_bytes()).is_err(), "{p}");
        }
    }

    /// The user's type sees each registered claim as serde_json alone would show it: the
    /// same values where it accepts them, an error where serde_json gives one.
    #[test]
    fn registered_claims_reach_the_users_type_as_serde_json_shows_them() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        enum Issuer {
            #[serde(rename = "https://id")]
            Ours,
        }
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Sub(String);
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Typed {
            iss: Option<Issuer>,
            sub: Option<Sub>,
            exp: Option<u64>,
            nbf: Option<f64>,
            aud: Option<Vec<Option<String>>>,
            scope: Option<String>,
        }
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Loose {
            exp: serde_json::Value,
            aud: serde_json::Value,
            roles: Option<(String, String)>,
        }
        let payloads = [
            r#"{"iss":"https://id","sub":"u","exp":5,"nbf":1.5,"aud":["a","b"],"scope":"x y"}"#,
            r#"{"iss":null,"sub":null,"exp":null,"aud":null,"scope":null}"#,
            r#"{"iss":"https://other","exp":5}"#,
            r#"{"exp":5.5,"aud":"a"}"#,
            r#"{"exp":5,"aud":"a","scope":["x"]}"#,
            r#"{"exp":1e3,"aud":[],"roles":["r","s"]}"#,
            r#"{"exp":2,"roles":["r"]}"#,
            r#"{"exp":2,"roles":"r"}"#,
            r#"{"\u0065xp":3,"aud":["\u0061"]}"#,
        ];
        for p in payloads {
            assert!(read(p.as_bytes()).is_ok(), "{p}");
            let typed = read_with::<Typed>(p.as_bytes()).map(|(_, t)| t).ok();
            assert_eq!(typed, serde_json::from_str::<Typed>(p).ok(), "{p}");
            let loose = read_with::<Loose>(p.as_bytes()).map(|(_, t)| t).ok();
            assert_eq!(loose, serde_json::from_str::<Loose>(p).ok(), "{p}");
        }
    }

    proptest::proptest! {
        /// Whatever the object holds, the registered claims read in one pass with the user's
        /// type are those read alone, and the user's value is what serde_json alone gives.
        #[test]
        fn one_pass_agrees_with_two(
            members in proptest::collection::vec((
                proptest::sample::select(vec!["iss", "sub", "aud", "exp", "nbf", "iat", "jti",
                    "scope", "scp", "roles", "client_id", "azp", "org_id", "\\u0065xp"]),
                proptest::sample::select(vec!["1", "2.5", "-1", "null", "\"a b\"", "[\"x\",\"y\"]",
                    "[1]", "{\"exp\":1}", "true"]),
            ), 0..8)
        ) {
            let body = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(",");
            let p = format!("{{{body}}}");
            let alone = read(p.as_bytes()).ok();
            let both = read_with::<serde_json::Value>(p.as_bytes()).ok();
            match (alone, both) {
                (Some(a), Some((b, v))) => {
                    proptest::prop_assert_eq!(a, b);
                    proptest::prop_assert_eq!(v, serde_json::from_str::<serde_json::Value>(&p).unwrap());
                }
                (None, None) => {}
                // Only the user's reading may refuse what the registered reading accepts
                // (here never: a Value takes any object without duplicate claims).
                (a, b) => proptest::prop_assert!(false, "{p}: alone {a:?}, both {b:?}"),
            }
        }
    }
}
