//! `portcullis doctor`: send the request as given, read what the server says (status,
//! challenges, problem body, clock), read the token, ask the resource's and the issuer's
//! metadata, hand it all to [`diagnose`](crate::diagnose), judge CORS for a page, and put the
//! causes in the order to fix them.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use portcullis_wire::{Challenge, Origin, ProblemDetails, parse_challenges, well_known};
use serde_json::{Value, json};

use crate::cors::{self, PageRequest};
use crate::diagnose::{
    CLOCK_TOLERANCE, Facts, SentHeader, diagnose, inspect_authorization, same_url, seconds, stated,
};
use crate::http::{Answer, Http};
use crate::keys::{self, KeyVerdict};
use crate::report::{CauseId, Outcome, Report, quoted, quoted_list};
use crate::token::{self, Decoded, date};
use crate::untrusted::Untrusted;

/// What to send, and what to compare the token with.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// The request's URL.
    pub url: Uri,
    /// Its method.
    pub method: Method,
    /// A bearer token, sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// `name=value` cookies, sent in one `Cookie` header.
    pub cookies: Vec<String>,
    /// Other headers, as given.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The browser origin to judge CORS for.
    pub origin: Option<String>,
    /// The issuer the API trusts.
    pub issuer: Option<String>,
    /// The audience the API expects.
    pub audience: Option<String>,
}

/// Why no diagnosis could be made.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The arguments do not make a request.
    Usage(String),
    /// The server could not be reached.
    Unreachable(String),
}

/// Send the request as given and diagnose the answer.
pub(crate) async fn run(http: &Http, spec: &Spec) -> Result<Report, Failure> {
    let (req, page_headers) = build_request(spec)?;
    let answer = http
        .send(req)
        .await
        .map_err(|e| Failure::Unreachable(format!("{}: {e}", spec.url)))?;
    let mut report = Report {
        status: Some(answer.status.as_u16()),
        ..Report::default()
    };
    let local_now = token::unix_now();
    let server_now = server_clock(&answer, local_now, &mut report);
    let words = ServerWords::read(&answer, &mut report);

    // What was sent, and the token in it (or in a cookie).
    let auth_sent = page_headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let sent = auth_sent.map(inspect_authorization).unwrap_or_default();
    let decoded = read_token(spec, &sent, local_now, &mut report);
    let jwt = decoded.as_ref().and_then(|d| d.as_ref().ok());

    // What the resource and the issuer publish.
    let metadata = resource_metadata(http, &spec.url, words.bearer(), &mut report).await;
    let (expected_issuers, expected_audience) = expectations(spec, metadata.as_ref());
    let keys = match jwt {
        Some(t) => judge_keys(http, spec, t, &expected_issuers, &mut report).await,
        None => None,
    };

    let facts = Facts {
        status: answer.status,
        local_now,
        server_now,
        token: jwt,
        expected_issuers,
        expected_audience,
        keys,
        required_scopes: words.required_scopes,
        stated: words.stated,
        description: words.description,
        credentials_sent: auth_sent.is_some() || !spec.cookies.is_empty(),
        schemes: words.challenges.iter().map(|c| c.scheme.clone()).collect(),
        location: answer.first("location").map(str::to_owned),
    };
    diagnose(&facts, &sent, decoded.as_ref(), &mut report);
    if let Some(origin) = &spec.origin {
        judge_cors(http, spec, origin, &answer, &page_headers, &mut report).await;
    }
    redact(&mut report, &secrets(spec, &sent));

    // The browser's blocks first, then the server's own reason, then the rest in fix order.
    let server_said = facts.stated;
    report
        .causes
        .sort_by_key(|c| (!c.id.blocks_the_page(), Some(c.id) != server_said, c.id));
    Ok(report)
}

/// The token sent (in `Authorization`, else in a cookie), decoded and annotated in the report.
fn read_token(
    spec: &Spec,
    sent: &SentHeader,
    local_now: i64,
    report: &mut Report,
) -> Option<Result<Decoded, token::NotAJwt>> {
    let cookie_token = spec
        .cookies
        .iter()
        .filter_map(|c| c.split_once('=').map(|(_, v)| v.trim()))
        .find(|v| token::decode(v).is_ok());
    let decoded = sent.token.as_deref().or(cookie_token).map(token::decode);
    report.token = match &decoded {
        Some(Ok(t)) => Some(token::annotated(t, local_now)),
        Some(Err(why)) => Some(json!({ "not_a_jwt": why.to_string() })),
        None => None,
    };
    decoded
}

