use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::store::next_version;

const TTL: Duration = Duration::from_secs(30);

/// A directory of the test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "portcullis-file-store-{}-{n}-{test}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("tokens.json")
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn first(rt: &str) -> Versioned {
    Versioned {
        version: 1,
        tokens: StoredTokens::from_refresh_token(rt),
    }
}

#[tokio::test]
async fn a_commit_over_a_version_that_moved_on_is_a_conflict_and_writes_nothing() {
    let dir = TempDir::new("cas");
    let store = FileStore::open(dir.file()).unwrap();
    assert!(store.restore("g", &first("rt-1")).await.unwrap());
    let two = StoredTokens::new("at-2").refresh_token("rt-2");
    assert_eq!(
        store.commit("g", 1, None, &two).await,
        Ok(Commit::Committed(2))
    );
    let late = StoredTokens::new("at-late").refresh_token("rt-late");
    assert_eq!(
        store.commit("g", 1, None, &late).await,
        Ok(Commit::Conflict)
    );
    let other = FileStore::open(dir.file()).unwrap();
    assert_eq!(
        other.load("g").await.unwrap(),
        Some(Versioned {
            version: 2,
            tokens: two
        })
    );
    // A grant with nothing stored takes any expected version, as the other stores do.
    assert_eq!(
        other.commit("h", 7, None, &late).await,
        Ok(Commit::Committed(8))
    );
    assert_eq!(store.load("h").await.unwrap().unwrap().version, 8);
}

#[tokio::test]
async fn restore_writes_only_into_an_empty_grant() {
    let dir = TempDir::new("restore");
    let store = FileStore::open(dir.file()).unwrap();
    assert_eq!(store.load("g").await.unwrap(), None);
    assert!(store.restore("g", &first("rt-1")).await.unwrap());
    assert!(!store.restore("g", &first("rt-other")).await.unwrap());
    let newer = Versioned {
        version: 9,
        tokens: StoredTokens::from_refresh_token("rt-9"),
    };
    assert!(!store.restore("g", &newer).await.unwrap());
    assert_eq!(store.load("g").await.unwrap(), Some(first("rt-1")));
}

#[tokio::test]
async fn one_lease_at_a_time_across_store_values_on_one_file() {
    let dir = TempDir::new("lease");
    let a = FileStore::open(dir.file()).unwrap();
    let b = FileStore::open(dir.file()).unwrap();
    let la = a.acquire("g", TTL).await.unwrap().expect("free");
    assert_eq!(b.acquire("g", TTL).await.unwrap(), None);
    assert_eq!(a.acquire("g", TTL).await.unwrap(), None, "not re-entrant");
    // Another grant has its own lease.
    assert!(b.acquire("other", TTL).await.unwrap().is_some());
    // Only the holder renews or releases.
    let stale = Lease {
        fence: la.fence + 1,
    };
    assert!(!b.renew("g", stale, TTL).await.unwrap());
    b.release("g", stale).await.unwrap();
    assert_eq!(b.acquire("g", TTL).await.unwrap(), None);
    assert!(a.renew("g", la, TTL).await.unwrap());
    a.release("g", la).await.unwrap();
    let lb = b.acquire("g", TTL).await.unwrap().expect("released");
    assert!(lb.fence > la.fence);
    // The old holder can no longer touch the new lease.
    assert!(!a.renew("g", la, TTL).await.unwrap());
    a.release("g", la).await.unwrap();
    assert_eq!(a.acquire("g", TTL).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acquires_from_many_store_values_give_one_lease() {
    let dir = TempDir::new("race");
    let path = dir.file();
    FileStore::open(&path).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move {
                let store = FileStore::open(&path).unwrap();
                store.acquire("g", TTL).await.unwrap()
            })
        })
        .collect();
    let mut given = Vec::new();
    for t in tasks {
        given.extend(t.await.unwrap());
    }
    assert_eq!(given, vec![Lease { fence: 1 }]);
}

