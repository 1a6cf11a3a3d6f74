//! One grant shared by several replicas through a credential store, over real HTTP: each
//! replica is a refresh layer with its own hyper client and its own cell, all sharing one
//! store, one token endpoint that rotates refresh tokens (reuse revokes the family) and one
//! API. The in-process store here; the Redis store at the end (its tests start a real
//! `redis-server`, so they are ignored by default).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_layer::jwt::JwtAuthenticator;
use auth_layer::{AuthLayer, Principal};
use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use portcullis_testkit::loopback::serve;
use portcullis_testkit::{TestIssuer, TestTokenEndpoint, TokenEndpointMode};
use refresh_layer::source::shared_grant::{NewSeed, SharedGrant};
use refresh_layer::store::{
    Commit, CredentialStore, Lease, MemoryStore, StoreFuture, StoredTokens, Versioned,
};
use refresh_layer::{Error, OAuth2, RefreshError, RefreshLayer, RefreshService, StoreError};
use tokio::sync::watch;
use tower::{Layer, ServiceExt};

use common::{Http, http};

/// The identity of the grant the replicas share (the gateway's own service account).
const GRANT_ID: &str = "gw-service";
type Replica = RefreshService<Http>;

/// The identity provider and the API, on one loopback server.
struct World {
    provider: TestTokenEndpoint,
    base: String,
    /// The refresh token of the grant every replica starts from.
    rt: String,
}

/// Access tokens live `ttl` (the replicas refresh them after half of it).
async fn world(ttl: Duration) -> World {
    let idp = Arc::new(TestIssuer::new("https://id.shared.test"));
    let provider = TestTokenEndpoint::new(idp.clone(), "api", "gw", "gw-secret");
    provider.set_access_ttl(ttl);
    let mut jwt = JwtAuthenticator::builder().audience("api");
    for k in idp.verification_keys() {
        jwt = jwt.key(k);
    }
    let app = Router::new()
        .route(
            "/api/me",
            get(|p: Principal| async move { p.token_id().unwrap_or_default().to_owned() }),
        )
        .route(
            "/api/whoami",
            get(|p: Principal| async move { p.subject().unwrap_or_default().to_owned() }),
        )
        .layer(AuthLayer::bearer(jwt.build().unwrap()).unwrap())
        .merge(provider.router());
    let base = format!("http://{}", serve(app).await);
    let rt = provider.issue_refresh_token("gw", "read");
    World { provider, base, rt }
}

impl World {
    fn oauth(&self) -> OAuth2 {
        self.oauth_with(&self.rt)
    }

    /// The same client and scope, starting from another refresh token.
    fn oauth_with(&self, rt: &str) -> OAuth2 {
        OAuth2::builder(&format!("{}/oauth/token", self.base), "gw")
            .client_secret("gw-secret")
            .scope("read")
            .refresh_token(rt, http())
            .unwrap()
    }

    fn replica_of(&self, grant: SharedGrant) -> Replica {
        RefreshLayer::builder(grant)
            .allow_origin(&self.base)
            .backoff(Duration::from_millis(100), Duration::from_millis(200))
            .build()
            .unwrap()
            .layer(http())
    }

    fn replica(&self, store: Arc<dyn CredentialStore>, lease_ttl: Duration) -> Replica {
        self.replica_of(
            SharedGrant::builder(self.oauth(), store, GRANT_ID, NewSeed::Replace)
                .lease_ttl(lease_ttl)
                .poll_every(Duration::from_millis(50))
                .build()
                .unwrap(),
        )
    }

    fn me(&self) -> Request<Full<Bytes>> {
        Request::get(format!("{}/api/me", self.base))
            .body(Full::default())
            .unwrap()
    }

    /// The subject of the access token the API received, or the error the layer gave.
    #[cfg(feature = "redis")]
    async fn whoami(
        &self,
        r: &Replica,
    ) -> Result<(StatusCode, String), Error<hyper_util::client::legacy::Error>> {
        let req = Request::get(format!("{}/api/whoami", self.base))
            .body(Full::default())
            .unwrap();
        let res = r.clone().oneshot(req).await?;
        let status = res.status();
        use http_body_util::BodyExt;
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

async fn call(
    r: &Replica,
    w: &World,
) -> Result<StatusCode, Error<hyper_util::client::legacy::Error>> {
    r.clone().oneshot(w.me()).await.map(|res| res.status())
}

/// `n` requests spread over `replicas`, all at once; every status.
async fn burst(replicas: &[Replica], w: &World, n: usize) -> Vec<StatusCode> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let r = replicas[i % replicas.len()].clone();
            let req = w.me();
            tokio::spawn(async move { r.oneshot(req).await.map(|res| res.status()) })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap().expect("no request fails"));
    }
    out
}

