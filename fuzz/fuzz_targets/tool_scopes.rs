//! Arbitrary request bodies through the real `mcp::ToolScopes` service: no panic, no 5xx,
//! passed bodies unchanged, and no body in which a plain JSON reading finds a call of the
//! gated tool ever passes.
#![no_main]

#[path = "../../auth-layer/tests/harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::check_tool_call(data);
});
