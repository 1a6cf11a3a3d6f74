//! Bad input never panics, never gets a 500, never is echoed: property tests over header and
//! token parsing through the real service (the `cargo fuzz` targets run the same harness).

mod harness;

use harness::{Harness, MARKER};
use proptest::prelude::*;

fn harness() -> &'static Harness {
    static H: std::sync::OnceLock<Harness> = std::sync::OnceLock::new();
    H.get_or_init(Harness::new)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn tool_calls_in_arbitrary_json_rpc(
        members in proptest::collection::vec(prop_oneof![
            Just(r#""method":"tools/call""#),
            Just(r#""method":"tools/list""#),
            Just(r#""method":7"#),
            Just(r#""params":{"name":"gated"}"#),
            Just(r#""params":{"name":"gat\u0065d"}"#),
            Just(r#""params":{"name":"search"}"#),
            Just(r#""params":{"name":"search","name":"gated"}"#),
            Just(r#""params":{"name":"gated","name":"search"}"#),
            Just(r#""params":null"#),
            Just(r#""id":1"#),
        ], 0..6),
        batch in 0usize..3,
        junk in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let object = format!("{{{}}}", members.join(","));
        let body = match batch {
            0 => object,
            1 => format!("[{object}]"),
            _ => format!(r#"[{{"method":"tools/list"}}, {object}]"#),
        };
        harness::check_tool_call(body.as_bytes());
        let mut broken = body.into_bytes();
        broken.extend_from_slice(&junk);
        harness::check_tool_call(&broken);
    }

    #[test]
    fn tool_scopes_on_arbitrary_bytes(v in proptest::collection::vec(any::<u8>(), 0..200)) {
        harness::check_tool_call(&v);
    }

    #[test]
    fn arbitrary_authorization_bytes(v in proptest::collection::vec(any::<u8>(), 0..80)) {
        harness().check(&[&v], None, None);
    }

    #[test]
    fn bearer_like_values(scheme in "[Bb][Ee][Aa][Rr][Ee][Rr]|Basic|Token|", sp in " {0,3}", tok in "[ -~]{0,40}") {
        let v = format!("{scheme}{sp}{tok}{MARKER}");
        harness().check(&[v.as_bytes()], None, None);
    }

    #[test]
    fn several_places_at_once(a in "[ -~]{0,20}", c in "[ -~]{0,30}", k in "[ -~]{0,20}") {
        let a = format!("Bearer {a}{MARKER}");
        let k = format!("{k}{MARKER}");
        harness().check(&[a.as_bytes(), a.as_bytes()], Some(c.as_bytes()), Some(k.as_bytes()));
        harness().check(&[], Some(format!("x=1; at={c}{MARKER}").as_bytes()), None);
        harness().check(&[], None, Some(k.as_bytes()));
    }

    #[test]
    fn jwt_with_arbitrary_json(
        alg in "HS256|RS256|none|ES256|",
        kid in "k|other|",
        extra in "[ -~]{0,30}",
        exp in proptest::option::of(any::<i64>()),
        aud in "api|\\[\"api\"\\]|7|null|\\{\\}",
        sig in proptest::collection::vec(any::<u8>(), 0..70),
    ) {
        let header = format!(r#"{{"alg":"{alg}","kid":"{kid}","x":{extra:?}}}"#);
        let exp = exp.map_or("null".to_owned(), |e| e.to_string());
        let payload = format!(r#"{{"exp":{exp},"aud":{aud},"scope":{extra:?}}}"#);
        harness().check_jwt(header.as_bytes(), payload.as_bytes(), &sig);
    }

    /// Header fields of any Unicode, `typ` above all: the typed layer compares it with the
    /// `application/` prefix, where a byte-offset slice once panicked.
    #[test]
    fn jose_header_with_arbitrary_text(
        alg in "HS256|RS256|none|",
        typ in "\\PC{0,24}",
        prefix in "application/|applicatio|APPLICATION/|",
    ) {
        let header = serde_json::json!({"alg": alg, "kid": "k", "typ": format!("{prefix}{typ}")});
        harness().check_jose_header(header.to_string().as_bytes());
    }

    #[test]
    fn jose_header_arbitrary_bytes(h in proptest::collection::vec(any::<u8>(), 0..80)) {
        harness().check_jose_header(&h);
    }

    #[test]
    fn jwt_with_arbitrary_bytes(h in proptest::collection::vec(any::<u8>(), 0..60), p in proptest::collection::vec(any::<u8>(), 0..60)) {
        harness().check_jwt(&h, &p, b"sig");
    }
}
