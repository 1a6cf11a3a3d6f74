//! Arbitrary request bodies, with a `Content-Type` picked by the first byte, through the real
//! `mcp::ToolScopes` service: no panic, no 5xx, passed bodies unchanged and sent as UTF-8
//! JSON, and no body in which a reader more lenient than serde_json (the `json5` crate over
//! UTF-8/16/32 decodings, line by line too, member names in any case) finds a call of the
//! gated tool ever passes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_test_harness as harness;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let content_type = harness::CONTENT_TYPES[usize::from(pick) % harness::CONTENT_TYPES.len()];
    harness::check_tool_call_as(content_type, body);
});
