//! Showing the sign-in to the person: the system browser on the sign-in's start page and
//! the terminal, the terminal alone, or the application's own function.
//!
//! Only the system browser is sent to the start page rather than to the authorization URL: it
//! is the only one that gets the URL through a command line (the opener's, then the
//! browser's), which other users of the machine can read (`ps`, `/proc/*/cmdline`). The
//! terminal (stderr) is the person's own, and the application's function gets the URL inside
//! this process; neither puts it where another user can read it, so both get the
//! authorization URL itself, which also works in a browser on another machine.

use std::fmt;
use std::io::{self, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::error::AuthorizationError;

/// The application's own way to show the URL, or the way to start the system browser.
pub(super) type OpenFn = dyn Fn(&str) -> io::Result<()> + Send + Sync;

/// How the sign-in reaches the person.
#[derive(Clone)]
pub(super) enum Opener {
    /// Start the system browser on the start page with `launch` (the system's opener, or a
    /// test's) and say so on stderr, with that page's URL in case it did not open; when no
    /// browser could be started, print the authorization URL instead, as
    /// [`PrintOnly`](Self::PrintOnly) does.
    System(Arc<OpenFn>),
    /// Print it to stderr only.
    PrintOnly,
    /// Hand it to the application.
    With(Arc<OpenFn>),
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Opener::System(_) => "SystemBrowser",
            Opener::PrintOnly => "PrintOnly",
            Opener::With(_) => "OpenWith(..)",
        })
    }
}

/// What the person was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shown {
    /// The authorization URL itself.
    AuthorizationUrl,
    /// The sign-in's start page, which redirects the browser to the authorization URL.
    StartPage,
}

impl Opener {
    /// The system browser, started by the system's URL opener.
    pub(super) fn system() -> Self {
        Opener::System(Arc::new(start_browser))
    }

    /// Show the sign-in: `url` is the authorization URL, `start_url` its start page. Only the
    /// application's own function can fail the sign-in: a browser that does not start leaves
    /// the printed URL, which is enough on a headless machine.
    pub(super) fn open(&self, url: &str, start_url: &str) -> Result<Shown, AuthorizationError> {
        match self {
            Opener::With(open) => match open(url) {
                Ok(()) => Ok(Shown::AuthorizationUrl),
                Err(e) => Err(AuthorizationError::UserAgent(format!(
                    "the sign-in URL could not be opened: {e}"
                ))),
            },
            Opener::PrintOnly => {
                print(&message(url, Said::Open));
                Ok(Shown::AuthorizationUrl)
            }
            Opener::System(launch) => match launch(start_url) {
                Ok(()) => {
                    print(&message(start_url, Said::BrowserStarted));
                    Ok(Shown::StartPage)
                }
                // Nothing was put on a command line: the authorization URL goes to the
                // terminal alone, and works in a browser elsewhere (an SSH session).
                Err(e) => {
                    print(&message(url, Said::NoBrowser(&e)));
                    Ok(Shown::AuthorizationUrl)
                }
            },
        }
    }
}

/// What stderr says with the URL.
enum Said<'a> {
    /// Open it: nothing else shows the sign-in.
    Open,
    /// A browser was started on it (the start page): open it only if no browser shows it,
    /// since a visit from a second browser ends the sign-in.
    BrowserStarted,
    /// Open it, as no browser could be started, for this reason.
    NoBrowser(&'a io::Error),
}

/// The lines for stderr about `url` (an `http::Uri`, so no control character).
fn message(url: &str, said: Said<'_>) -> String {
    match said {
        Said::Open => format!("Open this URL to sign in: {url}\n"),
        Said::BrowserStarted => {
            format!("A browser was opened to sign in. If it did not open, open: {url}\n")
        }
        Said::NoBrowser(e) => {
            format!("Open this URL to sign in: {url}\n(no browser was started: {e})\n")
        }
    }
}

fn print(message: &str) {
    // Nowhere to report a closed stderr to: the person will not see the URL either way.
    let _ = io::stderr().lock().write_all(message.as_bytes());
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
        let shown = opener
            .open(
                "http://as.test/authorize?a=1&b=2",
                "http://127.0.0.1:1/start/n",
            )
            .unwrap();
        assert_eq!(shown, Shown::AuthorizationUrl);
        assert_eq!(*seen.lock().unwrap(), ["http://as.test/authorize?a=1&b=2"]);
    }

    #[test]
    fn a_failing_open_with_fails_the_sign_in() {
        let opener = Opener::With(Arc::new(|_: &str| Err(io::Error::other("no window"))));
        match opener.open("http://as.test/", "http://127.0.0.1:1/start/n") {
            Err(AuthorizationError::UserAgent(why)) => assert!(why.contains("no window"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn print_only_never_fails() {
        assert_eq!(
            Opener::PrintOnly.open("http://as.test/", "http://127.0.0.1:1/start/n"),
            Ok(Shown::AuthorizationUrl)
        );
    }

    #[test]
    fn the_system_browser_is_started_on_the_start_page_only() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let opener = Opener::System(Arc::new(move |url: &str| {
            sink.lock().unwrap().push(url.to_owned());
            Ok(())
        }));
        let shown = opener.open(
            "http://as.test/authorize?state=s",
            "http://127.0.0.1:1/start/n",
        );
        assert_eq!(shown, Ok(Shown::StartPage));
        assert_eq!(*seen.lock().unwrap(), ["http://127.0.0.1:1/start/n"]);
    }

    #[test]
    fn stderr_asks_to_open_the_start_page_only_if_the_browser_did_not_open() {
        assert_eq!(
            message("http://127.0.0.1:1/start/n", Said::BrowserStarted),
            "A browser was opened to sign in. If it did not open, open: \
             http://127.0.0.1:1/start/n\n"
        );
        assert_eq!(
            message("http://as.test/a", Said::Open),
            "Open this URL to sign in: http://as.test/a\n"
        );
        let e = io::Error::other("no display");
        assert_eq!(
            message("http://as.test/a", Said::NoBrowser(&e)),
            "Open this URL to sign in: http://as.test/a\n(no browser was started: no display)\n"
        );
    }

    #[test]
    fn no_system_browser_falls_back_to_the_authorization_url_on_stderr() {
        let opener = Opener::System(Arc::new(|_: &str| Err(io::Error::other("no display"))));
        let shown = opener.open(
            "http://as.test/authorize?state=s",
            "http://127.0.0.1:1/start/n",
        );
        assert_eq!(shown, Ok(Shown::AuthorizationUrl));
    }
}
