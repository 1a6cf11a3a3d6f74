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
    use proptest::strategy::{Just, Strategy};

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

    /// An oracle that shares nothing with the reader under test: serde_json's own `Value` for
    /// the members' values, and a scan of the raw JSON that keeps every member of every object,
    /// duplicates included, under its unescaped name.
    mod oracle {
        use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
        use serde_json::Value;

        /// An object's members in order, duplicates kept; anything else is `Other`.
        pub(super) enum Scan {
            Object(Vec<(String, Scan)>),
            Other,
        }

        impl<'de> Deserialize<'de> for Scan {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scan, D::Error> {
                d.deserialize_any(ScanVisitor)
            }
        }

        struct ScanVisitor;

        impl<'de> Visitor<'de> for ScanVisitor {
            type Value = Scan;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scan, A::Error> {
                let mut members = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, Scan>()? {
                    members.push((name, value));
                }
                Ok(Scan::Object(members))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scan, A::Error> {
                while seq.next_element::<Scan>()?.is_some() {}
                Ok(Scan::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scan, E> {
                Ok(Scan::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Scan, E> {
                Ok(Scan::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Scan, E> {
                Ok(Scan::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scan, E> {
                Ok(Scan::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Scan, E> {
                Ok(Scan::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scan, E> {
                Ok(Scan::Other)
            }
        }

        /// The roles `path` designates in `payload` (`None`: the payload must be refused): a
        /// name given twice in an object on the way is a refusal; a missing member or `null`
        /// is no roles; at the end, one string is one role and an array of strings the roles;
        /// any other value, on the way or at the end, is a refusal.
        pub(super) fn expected_roles(payload: &str, path: &[&str]) -> Option<Vec<String>> {
            let mut value: Value = serde_json::from_str(payload).unwrap();
            let mut scan: Scan = serde_json::from_str(payload).unwrap();
            for (depth, name) in path.iter().enumerate() {
                let (Value::Object(object), Scan::Object(members)) = (value, scan) else {
                    unreachable!("walked only into objects")
                };
                let mut named = members.into_iter().filter(|(n, _)| n == name);
                let Some((_, below)) = named.next() else {
                    return Some(Vec::new());
                };
                if named.next().is_some() {
                    return None;
                }
                let found = object[*name].clone();
                let last = depth + 1 == path.len();
                match found {
                    Value::Null => return Some(Vec::new()),
                    Value::String(role) if last => return Some(vec![role]),
                    Value::Array(items) if last => {
                        return items
                            .into_iter()
                            .map(|item| item.as_str().map(str::to_owned))
                            .collect();
                    }
                    Value::Object(_) if !last => {
                        value = found;
                        scan = below;
                    }
                    _ => return None,
                }
            }
            unreachable!("a path has at least one name")
        }
    }

    /// The oracle itself, on payloads whose answer is known by hand.
    #[test]
    fn the_oracle_reads_known_payloads_as_written() {
        let path = ["realm_access", "roles"];
        let cases: [(&str, Option<&[&str]>); 8] = [
            (
                r#"{"realm_access":{"\u0072oles":["a","b"]}}"#,
                Some(&["a", "b"]),
            ),
            (
                r#"{"\u0072ealm_access":{"roles":"Domain Admins"}}"#,
                Some(&["Domain Admins"]),
            ),
            (
                r#"{"realm_access":{"roles":null},"roles":["top"]}"#,
                Some(&[]),
            ),
            (r#"{"realm_access":null}"#, Some(&[])),
            (
                r#"{"realm_access":{"roles":["a"],"\u0072oles":["b"]}}"#,
                None,
            ),
            (
                r#"{"realm_access":{},"realm_access":{"roles":["a"]}}"#,
                None,
            ),
            (r#"{"realm_access":{"roles":["a",1]}}"#, None),
            (r#"{"realm_access":["roles"]}"#, None),
        ];
        for (payload, roles) in cases {
            let expected = roles.map(|r| r.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(
                oracle::expected_roles(payload, &path),
                expected,
                "{payload}"
            );
        }
        // Duplicates off the path do not matter to the roles.
        let p = r#"{"x":1,"x":2,"realm_access":{"y":[],"y":{},"roles":["r"]}}"#;
        assert_eq!(oracle::expected_roles(p, &path), Some(vec!["r".to_owned()]));
    }

    /// A member name as a token may spell it: plain, or with its first letter escaped.
    fn spelled(name: &'static str) -> impl proptest::strategy::Strategy<Value = String> {
        proptest::bool::ANY.prop_map(move |escaped| {
            if escaped {
                format!("\\u{:04x}{}", name.as_bytes()[0], &name[1..])
            } else {
                name.to_owned()
            }
        })
    }

    /// One of a few member names, so that duplicates are common at every level.
    fn any_name() -> proptest::strategy::BoxedStrategy<String> {
        let names = [
            "roles",
            "groups",
            "realm_access",
            "resource_access",
            "api",
            "x",
        ];
        proptest::sample::select(names.to_vec())
            .prop_flat_map(spelled)
            .boxed()
    }

    /// A JSON value whose objects nest at most `depth` levels.
    fn json_value(depth: usize) -> proptest::strategy::BoxedStrategy<String> {
        let leaf = proptest::sample::select(vec![
            "1",
            "null",
            "true",
            "\"a b\"",
            "\"\\u0061dmin\"",
            "[\"x\",\"y\"]",
            "[]",
            "[1]",
            "[\"\\u0061dmin\",\"ops\"]",
            "[\"x\",null]",
            "{}",
            "[{\"roles\":[\"n\"]}]",
        ])
        .prop_map(str::to_owned);
        if depth == 0 {
            return leaf.boxed();
        }
        let object = json_object(
            proptest::collection::vec((any_name(), json_value(depth - 1)), 0..5).boxed(),
        );
        proptest::prop_oneof![2 => leaf, 3 => object].boxed()
    }

    fn json_object(
        members: proptest::strategy::BoxedStrategy<Vec<(String, String)>>,
    ) -> proptest::strategy::BoxedStrategy<String> {
        members
            .prop_map(|members| {
                let body: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            })
            .boxed()
    }

    /// An object, with objects nesting at most `depth` levels below it, whose members are
    /// often the next name of `path`, once or more, and then often an object along the rest
    /// of it: the roles are found, missing, duplicated or of the wrong shape at every level.
    fn along(
        path: &'static [&'static str],
        depth: usize,
    ) -> proptest::strategy::BoxedStrategy<String> {
        let (name, rest) = path.split_first().unwrap();
        let on_path = if rest.is_empty() || depth == 0 {
            // Mostly a value the roles claim may hold.
            let roles = proptest::sample::select(vec![
                "null",
                "\"a b\"",
                "\"\\u0061dmin\"",
                "[\"x\",\"y\"]",
                "[]",
                "[\"\\u0061dmin\",\"ops\"]",
            ])
            .prop_map(str::to_owned);
            proptest::prop_oneof![3 => roles, 1 => json_value(depth.min(1))].boxed()
        } else {
            proptest::prop_oneof![1 => json_value(depth - 1), 3 => along(rest, depth - 1)].boxed()
        };
        let other = (any_name(), json_value(depth));
        // Mostly once; sometimes missing, sometimes twice; among other members, in any order.
        let times = proptest::prop_oneof![1 => Just(0..1), 5 => Just(1..2), 1 => Just(2..3)];
        let ours = times
            .prop_flat_map(move |n| proptest::collection::vec((spelled(name), on_path.clone()), n));
        let members = (ours, proptest::collection::vec(other, 0..3))
            .prop_map(|(mut ours, others)| {
                ours.extend(others);
                ours
            })
            .prop_shuffle();
        json_object(members.boxed())
    }

    /// A user's claims type that reads members the roles may be in or under.
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct UsersClaims {
        realm_access: Option<serde_json::Value>,
        x: Option<serde_json::Value>,
    }

    fn listed(r: &Registered) -> Vec<String> {
        r.text.list(&r.roles).map(str::to_owned).collect()
    }

    proptest::proptest! {
        /// Alone, beside `serde_json::Value` and beside a user's struct, the reader finds the
        /// roles the oracle finds, and refuses exactly the payloads the oracle refuses (or, for
        /// the struct, that serde_json refuses to read into it).
        #[test]
        fn the_reader_agrees_with_an_independent_oracle(
            (path, payload) in proptest::sample::select(vec![
                &["roles"][..], &["groups"], &["x"], &["realm_access", "roles"],
                &["resource_access", "api", "roles"],
            ]).prop_flat_map(|path| (Just(path), along(path, 2))),
        ) {
            let c = claim(path);
            let expected = oracle::expected_roles(&payload, path);
            let alone = read(payload.as_bytes(), &c).ok().map(|r| listed(&r));
            proptest::prop_assert_eq!(&alone, &expected, "alone: {}", payload);
            let with_value = read_with::<serde_json::Value>(payload.as_bytes(), &c).ok();
            let expected_value = serde_json::from_str::<serde_json::Value>(&payload).unwrap();
            proptest::prop_assert_eq!(
                with_value.map(|(r, v)| (listed(&r), v)),
                expected.clone().map(|roles| (roles, expected_value)),
                "beside Value: {}", payload
            );
            let with_struct = read_with::<UsersClaims>(payload.as_bytes(), &c).ok();
            let expected_struct = serde_json::from_str::<UsersClaims>(&payload).ok();
            proptest::prop_assert_eq!(
                with_struct.map(|(r, mine)| (listed(&r), mine)),
                expected.zip(expected_struct),
                "beside a struct: {}", payload
            );
        }
    }
}
