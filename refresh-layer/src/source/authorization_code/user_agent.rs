//! The person's side of a sign-in: the [`UserAgent`] trait, what it is given
//! ([`AuthorizationRequest`]) and what it hands back ([`AuthorizationResponse`]), and the
//! [`FollowRedirects`] agent for tests and automated authorization servers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::LOCATION;
use http::{Request, Uri};
use http_body_util::Full;
use portcullis_wire::buffered_client::HttpClient;

use crate::error::AuthorizationError;
use crate::source::token_http::{TokenHttp, erase, send};

/// The future of [`UserAgent::authorize`].
pub type AuthorizeFuture =
    Pin<Box<dyn Future<Output = Result<AuthorizationResponse, AuthorizationError>> + Send>>;

/// What a user agent is asked to do: show `url` to the person, and bring back the redirect
/// the authorization server sends to `redirect_uri`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizationRequest {
    /// The authorization URL, every parameter in place (PKCE challenge, `state`, `resource`).
    pub url: Uri,
    /// The redirect URI the URL carries (the agent's own
    /// [`redirect_uri`](UserAgent::redirect_uri)).
    pub redirect_uri: String,
    /// The `state` the redirect must carry back. An agent that receives redirects (a loopback
    /// listener) answers only the one carrying it; the source checks it again either way.
    pub state: String,
}

impl AuthorizationRequest {
    /// A request to show `url` and bring back the redirect to `redirect_uri` carrying `state`
    /// (for testing a [`UserAgent`]; the source builds its own).
    pub fn new(url: Uri, redirect_uri: impl Into<String>, state: impl Into<String>) -> Self {
        AuthorizationRequest {
            url,
            redirect_uri: redirect_uri.into(),
            state: state.into(),
        }
    }
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL holds the state and the PKCE challenge: neither is a secret alone, but
        // neither belongs in a log line.
        f.debug_struct("AuthorizationRequest")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The parameters of the redirect back from the authorization server (RFC 6749 §4.1.2,
/// RFC 9207): either a `code` or an `error`.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizationResponse {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` sent back.
    pub state: Option<String>,
    /// RFC 9207 `iss`: who issued the code.
    pub iss: Option<String>,
    /// RFC 6749 §4.1.2.1 `error`.
    pub error: Option<String>,
    /// Its `error_description` (the server's text: show it escaped, if at all).
    pub error_description: Option<String>,
}

impl fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationResponse")
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("iss", &self.iss)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// The largest redirect query read: an authorization response is a few short parameters.
const MAX_QUERY: usize = 16 * 1024;

impl AuthorizationResponse {
    /// The parameters of a redirect's query (`code`, `state`, `iss`, `error`,
    /// `error_description`); a parameter given twice is refused (RFC 6749 §3.1: "request and
    /// response parameters MUST NOT be included more than once"), as is a query longer
    /// than 16 KiB.
    ///
    /// ```
    /// use portcullis::client::source::authorization_code::AuthorizationResponse;
    /// let r = AuthorizationResponse::from_query("code=abc&state=xyz&iss=https%3A%2F%2Fid.test").unwrap();
    /// assert_eq!(r.code.as_deref(), Some("abc"));
    /// assert_eq!(r.iss.as_deref(), Some("https://id.test"));
    /// assert!(AuthorizationResponse::from_query("code=a&code=b").is_err());
    /// ```
    pub fn from_query(query: &str) -> Result<Self, AuthorizationError> {
        if query.len() > MAX_QUERY {
            return Err(AuthorizationError::InvalidRedirect(
                "the redirect's query is too long".into(),
            ));
        }
        let mut out = AuthorizationResponse::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*name {
                "code" => &mut out.code,
                "state" => &mut out.state,
                "iss" => &mut out.iss,
                "error" => &mut out.error,
                "error_description" => &mut out.error_description,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(AuthorizationError::InvalidRedirect(format!(
                    "the redirect carries {name:?} more than once"
                )));
            }
        }
        Ok(out)
    }

    /// The parameters of a redirect URL's query (see [`from_query`](Self::from_query)).
    pub fn from_uri(uri: &Uri) -> Result<Self, AuthorizationError> {
        Self::from_query(uri.query().unwrap_or(""))
    }
}

