//! The pages the listener answers with: small, self-contained HTML (no script, no style, no
//! link), every word the authorization server sent escaped, never cached, never referred from.

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, SET_COOKIE,
};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// The most characters of a server's text a page shows (the response keeps all of it).
const SHOWN_CHARS: usize = 500;

/// What a page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Page {
    /// The redirect carried a code: the person may close the tab.
    SignedIn,
    /// A request for another path (a favicon, a probe).
    NotFound,
    /// Another method than `GET` on the redirect path.
    MethodNotAllowed,
    /// A `Host` that is not the listener's own address: a page on another name (DNS
    /// rebinding) reached the listener.
    WrongHost,
    /// The redirect path with another `state`, or none: not the sign-in under way.
    OtherSignIn,
    /// This sign-in's redirect again, after it was answered once.
    AlreadyAnswered,
    /// This sign-in's redirect, but not a valid authorization response.
    InvalidRedirect,
    /// This sign-in's redirect without the cookie its start page set: another program, or
    /// another browser than the one the sign-in started in.
    NotThisBrowser,
    /// The sign-in's start page, asked for again without the cookie its first visit set (a
    /// second browser or program): the sign-in is stopped.
    StartedElsewhere,
}

impl Page {
    fn status(self) -> StatusCode {
        match self {
            Page::SignedIn => StatusCode::OK,
            Page::NotFound => StatusCode::NOT_FOUND,
            Page::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Page::WrongHost
            | Page::OtherSignIn
            | Page::AlreadyAnswered
            | Page::InvalidRedirect
            | Page::NotThisBrowser
            | Page::StartedElsewhere => StatusCode::BAD_REQUEST,
        }
    }

    fn body(self) -> &'static str {
        match self {
            Page::SignedIn => concat!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in received</title></head>",
                "<body><h1>Sign-in received</h1><p>The application checks it and finishes the sign-in: ",
                "return to it. You can close this tab.</p></body></html>\n"
            ),
            Page::NotFound => concat!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Not found</title></head>",
                "<body><h1>Not found</h1></body></html>\n"
            ),
            Page::MethodNotAllowed => concat!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Method not allowed</title></head>",
                "<body><h1>Method not allowed</h1></body></html>\n"
            ),
            Page::WrongHost => concat!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Wrong host</title></head>",
                "<body><h1>Wrong host</h1><p>This sign-in listener answers only at its own ",
                "address.</p></body></html>\n"
            ),
            Page::OtherSignIn => concat!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Not this sign-in</title></head>",
                "<body><h1>Not this sign-in</h1><p>This is not the sign-in under way: it may be ",
                "an old tab. The sign-in under way is still waiting.</p></body></html>\n"
            ),
            Page::AlreadyAnswered => concat!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Already answered</title></head>",
                "<body><h1>Already answered</h1><p>This sign-in has already received its ",
                "answer.</p></body></html>\n"
            ),
            Page::InvalidRedirect => concat!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in failed</title></head>",
                "<body><h1>Sign-in failed</h1><p>The redirect back is not a valid sign-in ",
                "answer. Start the sign-in again from the application.</p></body></html>\n"
            ),
            Page::NotThisBrowser => concat!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Not this browser</title></head>",
                "<body><h1>Not the browser this sign-in started in</h1><p>This answer did not come ",
                "through the browser the application opened. The sign-in under way is still ",
                "waiting: finish it in that browser.</p></body></html>\n"
            ),
            Page::StartedElsewhere => concat!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in stopped</title></head>",
                "<body><h1>Sign-in stopped</h1><p>This sign-in's start page was opened from a ",
                "second browser or program: another program on this machine may have opened it ",
                "first. The sign-in was stopped; start it again from the application, and finish ",
                "it in the browser it opens.</p></body></html>\n"
            ),
        }
    }

    /// The page as an answer.
    pub(super) fn response(self) -> Response<Full<Bytes>> {
        let mut res = respond(self.status(), Bytes::from_static(self.body().as_bytes()));
        if self == Page::MethodNotAllowed {
            res.headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static("GET"));
        }
        res
    }
}

