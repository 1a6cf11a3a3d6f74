//! The start page of a sign-in shown through the system browser: `/start/<nonce>` on the
//! listener, answered with a redirect to the authorization URL and a cookie (`Path=/`) that
//! the redirect back must carry. The browser's command line, which other local users can read
//! (`ps`, `/proc/*/cmdline`), then holds neither the `state` nor the PKCE challenge, and a
//! redirect back from another program than the browser that opened the page is refused.
//!
//! The first visit sets the cookie. A later visit that carries it is the same browser (Back
//! on the authorization server's page, a restored session, the printed link clicked in that
//! browser) and is redirected again. A later visit without it is another browser or program,
//! and ends the sign-in: one of the two may have read the address, and the one with the
//! cookie may not be the person's.
//!
//! The start page's own address is on the command line. A program that reads it and opens it
//! before the browser gets the cookie; the browser's visit, second and without that cookie,
//! then ends the sign-in (the person sees why). What is left is a program that also comes
//! back with a code of its own from the authorization server before the browser's visit:
//! within the moment a browser takes to start, rather than the minutes a person takes to sign
//! in.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::Full;

use super::page;
use crate::error::AuthorizationError;
use crate::source::authorization_code::pkce::random_token;

/// Where start pages are: `/start/<nonce>`.
const START_PREFIX: &str = "/start/";

/// What the start page of one sign-in answers and checks (no `Debug`: the nonce and the
/// cookie stay out of logs).
pub(super) struct StartPage {
    /// `http://127.0.0.1:{port}/start/{nonce}`: what the browser is started on.
    url: String,
    nonce: String,
    /// The cookie's name (`loopback_sign_in_{port}`: cookies do not tell ports apart, and two
    /// applications may sign in at once in one browser) and value.
    cookie_name: String,
    cookie_value: String,
    /// `Location`: the authorization URL.
    location: HeaderValue,
    /// `Set-Cookie`, for every path of the listener (`Path=/`): the redirect back and the
    /// start page itself, so a repeat visit from the same browser is told apart.
    set_cookie: HeaderValue,
    /// Set by the first request for the start page: later ones are redirected only with the
    /// cookie it set.
    opened: AtomicBool,
}

/// What a request for a start page gets.
pub(super) enum Started {
    /// The redirect to the authorization URL: with the cookie for the first request, and
    /// again (the browser has the cookie already) for a later one that carries it.
    Redirect(Response<Full<Bytes>>),
    /// Another nonce: not this sign-in's page (a `404`, the sign-in goes on).
    NotFound,
    /// The page again, without the cookie: a second browser or program, one of which may
    /// not be the person's. The sign-in ends.
    Elsewhere,
}

impl StartPage {
    /// The start page of a sign-in on `127.0.0.1:{port}`, sending the browser to
    /// `authorization_url`; its cookie lives at most `lifetime` (the sign-in's timeout).
    pub(super) fn new(
        port: u16,
        authorization_url: &str,
        lifetime: Duration,
    ) -> Result<Self, AuthorizationError> {
        let nonce = random_token()?;
        let cookie_name = format!("loopback_sign_in_{port}");
        let cookie_value = random_token()?;
        let invalid =
            |what: &str| AuthorizationError::UserAgent(format!("the sign-in's start page: {what}"));
        let location = HeaderValue::from_str(authorization_url)
            .map_err(|_| invalid("the authorization URL is not a header value"))?;
        let set_cookie = HeaderValue::from_str(&format!(
            "{cookie_name}={cookie_value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}",
            lifetime.as_secs().max(1),
        ))
        .map_err(|_| invalid("the cookie is not a header value"))?;
        Ok(StartPage {
            url: format!("http://127.0.0.1:{port}{START_PREFIX}{nonce}"),
            nonce,
            cookie_name,
            cookie_value,
            location,
            set_cookie,
            opened: AtomicBool::new(false),
        })
    }

    /// The URL the browser is started on.
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// Whether `path` is a start page's (this sign-in's or not).
    pub(super) fn is_start_path(path: &str) -> bool {
        path.starts_with(START_PREFIX)
    }

    /// The answer to a `GET` of the start page at `path` with `headers`, only for this
    /// sign-in's nonce (compared in constant time): the redirect with the cookie the first
    /// time; later, the redirect again with the cookie, and the end of the sign-in without.
    pub(super) fn open(&self, path: &str, headers: &HeaderMap) -> Started {
        let nonce = path.strip_prefix(START_PREFIX).unwrap_or("");
        if !same(nonce.as_bytes(), self.nonce.as_bytes()) {
            return Started::NotFound;
        }
        if !self.opened.swap(true, Ordering::AcqRel) {
            let set_cookie = Some(self.set_cookie.clone());
            return Started::Redirect(page::start_redirect(self.location.clone(), set_cookie));
        }
        if self.carries_cookie(headers) {
            // Not set again: its Max-Age still counts from the first visit.
            return Started::Redirect(page::start_redirect(self.location.clone(), None));
        }
        Started::Elsewhere
    }