/// A store that passes every operation to another one (in-process unless told), counts them,
/// remembers the grant name it was asked about, and can be taken down.
struct Probe {
    inner: Arc<dyn CredentialStore>,
    ops: AtomicU64,
    down: AtomicBool,
    grant: Mutex<Option<String>>,
}

impl Default for Probe {
    fn default() -> Self {
        Probe::over(Arc::new(MemoryStore::new()))
    }
}

impl Probe {
    fn over(inner: Arc<dyn CredentialStore>) -> Self {
        Probe {
            inner,
            ops: AtomicU64::new(0),
            down: AtomicBool::new(false),
            grant: Mutex::new(None),
        }
    }

    fn check(&self, grant: &str) -> Result<(), StoreError> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        *self.grant.lock().unwrap() = Some(grant.to_owned());
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("taken down by the test".into()));
        }
        Ok(())
    }

    fn grant(&self) -> String {
        self.grant
            .lock()
            .unwrap()
            .clone()
            .expect("asked about a grant")
    }
}

impl CredentialStore for Probe {
    fn load<'a>(&'a self, grant: &'a str) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            self.check(grant)?;
            self.inner.load(grant).await
        })
    }
    fn restore<'a>(&'a self, grant: &'a str, doc: &'a Versioned) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.check(grant)?;
            self.inner.restore(grant, doc).await
        })
    }
    fn acquire<'a>(&'a self, grant: &'a str, ttl: Duration) -> StoreFuture<'a, Option<Lease>> {
        Box::pin(async move {
            self.check(grant)?;
            self.inner.acquire(grant, ttl).await
        })
    }
    fn renew<'a>(&'a self, grant: &'a str, lease: Lease, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.check(grant)?;
            self.inner.renew(grant, lease, ttl).await
        })
    }
    fn release<'a>(&'a self, grant: &'a str, lease: Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check(grant)?;
            self.inner.release(grant, lease).await
        })
    }
    fn commit<'a>(
        &'a self,
        grant: &'a str,
        expected: u64,
        lease: Option<Lease>,
        tokens: &'a StoredTokens,
    ) -> StoreFuture<'a, Commit> {
        Box::pin(async move {
            self.check(grant)?;
            self.inner.commit(grant, expected, lease, tokens).await
        })
    }
    fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes()
    }
}

const TTL: Duration = Duration::from_secs(2);

/// Past the refresh time of a token just issued for `TTL`: half its lifetime before expiry,
/// moved up to a fifth of that later by jitter.
async fn until_due() {
    tokio::time::sleep(TTL / 2 + TTL / 10 + Duration::from_millis(150)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_due_at_once_refresh_once_and_all_use_it() {
    let w = world(TTL).await;
    let store: Arc<dyn CredentialStore> = Arc::new(MemoryStore::new());
    let replicas: Vec<_> = (0..4)
        .map(|_| w.replica(store.clone(), Duration::from_secs(5)))
        .collect();
    // The first requests: one replica seeds the store and refreshes; the others use its token.
    assert!(burst(&replicas, &w, 40).await.iter().all(|s| *s == 200));
    assert_eq!(w.provider.refresh_grants(), 1);
    until_due().await;
    w.provider.set_access_ttl(Duration::from_secs(300));
    let statuses = burst(&replicas, &w, 400).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        w.provider.refresh_grants(),
        2,
        "one refresh for four due replicas"
    );
    assert_eq!(w.provider.reuse_detected(), 0);
    assert_eq!(w.provider.max_refresh_token_uses(), 1);
}

/// The holder renews its lease while the token endpoint takes more than three times its time
/// to live; nobody else refreshes meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_slower_than_three_lease_ttls_still_sees_one_refresh() {
    let w = world(TTL).await;
    let store: Arc<dyn CredentialStore> = Arc::new(MemoryStore::new());
    let lease = Duration::from_millis(300);
    let replicas: Vec<_> = (0..4).map(|_| w.replica(store.clone(), lease)).collect();
    assert!(burst(&replicas, &w, 4).await.iter().all(|s| *s == 200));
    until_due().await;
    w.provider.set_access_ttl(Duration::from_secs(300));
    w.provider.set_mode(TokenEndpointMode::Delay(lease * 4));
    let started = Instant::now();
    assert!(burst(&replicas, &w, 40).await.iter().all(|s| *s == 200));
    assert!(started.elapsed() >= lease * 4);
    assert_eq!(w.provider.refresh_grants(), 2);
    assert_eq!(w.provider.reuse_detected(), 0);
}