/// What a page at `origin` would get: nothing to judge on its own origin, else the preflight
/// and the answer's CORS headers.
async fn judge_cors(
    http: &Http,
    spec: &Spec,
    origin: &str,
    answer: &Answer,
    page_headers: &HeaderMap,
    report: &mut Report,
) {
    if same_origin(origin, &spec.url) {
        report.check(
            "cors",
            Outcome::Skip,
            format!("{origin} is the API's own origin: browsers apply no CORS"),
        );
        return;
    }
    let page = PageRequest {
        origin,
        uri: &spec.url,
        method: &spec.method,
        headers: page_headers,
        credentials: !spec.cookies.is_empty(),
    };
    let passed = cors::preflight(http, &page, report).await;
    cors::answer(answer, &page, passed, report);
}

/// What was sent that must not be printed back: cookie values, the token, secret headers.
fn secrets<'a>(spec: &'a Spec, sent: &'a SentHeader) -> Vec<&'a str> {
    let mut secrets: Vec<&str> = spec
        .cookies
        .iter()
        .filter_map(|c| c.split_once('='))
        .map(|(_, v)| v.trim())
        .collect();
    secrets.extend(spec.token.as_deref());
    secrets.extend(sent.token.as_deref());
    secrets.extend(
        spec.headers
            .iter()
            .filter(|(n, _)| is_secret_header(n.as_str()))
            .filter_map(|(_, v)| v.to_str().ok()),
    );
    secrets
}

/// The request as the user gave it, and the headers a page would set (the browser adds
/// `Origin` and `Cookie` itself). Every credential is marked sensitive.
fn build_request(spec: &Spec) -> Result<(Request<Full<Bytes>>, HeaderMap), Failure> {
    if spec.url.scheme().is_none() || spec.url.authority().is_none() {
        return Err(Failure::Usage(format!(
            "{} is not an absolute http(s) URL",
            spec.url
        )));
    }
    let mut headers = HeaderMap::new();
    for (n, v) in &spec.headers {
        headers.append(n.clone(), v.clone());
    }
    if let Some(t) = &spec.token {
        if headers.contains_key(AUTHORIZATION) {
            return Err(Failure::Usage(
                "give the token with --token* or as an Authorization --header, not both".into(),
            ));
        }
        let v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
            Failure::Usage("the token holds characters an HTTP header cannot carry".into())
        })?;
        headers.insert(AUTHORIZATION, v);
    }
    if let Some(v) = headers.get_mut(AUTHORIZATION) {
        v.set_sensitive(true);
    }
    let page_headers = headers.clone();
    if !spec.cookies.is_empty() {
        let mut v = HeaderValue::from_str(&spec.cookies.join("; "))
            .map_err(|_| Failure::Usage("a --cookie is not a valid header value".into()))?;
        v.set_sensitive(true);
        headers.insert(COOKIE, v);
    }
    if let Some(o) = &spec.origin {
        let v = HeaderValue::from_str(o)
            .map_err(|_| Failure::Usage("--origin is not a valid header value".into()))?;
        headers.insert(ORIGIN, v);
    }
    let mut req = Request::builder()
        .method(spec.method.clone())
        .uri(spec.url.clone())
        .body(Full::<Bytes>::default())
        .map_err(|e| Failure::Usage(e.to_string()))?;
    *req.headers_mut() = headers;
    Ok((req, page_headers))
}

/// The server's clock from its `Date` header, compared with this machine's.
fn server_clock(answer: &Answer, local_now: i64, report: &mut Report) -> Option<i64> {
    let server_now = answer
        .first("date")
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    match server_now {
        Some(s) if (s - local_now).abs() > CLOCK_TOLERANCE => report.check(
            "server_clock",
            Outcome::Warn,
            format!(
                "the server's clock ({}) is {} {} this machine's",
                date(s),
                seconds((s - local_now).abs()),
                if s > local_now { "ahead of" } else { "behind" }
            ),
        ),
        Some(_) => report.check(
            "server_clock",
            Outcome::Pass,
            "agrees with this machine's clock",
        ),
        None => report.check(
            "server_clock",
            Outcome::Skip,
            "the answer has no Date header",
        ),
    }
    server_now
}

