//! [`FileStore`]: the [`CredentialStore`] of CLIs and desktop apps, one JSON file that every
//! process of one user shares.

mod disk;
mod document;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::store::{Commit, CredentialStore, Lease, StoreFuture, StoredTokens, Versioned, unix_ms};
use disk::Paths;
use document::{Document, Entry};

/// How long an operation waits for another process's hold on the lock file before it
/// fails with [`StoreError::Unavailable`]. Holds last one read and one write.
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The token sets of several processes of one user (a CLI run twice, a desktop app and its
/// helper), in one JSON file: what [`SharedGrant`](crate::source::shared_grant::SharedGrant)
/// needs to refresh a rotating refresh token once for all of them, and to find it again
/// after a restart.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use portcullis::client::source::shared_grant::{NewSeed, SharedGrant};
/// use portcullis::client::store::{Commit, CredentialStore, FileStore, StoredTokens, Versioned};
/// use portcullis::client::OAuth2;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("portcullis-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// // Typically `~/.config/<app>/tokens.json`; the directory is the caller's to create.
/// let path = dir.join("tokens.json");
/// let store = FileStore::open(&path)?;
///
/// // What SharedGrant does with it:
/// let first = Versioned { version: 1, tokens: StoredTokens::from_refresh_token("rt-1") };
/// assert!(store.restore("grant", &first).await?);
/// let lease = store.acquire("grant", Duration::from_secs(5)).await?.expect("free");
/// let next = StoredTokens::from_refresh_token("rt-2");
/// assert_eq!(store.commit("grant", 1, Some(lease), &next).await?, Commit::Committed(2));
/// assert_eq!(store.commit("grant", 1, None, &next).await?, Commit::Conflict);
///
/// // In an application:
/// let http = Client::builder(TokioExecutor::new()).build_http();
/// let oauth = OAuth2::builder("http://127.0.0.1:9/oauth/token", "my-cli")
///     .refresh_token("rt-from-sign-in", http)?;
/// let grant = SharedGrant::builder(oauth, Arc::new(store), "me", NewSeed::Replace).build()?;
/// # let _ = grant;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
///
/// # The file
/// One JSON document holds, per grant, the versioned token set, the last fencing value
/// given and the current lease (its fencing value and its expiry, in milliseconds since the
/// Unix epoch). Tokens are **not encrypted**: the file is as safe as the account that owns
/// it. On unix it is created readable and writable by its owner only (`0600`), so are the
/// lock and temporary files, and every new version is written that way; a data file open to
/// its group or others is refused with [`StoreError::Unavailable`] (`chmod 600` it), as ssh
/// refuses such a key: its permissions are never widened nor silently kept. A file that is
/// not a document this crate wrote is [`StoreError::Unreadable`], for every operation:
/// nothing is ever written over it. Deleting the file signs every process out (it is
/// created again on the next write, its fencing values starting over).
///
/// # Between processes
/// Every operation reads the file, and writes it when something changes, under an exclusive
/// advisory lock on `<file>.lock` (waiting at most 5 s for another process), in
/// [`spawn_blocking`](tokio::task::spawn_blocking) so no runtime thread waits on the disk
/// or on the lock. A new version is written to `<file>.tmp`, synced and renamed over the
/// file: a crash leaves the old version or the new one. The lock is advisory: processes
/// that write the file without it (an editor) are not kept out. Leases expire by the wall
/// clock, which every process on the machine shares; a clock set back lengthens a lease.
/// Put the file on a local disk: locks on network file systems are not to be relied on.
///
/// # Hearing about commits
/// [`changes`](CredentialStore::changes) moves on commits made through this value (and its
/// clones). Commits of other processes are not announced: a process waiting for another
/// one's refresh reads the file again every
/// [`poll_every`](crate::source::shared_grant::SharedGrantBuilder::poll_every) (default 1 s).
///
/// `Debug` shows the path only.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    paths: Paths,
    changes: watch::Sender<u64>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.inner.paths.data)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// The store kept in the file at `path`, created (owner-only) when missing; its
    /// directory must exist. Fails when the file cannot be locked, read or created, is open
    /// to its group or others ([`StoreError::Unavailable`]), or is not one this crate wrote
    /// ([`StoreError::Unreadable`]). Blocking: it reads the file once.
    pub fn open(path: impl AsRef<Path>) -> Result<FileStore, StoreError> {
        let paths = Paths::new(path.as_ref().to_path_buf());
        {
            let locked = paths.lock(LOCK_TIMEOUT)?;
            match locked.read()? {
                Some(bytes) => {
                    Document::parse(&bytes)?;
                }
                None => locked.replace(&Document::default().render()?)?,
            }
        }
        Ok(FileStore {
            inner: Arc::new(Inner {
                paths,
                changes: watch::channel(0).0,
            }),
        })
    }

    /// The file's path, as given to [`open`](FileStore::open).
    pub fn path(&self) -> &Path {
        &self.inner.paths.data
    }

    /// `op` run on `grant`'s entry under the lock, off the runtime's threads; the file is
    /// written only when the entry changed, and not at all when `op` fails.
    fn transact<'a, T: Send + 'static>(
        &self,
        grant: &str,
        op: impl FnOnce(&mut Entry, u64) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'a, T> {
        let inner = self.inner.clone();
        let grant = grant.to_owned();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || inner.transact(grant, op))
                .await
                .map_err(|_| {
                    StoreError::Unavailable("the credential file's I/O task did not finish".into())
                })?
        })
    }
}

