//! Helpers of the root package's suites: the loopback HTTP helpers of the test kit, and the
//! compiled examples.
#![allow(dead_code, unused_imports)]

pub use portcullis::testkit::http::*;

/// A compiled example (`cargo test` builds examples into target/<profile>/examples; test
/// binaries live in target/<profile>/deps).
pub fn example_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}
