//! Tests that run this test binary again as worker processes: their directory, the workers
//! themselves (killed if the test ends first), and waiting for one without blocking the
//! runtime the test's servers run on.

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use portcullis_testkit::eventually;

/// A test's own directory, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The workers, killed (by their own handles) if the test ends before they do.
pub(crate) struct Workers(pub(crate) Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Wait (at most `deadline`) for a worker to exit successfully; what it printed.
pub(crate) async fn finish(child: &mut Child, deadline: Duration) -> String {
    let mut status = None;
    eventually(deadline, || {
        status = child.try_wait().unwrap();
        std::future::ready(status.is_some())
    })
    .await
    .expect("the worker exits in time");
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.unwrap().success(), "worker failed:\n{out}\n{err}");
    out
}