/// The person's side of a sign-in: shows the authorization URL and brings back the redirect.
///
/// Built in: a loopback listener for CLIs and desktop apps (RFC 8252), and
/// [`FollowRedirects`] for authorization servers that redirect at once (tests, the MCP
/// conformance suite). A browser embedded in an app, or a custom URI scheme, implements this
/// trait.
pub trait UserAgent: Send + Sync + 'static {
    /// The redirect URI this agent receives at, registered with the authorization server and
    /// sent in every authorization request.
    fn redirect_uri(&self) -> String;

    /// Send the person to `request.url` and return the redirect's parameters. Called once
    /// per sign-in; the source bounds it with its sign-in timeout and drops the future when
    /// the sign-in is cancelled.
    fn authorize(&self, request: AuthorizationRequest) -> AuthorizeFuture;
}

impl<U: UserAgent + ?Sized> UserAgent for Arc<U> {
    fn redirect_uri(&self) -> String {
        (**self).redirect_uri()
    }

    fn authorize(&self, request: AuthorizationRequest) -> AuthorizeFuture {
        (**self).authorize(request)
    }
}

/// A user agent without a person: it requests the authorization URL and reads the redirect
/// from the `Location` of the answer, following at most five redirects that stay on the
/// authorization server's origin. For authorization servers that redirect at once — test
/// servers, the MCP conformance suite — never for a real one, where a person signs in.
///
/// ```
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use portcullis::client::source::authorization_code::FollowRedirects;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let http = Client::builder(TokioExecutor::new()).build_http();
/// let agent = FollowRedirects::new("http://127.0.0.1:8976/callback", http);
/// # let _ = agent; }
/// ```
#[derive(Clone)]
pub struct FollowRedirects {
    redirect_uri: String,
    http: TokenHttp,
}

impl fmt::Debug for FollowRedirects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FollowRedirects")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// How many redirects on the authorization server's origin are followed before the one back.
const MAX_HOPS: usize = 5;

impl FollowRedirects {
    /// An agent that says `redirect_uri` and requests authorization URLs through `http` (a
    /// client that does not follow redirects itself, like hyper-util's).
    pub fn new(redirect_uri: impl Into<String>, http: impl HttpClient<Full<Bytes>>) -> Self {
        FollowRedirects {
            redirect_uri: redirect_uri.into(),
            http: erase(http),
        }
    }

    async fn follow(
        http: TokenHttp,
        redirect_uri: String,
        request: AuthorizationRequest,
    ) -> Result<AuthorizationResponse, AuthorizationError> {
        let origin = portcullis_wire::Origin::of(&request.url);
        let mut url = request.url;
        for _ in 0..=MAX_HOPS {
            let mut req = Request::new(Full::default());
            *req.uri_mut() = url.clone();
            req.extensions_mut().insert(crate::SkipCredential);
            let res = send(&http, req)
                .await
                .map_err(|e| AuthorizationError::UserAgent(e.to_string()))?;
            let location = res
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .filter(|_| res.status().is_redirection())
                .ok_or_else(|| {
                    AuthorizationError::UserAgent(format!(
                        "the authorization endpoint answered {} without a redirect",
                        res.status()
                    ))
                })?;
            if let Some(rest) = location.strip_prefix(redirect_uri.as_str())
                && (rest.is_empty() || rest.starts_with('?'))
            {
                return AuthorizationResponse::from_query(rest.trim_start_matches('?'));
            }
            let next = resolve(&url, location)?;
            if portcullis_wire::Origin::of(&next) != origin {
                return Err(AuthorizationError::UserAgent(
                    "the authorization endpoint redirected elsewhere than back to the client"
                        .into(),
                ));
            }
            url = next;
        }
        Err(AuthorizationError::UserAgent(
            "too many redirects before the one back to the client".into(),
        ))
    }
}

/// `location` (absolute, or a path on `base`'s origin) as a URL.
fn resolve(base: &Uri, location: &str) -> Result<Uri, AuthorizationError> {
    let bad = || AuthorizationError::UserAgent("the redirect's Location is not a URL".into());
    if location.starts_with('/') && !location.starts_with("//") {
        let origin = portcullis_wire::Origin::of(base).ok_or_else(bad)?;
        return format!("{origin}{location}").parse().map_err(|_| bad());
    }
    location.parse().map_err(|_| bad())
}

impl UserAgent for FollowRedirects {
    fn redirect_uri(&self) -> String {
        self.redirect_uri.clone()
    }

    fn authorize(&self, request: AuthorizationRequest) -> AuthorizeFuture {
        Box::pin(Self::follow(
            self.http.clone(),
            self.redirect_uri.clone(),
            request,
        ))
    }
}