/// What the server says of the failure: its challenges and its problem body.
struct ServerWords {
    challenges: Vec<Challenge>,
    stated: Option<CauseId>,
    description: String,
    required_scopes: Vec<String>,
}

impl ServerWords {
    fn read(answer: &Answer, report: &mut Report) -> Self {
        let mut challenges: Vec<Challenge> = Vec::new();
        for value in answer.all("www-authenticate") {
            match parse_challenges(value) {
                Ok(c) => challenges.extend(c),
                Err(e) => report.check(
                    "challenge",
                    Outcome::Warn,
                    format!("unreadable WWW-Authenticate: {e}"),
                ),
            }
        }
        let bearer = challenges.iter().find(|c| c.is("Bearer"));
        let param = |name: &str| bearer.and_then(|b| b.param(name));
        if challenges.is_empty() {
            report.check(
                "challenge",
                Outcome::Skip,
                "the answer has no WWW-Authenticate challenge",
            );
        } else {
            let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
            let said = param("error_description")
                .map(|d| format!(", description {}", quoted(d)))
                .unwrap_or_default();
            report.check(
                "challenge",
                Outcome::Pass,
                format!(
                    "schemes {}, Bearer error {}{said}",
                    quoted_list(&schemes),
                    param("error").unwrap_or("none")
                ),
            );
        }
        let is_json = answer
            .first(CONTENT_TYPE.as_str())
            .is_some_and(|ct| ct.contains("json"));
        let problem = is_json
            .then(|| ProblemDetails::from_json(&answer.body))
            .flatten()
            .filter(|p| p.code.is_some() || p.status.is_some());
        if let Some(p) = &problem {
            report.check(
                "problem",
                Outcome::Pass,
                format!(
                    "code {}, detail {}",
                    quoted(p.code.as_deref().unwrap_or("")),
                    quoted(p.detail.as_deref().unwrap_or(""))
                ),
            );
        }
        let description = param("error_description")
            .or(problem.as_ref().and_then(|p| p.detail.as_deref()))
            .unwrap_or("")
            .to_owned();
        let stated = stated(
            problem.as_ref().and_then(ProblemDetails::error_code),
            param("error"),
            &without_credentials(&description),
        );
        let mut required_scopes: Vec<String> = problem
            .as_ref()
            .map(|p| p.required_scopes.clone())
            .unwrap_or_default();
        if required_scopes.is_empty() {
            let scope = param("scope")
                .or(problem.as_ref().and_then(|p| p.scope.as_deref()))
                .unwrap_or("");
            required_scopes = scope.split_ascii_whitespace().map(str::to_owned).collect();
        }
        ServerWords {
            challenges,
            stated,
            description,
            required_scopes,
        }
    }

    fn bearer(&self) -> Option<&Challenge> {
        self.challenges.iter().find(|c| c.is("Bearer"))
    }
}

/// The issuers and the audience the API expects: as given, else from its RFC 9728 metadata.
fn expectations(spec: &Spec, metadata: Option<&Value>) -> (Vec<String>, Option<String>) {
    let mut issuers: Vec<String> = spec.issuer.iter().cloned().collect();
    let mut audience = spec.audience.clone();
    if let Some(m) = metadata {
        if issuers.is_empty()
            && let Some(Value::Array(servers)) = m.get("authorization_servers")
        {
            issuers = servers
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
        }
        if audience.is_none() {
            audience = m.get("resource").and_then(Value::as_str).map(str::to_owned);
        }
    }
    (issuers, audience)
}

/// Judge the token's key, algorithm and signature against the issuer given on the command
/// line, else the token's own issuer when the resource's metadata does not rule it out.
async fn judge_keys(
    http: &Http,
    spec: &Spec,
    t: &Decoded,
    expected_issuers: &[String],
    report: &mut Report,
) -> Option<KeyVerdict> {
    let iss = t.iss().unwrap_or("");
    let from = spec.issuer.clone().or_else(|| {
        let plausible =
            expected_issuers.is_empty() || expected_issuers.iter().any(|e| same_url(e, iss));
        (plausible && (iss.starts_with("https://") || iss.starts_with("http://")))
            .then(|| iss.to_owned())
    });
    match from {
        Some(issuer) => Some(keys::judge(http, &issuer, t, &mut report.checks).await),
        None => {
            report.check(
                "issuer_metadata",
                Outcome::Skip,
                "the token's iss is not a URL the API trusts: pass --issuer to check its key and signature",
            );
            None
        }
    }
}

