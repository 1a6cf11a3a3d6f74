//! Where a token's roles are read from: the claim
//! [`roles_claim`](crate::jwt::JwtAuthenticatorBuilder::roles_claim) names (default `roles`), a
//! top-level member of the payload or one nested in objects (Keycloak's `realm_access.roles`).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::values::Strings;
use crate::error::ConfigError;
use crate::principal::{List, Text};

/// The roles claim: a path of member names, the first a member of the payload's object, each
/// next one a member of the object before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RolesClaim {
    path: Box<[Box<str>]>,
}

impl Default for RolesClaim {
    fn default() -> Self {
        RolesClaim {
            path: Box::new([Box::from("roles")]),
        }
    }
}

impl RolesClaim {
    /// A path of at least one name, none of them empty (whether the first is free is checked
    /// by the registered claims' reader, which knows the names it consumes).
    pub(super) fn new(path: Vec<String>) -> Result<Self, ConfigError> {
        if path.is_empty() || path.iter().any(String::is_empty) {
            return Err(ConfigError::EmptyRolesClaim);
        }
        Ok(RolesClaim {
            path: path.into_iter().map(String::into_boxed_str).collect(),
        })
    }

    /// The payload's member the roles are in (or under).
    pub(super) fn member(&self) -> &str {
        &self.path[0]
    }

    /// The names below [`member`](Self::member), outermost first: none for a top-level claim.
    pub(super) fn nested(&self) -> &[Box<str>] {
        &self.path[1..]
    }
}

/// Reads the roles claim's value into `text`: below `nested`, a string (one role, never split:
/// a group named `Domain Admins` must not grant the role `Admins`) or an array of strings;
/// `null`, or an object on the way without the next member, is no roles. Anything else is an
/// error, which makes the whole payload unreadable, as for a registered claim.
pub(super) fn read<'de, D: Deserializer<'de>>(
    d: D,
    nested: &[Box<str>],
    text: &mut Text,
) -> Result<List, D::Error> {
    match nested.split_first() {
        None => d.deserialize_any(Strings::new(text, false)),
        Some((name, below)) => d.deserialize_any(Within { name, below, text }),
    }
}

/// An object on the way to the roles: its member `name` is read further, the others skipped
/// unbuffered.
struct Within<'p, 't> {
    name: &'p str,
    below: &'p [Box<str>],
    text: &'t mut Text,
}

impl<'de> Visitor<'de> for Within<'_, '_> {
    type Value = List;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with the member {:?} or null", self.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<List, E> {
        Ok(List::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<List, A::Error> {
        let mut roles = None;
        while let Some(is_ours) = map.next_key_seed(IsName(self.name))? {
            if !is_ours {
                map.next_value::<IgnoredAny>()?;
            } else if roles.is_some() {
                // Two readers of one token must not see different roles.
                return Err(de::Error::custom("the roles claim appears twice"));
            } else {
                roles = Some(map.next_value_seed(Below {
                    nested: self.below,
                    text: &mut *self.text,
                })?);
            }
        }
        Ok(roles.unwrap_or_default())
    }
}

/// The value under one name of the path.
struct Below<'p, 't> {
    nested: &'p [Box<str>],
    text: &'t mut Text,
}

impl<'de> DeserializeSeed<'de> for Below<'_, '_> {
    type Value = List;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<List, D::Error> {
        read(d, self.nested, self.text)
    }
}

/// A member name, read only as far as whether it is the one looked for (no copy).
struct IsName<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for IsName<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for IsName<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::claims::{Registered, read, read_with, roles_claim};

