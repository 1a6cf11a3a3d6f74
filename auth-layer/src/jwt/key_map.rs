//! Keys by `kid`: the one lookup of a static key set and of a fetched one.

use std::sync::Arc;

use jsonwebtoken::Algorithm;

use super::keys::{JwtKey, KeyLookup, KeySource};
use crate::error::{ConfigError, KeyError};

/// Keys selected by `kid` and then by `alg`.
///
/// Several keys may share a `kid` (providers publish one per algorithm during a migration);
/// the one that allows the token's `alg` is chosen, else the first, so that the refusal names
/// the algorithm. Which key a token *without* `kid`, or with a `kid` no key has, gets is set
/// by the constructor: static sets and fetched sets differ there, nowhere else.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyMap {
    /// Sorted by `kid`: a key set is a handful of keys, and a binary search over them costs
    /// less than hashing the `kid` of every token.
    by_kid: Vec<(String, Vec<Arc<JwtKey>>)>,
    /// The key of a token without `kid`.
    kidless: Option<Arc<JwtKey>>,
    /// The key of a token whose `kid` names no key.
    unknown_kid: Option<Arc<JwtKey>>,
}

impl KeyMap {
    /// A fixed set of keys, selected by `kid`.
    ///
    /// A token without `kid` is verified with the key that has no `kid`, or with the only key
    /// when there is exactly one. A token whose `kid` names no key is verified with the key that
    /// has no `kid`, if there is one: a key configured without a name (from a PEM file, say) is
    /// the default key, and issuers put a `kid` in every token whether or not the server knows
    /// it. The signature still has to verify with that key.
    ///
    /// Two keys with the same `kid`, or two without one, are a configuration error.
    pub(crate) fn from_static(keys: impl IntoIterator<Item = JwtKey>) -> Result<Self, ConfigError> {
        let mut map = KeyMap::default();
        let mut unnamed: Option<Arc<JwtKey>> = None;
        for key in keys {
            let key = Arc::new(key);
            match key.kid() {
                Some(kid) => match map.by_kid.binary_search_by(|(k, _)| k.as_str().cmp(kid)) {
                    Ok(_) => return Err(KeyError::DuplicateKid(kid.to_owned()).into()),
                    Err(at) => map.by_kid.insert(at, (kid.to_owned(), vec![key])),
                },
                None => {
                    if unnamed.replace(key).is_some() {
                        return Err(KeyError::SeveralUnnamed.into());
                    }
                }
            }
        }
        map.kidless = unnamed.clone().or(match map.by_kid.as_slice() {
            [(_, only)] => only.first().cloned(),
            _ => None,
        });
        map.unknown_kid = unnamed;
        Ok(map)
    }

    /// A fetched key set: keys named by `kid` (checked by the caller), and the only key of
    /// the document, which a token without `kid` may use. A token whose `kid` names no key
    /// gets none: that is a reason to fetch again.
    #[cfg(feature = "jwks")]
    pub(crate) fn fetched(
        named: impl IntoIterator<Item = (String, Vec<Arc<JwtKey>>)>,
        only: Option<Arc<JwtKey>>,
    ) -> Self {
        let mut by_kid: Vec<_> = named.into_iter().collect();
        by_kid.sort_by(|(a, _), (b, _)| a.cmp(b));
        KeyMap {
            by_kid,
            kidless: only,
            unknown_kid: None,
        }
    }

    /// The keys named `kid`.
    pub(crate) fn named(&self, kid: &str) -> Option<&[Arc<JwtKey>]> {
        self.by_kid
            .binary_search_by(|(k, _)| k.as_str().cmp(kid))
            .ok()
            .map(|at| self.by_kid[at].1.as_slice())
    }

    /// The key for a token whose header names `kid` (or none) and `alg`.
    pub(crate) fn get(&self, kid: Option<&str>, alg: Algorithm) -> Option<&Arc<JwtKey>> {
        match kid {
            Some(kid) => match self.named(kid) {
                Some(keys) => keys.iter().find(|k| k.allows(alg)).or_else(|| keys.first()),
                None => self.unknown_kid.as_ref(),
            },
            None => self.kidless.as_ref(),
        }
    }

    /// Every `kid` the map holds, in order.
    #[cfg(test)]
    pub(crate) fn kids(&self) -> impl Iterator<Item = &str> {
        self.by_kid.iter().map(|(k, _)| k.as_str())
    }
}

impl KeySource for KeyMap {
    fn may_fetch(&self) -> bool {
        false
    }

    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        match self.get(kid, alg) {
            Some(k) => KeyLookup::Found(k.clone()),
            None => KeyLookup::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unnamed_key_is_the_default_for_unknown_kids() {
        let key = |b: u8| JwtKey::hmac(&[b; 32], &[Algorithm::HS256]).unwrap();
        let with_default = KeyMap::from_static([key(1), key(2).with_kid("a")]).unwrap();
        let default = with_default.get(Some("zzz"), Algorithm::HS256).unwrap();
        assert!(
            default.kid().is_none(),
            "an unknown kid falls back to the unnamed key"
        );
        assert_eq!(
            with_default.get(Some("a"), Algorithm::HS256).unwrap().kid(),
            Some("a")
        );
        let named_only = KeyMap::from_static([key(1).with_kid("a"), key(2).with_kid("b")]).unwrap();
        assert!(
            named_only.get(Some("zzz"), Algorithm::HS256).is_none(),
            "no default: unknown kid"
        );
    }
}
