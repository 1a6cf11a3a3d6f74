//! The command as people use it: the text they read, where the token comes from, usage
//! errors, an unreachable server, and `decode`.

use jsonwebtoken::Algorithm;
use portcullis::testkit::TestIssuer;
use serde_json::Value;

use crate::support::{bin, bind, demo, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_read_the_cause_and_its_fix() {
    let (d, api) = demo().await;
    let expired = api.tokens.access_token("alice", "read", -300);
    let r = run(&[
        "doctor".into(),
        format!("http://{d}/api/me"),
        "--token".into(),
        expired.clone(),
    ])
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let first = r.stdout.lines().next().unwrap();
    assert_eq!(first, "verdict: token_expired (401 Unauthorized)");
    assert!(
        r.stdout
            .contains("1. token_expired: the token expired 5 min ago"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("   fix: get a new access token"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("GMT, 5 min ago)"), "{}", r.stdout);
    assert!(!r.stdout.contains(&expired), "{}", r.stdout);

    let valid = api.tokens.access_token("alice", "read", 300);
    let r = run(&[
        "doctor".into(),
        format!("http://{d}/api/me"),
        "--token".into(),
        valid,
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("verdict: ok (200 OK"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("[ok  ] signature: verifies with key \"p256\""),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_come_from_a_variable_or_a_file_and_usage_errors_exit_2() {
    let (d, api) = demo().await;
    let valid = api.tokens.access_token("alice", "read", 300);
    let me = format!("http://{d}/api/me");
    let dir = std::env::temp_dir().join(format!("portcullis-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{valid}\n")).unwrap();
    let r = run(&[
        "doctor".into(),
        me.clone(),
        "--token-file".into(),
        file.display().to_string(),
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    let out = tokio::process::Command::new(bin())
        .args(["doctor", &me, "--token-env", "DOCTOR_TEST_TOKEN"])
        .env("DOCTOR_TEST_TOKEN", &valid)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    let both = run(&[
        "doctor".into(),
        me.clone(),
        "--token".into(),
        "a".into(),
        "--token-env".into(),
        "X".into(),
    ])
    .await;
    assert_eq!(both.code, 2, "{}", both.stderr);
    let unset = run(&[
        "doctor".into(),
        me.clone(),
        "--token-env".into(),
        "PORTCULLIS_SURELY_UNSET".into(),
    ])
    .await;
    assert_eq!(unset.code, 2);
    assert!(
        unset.stderr.contains("PORTCULLIS_SURELY_UNSET is not set"),
        "{}",
        unset.stderr
    );
    let header = run(&[
        "doctor".into(),
        me.clone(),
        "--token".into(),
        "a".into(),
        "-H".into(),
        "Authorization: Bearer b".into(),
    ])
    .await;
    assert_eq!(header.code, 2);
    let relative = run(&["doctor", "/api/me"]).await;
    assert_eq!(relative.code, 2, "{}", relative.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_be_reached_exits_3() {
    // A port that was just free: nothing listens there any more.
    let (l, addr) = bind().await;
    drop(l);
    let r = run(&["doctor".into(), format!("http://{addr}/x"), "--json".into()]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["verdict"], "unreachable");
    assert!(r.stderr.contains("cannot reach"), "{}", r.stderr);
}

#[tokio::test]
async fn decode_prints_claims_with_dates_never_the_signature() {
    let issuer = TestIssuer::new("https://id.test");
    let token = issuer.mint(
        Algorithm::ES256,
        issuer.access_claims("carol", "api", "read", 240),
    );
    let r = run(&["decode".into(), token.clone()]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("sub: \"carol\""), "{}", r.stdout);
    assert!(r.stdout.contains("alg: \"ES256\""), "{}", r.stdout);
    assert!(
        r.stdout.contains("GMT, in 4 min)") || r.stdout.contains("GMT, in 3 min)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(token.rsplit_once('.').unwrap().1));

    let mut child = tokio::process::Command::new(bin())
        .args(["decode", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("Bearer {token}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("carol"));

    let bad = run(&["decode", "not-a-token"]).await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("1 dot-separated part"),
        "{}",
        bad.stderr
    );
}
