//! Bad input never panics, never gets a 500, never is echoed: property tests over header and
//! token parsing through the real service (the `cargo fuzz` targets run the same harness).

use portcullis_test_harness::{self as harness, Harness, MARKER, lenient};
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
            // What readers more lenient than serde_json take.
            Just(r#""Method":"tools/call""#),
            Just(r#""PARAMS":{"name":"gated"}"#),
            Just(r#""params":{"Name":"gated"}"#),
            Just(r#""params":{"name":"gated","x":NaN}"#),
            Just(r#""x":Infinity"#),
            Just(r#"'x':1"#),
            Just(r#""x":1,"#),
        ], 0..6),
        batch in 0usize..3,
        prefix in prop_oneof![
            Just(&b""[..]),
            Just(&b"\xEF\xBB\xBF"[..]),
            Just(&b"/**/"[..]),
            Just(&b"{\"method\":\"tools/list\"}\n"[..]),
        ],
        junk in proptest::collection::vec(any::<u8>(), 0..3),
        content_type in 0..harness::CONTENT_TYPES.len(),
    ) {
        let object = format!("{{{}}}", members.join(","));
        let body = match batch {
            0 => object,
            1 => format!("[{object}]"),
            _ => format!(r#"[{{"method":"tools/list"}}, {object}]"#),
        };
        let content_type = harness::CONTENT_TYPES[content_type];
        harness::check_tool_call_as(content_type, body.as_bytes());
        let mut prefixed = prefix.to_vec();
        prefixed.extend_from_slice(body.as_bytes());
        harness::check_tool_call_as(content_type, &prefixed);
        let mut broken = body.into_bytes();
        broken.extend_from_slice(&junk);
        harness::check_tool_call_as(content_type, &broken);
    }

    #[test]
    fn tool_scopes_on_arbitrary_bytes(
        v in proptest::collection::vec(any::<u8>(), 0..200),
        content_type in 0..harness::CONTENT_TYPES.len(),
    ) {
        harness::check_tool_call_as(harness::CONTENT_TYPES[content_type], &v);
    }

    #[test]
    fn tool_calls_in_utf16_and_utf32(
        tool in "gated|search",
        big_endian in any::<bool>(),
        bom in any::<bool>(),
        wide in any::<bool>(),
        content_type in 0..harness::CONTENT_TYPES.len(),
    ) {
        let text = format!(r#"{{"method":"tools/call","params":{{"name":"{tool}"}}}}"#);
        let text = if bom { format!("\u{FEFF}{text}") } else { text };
        let body: Vec<u8> = if wide {
            text.chars().flat_map(|c| {
                let u = c as u32;
                if big_endian { u.to_be_bytes() } else { u.to_le_bytes() }
            }).collect()
        } else {
            text.encode_utf16().flat_map(|u| {
                if big_endian { u.to_be_bytes() } else { u.to_le_bytes() }
            }).collect()
        };
        assert_eq!(harness::lenient_calls_gated(&body), tool == "gated", "the oracle decodes it");
        harness::check_tool_call_as(harness::CONTENT_TYPES[content_type], &body);
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

/// The oracle of the ToolScopes properties and fuzz target is no weaker than the readers the
/// bypass corpus was written for.
#[test]
fn the_lenient_oracle_finds_the_call_in_every_corpus_body() {
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{}"}}}}"#,
        harness::GATED
    );
    let first = r#"{"jsonrpc":"2.0","id":0,"method":"tools/list"}"#;
    for case in lenient::bodies(&call, first) {
        assert!(harness::lenient_calls_gated(&case.body), "{}", case.name);
        for content_type in harness::CONTENT_TYPES {
            harness::check_tool_call_as(*content_type, &case.body);
        }
    }
    assert!(!harness::lenient_calls_gated(first.as_bytes()));
}