/// A holder that never comes back (its lease taken by hand here; a killed process in
/// `tests/replicas.rs`) holds the others up for the lease's time to live, no longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_holder_is_gone_lapses_after_its_ttl() {
    let w = world(TTL).await;
    let probe = Arc::new(Probe::default());
    let lease = Duration::from_millis(600);
    let r = w.replica(probe.clone(), lease);
    assert_eq!(call(&r, &w).await.unwrap(), 200);
    until_due().await;
    let taken = probe
        .inner
        .acquire(&probe.grant(), lease)
        .await
        .unwrap()
        .expect("free");
    let started = Instant::now();
    assert_eq!(call(&r, &w).await.unwrap(), 200);
    let waited = started.elapsed();
    assert!(
        waited >= lease - Duration::from_millis(100) && waited < lease + Duration::from_millis(800),
        "{waited:?}"
    );
    // The dead holder's lease can no longer be renewed or released over the new one's.
    assert!(
        !probe
            .inner
            .renew(&probe.grant(), taken, lease)
            .await
            .unwrap()
    );
    assert_eq!(w.provider.refresh_grants(), 2);
    assert_eq!(w.provider.reuse_detected(), 0);
}

/// `invalid_grant` because another process (whose lease had lapsed) rotated the refresh
/// token first: the replica reads the store again and uses that process's token set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_reads_the_store_again_before_giving_up() {
    let w = world(TTL).await;
    let probe = Arc::new(Probe::default());
    let r = w.replica(probe.clone(), Duration::from_secs(5));
    assert_eq!(call(&r, &w).await.unwrap(), 200);
    let grant = probe.grant();
    let stored = probe.inner.load(&grant).await.unwrap().unwrap();
    // The other process: it spends the stored refresh token and commits late.
    let other = w.oauth();
    let rotated = refresh_layer::fuzzing::parse_token_response(StatusCode::OK, &{
        let body = format!(
            "grant_type=refresh_token&refresh_token={}&client_id=gw&client_secret=gw-secret",
            stored.tokens.refresh_token.as_deref().unwrap()
        );
        let res = http()
            .request(
                Request::post(format!("{}/oauth/token", w.base))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Full::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        use http_body_util::BodyExt;
        res.into_body().collect().await.unwrap().to_bytes()
    })
    .unwrap();
    drop(other);
    until_due().await;
    w.provider
        .set_mode(TokenEndpointMode::Delay(Duration::from_millis(400)));
    let replica = {
        let r = r.clone();
        let req = w.me();
        tokio::spawn(async move { r.oneshot(req).await.map(|res| res.status()) })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut late = StoredTokens::from_refresh_token(rotated.refresh_token.as_deref().unwrap());
    late.access_token = Some(rotated.access_token.clone());
    assert_eq!(
        probe
            .inner
            .commit(&grant, stored.version, None, &late)
            .await
            .unwrap(),
        Commit::Committed(stored.version + 1)
    );
    assert_eq!(
        replica.await.unwrap().unwrap(),
        200,
        "the other process's token was used"
    );
    assert_eq!(
        w.provider.reuse_detected(),
        1,
        "the replica presented the spent token once (the lapsed lease's cost), and only once"
    );
}

/// While the store is down: a fresh token is used without the store, a due one is still used
/// until it expires, and an expired one fails with a typed error, not a refresh of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_store_is_down_valid_tokens_serve_and_refreshes_fail_typed() {
    let w = world(TTL).await;
    let probe = Arc::new(Probe::default());
    let r = w.replica(probe.clone(), Duration::from_secs(5));
    assert_eq!(call(&r, &w).await.unwrap(), 200);
    let ops = probe.ops.load(Ordering::SeqCst);
    for _ in 0..50 {
        assert_eq!(call(&r, &w).await.unwrap(), 200);
    }
    assert_eq!(
        probe.ops.load(Ordering::SeqCst),
        ops,
        "a fresh token costs no store operation"
    );
    probe.down.store(true, Ordering::SeqCst);
    assert_eq!(call(&r, &w).await.unwrap(), 200);
    until_due().await;
    assert_eq!(
        call(&r, &w).await.unwrap(),
        200,
        "due, not expired: still used"
    );
    tokio::time::sleep(TTL / 2).await;
    let calls = w.provider.calls();
    match call(&r, &w).await {
        Err(Error::Refresh(e)) => {
            let inner = match e {
                RefreshError::BackingOff { last, .. } => *last,
                e => e,
            };
            assert!(
                matches!(inner, RefreshError::Store(StoreError::Unavailable(_))),
                "{inner:?}"
            );
        }
        other => panic!(
            "expected a store error, got {:?}",
            other.map(|s| s.as_u16())
        ),
    }
    assert_eq!(w.provider.calls(), calls, "no refresh without the store");
    // Back: the next refresh goes through the store.
    probe.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(call(&r, &w).await.unwrap(), 200);
    assert_eq!(w.provider.reuse_detected(), 0);
}

