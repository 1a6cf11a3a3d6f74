//! The loopback listener over real HTTP on 127.0.0.1, with hyper-util's client: each rule a
//! browser, an old tab, a hostile page or a peer filling the backlog runs into (the system
//! browser's start page: in `tests/system_browser.rs`). (Here rather than in the crate's
//! `tests/` directory: an [`AuthorizationRequest`] is built only inside the crate, and the
//! system browser replaced only there.)

use std::future::Future;
use std::sync::Mutex as StdMutex;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::*;

mod system_browser;

/// Every test ends within this, whatever the listener does.
const BOUND: Duration = Duration::from_secs(10);

async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, test)
        .await
        .expect("the test did not finish in time")
}

/// An agent that shows its URLs to the test instead of a browser.
async fn agent() -> (LoopbackBrowser, Arc<StdMutex<Vec<String>>>) {
    let opened = Arc::new(StdMutex::new(Vec::new()));
    let sink = Arc::clone(&opened);
    let agent = LoopbackBrowser::bind()
        .await
        .unwrap()
        .open_with(move |url| {
            sink.lock().unwrap().push(url.to_owned());
            Ok(())
        });
    (agent, opened)
}

fn request(agent: &LoopbackBrowser, state: &str) -> AuthorizationRequest {
    let redirect_uri = agent.redirect_uri();
    let url = format!(
        "https://as.test/authorize?response_type=code&client_id=cli&state={state}&redirect_uri={}",
        form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect::<String>()
    );
    AuthorizationRequest {
        url: url.parse().unwrap(),
        redirect_uri,
        state: state.into(),
    }
}

/// A sign-in for `state`, once the agent serves it: a redirect sent before would be queued
/// while no sign-in runs, and dropped when it begins.
async fn start(agent: &LoopbackBrowser, state: &str) -> JoinHandle<Outcome> {
    let signed = spawn_sign_in(agent, state);
    serving(agent).await;
    signed
}

fn spawn_sign_in(agent: &LoopbackBrowser, state: &str) -> JoinHandle<Outcome> {
    tokio::spawn(agent.authorize(request(agent, state)))
}