/// The page for an authorization server's refusal (RFC 6749 §4.1.2.1): its `error` and
/// `error_description`, escaped.
pub(super) fn refused(error: &str, description: Option<&str>) -> Response<Full<Bytes>> {
    let mut html = String::with_capacity(512);
    html.push_str(concat!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in refused</title></head>",
        "<body><h1>Sign-in refused</h1><p>The authorization server answered: <code>"
    ));
    html.push_str(&escape(error));
    html.push_str("</code></p>");
    if let Some(description) = description {
        html.push_str("<p>");
        html.push_str(&escape(description));
        html.push_str("</p>");
    }
    html.push_str("<p>You can close this tab.</p></body></html>\n");
    respond(StatusCode::OK, Bytes::from(html))
}

/// The start page's answer: `302 Found` to the authorization URL, setting the cookie the
/// redirect back must carry when given (never cached, the start page never sent as a
/// referrer).
pub(super) fn start_redirect(
    location: HeaderValue,
    set_cookie: Option<HeaderValue>,
) -> Response<Full<Bytes>> {
    let mut res = respond(
        StatusCode::FOUND,
        Bytes::from_static(concat!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Signing in</title></head>",
            "<body><h1>Signing in</h1><p>On to the sign-in page.</p></body></html>\n"
        ).as_bytes()),
    );
    let headers = res.headers_mut();
    headers.insert(LOCATION, location);
    if let Some(set_cookie) = set_cookie {
        headers.insert(SET_COOKIE, set_cookie);
    }
    res
}

fn respond(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// `text` as HTML text or attribute value: `& < > " '` escaped, control characters dropped,
/// at most [`SHOWN_CHARS`] characters kept (then an ellipsis).
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(SHOWN_CHARS) + 16);
    for (shown, c) in text.chars().filter(|c| !c.is_control()).enumerate() {
        if shown == SHOWN_CHARS {
            out.push('…');
            break;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            escape(r#"a & "b" 'c'"#),
            "a &amp; &quot;b&quot; &#39;c&#39;"
        );
        assert_eq!(escape("plain text"), "plain text");
    }

    #[test]
    fn escape_drops_control_characters() {
        assert_eq!(escape("a\u{1b}[31mb\r\nc\u{7f}d\u{9b}e"), "a[31mbcde");
    }

    #[test]
    fn escape_bounds_what_is_shown() {
        let long = "<".repeat(SHOWN_CHARS + 10);
        let shown = escape(&long);
        assert_eq!(shown.matches("&lt;").count(), SHOWN_CHARS);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn refusal_page_escapes_what_the_server_said() {
        let res = refused("access_denied\"><b>", Some("<script>alert(1)</script>"));
        assert_eq!(res.status(), StatusCode::OK);
        let body = futures_body(res);
        assert!(!body.contains("<script"), "{body}");
        assert!(!body.contains("<b>"), "{body}");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{body}"
        );
        assert!(body.contains("access_denied&quot;&gt;&lt;b&gt;"), "{body}");
    }

    #[test]
    fn every_page_is_uncached_unreferred_and_scriptless() {
        let pages = [
            Page::SignedIn,
            Page::NotFound,
            Page::MethodNotAllowed,
            Page::WrongHost,
            Page::OtherSignIn,
            Page::AlreadyAnswered,
            Page::InvalidRedirect,
            Page::NotThisBrowser,
            Page::StartedElsewhere,
        ];
        for res in pages.map(Page::response).into_iter().chain([
            refused("x", None),
            start_redirect(
                HeaderValue::from_static("https://as.test/"),
                Some(HeaderValue::from_static("c=v")),
            ),
        ]) {
            let h = res.headers();
            assert_eq!(h[CACHE_CONTROL], "no-store");
            assert_eq!(h[CONTENT_SECURITY_POLICY], "default-src 'none'");
            assert_eq!(h[REFERRER_POLICY], "no-referrer");
            assert_eq!(h[CONTENT_TYPE], "text/html; charset=utf-8");
        }
    }

    fn futures_body(res: Response<Full<Bytes>>) -> String {
        use http_body_util::BodyExt;
        let body = tokio_test::block_on(res.into_body().collect()).unwrap();
        String::from_utf8(body.to_bytes().to_vec()).unwrap()
    }
}