/// Opted in: a replica refreshes without the store, and writes what it got back when the
/// store returns, so the next replica continues from the rotated refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_fallback_refreshes_without_the_store_and_writes_back() {
    let w = world(TTL).await;
    let probe = Arc::new(Probe::default());
    let a = w.replica_of(
        SharedGrant::builder(w.oauth(), probe.clone(), GRANT_ID, NewSeed::Replace)
            .local_fallback(true)
            .build()
            .unwrap(),
    );
    assert_eq!(call(&a, &w).await.unwrap(), 200);
    probe.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    assert_eq!(call(&a, &w).await.unwrap(), 200, "refreshed locally");
    assert_eq!(w.provider.refresh_grants(), 2);
    probe.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    assert_eq!(call(&a, &w).await.unwrap(), 200);
    // A replica started now continues from what was written back: no reuse anywhere.
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    let b = w.replica(probe.clone(), Duration::from_secs(5));
    assert_eq!(call(&b, &w).await.unwrap(), 200);
    assert_eq!(w.provider.reuse_detected(), 0);
    assert_eq!(w.provider.max_refresh_token_uses(), 1);
}

/// A new sign-in on one replica replaces the stored token set for all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sign_in_replaces_the_shared_token_set() {
    let w = world(Duration::from_secs(300)).await;
    let store: Arc<dyn CredentialStore> = Arc::new(MemoryStore::new());
    let grant_a = SharedGrant::builder(w.oauth(), store.clone(), GRANT_ID, NewSeed::Replace)
        .build()
        .unwrap();
    let a = w.replica_of(grant_a.clone());
    assert_eq!(call(&a, &w).await.unwrap(), 200);
    let fresh = w.provider.issue_refresh_token("gw", "read");
    let layer = RefreshLayer::builder(grant_a)
        .allow_origin(&w.base)
        .build()
        .unwrap();
    layer
        .handle()
        .sign_in(refresh_layer::SignIn::with_refresh_token(fresh))
        .unwrap();
    let a2 = layer.layer(http());
    assert_eq!(call(&a2, &w).await.unwrap(), 200);
    let b = w.replica(store, Duration::from_secs(5));
    assert_eq!(call(&b, &w).await.unwrap(), 200);
    assert_eq!(w.provider.reuse_detected(), 0);
}

/// On a shared grant too, a sign-in with an access token only, or a sign-out, leaves the
/// stored account behind in this process: when that token is refused, the refresh does not
/// hand out the stored set (the previous account), it says to sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_grant_never_refreshes_back_into_the_stored_account_after_a_new_sign_in() {
    let w = world(Duration::from_secs(300)).await;
    let store: Arc<dyn CredentialStore> = Arc::new(MemoryStore::new());
    let grant = SharedGrant::builder(w.oauth(), store.clone(), GRANT_ID, NewSeed::Replace)
        .build()
        .unwrap();
    let layer = RefreshLayer::builder(grant)
        .allow_origin(&w.base)
        .build()
        .unwrap();
    let handle = layer.handle();
    let r = layer.layer(http());
    assert_eq!(call(&r, &w).await.unwrap(), 200);
    let calls = w.provider.calls();
    // Another account's access token, which the API refuses.
    handle.set(refresh_layer::Credential::bearer("someone-else.not-a.token").unwrap());
    let out = call(&r, &w).await;
    assert!(
        matches!(out, Err(Error::Refresh(RefreshError::SignedOut))),
        "the stored account came back: {out:?}"
    );
    assert_eq!(w.provider.calls(), calls);
    handle.sign_out();
    assert!(matches!(
        call(&r, &w).await,
        Err(Error::Refresh(RefreshError::SignedOut))
    ));
    // A whole sign-in brings it back, through the store.
    handle
        .sign_in(refresh_layer::SignIn::with_refresh_token(
            w.provider.issue_refresh_token("gw", "read"),
        ))
        .unwrap();
    assert_eq!(call(&r, &w).await.unwrap(), 200);
    // The other replicas were never affected.
    let b = w.replica(store, Duration::from_secs(5));
    assert_eq!(call(&b, &w).await.unwrap(), 200);
}

/// Every `portcullis` warning logged by this test binary, as text (a global subscriber: the
/// layer's refreshes run on the runtime's worker threads).
#[cfg(feature = "redis")]
mod warnings {
    use std::fmt::Write;
    use std::sync::Mutex;

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    struct Capture;

