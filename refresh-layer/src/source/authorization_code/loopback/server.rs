//! One sign-in's HTTP/1.1 on the loopback listener: which requests are its redirect (and its
//! start page, when the system browser shows it), and the connections that carry them
//! (bounded in number and in time, ended with the sign-in; what queued before it, dropped).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::page::{self, Page};
use super::start::{StartPage, Started, same};
use crate::error::AuthorizationError;
use crate::source::authorization_code::user_agent::AuthorizationResponse;

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;
/// How long a connection may take to send its request head: a browser on this machine sends
/// it at once, and a connection that sends nothing gives its slot back soon.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection may live at all (one request, one answer).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// The largest request head read: a redirect and a browser's headers fit well within.
const MAX_BUF: usize = 64 * 1024;
/// The pause after a failed `accept` (out of descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// The most connections dropped from the backlog when a sign-in begins (Linux's default
/// `somaxconn`), so that a peer that keeps connecting cannot hold the sign-in there.
const MAX_DRAINED: usize = 4096;
/// How long draining waits for one more queued connection (the runtime may not have seen the
/// last ones yet).
const DRAIN_WAIT: Duration = Duration::from_millis(1);

/// How a sign-in ends: the redirect's parameters, or why they cannot be used.
pub(super) type Outcome = Result<AuthorizationResponse, AuthorizationError>;

/// What one sign-in answers to: its listener's address, its path, its `state` and, when the
/// system browser was started on it, its start page (no `Debug`: the state, the nonce and the
/// cookie stay out of logs).
pub(super) struct SignIn {
    port: u16,
    /// `127.0.0.1:{port}`, the only `Host` answered.
    host: String,
    /// Whether a `Host` without a port is the listener's too (port 80).
    default_port: bool,
    path: Arc<str>,
    state: String,
    /// Set by the first request carrying this sign-in's `state`: only it is answered.
    answered: AtomicBool,
    /// The start page the browser was sent to: its redirect back must carry its cookie.
    start: Option<StartPage>,
}

impl SignIn {
    /// A sign-in on `127.0.0.1:{port}` at `path`, waiting for `state`.
    pub(super) fn new(port: u16, path: Arc<str>, state: String) -> Self {
        SignIn {
            port,
            host: format!("127.0.0.1:{port}"),
            default_port: port == 80,
            path,
            state,
            answered: AtomicBool::new(false),
            start: None,
        }
    }

    /// A start page for this sign-in, sending the browser to `authorization_url`; its cookie
    /// lasts at most `lifetime`.
    pub(super) fn start_page(
        &self,
        authorization_url: &str,
        lifetime: Duration,
    ) -> Result<StartPage, AuthorizationError> {
        StartPage::new(self.port, authorization_url, lifetime)
    }

    /// The same sign-in, shown through `start`: the start page is answered (again only with
    /// the cookie its first visit set), and the redirect is taken only with that cookie.
    pub(super) fn through(mut self, start: StartPage) -> Self {
        self.start = Some(start);
        self
    }

    /// The answer to one request, and the sign-in's outcome when the request is this
    /// sign-in's redirect (or its start page, asked for again from a second browser or
    /// program). Anything else is answered and
    /// changes nothing: a page that is not this sign-in's cannot end it, nor can a redirect
    /// without the start page's cookie.
    pub(super) fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> (Response<Full<Bytes>>, Option<Outcome>) {
        if !self.is_own_host(uri, headers) {
            return (Page::WrongHost.response(), None);
        }
        if let Some(start) = &self.start
            && uri.path() != &*self.path
            && StartPage::is_start_path(uri.path())
        {
            return answer_start(start, method, uri.path(), headers);
        }
        if uri.path() != &*self.path {
            return (Page::NotFound.response(), None);
        }
        if method != Method::GET {
            return (Page::MethodNotAllowed.response(), None);
        }
        let query = uri.query().unwrap_or("");
        if !self.carries_own_state(query) {
            return (Page::OtherSignIn.response(), None);
        }
        if let Some(start) = &self.start
            && !start.carries_cookie(headers)
        {
            return (Page::NotThisBrowser.response(), None);
        }
        if self.answered.swap(true, Ordering::AcqRel) {
            return (Page::AlreadyAnswered.response(), None);
        }
        let outcome = AuthorizationResponse::from_query(query).and_then(code_or_error);
        let page = match &outcome {
            Ok(AuthorizationResponse {
                error: Some(error),
                error_description,
                ..
            }) => page::refused(error, error_description.as_deref()),
            Ok(_) => Page::SignedIn.response(),
            Err(_) => Page::InvalidRedirect.response(),
        };
        (page, Some(outcome))
    }