#[test]
fn an_expired_lease_goes_to_the_next_taker_with_a_greater_fence() {
    let mut e = Entry::default();
    let t0 = 1_000_000;
    let ttl = Duration::from_millis(100);
    let first = e.acquire(t0, ttl).unwrap().expect("free");
    assert_eq!(e.acquire(t0 + 99, ttl).unwrap(), None);
    let second = e.acquire(t0 + 100, ttl).unwrap().expect("expired");
    assert!(second.fence > first.fence);
    // The first holder comes back after its lease ran out: it renews and releases nothing.
    assert!(!e.renew(first, t0 + 101, ttl));
    e.release(first);
    assert_eq!(e.acquire(t0 + 150, ttl).unwrap(), None);
    assert!(e.renew(second, t0 + 150, ttl));
    assert_eq!(e.acquire(t0 + 249, ttl).unwrap(), None, "renewed from 150");
    // An expired lease cannot be renewed, even by its holder.
    assert!(!e.renew(second, t0 + 250, ttl));
    // A commit releases the committer's lease, and only that one.
    let third = e.acquire(t0 + 250, ttl).unwrap().expect("expired");
    let tokens = StoredTokens::from_refresh_token("rt");
    assert_eq!(e.commit(0, Some(second), &tokens), Ok(Commit::Committed(1)));
    assert_eq!(e.acquire(t0 + 251, ttl).unwrap(), None);
    assert_eq!(e.commit(1, Some(third), &tokens), Ok(Commit::Committed(2)));
    let fourth = e
        .acquire(t0 + 252, ttl)
        .unwrap()
        .expect("released by commit");
    assert_eq!(fourth.fence, 4);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_by_another_process_through_the_file() {
    let dir = TempDir::new("expiry");
    let a = FileStore::open(dir.file()).unwrap();
    let b = FileStore::open(dir.file()).unwrap();
    let la = a
        .acquire("g", Duration::from_millis(20))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let lb = b.acquire("g", TTL).await.unwrap().expect("expired");
    assert_eq!(lb.fence, la.fence + 1);
    assert!(!a.renew("g", la, TTL).await.unwrap());
}

#[tokio::test]
async fn fences_are_kept_in_the_file_and_only_grow() {
    let dir = TempDir::new("fences");
    let mut last = 0;
    for _ in 0..3 {
        let store = FileStore::open(dir.file()).unwrap();
        let lease = store.acquire("g", TTL).await.unwrap().unwrap();
        assert!(lease.fence > last, "{} after {last}", lease.fence);
        last = lease.fence;
        store.release("g", lease).await.unwrap();
    }
    assert_eq!(last, 3);
}

#[tokio::test]
async fn a_commit_over_version_u64_max_is_a_typed_error_and_writes_nothing() {
    let dir = TempDir::new("overflow");
    let store = FileStore::open(dir.file()).unwrap();
    let top = Versioned {
        version: u64::MAX,
        tokens: StoredTokens::from_refresh_token("rt-1"),
    };
    assert!(store.restore("g", &top).await.unwrap());
    let before = std::fs::read(dir.file()).unwrap();
    let next = StoredTokens::from_refresh_token("rt-2");
    assert_eq!(
        store.commit("g", u64::MAX, None, &next).await,
        Err(StoreError::VersionOverflow)
    );
    assert_eq!(std::fs::read(dir.file()).unwrap(), before);
    assert_eq!(store.load("g").await.unwrap(), Some(top));
    assert_eq!(next_version(u64::MAX - 1), Ok(u64::MAX));
}

#[tokio::test]
async fn a_corrupt_file_is_unreadable_for_every_step_and_never_written_over() {
    let dir = TempDir::new("corrupt");
    let store = FileStore::open(dir.file()).unwrap();
    assert!(store.restore("g", &first("rt-1")).await.unwrap());
    let lease = store.acquire("g", TTL).await.unwrap().unwrap();
    let next = StoredTokens::from_refresh_token("rt-2");
    let garbage: &[&[u8]] = &[
        b"{\"format\": 1, \"grants\": {\"g\": {\"stored\": {\"version\": 1, \"tok",
        b"\x00\xff not json",
        b"[]",
        b"{\"format\": 2, \"grants\": {}}",
        b"{\"format\": 1, \"grants\": {\"g\": {\"stored\": {\"version\": -1, \"tokens\": {}}}}}",
        b"{\"format\": 1, \"grants\": {\"g\": {\"fence\": 1, \"lease\": {\"fence\": 5, \"expires_at_ms\": 0}}}}",
    ];
    for bad in garbage {
        std::fs::write(dir.file(), bad).unwrap();
        assert_eq!(store.load("g").await, Err(StoreError::Unreadable));
        assert_eq!(
            store.commit("g", 1, Some(lease), &next).await,
            Err(StoreError::Unreadable)
        );
        assert_eq!(
            store.restore("g", &first("x")).await,
            Err(StoreError::Unreadable)
        );
        assert_eq!(store.acquire("g", TTL).await, Err(StoreError::Unreadable));
        assert_eq!(store.release("g", lease).await, Err(StoreError::Unreadable));
        assert_eq!(
            FileStore::open(dir.file()).err(),
            Some(StoreError::Unreadable)
        );
        assert_eq!(std::fs::read(dir.file()).unwrap(), *bad, "left as it was");
    }
}

#[tokio::test]
async fn the_file_is_json_keyed_by_grant_with_version_tokens_fence_and_lease() {
    let dir = TempDir::new("format");
    let store = FileStore::open(dir.file()).unwrap();
    let empty: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.file()).unwrap()).unwrap();
    assert_eq!(empty, serde_json::json!({"format": 1, "grants": {}}));
    let grant = r#"["refresh_token","https://id.example/token","cli",[],null,"me"]"#;
    assert!(store.restore(grant, &first("rt-1")).await.unwrap());
    let lease = store.acquire(grant, TTL).await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.file()).unwrap()).unwrap();
    let e = &v["grants"][grant];
    assert_eq!(e["stored"]["version"], 1);
    assert_eq!(e["stored"]["tokens"]["refresh_token"], "rt-1");
    assert_eq!(e["fence"], 1);
    assert_eq!(e["lease"]["fence"], 1);
    let until = e["lease"]["expires_at_ms"].as_u64().unwrap();
    assert!(until > unix_ms() && until <= unix_ms() + 30_000);
    let t = StoredTokens::new("at-2").refresh_token("rt-2");
    store.commit(grant, 1, Some(lease), &t).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.file()).unwrap()).unwrap();
    let e = &v["grants"][grant];
    assert_eq!(e["stored"]["version"], 2);
    assert_eq!(e["stored"]["tokens"]["access_token"], "at-2");
    assert!(e.get("lease").is_none(), "released by the commit: {e}");
    assert_eq!(e["fence"], 1, "the counter stays");
}

