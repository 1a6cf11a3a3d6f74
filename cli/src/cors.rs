//! What a browser page at `--origin` would get: the preflight the request needs (sent for
//! real), then whether the answer is readable by the page. The rules are the Fetch standard's
//! CORS check and CORS-preflight fetch.

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, WWW_AUTHENTICATE,
};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;

use crate::http::{Answer, Http};
use crate::report::{CauseId, Outcome, Report, quoted, quoted_list};

/// The request a page would make, as the doctor sent it.
pub(crate) struct PageRequest<'a> {
    /// The page's origin.
    pub origin: &'a str,
    /// The target.
    pub uri: &'a Uri,
    /// Its method.
    pub method: &'a Method,
    /// The headers the page sets (not `Origin`, `Cookie` or others the browser owns).
    pub headers: &'a HeaderMap,
    /// Whether the page sends credentials (`credentials: 'include'`, axios
    /// `withCredentials`): the doctor assumes so exactly when cookies are given.
    pub credentials: bool,
}

/// Headers a page may set without a preflight (Fetch "CORS-safelisted request-header"), and
/// those the browser sets itself.
fn needs_preflight_for(name: &str, value: &[u8]) -> bool {
    match name {
        "accept" | "accept-language" | "content-language" => false,
        "content-type" => {
            let v = String::from_utf8_lossy(value).to_ascii_lowercase();
            let essence = v.split(';').next().unwrap_or("").trim();
            !matches!(
                essence,
                "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
            )
        }
        // Set by the browser, never by the page.
        "cookie" | "origin" | "host" | "content-length" | "user-agent" => false,
        _ => true,
    }
}

fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Judge `Access-Control-Allow-Origin` and `-Credentials` of one answer (`on` names it).
fn allows_origin(answer: &Answer, page: &PageRequest<'_>, on: &str, report: &mut Report) -> bool {
    let acao = answer.first(ACCESS_CONTROL_ALLOW_ORIGIN.as_str());
    match acao {
        None => {
            report.cause(
                CauseId::CorsOriginNotAllowed,
                format!("the {on} has no Access-Control-Allow-Origin: a page at {} cannot read it (axios reports \"Network Error\")", page.origin),
                format!("allow the origin {} in the server's CORS configuration (exact scheme, host and port)", page.origin),
            );
            return false;
        }
        Some("*") if page.credentials => {
            report.cause(
                CauseId::CorsCredentialsNotAllowed,
                format!("the {on} allows any origin (`*`), which browsers refuse for requests with credentials"),
                format!("answer with the exact origin {} and Access-Control-Allow-Credentials: true instead of `*`", page.origin),
            );
            return false;
        }
        Some("*") => {}
        Some(o) if o == page.origin => {}
        Some(o) => {
            report.cause(
                CauseId::CorsOriginNotAllowed,
                format!("the {on} allows the origin {}, not {}", quoted(o), page.origin),
                format!("allow the origin {} in the server's CORS configuration (exact scheme, host and port)", page.origin),
            );
            return false;
        }
    }
    if page.credentials && answer.first(ACCESS_CONTROL_ALLOW_CREDENTIALS.as_str()) != Some("true") {
        report.cause(
            CauseId::CorsCredentialsNotAllowed,
            format!("the request sends cookies but the {on} lacks Access-Control-Allow-Credentials: true"),
            "answer with Access-Control-Allow-Credentials: true (and the exact origin) for credentialed requests",
        );
        return false;
    }
    report.check(
        "cors_origin",
        Outcome::Pass,
        format!("the {on} lets {} read it", page.origin),
    );
    true
}

/// Send the preflight the request needs, if any, and judge it: `None` when none is needed,
/// else whether the browser would go on to send the request.
pub(crate) async fn preflight(
    http: &Http,
    page: &PageRequest<'_>,
    report: &mut Report,
) -> Option<bool> {
    let simple_method = matches!(page.method.as_str(), "GET" | "HEAD" | "POST");
    let asked = asked_headers(page);
    if simple_method && asked.is_empty() {
        report.check(
            "preflight",
            Outcome::Skip,
            "a simple request: browsers send no preflight",
        );
        return None;
    }
    let Some(answer) = send_preflight(http, page, &asked, report).await else {
        return Some(false);
    };
    let passed = allows_origin(&answer, page, "preflight answer", report)
        && (simple_method || allows_method(&answer, page, report))
        && allows_headers(&answer, page, &asked, report);
    if passed {
        report.check(
            "preflight",
            Outcome::Pass,
            format!("OPTIONS answered {} and allows the request", answer.status),
        );
    }
    Some(passed)
}

/// The headers the page sets that a preflight must ask for, sorted, once each.
fn asked_headers(page: &PageRequest<'_>) -> Vec<String> {
    let mut asked: Vec<String> = page
        .headers
        .iter()
        .filter(|(n, v)| needs_preflight_for(n.as_str(), v.as_bytes()))
        .map(|(n, _)| n.as_str().to_owned())
        .collect();
    asked.sort();
    asked.dedup();
    asked
}