    fn claim(path: &[&str]) -> RolesClaim {
        roles_claim(path.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    fn roles_in(payload: &str, path: &[&str]) -> Vec<String> {
        let r = read(payload.as_bytes(), &claim(path)).unwrap();
        r.text.list(&r.roles).map(str::to_owned).collect()
    }

    /// Both readers (alone, and beside a user's type) refuse `payload`.
    fn refused(payload: &str, path: &[&str]) -> bool {
        let c = claim(path);
        read(payload.as_bytes(), &c).is_err()
            && read_with::<serde_json::Value>(payload.as_bytes(), &c).is_err()
    }

    #[test]
    fn the_default_claim_is_still_roles() {
        assert_eq!(RolesClaim::default(), claim(&["roles"]));
        let r = read(br#"{"groups":["g"],"roles":["r"]}"#, &RolesClaim::default()).unwrap();
        assert_eq!(r.text.list(&r.roles).collect::<Vec<_>>(), ["r"]);
    }

    #[test]
    fn a_named_claim_is_read_and_roles_is_then_just_a_member() {
        let p = r#"{"roles":["admin"],"groups":["dev","ops"]}"#;
        assert_eq!(roles_in(p, &["groups"]), ["dev", "ops"]);
        assert!(roles_in(r#"{"roles":["admin"]}"#, &["groups"]).is_empty());
        // Not read at all: a `roles` the roles reader would refuse is skipped like any member.
        assert!(roles_in(r#"{"roles":[1],"roles":{}}"#, &["groups"]).is_empty());
        for name in ["cognito:groups", "https://example.com/roles"] {
            let p = format!(r#"{{"{name}":"Domain Admins","exp":5}}"#);
            // One string is one role: never split at spaces.
            assert_eq!(roles_in(&p, &[name]), ["Domain Admins"]);
        }
    }

    #[test]
    fn a_nested_path_is_followed_and_its_siblings_skipped() {
        let p = r#"{"roles":["top"],"realm_access":{"a":{"roles":["no"]},"roles":["r1","r2"],"b":[1,{"roles":["no"]}]},"exp":5}"#;
        assert_eq!(roles_in(p, &["realm_access", "roles"]), ["r1", "r2"]);
        let r = read(p.as_bytes(), &claim(&["realm_access", "roles"])).unwrap();
        assert_eq!(r.exp, Some(5));
        let client = r#"{"resource_access":{"web":{"roles":["w"]},"api":{"roles":["a1","a2"]}}}"#;
        assert_eq!(
            roles_in(client, &["resource_access", "api", "roles"]),
            ["a1", "a2"]
        );
    }

    #[test]
    fn a_path_that_leads_nowhere_is_no_roles() {
        let path = ["realm_access", "roles"];
        for p in [
            r#"{}"#,
            r#"{"realm_access":null}"#,
            r#"{"realm_access":{}}"#,
            r#"{"realm_access":{"roles":null}}"#,
            r#"{"realm_access":{"groups":["g"]},"roles":["r"]}"#,
        ] {
            assert!(roles_in(p, &path).is_empty(), "{p}");
        }
    }

    #[test]
    fn the_claim_given_twice_is_unreadable() {
        assert!(refused(
            r#"{"groups":["a"],"x":1,"groups":["b"]}"#,
            &["groups"]
        ));
        assert!(refused(r#"{"roles":["a"],"roles":["b"]}"#, &["roles"]));
        let path = ["realm_access", "roles"];
        assert!(refused(
            r#"{"realm_access":{"roles":["a"],"roles":["b"]}}"#,
            &path
        ));
        assert!(refused(
            r#"{"realm_access":{},"realm_access":{"roles":["admin"]}}"#,
            &path
        ));
    }

    #[test]
    fn values_of_another_shape_are_unreadable() {
        for (p, path) in [
            (r#"{"groups":5}"#, &["groups"][..]),
            (r#"{"groups":[["g"]]}"#, &["groups"]),
            (r#"{"groups":{"g":true}}"#, &["groups"]),
            (r#"{"realm_access":["r"]}"#, &["realm_access", "roles"]),
            (r#"{"realm_access":"r"}"#, &["realm_access", "roles"]),
            (
                r#"{"realm_access":{"roles":[1]}}"#,
                &["realm_access", "roles"],
            ),
            (
                r#"{"realm_access":{"roles":{"r":1}}}"#,
                &["realm_access", "roles"],
            ),
        ] {
            assert!(refused(p, path), "{p}");
        }
    }

    #[test]
    fn empty_and_registered_names_are_config_errors() {
        let check = |path: &[&str]| roles_claim(path.iter().map(|s| s.to_string()).collect());
        for path in [&[][..], &[""], &["realm_access", ""]] {
            assert_eq!(check(path), Err(ConfigError::EmptyRolesClaim), "{path:?}");
        }
        for name in ["aud", "scope", "scp", "exp", "client_id", "azp"] {
            assert_eq!(
                check(&[name, "roles"]),
                Err(ConfigError::RolesClaimIsRegistered(name.into()))
            );
        }
        // Below the first name, any name: it is not a member of the payload.
        assert!(check(&["realm_access", "aud"]).is_ok());
        assert!(check(&["roles", "x"]).is_ok());
    }

    #[test]
    fn the_users_type_sees_the_nested_claim_as_serde_json_shows_it() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Realm {
            roles: Vec<String>,
        }
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Mine {
            realm_access: Realm,
            exp: u64,
        }
        let p = r#"{"exp":7,"realm_access":{"x":[{}],"roles":["r"]},"org":"o"}"#;
        let c = claim(&["realm_access", "roles"]);
        let (r, mine) = read_with::<Mine>(p.as_bytes(), &c).unwrap();
        assert_eq!(r, read(p.as_bytes(), &c).unwrap());
        assert_eq!(mine, serde_json::from_str::<Mine>(p).unwrap());
        assert_eq!(r.text.list(&r.roles).collect::<Vec<_>>(), ["r"]);
    }

    proptest::proptest! {
        /// Whatever the object holds, reading the roles from wherever they are configured
        /// gives the same registered claims in one pass with a user's type as alone.
        #[test]
        fn one_pass_agrees_with_two_wherever_the_roles_are(
            path in proptest::sample::select(vec![
                vec!["roles"], vec!["groups"], vec!["realm_access", "roles"],
                vec!["resource_access", "api", "roles"],
            ]),
            members in proptest::collection::vec((
                proptest::sample::select(vec!["roles", "groups", "realm_access",
                    "resource_access", "exp", "aud", "x"]),
                proptest::sample::select(vec!["1", "null", "\"a b\"", "[\"x\",\"y\"]", "[1]",
                    "{\"roles\":[\"r\"]}", "{\"roles\":\"r\",\"x\":{}}", "{\"roles\":null}",
                    "{\"roles\":[\"a\"],\"roles\":[\"b\"]}", "{\"api\":{\"roles\":[\"c\"]}}",
                    "{\"roles\":[\"r\"],\"api\":{\"roles\":[\"c\"],\"x\":1}}"]),
            ), 0..6)
        ) {
            let c = claim(&path);
            let body = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(",");
            let p = format!("{{{body}}}");
            let alone: Option<Registered> = read(p.as_bytes(), &c).ok();
            let both = read_with::<serde_json::Value>(p.as_bytes(), &c).ok().map(|(r, _)| r);
            proptest::prop_assert_eq!(alone, both, "{}", p);
        }
    }
}
