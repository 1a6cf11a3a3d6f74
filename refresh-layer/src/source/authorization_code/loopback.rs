//! [`LoopbackBrowser`]: the person signs in in their own browser, which the authorization
//! server sends back to a listener on `127.0.0.1` (RFC 8252 §7.3), for CLIs and desktop apps.

mod opener;
mod page;
mod server;
mod start;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Mutex;

use self::opener::{Opener, Shown};
use self::server::SignIn;
use crate::error::AuthorizationError;
use crate::source::authorization_code::user_agent::{
    AuthorizationRequest, AuthorizationResponse, AuthorizeFuture, UserAgent,
};

/// How long a person has to sign in, by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// A [`UserAgent`] for CLIs and desktop apps (RFC 8252): the person signs in in the system
/// browser, and the authorization server redirects it back to a listener on this machine.
///
/// - **Bound once, to `127.0.0.1` only**: [`bind`](Self::bind) takes an ephemeral port
///   (RFC 8252 §7.3; authorization servers accept any port on the loopback redirect URI) for
///   the life of the value, so its [`redirect_uri`](UserAgent::redirect_uri) —
///   `http://127.0.0.1:{port}/callback` — never changes. Never `0.0.0.0`, and never
///   `localhost` (RFC 8252 §8.3: a name can resolve elsewhere).
/// - **Shows the sign-in** by starting the system browser (`xdg-open` when there is a
///   graphical session, `open` on macOS, `explorer` on Windows; given the URL as one
///   argument, no shell) on the sign-in's **start page**, `http://127.0.0.1:{port}/start/…`
///   with a random nonce, and saying so on stderr (`A browser was opened to sign in. If it
///   did not open, open: …`, that URL). The authorization URL itself (its `state`, its PKCE
///   challenge) never goes on a command line, which other users of the machine can read
///   (`ps`, `/proc/*/cmdline`): the start page answers its first request with a `302` to it,
///   setting an `HttpOnly; SameSite=Lax; Path=/` cookie, and the redirect back is taken only
///   with that cookie. A redirect without it (another program, another browser) is `400` and
///   the sign-in keeps waiting. The start page asked for again with the cookie (the same
///   browser: Back on the sign-in page, a restored session) gets the same `302`; asked for
///   again without it — from a second browser or program, one of which may have opened it
///   first — it is `400` and ends the sign-in with
///   [`AuthorizationError::UserAgent`](crate::AuthorizationError::UserAgent). A browser that
///   does not start is not an error: the authorization URL is printed instead, and works on a
///   headless machine (or in a browser elsewhere). [`print_only`](Self::print_only) never
///   starts one and prints the authorization URL; [`open_with`](Self::open_with) hands it to
///   the application. Neither puts it on a command line (stderr is the person's, the
///   function runs in this process), so neither needs the start page or the cookie.
/// - **Answers only its redirect**: a `GET` to its path, with the `Host` `127.0.0.1:{port}`
///   (a page on another name, DNS rebinding, is refused), carrying the `state` of the sign-in
///   under way. Other paths are `404`; a redirect with another `state` — an old tab, another
///   page — is `400` and the sign-in keeps waiting, so nothing but the authorization server's
///   redirect can end it. The redirect is answered with a small page (no script; what the
///   server said escaped; `Cache-Control: no-store`, `Content-Security-Policy: default-src
///   'none'`, `Referrer-Policy: no-referrer`), taken once, and its parameters returned: an
///   `error=` redirect too, which the source turns into
///   [`AuthorizationError::Denied`](crate::AuthorizationError::Denied). A redirect of this
///   sign-in that is not a valid response (a parameter twice, no code and no error) ends it
///   with [`AuthorizationError::InvalidRedirect`](crate::AuthorizationError::InvalidRedirect).
/// - **Bounded**: nobody back within the [`timeout`](Self::timeout) (5 minutes by default) is
///   [`AuthorizationError::Timeout`](crate::AuthorizationError::Timeout); at most 16
///   connections are served at once, each for one request, with 2 seconds to send its head
///   and 30 to finish. Connections queued while no sign-in was under way are dropped when
///   the next one begins. Dropping the [`authorize`](UserAgent::authorize) future (a
///   cancelled sign-in) ends its connections at once.
/// - **One sign-in at a time**: the listener stays bound between sign-ins, so one agent
///   serves any number of them in turn; a second `authorize` waits until the first ends.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use portcullis::client::source::authorization_code::{LoopbackBrowser, UserAgent};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let browser = LoopbackBrowser::bind().await?.timeout(Duration::from_secs(120));
/// // What the authorization server must know as this client's redirect URI.
/// let redirect_uri = browser.redirect_uri();
/// assert!(redirect_uri.starts_with("http://127.0.0.1:"));
/// assert!(redirect_uri.ends_with("/callback"));
/// # Ok(())
/// # }
/// ```
pub struct LoopbackBrowser {
    listener: Arc<Mutex<TcpListener>>,
    port: u16,
    path: Arc<str>,
    opener: Opener,
    timeout: Duration,
}