    /// One `Host`, naming the listener's own address (a page on another name that resolves
    /// to 127.0.0.1, DNS rebinding, says its own name), and no other authority in the target.
    fn is_own_host(&self, uri: &Uri, headers: &HeaderMap) -> bool {
        let own = |host: &[u8]| {
            host == self.host.as_bytes() || (self.default_port && host == b"127.0.0.1")
        };
        let mut hosts = headers.get_all(HOST).iter();
        let one_own = hosts.next().is_some_and(|h| own(h.as_bytes())) && hosts.next().is_none();
        one_own && uri.authority().is_none_or(|a| own(a.as_str().as_bytes()))
    }

    /// At least one `state`, and every `state` this sign-in's.
    fn carries_own_state(&self, query: &str) -> bool {
        let mut states = form_urlencoded::parse(query.as_bytes())
            .filter(|(name, _)| name == "state")
            .peekable();
        states.peek().is_some()
            && states.all(|(_, value)| same(value.as_bytes(), self.state.as_bytes()))
    }
}

/// The answer to a request for a start page: the redirect the first time and to the browser
/// that carries its cookie, `404` for another nonce; the page again without the cookie (a
/// second browser or program, one of which may have opened it first) ends the sign-in.
fn answer_start(
    start: &StartPage,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> (Response<Full<Bytes>>, Option<Outcome>) {
    if method != Method::GET {
        return (Page::MethodNotAllowed.response(), None);
    }
    match start.open(path, headers) {
        Started::Redirect(res) => (res, None),
        Started::NotFound => (Page::NotFound.response(), None),
        Started::Elsewhere => (
            Page::StartedElsewhere.response(),
            Some(Err(StartPage::opened_elsewhere())),
        ),
    }
}

/// An authorization response carries a code or an error (RFC 6749 §4.1.2).
fn code_or_error(response: AuthorizationResponse) -> Outcome {
    if response.code.is_none() && response.error.is_none() {
        return Err(AuthorizationError::InvalidRedirect(
            "the redirect carries neither a code nor an error".into(),
        ));
    }
    Ok(response)
}

/// Drop the connections queued on `listener` while no sign-in was served (any peer on this
/// machine can queue some, and each would hold a slot until its head times out); at most
/// [`MAX_DRAINED`]. Returns how many were dropped.
pub(super) async fn drain(listener: &TcpListener) -> usize {
    let mut drained = 0;
    while drained < MAX_DRAINED {
        match tokio::time::timeout(DRAIN_WAIT, listener.accept()).await {
            // Dropped at once: closed before it is read.
            Ok(Ok(_)) => drained += 1,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    if drained > 0 {
        tracing::debug!(
            drained,
            "connections queued before the sign-in were dropped"
        );
    }
    drained
}

/// Serve `listener` until a connection has carried `sign_in`'s redirect and its answer. The
/// connections are tasks of this future's own: dropping it (a cancelled sign-in) ends them.
pub(super) async fn serve(listener: &TcpListener, sign_in: SignIn) -> Outcome {
    let sign_in = Arc::new(sign_in);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(MAX_BUF);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Ok(Some(outcome)) = done {
                    return outcome;
                }
            }
            accepted = listener.accept(), if connections.len() < MAX_CONNECTIONS => {
                match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(connection(stream, http.clone(), Arc::clone(&sign_in)));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "the sign-in listener could not accept");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            }
        }
    }
}