/// Until the agent serves a sign-in: a probe is answered `404` (one queued before is dropped
/// when the sign-in begins, and sent again).
async fn serving(agent: &LoopbackBrowser) {
    loop {
        let probe = Request::get(format!("http://{}/probe", agent.local_addr()))
            .body(Full::default())
            .unwrap();
        if let Ok(res) = client().request(probe).await
            && res.status() == StatusCode::NOT_FOUND
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

type Outcome = Result<AuthorizationResponse, AuthorizationError>;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// `GET` `target` on the agent's listener, with `host` as the `Host` when given.
async fn get(agent: &LoopbackBrowser, target: &str, host: Option<&str>) -> Reply {
    let headers: Vec<_> = host.map(|h| (http::header::HOST, h)).into_iter().collect();
    get_with(agent, target, &headers).await
}

/// `GET` `target` on the agent's listener, with `headers`.
async fn get_with(
    agent: &LoopbackBrowser,
    target: &str,
    headers: &[(http::HeaderName, &str)],
) -> Reply {
    let mut req = Request::get(format!("http://{}{target}", agent.local_addr()));
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    let res = client()
        .request(req.body(Full::default()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

#[tokio::test]
async fn the_port_is_kept_for_the_life_of_the_agent() {
    bounded(async {
        let (agent, _) = agent().await;
        let before = agent.redirect_uri();
        let taken = LoopbackBrowser::bind_port(agent.local_addr().port()).await;
        assert!(taken.is_err(), "a second listener on the same port");
        let signed = start(&agent, "s1").await;
        let reply = get(&agent, "/callback?code=c&state=s1", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        signed.await.unwrap().unwrap();
        assert_eq!(agent.redirect_uri(), before);
    })
    .await;
}

#[tokio::test]
async fn open_with_receives_exactly_the_request_url() {
    bounded(async {
        let (agent, opened) = agent().await;
        let req = request(&agent, "s1");
        let url = req.url.to_string();
        let signed = tokio::spawn(agent.authorize(req));
        serving(&agent).await;
        let reply = get(&agent, "/callback?code=c&state=s1", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        signed.await.unwrap().unwrap();
        assert_eq!(*opened.lock().unwrap(), [url]);
    })
    .await;
}

#[tokio::test]
async fn another_path_is_404_then_the_redirect_signs_in() {
    bounded(async {
        let (agent, _) = agent().await;
        let signed = start(&agent, "s1").await;
        for target in [
            "/favicon.ico",
            "/",
            "/callback/x?code=c&state=s1",
            "/CALLBACK?code=c&state=s1",
        ] {
            assert_eq!(
                get(&agent, target, None).await.status,
                StatusCode::NOT_FOUND,
                "{target}"
            );
        }
        let reply = get(
            &agent,
            "/callback?code=abc&state=s1&iss=https%3A%2F%2Fas.test",
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply.body.contains("You can close this tab"),
            "{}",
            reply.body
        );
        assert_eq!(reply.headers["cache-control"], "no-store");
        assert_eq!(
            reply.headers["content-security-policy"],
            "default-src 'none'"
        );
        assert_eq!(reply.headers["referrer-policy"], "no-referrer");
        assert_eq!(reply.headers["content-type"], "text/html; charset=utf-8");
        let response = signed.await.unwrap().unwrap();
        assert_eq!(response.code.as_deref(), Some("abc"));
        assert_eq!(response.state.as_deref(), Some("s1"));
        assert_eq!(response.iss.as_deref(), Some("https://as.test"));
    })
    .await;
}

#[tokio::test]
async fn a_custom_path_is_the_only_one_answered() {
    bounded(async {
        let (agent, _) = agent().await;
        let agent = agent.path("/oauth/cb").unwrap();
        assert!(agent.redirect_uri().ends_with("/oauth/cb"));
        let signed = start(&agent, "s1").await;
        assert_eq!(
            get(&agent, "/callback?code=c&state=s1", None).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(&agent, "/oauth/cb?code=c&state=s1", None).await.status,
            StatusCode::OK
        );
        assert_eq!(signed.await.unwrap().unwrap().code.as_deref(), Some("c"));
    })
    .await;
}

#[tokio::test]
async fn another_state_is_400_and_the_sign_in_still_completes() {
    bounded(async {
        let (agent, _) = agent().await;
        let signed = start(&agent, "s1").await;
        for target in [
            "/callback?code=evil&state=s2",
            "/callback?code=evil",
            "/callback?error=access_denied&state=other",
            "/callback?code=evil&state=s1&state=s2",
        ] {
            let reply = get(&agent, target, None).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{target}");
            assert!(
                reply.body.contains("not the sign-in under way"),
                "{}",
                reply.body
            );
        }
        assert!(
            !signed.is_finished(),
            "a page without the state ended the sign-in"
        );
        let reply = get(&agent, "/callback?code=good&state=s1", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(signed.await.unwrap().unwrap().code.as_deref(), Some("good"));
    })
    .await;
}

#[tokio::test]
async fn another_host_is_400_and_ignored() {
    bounded(async {
        let (agent, _) = agent().await;
        let signed = start(&agent, "s1").await;
        let port = agent.local_addr().port();
        for host in [
            format!("evil.test:{port}"),
            format!("localhost:{port}"),
            "127.0.0.1".into(),
        ] {
            let reply = get(&agent, "/callback?code=evil&state=s1", Some(&host)).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{host}");
        }
        assert!(
            !signed.is_finished(),
            "a page on another name ended the sign-in"
        );
        let reply = get(&agent, "/callback?code=good&state=s1", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(signed.await.unwrap().unwrap().code.as_deref(), Some("good"));
    })
    .await;
}

#[tokio::test]
async fn another_method_is_405() {
    bounded(async {
        let (agent, _) = agent().await;
        let signed = start(&agent, "s1").await;
        let req = Request::post(format!(
            "http://{}/callback?code=c&state=s1",
            agent.local_addr()
        ))
        .body(Full::default())
        .unwrap();
        let res = client().request(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(!signed.is_finished());
        assert_eq!(
            get(&agent, "/callback?code=c&state=s1", None).await.status,
            StatusCode::OK
        );
        signed.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_hostile_error_description_is_escaped_in_the_page_and_returned_intact() {
    bounded(async {
        let (agent, _) = agent().await;
        let signed = start(&agent, "s1").await;
        let hostile = "<script>alert(1)</script>\"'&\u{1b}[2J";
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("error", "access_denied<img src=x>")
            .append_pair("error_description", hostile)
            .append_pair("state", "s1")
            .finish();
        let reply = get(&agent, &format!("/callback?{query}"), None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(!reply.body.contains("<script"), "{}", reply.body);
        assert!(!reply.body.contains("<img"), "{}", reply.body);
        assert!(!reply.body.contains('\u{1b}'), "{}", reply.body);
        assert!(
            reply
                .body
                .contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;[2J"),
            "{}",
            reply.body
        );
        assert!(
            reply.body.contains("access_denied&lt;img src=x&gt;"),
            "{}",
            reply.body
        );
        assert_eq!(
            reply.headers["content-security-policy"],
            "default-src 'none'"
        );
        let response = signed.await.unwrap().unwrap();
        assert_eq!(response.error.as_deref(), Some("access_denied<img src=x>"));
        assert_eq!(response.error_description.as_deref(), Some(hostile));
        assert_eq!(response.code, None);
    })
    .await;
}

#[tokio::test]
async fn a_duplicate_code_ends_the_sign_in_with_invalid_redirect() {
    bounded(async {
        let (agent, _) = agent().await;
        let signed = start(&agent, "s1").await;
        let reply = get(&agent, "/callback?code=a&code=b&state=s1", None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        match signed.await.unwrap() {
            Err(AuthorizationError::InvalidRedirect(why)) => assert!(why.contains("code"), "{why}"),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn nobody_back_within_the_timeout_is_timeout() {
    bounded(async {
        let (agent, _) = agent().await;
        let agent = agent.timeout(Duration::from_millis(300));
        let began = tokio::time::Instant::now();
        let outcome = agent.authorize(request(&agent, "s1")).await;
        assert_eq!(
            outcome,
            Err(AuthorizationError::Timeout(Duration::from_millis(300)))
        );
        assert!(began.elapsed() >= Duration::from_millis(300));
        // The listener outlives the timed-out sign-in.
        let signed = start(&agent, "s2").await;
        assert_eq!(
            get(&agent, "/callback?code=c&state=s2", None).await.status,
            StatusCode::OK
        );
        signed.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_second_sign_in_on_the_same_agent_works() {
    bounded(async {
        let (agent, opened) = agent().await;
        let first = start(&agent, "s1").await;
        assert_eq!(
            get(&agent, "/callback?code=c1&state=s1", None).await.status,
            StatusCode::OK
        );
        assert_eq!(first.await.unwrap().unwrap().code.as_deref(), Some("c1"));
        let second = start(&agent, "s2").await;
        // The first sign-in's tab, reloaded: not the sign-in under way.
        assert_eq!(
            get(&agent, "/callback?code=c1&state=s1", None).await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            get(&agent, "/callback?code=c2&state=s2", None).await.status,
            StatusCode::OK
        );
        assert_eq!(second.await.unwrap().unwrap().code.as_deref(), Some("c2"));
        assert_eq!(opened.lock().unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn concurrent_sign_ins_take_turns() {
    bounded(async {
        let (agent, opened) = agent().await;
        let first = spawn_sign_in(&agent, "s1");
        wait_until(|| opened.lock().unwrap().len() == 1).await;
        let second = spawn_sign_in(&agent, "s2");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            opened.lock().unwrap().len(),
            1,
            "the second URL was shown during the first"
        );
        assert_eq!(
            get(&agent, "/callback?code=c1&state=s1", None).await.status,
            StatusCode::OK
        );
        assert_eq!(first.await.unwrap().unwrap().code.as_deref(), Some("c1"));
        wait_until(|| opened.lock().unwrap().len() == 2).await;
        assert_eq!(
            get(&agent, "/callback?code=c2&state=s2", None).await.status,
            StatusCode::OK
        );
        assert_eq!(second.await.unwrap().unwrap().code.as_deref(), Some("c2"));
    })
    .await;
}

#[tokio::test]
async fn a_dropped_sign_in_ends_its_connections_and_frees_the_listener() {
    bounded(async {
        let (agent, _) = agent().await;
        let tasks = tokio::runtime::Handle::current().metrics();
        let before = tasks.num_alive_tasks();
        let signed = start(&agent, "s1").await;
        // A browser's connection that has sent half a request: served by a task of the sign-in.
        let mut idle = TcpStream::connect(agent.local_addr()).await.unwrap();
        idle.write_all(b"GET /callback?code=c&state=s1 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            tasks.num_alive_tasks() >= before + 2,
            "the connection is not being served"
        );
        signed.abort();
        assert!(signed.await.unwrap_err().is_cancelled());
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(1), idle.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "the connection outlived its sign-in: {read:?}"
        );
        wait_until(|| tasks.num_alive_tasks() == before).await;
        // The next sign-in has the listener.
        let signed = start(&agent, "s2").await;
        assert_eq!(
            get(&agent, "/callback?code=c&state=s2", None).await.status,
            StatusCode::OK
        );
        assert_eq!(signed.await.unwrap().unwrap().code.as_deref(), Some("c"));
    })
    .await;
}

#[tokio::test]
async fn a_request_without_state_is_refused_before_listening() {
    bounded(async {
        let (agent, opened) = agent().await;
        let outcome = agent.authorize(request(&agent, "")).await;
        assert!(
            matches!(outcome, Err(AuthorizationError::UserAgent(_))),
            "{outcome:?}"
        );
        assert!(opened.lock().unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn debug_names_the_redirect_uri_and_nothing_of_a_sign_in() {
    let (agent, _) = agent().await;
    let debug = format!("{agent:?}");
    assert!(debug.contains(&agent.redirect_uri()), "{debug}");
    assert!(debug.contains("OpenWith"), "{debug}");
}

#[test]
fn plain_paths() {
    for ok in ["/", "/callback", "/oauth/cb", "/a-b_c.d~e", "/%7Euser"] {
        assert!(is_plain_path(ok), "{ok}");
    }
    for bad in ["", "callback", "/cb?x=1", "/cb#f", "/c b", "/c\nb", "/ü"] {
        assert!(!is_plain_path(bad), "{bad:?}");
    }
}

async fn wait_until(cond: impl Fn() -> bool) {
    while !cond() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn connections_queued_before_a_sign_in_do_not_delay_it() {
    bounded(async {
        let (agent, opened) = agent().await;
        // Shorter than the time an idle connection may take to send its head: had the queued
        // ones taken the slots, the redirect would not be answered in time.
        let agent = agent.timeout(Duration::from_secs(1));
        let mut idle = Vec::new();
        for _ in 0..20 {
            idle.push(TcpStream::connect(agent.local_addr()).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let signed = start(&agent, "s1").await;
        wait_until(|| opened.lock().unwrap().len() == 1).await;
        let reply = get(&agent, "/callback?code=c&state=s1", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(signed.await.unwrap().unwrap().code.as_deref(), Some("c"));
        // The queued connections were closed unread.
        for stream in &mut idle {
            let mut buf = [0u8; 16];
            let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await;
            assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn idle_connections_during_a_sign_in_give_their_slots_back() {
    bounded(async {
        let (agent, opened) = agent().await;
        let agent = agent.timeout(Duration::from_secs(6));
        let signed = start(&agent, "s1").await;
        wait_until(|| opened.lock().unwrap().len() == 1).await;
        // Every slot taken by a connection that sends nothing.
        let mut idle = Vec::new();
        for _ in 0..16 {
            idle.push(TcpStream::connect(agent.local_addr()).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reply = get(&agent, "/callback?code=c&state=s1", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(signed.await.unwrap().unwrap().code.as_deref(), Some("c"));
        drop(idle);
    })
    .await;
}
