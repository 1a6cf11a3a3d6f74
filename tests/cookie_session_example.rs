//! `examples/cookie_session.rs` over loopback, without a browser: the requests its page makes,
//! with the headers a browser adds to them (`Origin`, `Sec-Fetch-Site: same-site`), against the
//! compiled example. The same path in headless Chromium: `interop/tests/cookie-session.test.mjs`.

mod support;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use support::*;

struct Example {
    _process: tokio::process::Child,
    /// The API at the address it is bound to (`localhost` may resolve to `::1` first).
    api: String,
    /// The page's origin, `http://localhost:P`.
    page: String,
}

async fn start() -> Example {
    let args = ["--api-port", "0", "--page-port", "0"];
    let (process, rest) = start_example("cookie_session", &args).await;
    // `listening on http://localhost:A (api), page http://localhost:P`
    let (api, page) = rest.split_once(" (api), page ").expect("readiness line");
    let port = api
        .strip_prefix("http://localhost:")
        .expect("API on localhost");
    assert!(page.starts_with("http://localhost:"), "{page}");
    Example {
        _process: process,
        api: format!("http://127.0.0.1:{port}"),
        page: page.to_owned(),
    }
}

impl Example {
    /// `method path` as the page's `fetch` sends it, from `origin`, with `headers` and a
    /// `body`, JSON unless `headers` name another `content-type`.
    async fn from(
        &self,
        origin: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let site = if origin == self.page {
            "same-site"
        } else {
            "cross-site"
        };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.api))
            .header("origin", origin)
            .header("sec-fetch-site", site);
        let typed = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !typed {
            req = req.header("content-type", "application/json");
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let body = body.map_or_else(empty, |b| Full::new(Bytes::from(b.to_owned())));
        let reply = send(&client(), req.body(body).unwrap()).await;
        let allowed = reply.header("access-control-allow-origin");
        // Every answer to the page is readable by it, failures included; none to another.
        assert_eq!(
            allowed,
            (origin == self.page).then_some(origin),
            "{method} {path}"
        );
        reply
    }

    async fn call(&self, method: &str, path: &str, h: &[(&str, &str)], b: Option<&str>) -> Reply {
        self.from(&self.page, method, path, h, b).await
    }

    /// Signs in; the session cookie (`__Host-sid=…`) and the CSRF token from the body.
    async fn sign_in(&self) -> (String, String) {
        let r = self
            .call(
                "POST",
                "/session",
                &[],
                Some(r#"{"username":"demo","password":"demo-password"}"#),
            )
            .await;
        assert_eq!(r.status, 200);
        let set = r.header("set-cookie").expect("a session cookie");
        assert!(set.starts_with("__Host-sid="), "{set}");
        // What a `__Host-` cookie needs for browsers to take it: Secure, Path=/, no Domain.
        for attribute in ["; Path=/;", "; HttpOnly", "; Secure", "; SameSite=Lax"] {
            assert!(set.contains(attribute), "{attribute} in {set}");
        }
        assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
        let cookie = set.split(';').next().unwrap().to_owned();
        (cookie, r.json()["csrf_token"].as_str().unwrap().to_owned())
    }
}