/// Send the `OPTIONS` preflight; its answer when it is a 2xx, else `None` with the cause
/// recorded.
async fn send_preflight(
    http: &Http,
    page: &PageRequest<'_>,
    asked: &[String],
    report: &mut Report,
) -> Option<Answer> {
    let mut req = Request::builder()
        .method(Method::OPTIONS)
        .uri(page.uri.clone())
        .header(ORIGIN, page.origin)
        .header(ACCESS_CONTROL_REQUEST_METHOD, page.method.as_str());
    if !asked.is_empty() {
        req = req.header(ACCESS_CONTROL_REQUEST_HEADERS, asked.join(","));
    }
    let Ok(req) = req.body(Full::<Bytes>::default()) else {
        report.check(
            "preflight",
            Outcome::Skip,
            "the origin is not a valid header value",
        );
        return None;
    };
    let answer = match http.send(req).await {
        Ok(a) => a,
        Err(e) => {
            report.cause(
                CauseId::PreflightRejected,
                format!("the preflight (OPTIONS) got no answer: {e}"),
                "answer OPTIONS preflights with 204 and the CORS headers",
            );
            return None;
        }
    };
    if answer.status.is_success() {
        return Some(answer);
    }
    let detail = if answer.headers.contains_key(WWW_AUTHENTICATE) {
        format!(
            "the preflight (OPTIONS) got {} with a challenge: the server authenticates preflights, which never carry credentials",
            answer.status
        )
    } else {
        format!("the preflight (OPTIONS) got {}, not a 2xx", answer.status)
    };
    report.cause(
        CauseId::PreflightRejected,
        detail,
        "answer preflights before authentication (put the CORS layer outside the auth layer) with 204 and the CORS headers",
    );
    None
}

/// Whether the preflight answer allows the request's (non-simple) method.
fn allows_method(answer: &Answer, page: &PageRequest<'_>, report: &mut Report) -> bool {
    let wildcard_ok = !page.credentials;
    let methods = list(answer.first(ACCESS_CONTROL_ALLOW_METHODS.as_str()));
    if methods
        .iter()
        .any(|m| m == page.method.as_str() || (wildcard_ok && m == "*"))
    {
        return true;
    }
    report.cause(
        CauseId::PreflightRejected,
        format!(
            "the preflight allows the methods {}, not {}",
            quoted_list(&methods),
            page.method
        ),
        format!("add {} to Access-Control-Allow-Methods", page.method),
    );
    false
}

/// Whether the preflight answer allows every header the page sets.
fn allows_headers(
    answer: &Answer,
    page: &PageRequest<'_>,
    asked: &[String],
    report: &mut Report,
) -> bool {
    let wildcard_ok = !page.credentials;
    let allowed = list(answer.first(ACCESS_CONTROL_ALLOW_HEADERS.as_str()));
    // `*` never covers `Authorization` (Fetch), and covers nothing with credentials.
    let missing: Vec<&String> = asked
        .iter()
        .filter(|h| {
            !allowed.iter().any(|a| {
                a.eq_ignore_ascii_case(h) || (wildcard_ok && a == "*" && *h != "authorization")
            })
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    report.cause(
        CauseId::PreflightRejected,
        format!(
            "the preflight does not allow the header(s) {} (it allows {})",
            quoted_list(&missing),
            quoted_list(&allowed)
        ),
        format!(
            "add {} to Access-Control-Allow-Headers",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    false
}

/// Judge the real answer: readable by the page, and its challenge exposed.
pub(crate) fn answer(
    main: &Answer,
    page: &PageRequest<'_>,
    preflight_passed: Option<bool>,
    report: &mut Report,
) {
    let refused = !main.status.is_success() && !main.status.is_redirection();
    if refused
        && preflight_passed == Some(true)
        && main.first(ACCESS_CONTROL_ALLOW_ORIGIN.as_str()).is_none()
    {
        // The classic: CORS headers on successes only, because the refusal is written before
        // the CORS layer runs. The page gets a network error instead of the status.
        report.cause(
            CauseId::CorsOriginNotAllowed,
            format!(
                "the {} answer carries no Access-Control-Allow-Origin although the origin is allowed: the page at {} gets a network error (axios: \"Network Error\"), not the {}",
                main.status, page.origin, main.status.as_u16()
            ),
            "give refusals the CORS headers too: put the CORS layer outside (before) the authentication layer",
        );
        return;
    }
    if !allows_origin(main, page, "answer", report) {
        return;
    }
    if main.headers.contains_key(WWW_AUTHENTICATE) {
        let exposed = list(main.first(ACCESS_CONTROL_EXPOSE_HEADERS.as_str()));
        let visible = exposed
            .iter()
            .any(|h| h.eq_ignore_ascii_case("www-authenticate") || (!page.credentials && h == "*"));
        if visible {
            report.check(
                "cors_expose",
                Outcome::Pass,
                "WWW-Authenticate is exposed to the page",
            );
        } else {
            report.cause(
                CauseId::CorsChallengeNotExposed,
                format!("the page sees the status but not WWW-Authenticate: Access-Control-Expose-Headers is {}", quoted_list(&exposed)),
                "add WWW-Authenticate to Access-Control-Expose-Headers so the page (and its refresh logic) can read why it was refused",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safelisted_headers_need_no_preflight() {
        assert!(!needs_preflight_for("accept", b"application/json"));
        assert!(!needs_preflight_for(
            "content-type",
            b"text/plain; charset=utf-8"
        ));
        assert!(needs_preflight_for("content-type", b"application/json"));
        assert!(needs_preflight_for("authorization", b"Bearer x"));
        assert!(needs_preflight_for("x-csrf-token", b"abc"));
        assert!(!needs_preflight_for("cookie", b"a=b"));
    }
}
