//! The client's RFC 6749 token-response parser never panics, whatever the status and body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data.split_first() {
        Some((s, rest)) => (100 + u16::from(*s) * 2, rest),
        None => (200, data),
    };
    if let Ok(status) = http::StatusCode::from_u16(status) {
        if let Ok(tokens) = refresh_layer::fuzzing::parse_token_response(status, body) {
            // Debug output never contains the access token.
            let shown = format!("{tokens:?}");
            assert!(tokens.access_token.len() < 8 || !shown.contains(&tokens.access_token));
        }
    }
});
