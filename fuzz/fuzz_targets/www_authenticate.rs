//! The client's WWW-Authenticate and problem-body parsers never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(challenges) = refresh_layer::fuzzing::parse_challenges(s) {
            for c in &challenges {
                let _ = c.param("error");
            }
        }
    }
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(data) {
        headers.insert(http::header::WWW_AUTHENTICATE, v);
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    let f = refresh_layer::AuthFailure::parse(http::StatusCode::UNAUTHORIZED, &headers, data);
    let _ = (f.bearer_error(), f.code(), f.to_string());
});
