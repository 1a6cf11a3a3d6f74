//! The system browser's sign-in over real loopback HTTP: it is started on the start page,
//! never on the authorization URL; the page redirects with the cookie (`Path=/`) the redirect
//! back must carry; a repeat visit with that cookie is redirected again, one without it ends
//! the sign-in; no browser means the authorization URL alone.

use super::*;

/// An agent in system-browser mode whose "browser" hands the URLs it is started on to the
/// test instead of starting one.
async fn system_agent() -> (LoopbackBrowser, Arc<StdMutex<Vec<String>>>) {
    let launched = Arc::new(StdMutex::new(Vec::new()));
    let sink = Arc::clone(&launched);
    let agent = LoopbackBrowser::bind()
        .await
        .unwrap()
        .system_browser_with(move |url| {
            sink.lock().unwrap().push(url.to_owned());
            Ok(())
        });
    (agent, launched)
}

/// Start a sign-in in system-browser mode and wait for the browser to be started: the sign-in,
/// its request's authorization URL, and the target of the start page the browser was given.
async fn start_in_system_browser(
    agent: &LoopbackBrowser,
    launched: &StdMutex<Vec<String>>,
    state: &str,
) -> (JoinHandle<Outcome>, String, String) {
    let before = launched.lock().unwrap().len();
    let req = request(agent, state);
    let url = req.url.to_string();
    let signed = tokio::spawn(agent.authorize(req));
    wait_until(|| launched.lock().unwrap().len() > before).await;
    let start_url = launched.lock().unwrap()[before].clone();
    let prefix = format!("http://{}", agent.local_addr());
    let target = start_url
        .strip_prefix(&prefix)
        .expect(&start_url)
        .to_owned();
    (signed, url, target)
}

