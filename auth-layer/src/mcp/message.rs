//! The JSON-RPC members `ToolScopes` reads, read strictly: a repeated member, one named like
//! them in another case or with an odd character, or a batch longer than it reads, is an error,
//! so a body another reader would see differently is refused rather than skipped.

use std::fmt;

use serde::Deserialize;
use serde::de;

/// The members of a JSON-RPC message this layer reads. A repeated member, or a member whose
/// name is one of these in another case, is an error: that is what makes a body another
/// reader would see differently visible.
pub(super) struct Message {
    pub(super) method: Option<String>,
    pub(super) params: Option<Params>,
}

pub(super) struct Params {
    pub(super) name: Option<String>,
}

/// A member name: one of the names read (by index), one of them in another case, or another.
enum Key {
    Read(usize),
    Confusable,
    Other,
}

/// The longest JSON-RPC batch read (the TypeScript SDK's own limit): a longer one is refused
/// while it is read, so a body of 4 MiB of `{}` never becomes a million messages in memory.
const MAX_BATCH: usize = 100;

/// A JSON-RPC batch of at most [`MAX_BATCH`] messages.
pub(super) struct Batch(pub(super) Vec<Message>);

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Messages;
        impl<'de> de::Visitor<'de> for Messages {
            type Value = Batch;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a JSON-RPC batch of at most {MAX_BATCH} messages")
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Batch, A::Error> {
                let mut out = Vec::new();
                while let Some(m) = seq.next_element::<Message>()? {
                    if out.len() == MAX_BATCH {
                        return Err(de::Error::invalid_length(MAX_BATCH + 1, &self));
                    }
                    out.push(m);
                }
                Ok(Batch(out))
            }
        }
        d.deserialize_seq(Messages)
    }
}

struct KeySeed(&'static [&'static str]);

impl<'de> de::DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl de::Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        // Readers differ on names with a NUL or another control character (one Go reader
        // padded keys with zeros, so `name\u0000` was `name`) and on non-ASCII ones: at these
        // levels no MCP member has either, so such a name is ambiguous, not skipped.
        if key.chars().any(|c| c.is_control() || !c.is_ascii()) {
            return Ok(Key::Confusable);
        }
        for (i, name) in self.0.iter().enumerate() {
            if key == *name {
                return Ok(Key::Read(i));
            }
            if folds_to(key, name) {
                return Ok(Key::Confusable);
            }
        }
        Ok(Key::Other)
    }
}

/// Whether `key` equals the ASCII `name` under Unicode simple case folding: ASCII letters in
/// any case, and the two non-ASCII letters that fold to ASCII ones (U+017F to `s`, U+212A
/// KELVIN SIGN to `k`), as Go's `encoding/json` matches member names.
fn folds_to(key: &str, name: &str) -> bool {
    let mut chars = key.chars();
    for n in name.bytes() {
        match chars.next() {
            Some(c) if c.is_ascii() && (c as u8).eq_ignore_ascii_case(&n) => {}
            Some('\u{17F}') if n.eq_ignore_ascii_case(&b's') => {}
            Some('\u{212A}') if n.eq_ignore_ascii_case(&b'k') => {}
            _ => return false,
        }
    }
    chars.next().is_none()
}

/// Reads the members named in `names` into `slots` (each at most once); every other member is
/// skipped, and a member named like one of `names` in another case is an error.
fn read_members<'de, A, T>(
    mut map: A,
    names: &'static [&'static str],
    mut read: impl FnMut(usize, &mut A) -> Result<T, A::Error>,
) -> Result<(), A::Error>
where
    A: de::MapAccess<'de>,
{
    let mut seen = 0u8;
    while let Some(key) = map.next_key_seed(KeySeed(names))? {
        match key {
            Key::Read(i) => {
                if seen & (1 << i) != 0 {
                    return Err(de::Error::duplicate_field(names[i]));
                }
                seen |= 1 << i;
                read(i, &mut map)?;
            }
            Key::Confusable => {
                return Err(de::Error::custom(
                    "a member is named like a JSON-RPC member in another case",
                ));
            }
            Key::Other => {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Message;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Message, A::Error> {
                let mut m = Message {
                    method: None,
                    params: None,
                };
                read_members(map, &["method", "params"], |i, map| {
                    if i == 0 {
                        m.method = map.next_value()?;
                    } else {
                        m.params = map.next_value()?;
                    }
                    Ok(())
                })?;
                Ok(m)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of named parameters")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Params, A::Error> {
                let mut p = Params { name: None };
                read_members(map, &["name"], |_, map| {
                    p.name = map.next_value()?;
                    Ok(())
                })?;
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}
