use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::roles::{self, RolesClaim};
use super::values::{OptionalString, Strings, numeric_date};
use crate::error::ConfigError;
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
    /// From the claim [`RolesClaim`] names (default `roles`).
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
pub(super) enum Field {
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
pub(super) const fn tag(name: &[u8; 3]) -> u32 {
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
    /// Called for every member of every payload, most of them not registered claims; `roles`
    /// is the member the roles claim is in (or under), [`RolesClaim::member`].
    pub(super) fn from_name(name: &str, roles: &str) -> Option<Field> {
        match Field::registered(name.as_bytes()) {
            // One length check for most other members.
            None if name == roles => Some(Field::Roles),
            field => field,
        }
    }

    /// The registered claims the reader consumes whatever it is configured with.
    fn registered(b: &[u8]) -> Option<Field> {
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
                b"client_id" => Some(Field::ClientId),
                _ => None,
            },
        }
    }
}

/// [`Registered`] being filled member by member, remembering which members were seen.
pub(super) struct Collector<'r> {
    pub(super) claims: Registered,
    seen: u16,
    /// Where the roles are.
    pub(super) roles: &'r RolesClaim,
}

impl<'r> Collector<'r> {
    pub(super) fn new(payload_len: usize, roles: &'r RolesClaim) -> Self {
        Collector {
            claims: Registered::for_payload(payload_len),
            seen: 0,
            roles,
        }
    }

    /// The seed that reads `field`'s value into the claims.
    pub(super) fn slot(&mut self, field: Field) -> Slot<'_, 'r> {
        Slot {
            field,
            collector: self,
        }
    }
}

/// Reads one registered claim's value; what each claim may look like is decided here only.
pub(super) struct Slot<'a, 'r> {
    field: Field,
    collector: &'a mut Collector<'r>,
}

impl<'de> DeserializeSeed<'de> for Slot<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let bit = 1u16 << self.field as u16;
        if self.collector.seen & bit != 0 {
            return Err(de::Error::custom("a registered claim appears twice"));
        }
        self.collector.seen |= bit;
        let roles = self.collector.roles;
        let c = &mut self.collector.claims;
        match self.field {
            Field::Iss => c.iss = d.deserialize_option(OptionalString(&mut c.text))?,
            Field::Sub => c.sub = d.deserialize_option(OptionalString(&mut c.text))?,
            Field::Jti => c.jti = d.deserialize_option(OptionalString(&mut c.text))?,
            Field::Aud => c.aud = d.deserialize_any(Strings::new(&mut c.text, false))?,
            Field::Roles => c.roles = roles::read(d, roles.nested(), &mut c.text)?,
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

/// A member name, read only as far as which registered claim it is (no copy); the seed holds
/// the member the roles claim is in (or under).
pub(super) struct FieldKey<'n>(pub(super) &'n str);

impl<'de> DeserializeSeed<'de> for FieldKey<'_> {
    type Value = Option<Field>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Field>, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for FieldKey<'_> {
    type Value = Option<Field>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Field>, E> {
        Ok(Field::from_name(v, self.0))
    }
}

/// Reads the registered claims from a JSON object (of so many bytes), skipping every other
/// member unbuffered.
struct RegisteredVisitor<'r> {
    len: usize,
    roles: &'r RolesClaim,
}

impl<'de> Visitor<'de> for RegisteredVisitor<'_> {
    type Value = Registered;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Registered, A::Error> {
        let mut c = Collector::new(self.len, self.roles);
        let roles = self.roles.member();
        while let Some(field) = map.next_key_seed(FieldKey(roles))? {
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

/// The registered claims alone, the roles read from `roles`.
pub(crate) fn read(payload: &[u8], roles: &RolesClaim) -> serde_json::Result<Registered> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let claims = de.deserialize_map(RegisteredVisitor {
        len: payload.len(),
        roles,
    })?;
    de.end()?;
    Ok(claims)
}

/// The roles claim `path` names, checked: at least one name, none empty, and the first not a
/// registered claim the reader consumes for itself (it could not be read twice).
pub(crate) fn roles_claim(path: Vec<String>) -> Result<RolesClaim, ConfigError> {
    let claim = RolesClaim::new(path)?;
    if Field::registered(claim.member().as_bytes()).is_some() {
        return Err(ConfigError::RolesClaimIsRegistered(
            claim.member().to_owned(),
        ));
    }
    Ok(claim)
}

/// The registered claims whose presence [`required_claims`](crate::jwt::JwtAuthenticatorBuilder::required_claims) can demand.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The registered claims alone, roles from the default `roles`.
    fn read(payload: &[u8]) -> serde_json::Result<Registered> {
        super::read(payload, &RolesClaim::default())
    }

    /// The registered claims and `C` in one pass, roles from the default `roles`.
    fn read_with<C: serde::de::DeserializeOwned>(
        payload: &[u8],
    ) -> serde_json::Result<(Registered, C)> {
        crate::jwt::claims::read_with::<C>(payload, &RolesClaim::default())
    }

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
            assert!(Field::from_name(n, "roles").is_some(), "{n}");
        }
        for n in [
            "", "is", "isss", "Iss", "ex\0", "email", "scopes", "role", "client", "azp ",
        ] {
            assert!(Field::from_name(n, "roles").is_none(), "{n:?}");
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