/// The `name=value` of the start page's `Set-Cookie`.
fn cookie_of(reply: &Reply) -> String {
    let set_cookie = reply.headers["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_system_browser_is_given_the_start_page_never_the_authorization_url() {
    bounded(async {
        let (agent, launched) = system_agent().await;
        for state in ["s1", "s2"] {
            let (signed, url, target) = start_in_system_browser(&agent, &launched, state).await;
            let reply = get(&agent, &target, None).await;
            assert_eq!(reply.status, StatusCode::FOUND);
            assert_eq!(reply.headers["location"], url.as_str());
            let cookie = cookie_of(&reply);
            let callback = format!("/callback?code=c&state={state}");
            let cookie_header = [(http::header::COOKIE, cookie.as_str())];
            let reply = get_with(&agent, &callback, &cookie_header).await;
            assert_eq!(reply.status, StatusCode::OK);
            signed.await.unwrap().unwrap();
        }
        let launched = launched.lock().unwrap().clone();
        assert_eq!(launched.len(), 2);
        assert_ne!(launched[0], launched[1], "a start page is used once");
        let start = format!("http://{}/start/", agent.local_addr());
        for url in &launched {
            assert!(url.starts_with(&start), "{url}");
            // Nothing but a random nonce: no state, no challenge, no client_id.
            let nonce = &url[start.len()..];
            assert_eq!(nonce.len(), 43, "{url}");
            assert!(
                nonce
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{url}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn the_start_page_redirects_with_a_cookie_for_every_path() {
    bounded(async {
        let (agent, launched) = system_agent().await;
        let (signed, url, target) = start_in_system_browser(&agent, &launched, "s1").await;
        let port = agent.local_addr().port();
        // Another nonce, or a page on another name (DNS rebinding): not the start page.
        assert_eq!(
            get(&agent, "/start/guess", None).await.status,
            StatusCode::NOT_FOUND
        );
        let reply = get(&agent, &target, Some(&format!("evil.test:{port}"))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        let reply = get(&agent, &target, None).await;
        assert_eq!(reply.status, StatusCode::FOUND);
        assert_eq!(reply.headers["location"], url.as_str());
        assert_eq!(reply.headers["cache-control"], "no-store");
        assert_eq!(reply.headers["referrer-policy"], "no-referrer");
        let set_cookie = reply.headers["set-cookie"].to_str().unwrap();
        let attributes: Vec<&str> = set_cookie.split("; ").skip(1).collect();
        assert_eq!(
            attributes,
            ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=300"],
            "{set_cookie}"
        );
        let (name, value) = cookie_of(&reply)
            .split_once('=')
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .unwrap();
        assert_eq!(name, format!("loopback_sign_in_{port}"));
        assert_eq!(value.len(), 43);
        assert!(!signed.is_finished());
        signed.abort();
    })
    .await;
}

#[tokio::test]
async fn a_redirect_without_the_cookie_is_400_and_the_sign_in_goes_on() {
    bounded(async {
        let (agent, launched) = system_agent().await;
        let (signed, _, target) = start_in_system_browser(&agent, &launched, "s1").await;
        let callback = "/callback?code=evil&state=s1";
        // Before the start page was opened: no browser has the cookie yet.
        let reply = get(&agent, callback, None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        let cookie = cookie_of(&get(&agent, &target, None).await);
        let name = cookie.split('=').next().unwrap();
        let guessed = format!("{name}=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        for headers in [vec![], vec![(http::header::COOKIE, guessed.as_str())]] {
            let reply = get_with(&agent, callback, &headers).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST);
            assert!(
                reply
                    .body
                    .contains("Not the browser this sign-in started in"),
                "{}",
                reply.body
            );
            assert_eq!(reply.headers["cache-control"], "no-store");
        }
        // An error without the cookie does not end it either.
        let reply = get(&agent, "/callback?error=access_denied&state=s1", None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !signed.is_finished(),
            "a redirect without the cookie ended the sign-in"
        );
        let cookie_header = [(http::header::COOKIE, cookie.as_str())];
        let reply = get_with(&agent, "/callback?code=good&state=s1", &cookie_header).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(signed.await.unwrap().unwrap().code.as_deref(), Some("good"));
    })
    .await;
}

#[tokio::test]
async fn a_repeat_visit_with_the_cookie_is_redirected_again_and_the_sign_in_completes() {
    bounded(async {
        let (agent, launched) = system_agent().await;
        let (signed, url, target) = start_in_system_browser(&agent, &launched, "s1").await;
        let first = get(&agent, &target, None).await;
        assert_eq!(first.status, StatusCode::FOUND);
        let cookie = cookie_of(&first);
        // The same browser again (Back on the sign-in page, a restored session, the printed
        // link clicked there): the cookie is sent to /start/ too, and the 302 is the same.
        let cookie_header = [(http::header::COOKIE, cookie.as_str())];
        for _ in 0..2 {
            let again = get_with(&agent, &target, &cookie_header).await;
            assert_eq!(again.status, StatusCode::FOUND, "{}", again.body);
            assert_eq!(again.headers["location"], url.as_str());
            assert_eq!(again.headers["cache-control"], "no-store");
            assert!(again.headers.get("set-cookie").is_none(), "set once");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!signed.is_finished(), "a repeat visit ended the sign-in");
        let reply = get_with(&agent, "/callback?code=c&state=s1", &cookie_header).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(signed.await.unwrap().unwrap().code.as_deref(), Some("c"));
    })
    .await;
}

#[tokio::test]
async fn a_repeat_visit_without_the_cookie_ends_the_sign_in() {
    bounded(async {
        let (agent, launched) = system_agent().await;
        let mut targets = Vec::new();
        // Someone else opens the start page first (with the cookie it sets, their own
        // redirect would be taken), or the person opens it in a second browser: the second
        // visit, without the first one's cookie or with a guessed one, stops the sign-in.
        for (state, cookie) in [
            ("s1", None),
            ("s2", Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
        ] {
            let (signed, _, target) = start_in_system_browser(&agent, &launched, state).await;
            let first = get(&agent, &target, None).await;
            assert_eq!(first.status, StatusCode::FOUND);
            let name = cookie_of(&first).split('=').next().unwrap().to_owned();
            let guessed = cookie.map(|value| format!("{name}={value}"));
            let headers: Vec<_> = guessed
                .iter()
                .map(|c| (http::header::COOKIE, c.as_str()))
                .collect();
            let reply = get_with(&agent, &target, &headers).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST);
            assert!(
                reply.body.contains("second browser or program"),
                "{}",
                reply.body
            );
            assert!(reply.headers.get("set-cookie").is_none());
            match signed.await.unwrap() {
                Err(AuthorizationError::UserAgent(why)) => assert!(
                    why.starts_with(
                        "the sign-in's start page was opened from a second browser or program: "
                    ),
                    "{why}"
                ),
                other => panic!("{other:?}"),
            }
            targets.push(target);
        }
        // The listener serves the next sign-in, with a start page of its own.
        let (signed, _, next) = start_in_system_browser(&agent, &launched, "s3").await;
        assert!(!targets.contains(&next));
        assert_eq!(
            get(&agent, &targets[0], None).await.status,
            StatusCode::NOT_FOUND
        );
        let cookie = cookie_of(&get(&agent, &next, None).await);
        let cookie_header = [(http::header::COOKIE, cookie.as_str())];
        let reply = get_with(&agent, "/callback?code=c&state=s3", &cookie_header).await;
        assert_eq!(reply.status, StatusCode::OK);
        signed.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn no_system_browser_means_the_authorization_url_and_no_cookie() {
    bounded(async {
        let agent = LoopbackBrowser::bind()
            .await
            .unwrap()
            .system_browser_with(|_| Err(std::io::Error::other("no graphical session")));
        let signed = start(&agent, "s1").await;
        // Nothing went on a command line: the printed authorization URL is the way, and its
        // redirect is taken as print_only's is.
        assert_eq!(
            get(&agent, "/callback?code=c&state=s1", None).await.status,
            StatusCode::OK
        );
        assert_eq!(signed.await.unwrap().unwrap().code.as_deref(), Some("c"));
    })
    .await;
}
