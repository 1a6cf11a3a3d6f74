//! The file's mechanics: the sidecar lock every process takes, bounded reads that refuse a
//! file others may read, and replacement by rename so a reader never sees half a write.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::StoreError;

/// The largest file read (or written): far above any set of grants a CLI holds, and a bound
/// on what a file someone else wrote can make this process allocate.
pub(super) const MAX_FILE_BYTES: u64 = 4 << 20;

/// The longest pause between two attempts at the lock.
const MAX_LOCK_PAUSE: Duration = Duration::from_millis(10);

/// The data file and the two files beside it: `<name>.lock` (held while a process reads or
/// writes, never removed: removing a lock file lets two processes hold two different ones)
/// and `<name>.tmp` (the next version, renamed over the data file once on disk).
pub(super) struct Paths {
    pub(super) data: PathBuf,
    lock: PathBuf,
    temp: PathBuf,
    dir: PathBuf,
}

fn unavailable(what: &str, path: &Path, e: &io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// `path` with `suffix` appended to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Options that create a file readable and writable by its owner only.
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

impl Paths {
    pub(super) fn new(data: PathBuf) -> Paths {
        let dir = match data.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Paths {
            lock: beside(&data, ".lock"),
            temp: beside(&data, ".tmp"),
            dir,
            data,
        }
    }

    /// The exclusive lock on `<name>.lock`, waiting at most `timeout` for another holder.
    /// Each call opens the lock file anew: a lock belongs to one open file, so two
    /// operations of this process exclude each other as two processes do.
    pub(super) fn lock(&self, timeout: Duration) -> Result<Locked<'_>, StoreError> {
        let file = private(OpenOptions::new().read(true).write(true).create(true))
            .open(&self.lock)
            .map_err(|e| unavailable("cannot open the lock file", &self.lock, &e))?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Locked { paths: self, file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(unavailable("cannot lock", &self.lock, &e));
                }
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "{} stayed locked by another process for {timeout:?}",
                    self.lock.display()
                )));
            }
            thread::sleep(pause);
            pause = (pause * 2).min(MAX_LOCK_PAUSE);
        }
    }
}

/// The lock held: the data file is read and replaced only through this.
pub(super) struct Locked<'a> {
    paths: &'a Paths,
    file: File,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // Closing the file would release it too; unlocking first says so.
        let _ = self.file.unlock();
    }
}

impl Locked<'_> {
    /// The data file's bytes; `None` when there is no file.
    pub(super) fn read(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let path = &self.paths.data;
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable("cannot open", path, &e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| unavailable("cannot read the metadata of", path, &e))?;
        if !meta.is_file() {
            return Err(StoreError::Unavailable(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        refuse_shared(path, &meta)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| unavailable("cannot read", path, &e))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(StoreError::Unavailable(format!(
                "{} is larger than {MAX_FILE_BYTES} bytes",
                path.display()
            )));
        }
        Ok(Some(bytes))
    }

    /// Replace the data file with `bytes`: written to `<name>.tmp` (owner-only), synced,
    /// renamed over the data file, and the directory synced, so a crash leaves the old file
    /// or the new one, never a mix.
    pub(super) fn replace(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let p = self.paths;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(StoreError::Unavailable(format!(
                "the credential file would grow past {MAX_FILE_BYTES} bytes"
            )));
        }
        // Left by a writer that died: created anew so its permissions are ours.
        match fs::remove_file(&p.temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(unavailable("cannot remove", &p.temp, &e)),
        }
        let written = write_new(&p.temp, bytes).and_then(|()| {
            fs::rename(&p.temp, &p.data).map_err(|e| unavailable("cannot rename over", &p.data, &e))
        });
        if written.is_err() {
            let _ = fs::remove_file(&p.temp);
            return written;
        }
        sync_dir(&p.dir);
        Ok(())
    }
}

/// `bytes` in a new owner-only file at `path`, synced to disk.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = private(OpenOptions::new().write(true).create_new(true))
        .open(path)
        .map_err(|e| unavailable("cannot create", path, &e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| unavailable("cannot write", path, &e))
}

/// Make the rename durable. Best effort: the rename has happened whatever this says, so a
/// failure here is no reason to report the write as failed.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(target: "portcullis::client", error = %e, dir = %dir.display(), "cannot sync the credential file's directory");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// A data file its group or others may read or write is refused, as ssh refuses such a
/// key: its tokens may already have been read, and writing a new one would keep it exposed.
fn refuse_shared(path: &Path, meta: &fs::Metadata) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StoreError::Unavailable(format!(
                "{} is open to its group or others (mode {mode:03o}); it holds tokens: `chmod 600` it",
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}
