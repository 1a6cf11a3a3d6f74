//! Arbitrary JOSE header, payload and signature bytes, base64url-encoded into a JWT.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_test_harness as harness;

fuzz_target!(|data: &[u8]| {
    static H: std::sync::OnceLock<harness::Harness> = std::sync::OnceLock::new();
    let h = H.get_or_init(harness::Harness::new);
    let mut parts = data.splitn(3, |&b| b == 0xFF);
    let header = parts.next().unwrap_or_default();
    let payload = parts.next().unwrap_or_default();
    let sig = parts.next().unwrap_or_default();
    h.check_jwt(header, payload, sig);
});