/// One connection: one request, its answer, and the outcome when it was the redirect (kept
/// until the answer is written, so the person sees the page before the listener stops).
async fn connection(
    stream: TcpStream,
    http: http1::Builder,
    sign_in: Arc<SignIn>,
) -> Option<Outcome> {
    let outcome = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&outcome);
    let service = service_fn(move |req: Request<Incoming>| {
        let (res, found) = sign_in.answer(req.method(), req.uri(), req.headers());
        if found.is_some() {
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = found;
        }
        std::future::ready(Ok::<_, Infallible>(res))
    });
    // A peer that closes early, sends garbage or is too slow only loses its own connection.
    let _ = tokio::time::timeout(
        CONNECTION_LIFETIME,
        http.serve_connection(TokioIo::new(stream), service),
    )
    .await;
    outcome
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in() -> SignIn {
        SignIn::new(4711, Arc::from("/callback"), "s1".into())
    }

    fn ask(sign_in: &SignIn, method: Method, target: &str, host: &str) -> (u16, Option<Outcome>) {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, host.parse().unwrap());
        let (res, outcome) = sign_in.answer(&method, &target.parse().unwrap(), &headers);
        (res.status().as_u16(), outcome)
    }

    const HOST_OK: &str = "127.0.0.1:4711";

    #[test]
    fn only_the_own_host_is_answered() {
        let s = sign_in();
        for host in [
            "localhost:4711",
            "127.0.0.1:4712",
            "127.0.0.1",
            "evil.test:4711",
        ] {
            assert_eq!(
                ask(&s, Method::GET, "/callback?state=s1&code=c", host).0,
                400,
                "{host}"
            );
        }
        let absolute = "http://evil.test/callback?state=s1&code=c";
        assert_eq!(ask(&s, Method::GET, absolute, HOST_OK).0, 400);
        let mut two = HeaderMap::new();
        two.append(HOST, HOST_OK.parse().unwrap());
        two.append(HOST, "evil.test".parse().unwrap());
        let target = "/callback?state=s1&code=c".parse().unwrap();
        assert_eq!(s.answer(&Method::GET, &target, &two).0.status(), 400);
        assert!(!s.answered.load(Ordering::Acquire));
    }

    #[test]
    fn port_80_is_also_named_without_its_port() {
        let s = SignIn::new(80, Arc::from("/callback"), "s1".into());
        assert_eq!(
            ask(&s, Method::GET, "/callback?state=s1&code=c", "127.0.0.1").0,
            200
        );
    }

    #[test]
    fn other_paths_and_methods_are_refused() {
        let s = sign_in();
        assert_eq!(ask(&s, Method::GET, "/favicon.ico", HOST_OK).0, 404);
        assert_eq!(
            ask(&s, Method::GET, "/callback/x?state=s1&code=c", HOST_OK).0,
            404
        );
        assert_eq!(
            ask(&s, Method::POST, "/callback?state=s1&code=c", HOST_OK).0,
            405
        );
        assert!(!s.answered.load(Ordering::Acquire));
    }

    #[test]
    fn another_state_does_not_end_the_sign_in() {
        let s = sign_in();
        for q in [
            "state=s2&code=c",
            "code=c",
            "state=&code=c",
            "state=s1&state=s2&code=c",
        ] {
            let (status, outcome) = ask(&s, Method::GET, &format!("/callback?{q}"), HOST_OK);
            assert_eq!((status, outcome.is_none()), (400, true), "{q}");
        }
        let (status, outcome) = ask(&s, Method::GET, "/callback?state=s1&code=c", HOST_OK);
        assert_eq!(status, 200);
        assert_eq!(outcome.unwrap().unwrap().code.as_deref(), Some("c"));
    }

    #[test]
    fn the_redirect_is_taken_once() {
        let s = sign_in();
        assert_eq!(
            ask(&s, Method::GET, "/callback?state=s1&code=c", HOST_OK).0,
            200
        );
        let (status, outcome) = ask(&s, Method::GET, "/callback?state=s1&code=d", HOST_OK);
        assert_eq!((status, outcome.is_none()), (400, true));
    }

    /// A sign-in shown through its start page, and that page's path.
    fn through_start() -> (SignIn, String) {
        let s = sign_in();
        let start = s
            .start_page(
                "https://as.test/authorize?state=s1",
                Duration::from_secs(60),
            )
            .unwrap();
        let path = start.url().strip_prefix("http://127.0.0.1:4711").unwrap();
        let path = path.to_owned();
        (s.through(start), path)
    }

    fn ask_with_cookie(s: &SignIn, target: &str, cookie: &str) -> (u16, Option<Outcome>) {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HOST_OK.parse().unwrap());
        headers.insert(http::header::COOKIE, cookie.parse().unwrap());
        let (res, outcome) = s.answer(&Method::GET, &target.parse().unwrap(), &headers);
        (res.status().as_u16(), outcome)
    }

    /// The browser's first visit to the start page: a 302 that sets the cookie it returns.
    fn open_start(s: &SignIn, start: &str) -> String {
        let mut h = HeaderMap::new();
        h.insert(HOST, HOST_OK.parse().unwrap());
        let (res, outcome) = s.answer(&Method::GET, &start.parse().unwrap(), &h);
        assert_eq!((res.status().as_u16(), outcome.is_none()), (302, true));
        let set_cookie = res.headers()[http::header::SET_COOKIE].to_str().unwrap();
        set_cookie.split(';').next().unwrap().to_owned()
    }

    #[test]
    fn through_the_start_page_the_redirect_needs_its_cookie() {
        let (s, start) = through_start();
        let cookie = open_start(&s, &start);
        let target = "/callback?state=s1&code=c";
        let (status, outcome) = ask(&s, Method::GET, target, HOST_OK);
        assert_eq!((status, outcome.is_none()), (400, true));
        let (status, outcome) = ask_with_cookie(&s, target, "loopback_sign_in_4711=guess");
        assert_eq!((status, outcome.is_none()), (400, true));
        // Another state is another sign-in's, cookie or not.
        let (status, outcome) = ask_with_cookie(&s, "/callback?state=s2&code=c", &cookie);
        assert_eq!((status, outcome.is_none()), (400, true));
        assert!(!s.answered.load(Ordering::Acquire));
        let (status, outcome) = ask_with_cookie(&s, target, &cookie);
        assert_eq!(status, 200);
        assert_eq!(outcome.unwrap().unwrap().code.as_deref(), Some("c"));
    }

    #[test]
    fn the_start_page_asked_again_with_its_cookie_redirects_without_it_ends() {
        let (s, start) = through_start();
        assert_eq!(ask(&s, Method::POST, &start, HOST_OK).0, 405);
        assert_eq!(ask(&s, Method::GET, "/start/guess", HOST_OK).0, 404);
        assert_eq!(ask(&s, Method::GET, &start, "evil.test:4711").0, 400);
        let cookie = open_start(&s, &start);
        let (status, outcome) = ask_with_cookie(&s, &start, &cookie);
        assert_eq!((status, outcome.is_none()), (302, true));
        let (status, outcome) = ask(&s, Method::GET, &start, HOST_OK);
        assert_eq!(status, 400);
        match outcome {
            Some(Err(AuthorizationError::UserAgent(why))) => {
                assert!(why.contains("second browser or program"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_a_start_page_there_is_none_to_open() {
        let s = sign_in();
        assert_eq!(ask(&s, Method::GET, "/start/anything", HOST_OK).0, 404);
    }

    #[test]
    fn a_malformed_redirect_of_this_sign_in_ends_it_with_the_error() {
        let s = sign_in();
        let (status, outcome) = ask(&s, Method::GET, "/callback?state=s1&code=a&code=b", HOST_OK);
        assert_eq!(status, 400);
        assert!(matches!(
            outcome,
            Some(Err(AuthorizationError::InvalidRedirect(_)))
        ));
        let s = sign_in();
        let (status, outcome) = ask(&s, Method::GET, "/callback?state=s1", HOST_OK);
        assert_eq!(status, 400);
        assert!(matches!(
            outcome,
            Some(Err(AuthorizationError::InvalidRedirect(_)))
        ));
    }
}
