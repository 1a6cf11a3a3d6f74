//! Arbitrary JOSE header bytes in a JWT sent to a layer that requires `typ` (so the header is
//! read past `alg` and `kid`); the payload and signature are well-formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_test_harness as harness;

fuzz_target!(|data: &[u8]| {
    static H: std::sync::OnceLock<harness::Harness> = std::sync::OnceLock::new();
    H.get_or_init(harness::Harness::new).check_jose_header(data);
});