#[tokio::test]
async fn sign_in_read_write_with_the_csrf_header_and_sign_out_revokes_the_copied_cookie() {
    let ex = start().await;
    let wrong = r#"{"username":"demo","password":"guess"}"#;
    let r = ex.call("POST", "/session", &[], Some(wrong)).await;
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());

    let (cookie, csrf) = ex.sign_in().await;
    let with_cookie = [("cookie", cookie.as_str())];
    let r = ex.call("GET", "/notes", &with_cookie, None).await;
    assert_eq!((r.status.as_u16(), r.json()), (200, serde_json::json!([])));

    let note = Some(r#"{"text":"buy milk"}"#);
    let write = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = ex.call("POST", "/notes", &write, note).await;
    assert_eq!(r.status, 201);
    ex.call("POST", "/notes", &with_cookie, note)
        .await
        .assert_problem(403, "csrf_failed");
    // Another session's token is no proof for this one.
    let (_, other_csrf) = ex.sign_in().await;
    let wrong_token = [("cookie", cookie.as_str()), ("x-csrf-token", &other_csrf)];
    ex.call("POST", "/notes", &wrong_token, note)
        .await
        .assert_problem(403, "csrf_failed");
    let r = ex.call("GET", "/notes", &with_cookie, None).await;
    assert_eq!(r.json(), serde_json::json!(["buy milk"]));

    // Sign-out is a write: the token is needed there too.
    ex.call("DELETE", "/session", &with_cookie, None)
        .await
        .assert_problem(403, "csrf_failed");
    let r = ex.call("DELETE", "/session", &write, None).await;
    assert_eq!(r.status, 204);
    let cleared = r.header("set-cookie").unwrap();
    assert!(
        cleared.starts_with("__Host-sid=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    ex.call("GET", "/notes", &[], None)
        .await
        .assert_problem(401, "missing_credentials");
    ex.call("GET", "/notes", &with_cookie, None)
        .await
        .assert_problem(401, "token_revoked");
}

/// The example keeps notes in memory, and its demo credentials are public: what one user may
/// store is bounded (1 KiB a note, 100 notes).
#[tokio::test]
async fn a_users_notes_are_bounded_in_size_and_number() {
    let ex = start().await;
    let (cookie, csrf) = ex.sign_in().await;
    let write = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let long = serde_json::json!({ "text": "x".repeat(1025) }).to_string();
    let r = ex.call("POST", "/notes", &write, Some(&long)).await;
    assert_eq!(r.status, 413);
    let note = Some(r#"{"text":"n"}"#);
    for _ in 0..100 {
        assert_eq!(ex.call("POST", "/notes", &write, note).await.status, 201);
    }
    assert_eq!(ex.call("POST", "/notes", &write, note).await.status, 413);
    let r = ex
        .call("GET", "/notes", &[("cookie", cookie.as_str())], None)
        .await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(100));
}

#[tokio::test]
async fn the_page_origin_may_send_the_csrf_header_and_no_other_origin_may_write() {
    let ex = start().await;
    let preflight = [
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "content-type,x-csrf-token",
        ),
    ];
    let r = ex.call("OPTIONS", "/notes", &preflight, None).await;
    assert!(r.status.is_success(), "{}", r.status);
    let allowed = r.header("access-control-allow-headers").unwrap();
    assert!(
        allowed.split(',').any(|h| h.trim() == "x-csrf-token"),
        "{allowed}"
    );
    let evil = "http://evil.test";
    // No `Access-Control-Allow-Origin` for it (checked in `from`): the browser stops there.
    ex.from(evil, "OPTIONS", "/notes", &preflight, None).await;

    // Even with the victim's cookie and token (a request no browser would send from there),
    // another origin's write is refused: only the page's origin is a trusted one.
    let (cookie, csrf) = ex.sign_in().await;
    let write = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    ex.from(evil, "POST", "/notes", &write, Some(r#"{"text":"x"}"#))
        .await
        .assert_problem(403, "csrf_failed");
}

#[tokio::test]
async fn a_wrong_user_name_and_a_wrong_password_get_the_same_401_and_no_cookie() {
    let ex = start().await;
    let mut answers = Vec::new();
    for body in [
        r#"{"username":"demo","password":"guess"}"#,
        r#"{"username":"nobody","password":"demo-password"}"#,
        // A prefix of the right name, and the right name with more after it.
        r#"{"username":"dem","password":"demo-password"}"#,
        r#"{"username":"demo","password":"demo-password-and-more"}"#,
    ] {
        let r = ex.call("POST", "/session", &[], Some(body)).await;
        assert_eq!(r.status, 401, "{body}");
        assert!(r.header("set-cookie").is_none(), "{body}");
        answers.push(r.json());
    }
    // Nothing in the answer tells which of the two was wrong.
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
}

#[tokio::test]
async fn cross_site_form_posts_with_the_right_credentials_are_415_and_set_no_cookie() {
    let ex = start().await;
    let evil = "http://evil.test";
    // What a cross-site HTML form can send without a preflight. The text/plain body is valid
    // JSON with the right credentials (the `name='{"…":"' value='"}'` trick): only its type
    // keeps it out.
    let json = r#"{"username":"demo","password":"demo-password","x":"="}"#;
    let url_encoded = "username=demo&password=demo-password";
    for (content_type, body) in [
        ("text/plain", json),
        ("application/x-www-form-urlencoded", url_encoded),
        ("multipart/form-data; boundary=x", json),
    ] {
        let typed = [("content-type", content_type)];
        let r = ex.from(evil, "POST", "/session", &typed, Some(body)).await;
        assert_eq!(r.status, 415, "{content_type}");
        assert!(r.header("set-cookie").is_none(), "{content_type}");
        let problem = r.json();
        assert_eq!(problem["status"], 415, "{problem}");
        assert!(!problem.to_string().contains("demo-password"), "{problem}");
    }
    // The same JSON as JSON from the page signs in: the type is what made the difference.
    let typed = [("content-type", "application/json")];
    let r = ex.call("POST", "/session", &typed, Some(json)).await;
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").is_some());
}