    /// Whether `headers` carry this sign-in's cookie: the browser that opened the start page.
    /// Every cookie of that name is compared, in constant time.
    pub(super) fn carries_cookie(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.cookie_name)
            .fold(false, |found, (_, value)| {
                same(value.as_bytes(), self.cookie_value.as_bytes()) | found
            })
    }

    /// Why a sign-in whose start page was asked for again without its cookie ends.
    pub(super) fn opened_elsewhere() -> AuthorizationError {
        AuthorizationError::UserAgent(
            "the sign-in's start page was opened from a second browser or program: another \
             program on this machine may have read its address and opened it before the \
             browser; start the sign-in again and finish it in the browser it opens"
                .into(),
        )
    }
}

/// Equal, in a time that does not depend on where they differ.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use http::header::{CACHE_CONTROL, LOCATION, REFERRER_POLICY, SET_COOKIE};

    const AUTHORIZE: &str = "https://as.test/authorize?state=s1&code_challenge=c";

    fn page() -> StartPage {
        StartPage::new(4711, AUTHORIZE, Duration::from_secs(300)).unwrap()
    }

    fn nonce_of(page: &StartPage) -> &str {
        page.url().rsplit('/').next().unwrap()
    }

    fn cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_url_names_the_listener_and_a_fresh_nonce() {
        let (one, two) = (page(), page());
        assert!(one.url().starts_with("http://127.0.0.1:4711/start/"));
        assert_eq!(nonce_of(&one).len(), 43);
        assert_ne!(one.url(), two.url());
        assert_ne!(one.cookie_value, two.cookie_value);
        assert!(!one.url().contains(['?', '=', '&']), "no parameters");
    }

    fn redirected(started: Started) -> Response<Full<Bytes>> {
        match started {
            Started::Redirect(res) => res,
            Started::NotFound => panic!("not found"),
            Started::Elsewhere => panic!("ended"),
        }
    }

    #[test]
    fn the_first_visit_is_redirected_with_the_cookie_for_every_path() {
        let page = page();
        let path = format!("/start/{}", nonce_of(&page));
        let res = redirected(page.open(&path, &HeaderMap::new()));
        assert_eq!(res.status(), StatusCode::FOUND);
        let h = res.headers();
        assert_eq!(h[LOCATION], AUTHORIZE);
        assert_eq!(h[CACHE_CONTROL], "no-store");
        assert_eq!(h[REFERRER_POLICY], "no-referrer");
        let set = h[SET_COOKIE].to_str().unwrap();
        assert_eq!(
            set,
            format!(
                "loopback_sign_in_4711={}; HttpOnly; SameSite=Lax; Path=/; Max-Age=300",
                page.cookie_value
            )
        );
        assert!(!set.contains("Secure"));
    }

    #[test]
    fn a_repeat_visit_with_the_cookie_is_redirected_again() {
        let page = page();
        let path = format!("/start/{}", nonce_of(&page));
        redirected(page.open(&path, &HeaderMap::new()));
        let own = cookie(&format!("a=b; loopback_sign_in_4711={}", page.cookie_value));
        for _ in 0..3 {
            let res = redirected(page.open(&path, &own));
            assert_eq!(res.status(), StatusCode::FOUND);
            assert_eq!(res.headers()[LOCATION], AUTHORIZE);
            assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
            assert!(res.headers().get(SET_COOKIE).is_none(), "set once");
        }
    }

    #[test]
    fn a_repeat_visit_without_the_cookie_ends_the_sign_in() {
        for other in ["", "loopback_sign_in_4711=guess", "loopback_sign_in_4712=x"] {
            let page = page();
            let path = format!("/start/{}", nonce_of(&page));
            redirected(page.open(&path, &HeaderMap::new()));
            let headers = if other.is_empty() {
                HeaderMap::new()
            } else {
                cookie(other)
            };
            assert!(
                matches!(page.open(&path, &headers), Started::Elsewhere),
                "{other}"
            );
        }
    }

    #[test]
    fn another_nonce_is_not_found_and_leaves_the_page_unopened() {
        let page = page();
        let nonce = nonce_of(&page).to_owned();
        for path in ["/start/", "/start/x", &format!("/start/{nonce}x"), "/start"] {
            let started = page.open(path, &HeaderMap::new());
            assert!(matches!(started, Started::NotFound), "{path}");
        }
        let first = page.open(&format!("/start/{nonce}"), &HeaderMap::new());
        assert!(matches!(first, Started::Redirect(_)));
    }

    #[test]
    fn only_the_cookie_of_this_sign_in_is_accepted() {
        let page = page();
        let value = page.cookie_value.clone();
        assert!(page.carries_cookie(&cookie(&format!("loopback_sign_in_4711={value}"))));
        assert!(page.carries_cookie(&cookie(&format!(
            "a=b; loopback_sign_in_4711=old;loopback_sign_in_4711={value}"
        ))));
        for other in [
            "loopback_sign_in_4711=guess".to_owned(),
            format!("loopback_sign_in_4712={value}"),
            format!("loopback_sign_in_4711={value}x"),
            "loopback_sign_in_4711=".to_owned(),
        ] {
            assert!(!page.carries_cookie(&cookie(&other)), "{other}");
        }
        assert!(!page.carries_cookie(&HeaderMap::new()));
    }

    #[test]
    fn same_compares_whole_values() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(same(b"", b""));
    }
}