impl fmt::Debug for LoopbackBrowser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackBrowser")
            .field("redirect_uri", &self.redirect_uri())
            .field("opener", &self.opener)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl LoopbackBrowser {
    /// Bind `127.0.0.1` on a port the system picks, for the life of the value.
    ///
    /// ```no_run
    /// use portcullis::client::source::authorization_code::LoopbackBrowser;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let browser = LoopbackBrowser::bind().await?;
    /// assert!(browser.local_addr().ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn bind() -> io::Result<Self> {
        Self::bind_port(0).await
    }

    /// Bind `127.0.0.1:{port}`, for an authorization server that only accepts a registered
    /// port (`0` picks one, as [`bind`](Self::bind) does). Fails when the port is taken.
    ///
    /// ```no_run
    /// use portcullis::client::source::authorization_code::{LoopbackBrowser, UserAgent};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let browser = LoopbackBrowser::bind_port(8976).await?;
    /// assert_eq!(browser.redirect_uri(), "http://127.0.0.1:8976/callback");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn bind_port(port: u16) -> io::Result<Self> {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).await?;
        let port = listener.local_addr()?.port();
        Ok(LoopbackBrowser {
            listener: Arc::new(Mutex::new(listener)),
            port,
            path: Arc::from("/callback"),
            opener: Opener::system(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The path redirects come back to (`/callback` by default). A `path` that does not
    /// start with `/`, or is not a plain ASCII URL path (it has a query, a fragment, a space
    /// or a control character), is an [`InvalidInput`](std::io::ErrorKind::InvalidInput)
    /// error.
    ///
    /// ```no_run
    /// use portcullis::client::source::authorization_code::{LoopbackBrowser, UserAgent};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let browser = LoopbackBrowser::bind_port(8976).await?.path("/oauth/cb")?;
    /// assert_eq!(browser.redirect_uri(), "http://127.0.0.1:8976/oauth/cb");
    /// # Ok(())
    /// # }
    /// ```
    pub fn path(mut self, path: &str) -> std::io::Result<Self> {
        if !is_plain_path(path) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "LoopbackBrowser::path: {path:?} is not a URL path starting with '/' \
                     (ASCII, without a query, a fragment, spaces or control characters)"
                ),
            ));
        }
        self.path = Arc::from(path);
        Ok(self)
    }

    /// Only print the authorization URL to stderr, never start a browser: for machines
    /// without one, or where starting one would surprise. (The URL itself, not a start page:
    /// stderr is the person's own, and the URL then also works in a browser elsewhere.)
    ///
    /// ```no_run
    /// use portcullis::client::source::authorization_code::LoopbackBrowser;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let browser = LoopbackBrowser::bind().await?.print_only();
    /// # let _ = browser; Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn print_only(mut self) -> Self {
        self.opener = Opener::PrintOnly;
        self
    }

    /// Hand the authorization URL to `open` instead of printing it and starting the system
    /// browser: an embedded browser, a test driver. An error from `open` ends the sign-in
    /// with [`AuthorizationError::UserAgent`](crate::AuthorizationError::UserAgent). `open`
    /// gets the authorization URL itself, not a start page, and the redirect back is taken
    /// without a cookie: the URL stays in this process. If `open` starts another program,
    /// hand it the URL in a way other users cannot read (not as a command-line argument).
    ///
    /// ```no_run
    /// use portcullis::client::source::authorization_code::LoopbackBrowser;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let browser = LoopbackBrowser::bind().await?.open_with(|url| {
    ///     std::process::Command::new("firefox").arg(url).spawn().map(drop)
    /// });
    /// # let _ = browser; Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn open_with<F>(mut self, open: F) -> Self
    where
        F: Fn(&str) -> io::Result<()> + Send + Sync + 'static,
    {
        self.opener = Opener::With(Arc::new(open));
        self
    }

    /// How long the person has, from when the URL is shown until the redirect comes back
    /// (5 minutes by default).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use portcullis::client::source::authorization_code::LoopbackBrowser;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let browser = LoopbackBrowser::bind().await?.timeout(Duration::from_secs(60));
    /// # let _ = browser; Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Start the "system browser" with `launch` instead of the system's URL opener: the tests'
    /// look at what a browser would be given, without starting one.
    #[cfg(test)]
    pub(crate) fn system_browser_with<F>(mut self, launch: F) -> Self
    where
        F: Fn(&str) -> io::Result<()> + Send + Sync + 'static,
    {
        self.opener = Opener::System(Arc::new(launch));
        self
    }

    /// The address the listener is bound to (`127.0.0.1` and its port).
    ///
    /// ```no_run
    /// use portcullis::client::source::authorization_code::LoopbackBrowser;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let browser = LoopbackBrowser::bind().await?;
    /// println!("listening on {}", browser.local_addr());
    /// # Ok(())
    /// # }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    async fn sign_in(
        listener: Arc<Mutex<TcpListener>>,
        sign_in: SignIn,
        opener: Opener,
        url: String,
        timeout: Duration,
    ) -> Result<AuthorizationResponse, AuthorizationError> {
        // One sign-in at a time: a second one's URL is shown once the first has ended.
        let listener = listener.lock().await;
        // Before the browser is started, so its connection is not among those dropped.
        server::drain(&listener).await;
        let start = sign_in.start_page(&url, timeout)?;
        let sign_in = match opener.open(&url, start.url())? {
            Shown::StartPage => sign_in.through(start),
            Shown::AuthorizationUrl => sign_in,
        };
        tokio::time::timeout(timeout, server::serve(&listener, sign_in))
            .await
            .unwrap_or(Err(AuthorizationError::Timeout(timeout)))
    }
}

/// Starts with `/` and holds only what a URL path may, without a query or a fragment.
fn is_plain_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains(['?', '#'])
        && path.bytes().all(|b| b.is_ascii_graphic())
        && path.parse::<http::uri::PathAndQuery>().is_ok()
}

impl UserAgent for LoopbackBrowser {
    fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.path)
    }

    fn authorize(&self, request: AuthorizationRequest) -> AuthorizeFuture {
        if request.state.is_empty() {
            // Without a state, any page could end the sign-in with a redirect of its own.
            return Box::pin(std::future::ready(Err(AuthorizationError::UserAgent(
                "the authorization request carries no state: a loopback listener needs one \
                 to tell its redirect from another page's"
                    .into(),
            ))));
        }
        Box::pin(Self::sign_in(
            Arc::clone(&self.listener),
            SignIn::new(self.port, Arc::clone(&self.path), request.state),
            self.opener.clone(),
            request.url.to_string(),
            self.timeout,
        ))
    }
}

#[cfg(test)]
mod tests;