impl Inner {
    fn transact<T>(
        &self,
        grant: String,
        op: impl FnOnce(&mut Entry, u64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let locked = self.paths.lock(LOCK_TIMEOUT)?;
        let mut doc = Document::parse(&locked.read()?.unwrap_or_default())?;
        let before = doc.grants.get(&grant).cloned();
        let mut entry = before.clone().unwrap_or_default();
        let out = op(&mut entry, unix_ms())?;
        if before.unwrap_or_default() != entry {
            doc.grants.insert(grant, entry);
            locked.replace(&doc.render()?)?;
        }
        Ok(out)
    }
}

impl CredentialStore for FileStore {
    fn load<'a>(&'a self, grant: &'a str) -> StoreFuture<'a, Option<Versioned>> {
        self.transact(grant, |e, _| Ok(e.load()))
    }

    fn restore<'a>(&'a self, grant: &'a str, doc: &'a Versioned) -> StoreFuture<'a, bool> {
        let doc = doc.clone();
        self.transact(grant, move |e, _| Ok(e.restore(&doc)))
    }

    fn acquire<'a>(&'a self, grant: &'a str, ttl: Duration) -> StoreFuture<'a, Option<Lease>> {
        self.transact(grant, move |e, now| e.acquire(now, ttl))
    }

    fn renew<'a>(&'a self, grant: &'a str, lease: Lease, ttl: Duration) -> StoreFuture<'a, bool> {
        self.transact(grant, move |e, now| Ok(e.renew(lease, now, ttl)))
    }

    fn release<'a>(&'a self, grant: &'a str, lease: Lease) -> StoreFuture<'a, ()> {
        self.transact(grant, move |e, _| {
            e.release(lease);
            Ok(())
        })
    }

    fn commit<'a>(
        &'a self,
        grant: &'a str,
        expected: u64,
        lease: Option<Lease>,
        tokens: &'a StoredTokens,
    ) -> StoreFuture<'a, Commit> {
        let tokens = tokens.clone();
        let inner = self.inner.clone();
        let commit = self.transact(grant, move |e, _| e.commit(expected, lease, &tokens));
        Box::pin(async move {
            let outcome = commit.await?;
            if matches!(outcome, Commit::Committed(_)) {
                inner.changes.send_modify(|n| *n = n.wrapping_add(1));
            }
            Ok(outcome)
        })
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }
}
