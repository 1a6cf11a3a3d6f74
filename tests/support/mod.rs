//! Helpers of the root package's suites: the loopback HTTP helpers of the test kit, and the
//! compiled examples.
#![allow(dead_code, unused_imports)]

pub(crate) use portcullis::testkit::loopback::*;

/// A compiled example (`cargo test` builds examples into target/<profile>/examples; test
/// binaries live in target/<profile>/deps).
pub(crate) fn example_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

/// Start the compiled example `name` with `args`; returns the process (killed when dropped)
/// and the URL its first stdout line names (`listening on URL`).
pub(crate) async fn start_example(name: &str, args: &[&str]) -> (tokio::process::Child, String) {
    start_example_with_env(name, args, &[]).await
}

/// [`start_example`] with environment variables set for it (secrets, which `ps` would show
/// on the command line).
pub(crate) async fn start_example_with_env(
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(example_bin(name))
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("the {name} example is built by cargo test: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line}"))
        .to_owned();
    // Keep reading: a closed pipe would make the example's next print fail.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}