#[tokio::test]
async fn versions_up_to_u64_max_are_read_back_exactly() {
    let dir = TempDir::new("exact");
    let store = FileStore::open(dir.file()).unwrap();
    let big = Versioned {
        version: u64::MAX - 1,
        tokens: StoredTokens::from_refresh_token("rt"),
    };
    assert!(store.restore("g", &big).await.unwrap());
    let next = StoredTokens::from_refresh_token("rt-2");
    assert_eq!(
        store.commit("g", u64::MAX - 1, None, &next).await,
        Ok(Commit::Committed(u64::MAX))
    );
    assert_eq!(store.load("g").await.unwrap().unwrap().version, u64::MAX);
}

#[tokio::test]
async fn replacing_leaves_no_temporary_file_and_a_stale_one_is_not_reused() {
    let dir = TempDir::new("atomic");
    let store = FileStore::open(dir.file()).unwrap();
    assert!(store.restore("g", &first("rt-1")).await.unwrap());
    // A writer that died between writing and renaming left this behind, open to everyone.
    let stale = dir.0.join("tokens.json.tmp");
    std::fs::write(&stale, b"half a write").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    for v in 1..5 {
        let t = StoredTokens::from_refresh_token(&format!("rt-{}", v + 1));
        assert_eq!(
            store.commit("g", v, None, &t).await,
            Ok(Commit::Committed(v + 1))
        );
    }
    assert_eq!(dir.names(), ["tokens.json", "tokens.json.lock"]);
    assert_eq!(store.load("g").await.unwrap().unwrap().version, 5);
}

