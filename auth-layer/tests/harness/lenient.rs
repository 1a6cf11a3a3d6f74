//! Bodies that serde_json cannot read as one JSON value but other readers can, each carrying a
//! JSON-RPC message: a BOM, UTF-16/32, `NaN`/`Infinity`, two messages in one body, JSON5-isms,
//! members named in another case. Shared by the contract suite (every one is refused when a
//! tool is gated) and the real-backend suite (`tests/mcp_lenient_backends.rs`: the Python and
//! Node MCP servers never run the gated tool through the gateway).

/// One body and the `Content-Type` it is sent with (`None`: no such header).
#[derive(Clone, Debug)]
pub struct Case {
    /// What the reader that sees the call in it does differently.
    pub name: &'static str,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'static str>,
    /// The body.
    pub body: Vec<u8>,
}

const JSON: Option<&str> = Some("application/json");

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
    for u in units {
        out.extend(if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        });
    }
    out
}

fn utf32le(text: &str, bom: bool) -> Vec<u8> {
    let chars = bom.then_some('\u{FEFF}').into_iter().chain(text.chars());
    chars.flat_map(|c| (c as u32).to_le_bytes()).collect()
}

/// `call` with `member` inserted first in its `params` object.
fn in_params(call: &str, member: &str) -> String {
    assert!(
        call.contains(r#""params":{"#),
        "a compact call with params: {call}"
    );
    call.replacen(r#""params":{"#, &format!(r#""params":{{{member},"#), 1)
}

fn case(name: &'static str, content_type: Option<&'static str>, body: Vec<u8>) -> Case {
    Case {
        name,
        content_type,
        body,
    }
}

/// `call` in encodings other than plain UTF-8.
fn encodings(call: &str) -> Vec<Case> {
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(call.as_bytes());
    vec![
        // Python's json.loads(bytes), Node's TextDecoder and iconv-lite drop it.
        case("UTF-8 BOM", JSON, bom),
        // body-parser (Express) decodes by the charset; Python detects UTF-16/32 itself.
        case(
            "UTF-16LE with a BOM, charset=utf-16",
            Some("application/json; charset=utf-16"),
            utf16(call, false, true),
        ),
        case(
            "UTF-16LE, charset=utf-16le",
            Some("application/json; charset=utf-16le"),
            utf16(call, false, false),
        ),
        case(
            "UTF-16BE with a BOM, no charset",
            JSON,
            utf16(call, true, true),
        ),
        case("UTF-32LE, no charset", JSON, utf32le(call, false)),
        case(
            "UTF-32LE with a BOM, charset=utf-32",
            Some("application/json; charset=utf-32"),
            utf32le(call, true),
        ),
    ]
}

/// `call` with a number only lenient readers take.
fn lenient_numbers(call: &str) -> Vec<Case> {
    vec![
        // Python's json (and pydantic-core) read these as floats.
        case(
            "NaN",
            JSON,
            in_params(call, r#""lenient":NaN"#).into_bytes(),
        ),
        case(
            "Infinity",
            JSON,
            in_params(call, r#""lenient":Infinity"#).into_bytes(),
        ),
        case(
            "-Infinity",
            JSON,
            in_params(call, r#""lenient":-Infinity"#).into_bytes(),
        ),
    ]
}

/// `call` and `first` in one body.
fn two_messages(call: &str, first: &str) -> Vec<Case> {
    vec![
        // NDJSON readers take one message a line; streaming decoders read value after value.
        case(
            "two messages, one a line",
            JSON,
            format!("{first}\n{call}").into_bytes(),
        ),
        case(
            "two messages back to back",
            JSON,
            format!("{first}{call}").into_bytes(),
        ),
        case(
            "the call, then a second message",
            JSON,
            format!("{call}\n{first}").into_bytes(),
        ),
    ]
}

/// `call` with syntax or member names only lenient readers take.
fn lenient_syntax(call: &str) -> Vec<Case> {
    vec![
        // JSON5 and JSONC readers.
        case(
            "a block comment",
            JSON,
            format!("/* lenient */{call}").into_bytes(),
        ),
        case(
            "a line comment",
            JSON,
            format!("// lenient\n{call}").into_bytes(),
        ),
        case(
            "a trailing comma",
            JSON,
            format!("{},}}", &call[..call.len() - 1]).into_bytes(),
        ),
        case(
            "a single-quoted member",
            JSON,
            in_params(call, "'lenient':'yes'").into_bytes(),
        ),
        // Go's encoding/json matches member names without regard to case (with Unicode's
        // simple folding: U+017F folds to `s`), so these name the call there.
        case(
            "members named in another case",
            JSON,
            call.replacen(r#""method":"#, r#""Method":"#, 1)
                .replacen(r#""params":"#, r#""PARAMS":"#, 1)
                .replacen(r#""name":"#, r#""Name":"#, 1)
                .into_bytes(),
        ),
        case(
            "params spelled with a long s",
            JSON,
            call.replacen(r#""params":"#, "\"param\u{17F}\":", 1)
                .into_bytes(),
        ),
    ]
}

/// The corpus for `call`, a compact JSON-RPC request text (`serde_json::to_string` of an
/// object with a `params` object), and `first`, an honest message sent before it where a body
/// holds two.
pub fn bodies(call: &str, first: &str) -> Vec<Case> {
    assert!(call.ends_with('}'));
    let mut all = encodings(call);
    all.extend(lenient_numbers(call));
    all.extend(two_messages(call, first));
    all.extend(lenient_syntax(call));
    all
}
