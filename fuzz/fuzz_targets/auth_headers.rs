//! Arbitrary Authorization / Cookie / API-key header bytes through the real AuthService.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_test_harness as harness;

fuzz_target!(|data: &[u8]| {
    static H: std::sync::OnceLock<harness::Harness> = std::sync::OnceLock::new();
    let h = H.get_or_init(harness::Harness::new);
    // Fields separated by 0xFF: authorization values..., then cookie, then api key.
    let mut parts: Vec<&[u8]> = data.split(|&b| b == 0xFF).collect();
    let api_key = if parts.len() > 2 { parts.pop() } else { None };
    let cookie = if parts.len() > 1 { parts.pop() } else { None };
    h.check(&parts, cookie, api_key);
});