    struct Text(String);

    impl Visit for Text {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, m: &Metadata<'_>) -> bool {
            *m.level() <= Level::WARN && m.target().starts_with("portcullis")
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &Event<'_>) {
            let mut text = Text(String::new());
            e.record(&mut text);
            SEEN.lock().unwrap().push(text.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    /// Start capturing (once per binary; later calls do nothing).
    pub(crate) fn capture() {
        let _ = tracing::subscriber::set_global_default(Capture);
    }

    /// The warnings so far that contain every one of `words`.
    pub(crate) fn with(words: &[&str]) -> Vec<String> {
        SEEN.lock()
            .unwrap()
            .iter()
            .filter(|w| words.iter().all(|x| w.contains(x)))
            .cloned()
            .collect()
    }
}

#[cfg(feature = "redis")]
mod redis {
    //! The same against a real `redis-server` (`cargo test -p refresh-layer --test shared_grant
    //! -- --ignored`); each replica has its own connection.

    use super::*;
    use portcullis_testkit::redis_process::RedisProcess;
    use portcullis_wire::redis_link::redis;
    use refresh_layer::store::redis::{RedisStore, StoreKey};

    const KEY: [u8; 32] = [42; 32];

    async fn store(server: &RedisProcess, key: [u8; 32]) -> Arc<dyn CredentialStore> {
        Arc::new(
            RedisStore::builder(server.url(), StoreKey::from_bytes(&key).unwrap())
                .timeout(Duration::from_millis(500))
                .connect()
                .await
                .unwrap(),
        )
    }

    async fn replicas(w: &World, server: &RedisProcess, n: usize) -> Vec<Replica> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(w.replica(store(server, KEY).await, Duration::from_secs(5)));
        }
        out
    }