/// Headers that carry credentials by name or by convention (`X-API-Key`, `X-Auth-Token`).
fn is_secret_header(name: &str) -> bool {
    matches!(name, "authorization" | "proxy-authorization" | "cookie")
        || ["key", "token", "secret", "auth"]
            .iter()
            .any(|w| name.contains(w))
}

/// A description with every word that looks like a credential (a long run of token
/// characters) left out. Servers that echo the token they refused would otherwise have its
/// random characters read as their words: a JWT spells "nbf" or "expired" often enough.
fn without_credentials(description: &str) -> String {
    let is_credential = |w: &str| {
        w.len() >= 20
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
    };
    description
        .split_ascii_whitespace()
        .filter(|w| !is_credential(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replace every secret (and every token's signature) in what will be printed.
fn redact(report: &mut Report, secrets: &[&str]) {
    let mut pieces: Vec<&str> = Vec::new();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        pieces.push(s);
        if let Some((_, sig)) = s.rsplit_once('.').filter(|(_, sig)| sig.len() >= 8) {
            pieces.push(sig);
        }
    }
    let clean = |text: &mut Untrusted| {
        for p in &pieces {
            text.replace_all(p, "[redacted]");
        }
    };
    report.causes.iter_mut().for_each(|c| clean(&mut c.detail));
    report.checks.iter_mut().for_each(|c| clean(&mut c.detail));
}

/// Whether a page at `origin` calling `url` makes a same-origin request (scheme, host and port
/// equal, default ports implied).
fn same_origin(origin: &str, url: &Uri) -> bool {
    Origin::parse(origin).is_ok_and(|o| o.matches(url))
}

/// RFC 9728: the URL the challenge names, else the well-known locations for the resource.
async fn resource_metadata(
    http: &Http,
    url: &Uri,
    bearer: Option<&Challenge>,
    report: &mut Report,
) -> Option<Value> {
    let mut urls: Vec<String> = bearer
        .and_then(|b| b.param("resource_metadata"))
        .map(|u| vec![u.to_owned()])
        .unwrap_or_default();
    if urls.is_empty() && url.scheme().is_some() && url.authority().is_some() {
        urls = well_known::protected_resource_urls(url);
    }
    let mut tried = Vec::new();
    for u in urls {
        match http.get_json(&u).await {
            Ok(doc) => {
                report.check("resource_metadata", Outcome::Pass, format!("read {u}"));
                return Some(doc);
            }
            Err(e) => tried.push(format!("{u} {e}")),
        }
    }
    report.check(
        "resource_metadata",
        Outcome::Skip,
        format!("none published ({})", tried.join("; ")),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_is_scheme_host_and_port() {
        let url: Uri = "http://API.test/v1/me".parse().unwrap();
        assert!(same_origin("http://api.test", &url));
        assert!(same_origin("http://api.test:80", &url));
        assert!(!same_origin("https://api.test", &url));
        assert!(!same_origin("http://api.test:8080", &url));
        assert!(!same_origin("http://app.test", &url));
        assert!(!same_origin("null", &url));
    }

    #[test]
    fn an_echoed_token_is_not_read_as_the_servers_words() {
        // A signature that happens to spell two of the words servers use.
        let echoed = "bad token Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.xNbFqexpiredQw-_9";
        assert_eq!(without_credentials(echoed), "bad token Bearer");
        assert_eq!(
            stated(None, Some("invalid_token"), &without_credentials(echoed)),
            stated(None, Some("invalid_token"), "bad token Bearer")
        );
        assert_ne!(
            stated(None, Some("invalid_token"), echoed),
            stated(None, Some("invalid_token"), "bad token Bearer"),
            "the echoed signature alone changes the reading"
        );
        // Words stay words, dates and quoted audiences included.
        let said = "The token is not valid before '12/01/2026 08:00:00'";
        assert_eq!(without_credentials(said), said);
    }
}
