//! The README's first command tells the story it promises: runs the compiled demo example and
//! checks each row of its table.

mod support;

use std::process::Command;

use support::example_bin;

#[test]
fn demo_prints_every_story_with_its_outcome() {
    let out = Command::new(example_bin("demo"))
        .output()
        .expect("the demo example is built by cargo test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |story: &str| {
        text.lines()
            .find(|l| l.starts_with(story))
            .unwrap_or_else(|| panic!("no row {story:?} in:\n{text}"))
            .split('|')
            .map(str::trim)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("no token")[2..4], ["401", "missing_credentials"]);
    assert_eq!(row("wrong scheme")[2..4], ["401", "unsupported_scheme"]);
    assert_eq!(row("malformed")[2..4], ["400", "invalid_request"]);
    let expired = row("expired token");
    assert_eq!(expired[2..4], ["401 → 200", "token_expired"]);
    assert!(expired[4].contains("refreshed 1×"), "{expired:?}");
    let burst = row("burst, expired");
    assert_eq!(burst[2], "100 × 200");
    assert!(burst[4].contains("called 1× for all 100"), "{burst:?}");
    let scope = row("missing scope");
    assert_eq!(scope[2..4], ["403", "insufficient_scope"]);
    assert!(
        scope[4].contains("retried: false, token calls +0"),
        "{scope:?}"
    );
    let preflight = row("preflight");
    assert_eq!(preflight[2], "200");
    assert!(
        preflight[4].contains("allow-origin http://localhost:3000")
            && preflight[4].contains("no challenge: true"),
        "{preflight:?}"
    );
}