    /// Every stored value, raw.
    async fn raw_values(server: &RedisProcess) -> Vec<u8> {
        let mut conn = redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut out = Vec::new();
        for k in keys {
            let t: String = redis::cmd("TYPE")
                .arg(&k)
                .query_async(&mut conn)
                .await
                .unwrap();
            let v: Vec<Vec<u8>> = match t.as_str() {
                "hash" => redis::cmd("HVALS")
                    .arg(&k)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
                _ => vec![
                    redis::cmd("GET")
                        .arg(&k)
                        .query_async(&mut conn)
                        .await
                        .unwrap(),
                ],
            };
            for x in v {
                out.extend_from_slice(&x);
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server (run by .ci/run)"]
    async fn three_replicas_refresh_once_and_a_fresh_token_costs_no_redis_command() {
        let server = RedisProcess::start();
        let w = world(TTL).await;
        let rs = replicas(&w, &server, 3).await;
        assert!(burst(&rs, &w, 30).await.iter().all(|s| *s == 200));
        assert_eq!(w.provider.refresh_grants(), 1);
        // Fresh path: 300 requests, and only the INFO that measures them.
        let before = server.commands_processed();
        assert!(burst(&rs, &w, 300).await.iter().all(|s| *s == 200));
        let fresh = server.commands_processed() - before - 1;
        assert_eq!(
            fresh, 0,
            "Redis commands for 300 requests with a fresh token"
        );
        until_due().await;
        w.provider.set_access_ttl(Duration::from_secs(300));
        let before = server.commands_processed();
        assert!(burst(&rs, &w, 300).await.iter().all(|s| *s == 200));
        let refresh = server.commands_processed() - before - 1;
        eprintln!(
            "Redis commands: 0 for 300 fresh requests; {refresh} for 300 requests across 3 due replicas (one refresh)"
        );
        assert!(
            refresh <= 3 * 8,
            "{refresh} commands for one refresh across 3 replicas"
        );
        assert_eq!(w.provider.refresh_grants(), 2);
        assert_eq!(w.provider.reuse_detected(), 0);
        // At rest the token set is sealed: neither token appears in anything Redis holds.
        let raw = raw_values(&server).await;
        let at = |needle: &[u8]| raw.windows(needle.len()).any(|x| x == needle);
        assert!(!at(b"rt-"), "a refresh token in the clear");
        assert!(!at(b"eyJ"), "an access token in the clear");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server (run by .ci/run)"]
    async fn a_store_written_with_another_key_is_unreadable_and_says_nothing() {
        let server = RedisProcess::start();
        let w = world(TTL).await;
        let a = w.replica(store(&server, KEY).await, Duration::from_secs(5));
        assert_eq!(call(&a, &w).await.unwrap(), 200);
        let b = w.replica(store(&server, [7; 32]).await, Duration::from_secs(5));
        match call(&b, &w).await {
            Err(Error::Refresh(RefreshError::Store(e))) => {
                assert_eq!(e, StoreError::Unreadable);
                let text = e.to_string();
                assert!(!text.contains("rt-") && !text.contains("eyJ"), "{text}");
            }
            other => panic!("expected Unreadable, got {:?}", other.map(|s| s.as_u16())),
        }
        assert_eq!(
            w.provider.refresh_grants(),
            1,
            "b did not refresh on its own"
        );
    }

    /// Redis restarted empty (no persistence): the replicas write back the newest token set
    /// they saw, and the next refresh continues from the rotated refresh token.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server (run by .ci/run)"]
    async fn a_redis_that_lost_its_data_gets_the_newest_token_set_back() {
        let mut server = RedisProcess::start();
        let w = world(TTL).await;
        let rs = replicas(&w, &server, 3).await;
        assert!(burst(&rs, &w, 30).await.iter().all(|s| *s == 200));
        until_due().await;
        assert!(burst(&rs, &w, 30).await.iter().all(|s| *s == 200));
        assert_eq!(
            w.provider.refresh_grants(),
            2,
            "rotated once after the first"
        );
        server.restart();
        assert!(raw_values(&server).await.is_empty(), "restarted empty");
        // Every token held has expired: each replica needs the store now.
        tokio::time::sleep(TTL + Duration::from_millis(100)).await;
        w.provider.set_access_ttl(Duration::from_secs(300));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let statuses: Vec<_> = {
                let mut out = Vec::new();
                for r in &rs {
                    out.push(call(r, &w).await.map(|s| s.as_u16()).unwrap_or(0));
                }
                out
            };
            if statuses.iter().all(|s| *s == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "{statuses:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(w.provider.refresh_grants(), 3);
        assert_eq!(
            w.provider.reuse_detected(),
            0,
            "the rotated refresh token was kept"
        );
    }

    fn grant(
        oauth: OAuth2,
        store: Arc<dyn CredentialStore>,
        id: &str,
        new_seed: NewSeed,
    ) -> SharedGrant {
        SharedGrant::builder(oauth, store, id, new_seed)
            .build()
            .unwrap()
    }

    /// A connection of the test's own, as anyone who can reach Redis has.
    async fn raw(server: &RedisProcess) -> redis::aio::MultiplexedConnection {
        redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Present `rt` to the token endpoint directly (what a thief holding it would do).
    async fn spend(w: &World, rt: &str) -> StatusCode {
        let body = format!(
            "grant_type=refresh_token&refresh_token={rt}&client_id=gw&client_secret=gw-secret"
        );
        http()
            .request(
                Request::post(format!("{}/oauth/token", w.base))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Full::from(body))
                    .unwrap(),
            )
            .await
            .unwrap()
            .status()
    }

    /// Alice's and Bob's grants over one Redis, under the grant ids given, each seeded with
    /// their own refresh token; and Bob's refresh token.
    async fn alice_and_bob(
        w: &World,
        server: &RedisProcess,
        alice_id: &str,
        bob_id: &str,
    ) -> (Replica, Replica, String) {
        let alice_rt = w.provider.issue_refresh_token("alice", "read");
        let bob_rt = w.provider.issue_refresh_token("bob", "read");
        let replica = async |rt: &str, id: &str| {
            w.replica_of(grant(
                w.oauth_with(rt),
                store(server, KEY).await,
                id,
                NewSeed::Replace,
            ))
        };
        let alice = replica(&alice_rt, alice_id).await;
        let bob = replica(&bob_rt, bob_id).await;
        (alice, bob, bob_rt)
    }

    /// A backend-for-frontend with one OAuth client and one Redis, one grant per signed-in
    /// user: each user's requests carry that user's access token, never another's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server (run by .ci/run)"]
    async fn a_grant_per_user_never_hands_bob_alices_access_token() {
        let server = RedisProcess::start();
        let w = world(Duration::from_secs(300)).await;
        let (alice, bob, _) = alice_and_bob(&w, &server, "user:alice", "user:bob").await;
        assert_eq!(
            w.whoami(&alice).await.unwrap(),
            (StatusCode::OK, "alice".to_owned())
        );
        for _ in 0..3 {
            assert_eq!(
                w.whoami(&bob).await.unwrap(),
                (StatusCode::OK, "bob".to_owned()),
                "Bob's request carried another user's access token"
            );
        }
        assert_eq!(
            w.whoami(&alice).await.unwrap(),
            (StatusCode::OK, "alice".to_owned())
        );
        assert_eq!(w.provider.reuse_detected(), 0);
    }

    /// Two users' grants configured under one grant id by mistake: the second one's token
    /// response names another subject than the stored set, so it is refused, never served,
    /// and the first user's stored set is left as it was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server (run by .ci/run)"]
    async fn a_token_set_for_another_subject_is_refused_never_served() {
        let server = RedisProcess::start();
        let w = world(TTL).await;
        let (alice, bob, bob_rt) = alice_and_bob(&w, &server, "tenant-7", "tenant-7").await;
        assert_eq!(
            w.whoami(&alice).await.unwrap(),
            (StatusCode::OK, "alice".to_owned())
        );
        match w.whoami(&bob).await {
            Ok((_, who)) => assert_ne!(who, "alice", "Bob was served Alice's access token"),
            Err(Error::Refresh(RefreshError::WrongSubject)) => {}
            Err(e) => panic!("expected WrongSubject, got {e}"),
        }
        // Later calls, past any backoff, never fall back to the stored set either.
        tokio::time::sleep(Duration::from_millis(400)).await;
        for _ in 0..2 {
            if let Ok((_, who)) = w.whoami(&bob).await {
                assert_ne!(
                    who, "alice",
                    "Bob was served Alice's access token on a later call"
                );
            }
        }
        // Named up front, the subject refuses Alice's stored set before any token request.
        let refreshes = w.provider.refresh_grants();
        let bob_named = w.replica_of(
            SharedGrant::builder(
                w.oauth_with(&bob_rt),
                store(&server, KEY).await,
                "tenant-7",
                NewSeed::KeepStored,
            )
            .subject("bob")
            .build()
            .unwrap(),
        );
        assert!(matches!(
            w.whoami(&bob_named).await,
            Err(Error::Refresh(RefreshError::WrongSubject))
        ));
        assert_eq!(w.provider.refresh_grants(), refreshes);
        // Alice refreshes from her stored set, which Bob's grant did not touch.
        until_due().await;
        assert_eq!(
            w.whoami(&alice).await.unwrap(),
            (StatusCode::OK, "alice".to_owned())
        );
        assert_eq!(w.provider.reuse_detected(), 0);
    }

    /// The stored refresh token leaked and its family was revoked; a new one is put in the
    /// replicas' configuration. A replica that starts with it replaces the stored set, the
    /// running ones continue from it, and one restarted with the old seed does not put the old
    /// one back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server (run by .ci/run)"]
    async fn a_seed_rotated_in_after_a_compromise_replaces_the_stored_set() {
        let server = RedisProcess::start();
        let w = world(TTL).await;
        let probe = Arc::new(Probe::over(store(&server, KEY).await));
        let a = w.replica_of(grant(w.oauth(), probe.clone(), "svc", NewSeed::Replace));
        assert_eq!(call(&a, &w).await.unwrap(), 200);
        let stored = probe.inner.load(&probe.grant()).await.unwrap().unwrap();
        let leaked = stored.tokens.refresh_token.clone().unwrap();
        assert_eq!(spend(&w, &leaked).await, 200);
        assert_eq!(spend(&w, &leaked).await, 400, "reuse revokes the family");
        assert_eq!(w.provider.reuse_detected(), 1);
        // Every access token of the old family has expired.
        tokio::time::sleep(TTL + Duration::from_millis(100)).await;
        let fresh = w.provider.issue_refresh_token("gw", "read");
        let b = w.replica_of(grant(
            w.oauth_with(&fresh),
            store(&server, KEY).await,
            "svc",
            NewSeed::Replace,
        ));
        assert_eq!(
            call(&b, &w).await.map(|s| s.as_u16()).unwrap_or(0),
            200,
            "the rotated-in seed was used"
        );
        assert_eq!(call(&a, &w).await.unwrap(), 200, "a continues from it");
        let c = w.replica_of(grant(
            w.oauth(),
            store(&server, KEY).await,
            "svc",
            NewSeed::Replace,
        ));
        assert_eq!(call(&c, &w).await.unwrap(), 200, "the old seed stays out");
        assert_eq!(w.provider.reuse_detected(), 1);
    }

    /// The same rotation under the policy that keeps the stored set: the configured seed is
    /// not presented, and a warning says so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server (run by .ci/run)"]
    async fn a_seed_rotated_in_under_keep_stored_is_ignored_with_a_warning() {
        warnings::capture();
        let server = RedisProcess::start();
        let w = world(Duration::from_secs(300)).await;
        let a = w.replica_of(grant(
            w.oauth(),
            store(&server, KEY).await,
            "svc-keep",
            NewSeed::KeepStored,
        ));
        assert_eq!(call(&a, &w).await.unwrap(), 200);
        let fresh = w.provider.issue_refresh_token("gw", "read");
        let b = w.replica_of(grant(
            w.oauth_with(&fresh),
            store(&server, KEY).await,
            "svc-keep",
            NewSeed::KeepStored,
        ));
        assert_eq!(call(&b, &w).await.unwrap(), 200, "the stored set is used");
        assert_eq!(w.provider.refresh_grants(), 1, "b did not refresh");
        let warned = warnings::with(&["svc-keep", "seed"]);
        assert!(
            !warned.is_empty(),
            "no warning named the grant and its ignored seed"
        );
        assert!(
            warned.iter().all(|w| !w.contains(&fresh)),
            "a warning echoed the seed"
        );
        assert_eq!(spend(&w, &fresh).await, 200, "the new seed is still unused");
        assert_eq!(w.provider.reuse_detected(), 0);
    }

    /// Anyone who can reach Redis can `PUBLISH` on a grant's channel. A message that does not
    /// open with the store key is ignored: every replica still reads the grant, and the stored
    /// token set is not overwritten.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server (run by .ci/run)"]
    async fn a_published_garbage_blob_with_a_high_version_is_ignored_and_never_written_back() {
        let server = RedisProcess::start();
        let w = world(Duration::from_secs(300)).await;
        let mut probes = Vec::new();
        for _ in 0..3 {
            probes.push(Arc::new(Probe::over(store(&server, KEY).await)));
        }
        let rs: Vec<_> = probes
            .iter()
            .map(|p| w.replica(p.clone(), Duration::from_secs(5)))
            .collect();
        assert!(burst(&rs, &w, 9).await.iter().all(|s| *s == 200));
        let grant = probes[0].grant();
        let mut conn = raw(&server).await;
        let docs: Vec<String> = redis::cmd("KEYS")
            .arg("portcullis:grant:*:doc")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(docs.len(), 1, "{docs:?}");
        let channel = format!("{}:events", docs[0].strip_suffix(":doc").unwrap());
        let stored = || {
            let mut conn = conn.clone();
            let doc = docs[0].clone();
            async move {
                let v: (String, Vec<u8>) = redis::cmd("HMGET")
                    .arg(doc)
                    .arg("v")
                    .arg("blob")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                v
            }
        };
        let mut conn = conn.clone();
        let before = stored().await;
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg("1000000 not-a-sealed-token-set")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(receivers, 3, "every replica's store heard it");
        // Delivery to the three subscribers (loopback) before they read again.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for p in &probes {
            let doc = p
                .inner
                .load(&grant)
                .await
                .expect("the grant is still readable")
                .expect("and still there");
            assert_eq!(doc.version.to_string(), before.0);
        }
        assert_eq!(
            stored().await,
            before,
            "the stored token set was overwritten"
        );
        // New layers on the same stores (same processes) read the grant and use it.
        for p in &probes {
            let r = w.replica(p.clone(), Duration::from_secs(5));
            assert_eq!(call(&r, &w).await.unwrap(), 200);
        }
        assert_eq!(w.provider.refresh_grants(), 1);
    }

    /// A stored version at the top of `u64` (written from outside: it cannot be reached one
    /// commit at a time) is a typed error before any refresh, not a panic or a wrap to 0.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server (run by .ci/run)"]
    async fn a_version_at_u64_max_is_a_typed_error_not_a_panic() {
        let server = RedisProcess::start();
        let w = world(Duration::from_secs(300)).await;
        let probe = Arc::new(Probe::over(store(&server, KEY).await));
        let a = w.replica(probe.clone(), Duration::from_secs(5));
        assert_eq!(call(&a, &w).await.unwrap(), 200);
        let grant = probe.grant();
        let doc = probe.inner.load(&grant).await.unwrap().unwrap();
        let mut tokens = doc.tokens.clone();
        tokens.access_token = None;
        tokens.expires_at_ms = None;
        tokens.lifetime_ms = None;
        let top = Versioned {
            version: u64::MAX,
            tokens,
        };
        assert!(probe.inner.restore(&grant, &top).await.unwrap());
        let refreshes = w.provider.refresh_grants();
        let b = w.replica(probe.clone(), Duration::from_secs(5));
        let result = call(&b, &w).await;
        assert_eq!(
            w.provider.refresh_grants(),
            refreshes,
            "no refresh whose result could not be stored"
        );
        match result {
            Err(Error::Refresh(RefreshError::Store(StoreError::VersionOverflow))) => {}
            other => panic!(
                "expected VersionOverflow, got {:?}",
                other.map(|s| s.as_u16())
            ),
        }
        let still = probe.inner.load(&grant).await.unwrap().unwrap();
        assert_eq!(still.version, u64::MAX, "nothing wrapped around");
    }
}