#[cfg(unix)]
#[tokio::test]
async fn files_are_owner_only_and_a_file_open_to_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = TempDir::new("mode");
    let store = FileStore::open(dir.file()).unwrap();
    assert_eq!(mode(&dir.file()), 0o600);
    assert_eq!(mode(&dir.0.join("tokens.json.lock")), 0o600);
    assert!(store.restore("g", &first("rt-1")).await.unwrap());
    let t = StoredTokens::from_refresh_token("rt-2");
    store.commit("g", 1, None, &t).await.unwrap();
    assert_eq!(mode(&dir.file()), 0o600, "after a commit");

    for wide in [0o640, 0o604, 0o660] {
        std::fs::set_permissions(dir.file(), std::fs::Permissions::from_mode(wide)).unwrap();
        let before = std::fs::read(dir.file()).unwrap();
        let refused = store.load("g").await.unwrap_err();
        assert!(
            matches!(&refused, StoreError::Unavailable(why) if why.contains("chmod 600")),
            "{refused:?}"
        );
        assert!(matches!(
            store.commit("g", 2, None, &t).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            FileStore::open(dir.file()),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(std::fs::read(dir.file()).unwrap(), before);
        assert_eq!(
            mode(&dir.file()),
            wide,
            "never changed behind the user's back"
        );
    }
}

#[tokio::test]
async fn a_deleted_file_is_an_empty_store_and_comes_back_owner_only() {
    let dir = TempDir::new("deleted");
    let store = FileStore::open(dir.file()).unwrap();
    assert!(store.restore("g", &first("rt-1")).await.unwrap());
    std::fs::remove_file(dir.file()).unwrap();
    assert_eq!(store.load("g").await.unwrap(), None);
    assert!(store.restore("g", &first("rt-new")).await.unwrap());
    assert_eq!(store.load("g").await.unwrap(), Some(first("rt-new")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.file()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn opening_needs_the_directory_and_creates_nothing_else() {
    let dir = TempDir::new("nodir");
    let missing = dir.0.join("no-such-dir").join("tokens.json");
    assert!(matches!(
        FileStore::open(&missing),
        Err(StoreError::Unavailable(_))
    ));
    assert!(dir.names().is_empty());
}

#[tokio::test]
async fn changes_move_on_commits_through_this_store_only() {
    let dir = TempDir::new("changes");
    let store = FileStore::open(dir.file()).unwrap();
    let mut changes = store.changes();
    changes.borrow_and_update();
    assert!(store.restore("g", &first("rt-1")).await.unwrap());
    assert!(!changes.has_changed().unwrap(), "a restore is no commit");
    let t = StoredTokens::from_refresh_token("rt-2");
    store.commit("g", 1, None, &t).await.unwrap();
    assert!(changes.has_changed().unwrap());
    changes.borrow_and_update();
    assert_eq!(store.commit("g", 1, None, &t).await, Ok(Commit::Conflict));
    assert!(!changes.has_changed().unwrap(), "a conflict is no commit");
    // A clone shares the channel.
    store.clone().commit("g", 2, None, &t).await.unwrap();
    assert!(changes.has_changed().unwrap());
}

#[tokio::test]
async fn debug_shows_the_path_and_no_token() {
    let dir = TempDir::new("debug");
    let store = FileStore::open(dir.file()).unwrap();
    let t = StoredTokens::new("at-secret").refresh_token("rt-secret");
    store.commit("g", 0, None, &t).await.unwrap();
    let d = format!("{store:?}");
    assert!(d.contains("tokens.json") && !d.contains("secret"), "{d}");
    assert_eq!(store.path(), dir.file());
}
