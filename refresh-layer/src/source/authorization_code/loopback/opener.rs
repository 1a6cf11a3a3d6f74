//! Showing the authorization URL to the person: the system browser and the terminal, the
//! terminal alone, or the application's own function.

use std::fmt;
use std::io::{self, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::error::AuthorizationError;

/// The application's own way to show the URL.
pub(super) type OpenFn = dyn Fn(&str) -> io::Result<()> + Send + Sync;

/// How the authorization URL reaches the person.
#[derive(Clone)]
pub(super) enum Opener {
    /// Print it to stderr and start the system browser on it.
    System,
    /// Print it to stderr only.
    PrintOnly,
    /// Hand it to the application.
    With(Arc<OpenFn>),
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Opener::System => "SystemBrowser",
            Opener::PrintOnly => "PrintOnly",
            Opener::With(_) => "OpenWith(..)",
        })
    }
}

impl Opener {
    /// Show `url`. Only the application's own function can fail the sign-in: a browser that
    /// does not start leaves the printed URL, which is enough on a headless machine.
    pub(super) fn open(&self, url: &str) -> Result<(), AuthorizationError> {
        match self {
            Opener::With(open) => open(url).map_err(|e| {
                AuthorizationError::UserAgent(format!("the sign-in URL could not be opened: {e}"))
            }),
            Opener::PrintOnly => {
                print(url, None);
                Ok(())
            }
            Opener::System => {
                print(url, start_browser(url).err());
                Ok(())
            }
        }
    }
}

/// The URL on stderr (an `http::Uri`, so no control character), and why no browser started.
fn print(url: &str, browser_failed: Option<io::Error>) {
    let mut err = io::stderr().lock();
    // Nowhere to report a closed stderr to: the person will not see the URL either way.
    let _ = writeln!(err, "Open this URL to sign in: {url}");
    if let Some(e) = browser_failed {
        let _ = writeln!(err, "(no browser was started: {e})");
    }
}

/// Start the system's URL opener on `url`, passed as one argument (no shell reads it), and
/// reap it from a thread of its own: an opener may stay until the browser it ran exits.
fn start_browser(url: &str) -> io::Result<()> {
    let mut command = browser_command(url)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let reaper = std::thread::Builder::new()
        .name("loopback-browser".into())
        .spawn(move || child.wait());
    // Without a thread the child is reaped when this process exits: nothing to undo.
    drop(reaper);
    Ok(())
}

#[cfg(target_os = "macos")]
fn browser_command(url: &str) -> io::Result<Command> {
    let mut command = Command::new("open");
    command.arg(url);
    Ok(command)
}

// `explorer` takes the URL as it is; `cmd /C start` would read its `&` as a command separator.
#[cfg(windows)]
fn browser_command(url: &str) -> io::Result<Command> {
    let mut command = Command::new("explorer");
    command.arg(url);
    Ok(command)
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos",
    target_os = "solaris"
))]
fn browser_command(url: &str) -> io::Result<Command> {
    // Without a graphical session xdg-open falls back to a text browser, which has no
    // terminal here: the printed URL is the way (an SSH session, a container).
    let graphical = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    if !graphical {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no graphical session (DISPLAY and WAYLAND_DISPLAY are unset)",
        ));
    }
    let mut command = Command::new("xdg-open");
    command.arg(url);
    Ok(command)
}

#[cfg(not(any(
    target_os = "macos",
    windows,
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos",
    target_os = "solaris"
)))]
fn browser_command(_url: &str) -> io::Result<Command> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no known way to start a browser on this system",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn open_with_gets_the_url_as_it_is() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let opener = Opener::With(Arc::new(move |url: &str| {
            sink.lock().unwrap().push(url.to_owned());
            Ok(())
        }));
        opener.open("http://as.test/authorize?a=1&b=2").unwrap();
        assert_eq!(*seen.lock().unwrap(), ["http://as.test/authorize?a=1&b=2"]);
    }

    #[test]
    fn a_failing_open_with_fails_the_sign_in() {
        let opener = Opener::With(Arc::new(|_: &str| Err(io::Error::other("no window"))));
        match opener.open("http://as.test/") {
            Err(AuthorizationError::UserAgent(why)) => assert!(why.contains("no window"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn print_only_never_fails() {
        assert_eq!(Opener::PrintOnly.open("http://as.test/"), Ok(()));
    }
}
