//! A credential source that starts from the resource, not from a token URL: the way an MCP
//! client (MCP authorization, 2025-11-25) finds where to get a token.
//!
//! 1. The first request goes without a credential ([`Credential::none`]).
//! 2. Its `401` names the resource's RFC 9728 metadata (`resource_metadata="…"`); without it
//!    the well-known URIs are probed, the path-suffixed one first, then the root one.
//! 3. The metadata's `resource` must be the URL the client was configured for: a server
//!    cannot send the client's credentials to an authorization server of another resource.
//!    With [`trust_issuer`](DiscoveryBuilder::trust_issuer) pins, only a pinned
//!    authorization server is used: the client's credentials go nowhere else.
//! 4. The authorization server's RFC 8414 metadata is fetched (with the OpenID Connect
//!    discovery fallbacks), and its `issuer` must be the one the resource named.
//! 5. A `client_credentials` token is requested with RFC 8707 `resource` and the scope of the
//!    challenge (else the resource's `scopes_supported`, else none), authenticating as the
//!    server supports: `private_key_jwt`, `client_secret_basic` or `client_secret_post`.
//!
//! The layer then retries the request once. With
//! [`step_up`](crate::RefreshLayerBuilder::step_up) an `insufficient_scope` refusal asks for
//! a token carrying the scope the challenge names as well, once.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderValue, Request, Uri};
use http_body_util::Full;
use portcullis_wire::buffered_client::HttpClient;
use serde::Deserialize;
use tower::ServiceExt;

use crate::credential::Credential;
use crate::error::{BuildError, RefreshError};
use crate::failure::AuthFailure;
use crate::source::{
    ClientAuth, ClientKey, CredentialSource, FetchFuture, OAuth2, TokenHttp, bearer_of, erase,
    error_chain,
};

/// Why the authorization server could not be found or used. URLs are shown; nothing the
/// client holds (secret, key, token) ever is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// No protected-resource metadata at any URL tried.
    #[error("no protected-resource metadata found (tried {})", .tried.join(", "))]
    NoResourceMetadata {
        /// Every URL asked, with what it answered.
        tried: Vec<String>,
    },
    /// The metadata names another resource than the one the client calls (RFC 9728 §3.3):
    /// refused, so no token for this resource is ever requested from that server.
    #[error("the metadata is for the resource {advertised:?}, not {expected:?}")]
    ResourceMismatch {
        /// The resource the client was configured for.
        expected: String,
        /// The resource the metadata names.
        advertised: String,
    },
    /// The metadata names no authorization server.
    #[error("the protected-resource metadata names no authorization server")]
    NoAuthorizationServer,
    /// The metadata names only authorization servers this client does not trust
    /// ([`DiscoveryBuilder::trust_issuer`]): the client's credentials are not sent to them.
    #[error("the resource names no trusted authorization server (it names {})", .named.join(", "))]
    UntrustedAuthorizationServer {
        /// What the resource's metadata names (its first eight).
        named: Vec<String>,
    },
    /// No authorization-server metadata at any URL tried.
    #[error("no authorization-server metadata found (tried {})", .tried.join(", "))]
    NoServerMetadata {
        /// Every URL asked, with what it answered.
        tried: Vec<String>,
    },
    /// The authorization server's metadata names another issuer (RFC 8414 §3.3).
    #[error("the authorization-server metadata is for the issuer {advertised:?}, not {expected:?}")]
    IssuerMismatch {
        /// The issuer the resource named.
        expected: String,
        /// The issuer the metadata names.
        advertised: String,
    },
    /// A metadata document is not what its RFC says it is.
    #[error("invalid metadata at {url}: {why}")]
    InvalidMetadata {
        /// Where it came from.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The server's metadata lists the grants it supports, and `client_credentials` is not
    /// one of them.
    #[error("the authorization server does not support the client_credentials grant (it supports {})", .supported.join(", "))]
    GrantNotSupported {
        /// What the server's metadata lists.
        supported: Vec<String>,
    },
    /// The server supports none of the client authentication methods this client can use.
    #[error("the authorization server supports none of this client's authentication methods (it supports {})", .supported.join(", "))]
    NoClientAuthMethod {
        /// What the server's metadata lists.
        supported: Vec<String>,
    },
}

/// RFC 9728 §2, the members used here.
#[derive(Deserialize)]
struct ResourceMetadata {
    resource: String,
    #[serde(default)]
    authorization_servers: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
}

/// RFC 8414 §2, the members used here.
#[derive(Deserialize)]
struct ServerMetadata {
    issuer: String,
    token_endpoint: Option<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    grant_types_supported: Option<Vec<String>>,
}

/// What discovery found: the authorization server and how this client talks to it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Discovered {
    /// The resource metadata's URL.
    pub metadata_url: String,
    /// The authorization server's issuer identifier.
    pub issuer: String,
    /// Its token endpoint.
    pub token_endpoint: String,
    /// The client authentication chosen from what it supports.
    pub client_auth: ClientAuth,
    /// The resource's `scopes_supported`.
    pub scopes_supported: Vec<String>,
}

#[derive(Default)]
struct State {
    /// Whether a server has refused us yet: before that, requests go without a credential.
    refused: bool,
    /// `resource_metadata` of the last challenge.
    hint: Option<String>,
    /// The scope to ask for, from the challenges.
    scope: Option<String>,
    /// The scope of the last token request.
    requested: Option<String>,
    found: Option<Arc<Discovered>>,
}

/// A [`CredentialSource`] that discovers the authorization server from the resource; see the
/// [module docs](crate::discovery).
///
/// ```no_run
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use refresh_layer::{Discovery, RefreshLayer};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let source = Discovery::builder("http://127.0.0.1:3000/mcp", "my-agent")
///     .client_secret("agent-secret")
///     .client_credentials(http.clone())?;
/// let layer = RefreshLayer::builder(source)
///     .allow_origin("http://127.0.0.1:3000")
///     .step_up(true)
///     .build()?;
/// # let _ = layer; Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Discovery {
    inner: Arc<Inner>,
}

struct Inner {
    resource: String,
    resource_uri: Uri,
    client_id: String,
    secret: Option<String>,
    key: Option<ClientKey>,
    /// A scope fixed by the user: wins over what the server says.
    scope: Option<String>,
    /// Authorization servers the user pinned; empty: the resource's first.
    trusted: Vec<String>,
    http: TokenHttp,
    state: Mutex<State>,
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("resource", &self.inner.resource)
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Discovery`] source; see [`Discovery::builder`].
#[must_use]
pub struct DiscoveryBuilder {
    resource: String,
    client_id: String,
    secret: Option<String>,
    key: Option<ClientKey>,
    scope: Option<String>,
    trusted: Vec<String>,
}

impl fmt::Debug for DiscoveryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryBuilder")
            .field("resource", &self.resource)
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("key", &self.key)
            .field("scope", &self.scope)
            .field("trusted_issuers", &self.trusted)
            .finish()
    }
}

impl DiscoveryBuilder {
    /// Only use this authorization server (call again to trust several). The client's secret
    /// or signed assertion goes to whichever authorization server the resource's metadata
    /// names; a pin keeps a compromised or hostile resource from pointing the client at a
    /// server that collects credentials. Without any pin, the resource's first authorization
    /// server is used; with pins, the first it names that is pinned (compared as identifiers:
    /// scheme and host without case, default port, trailing slash), else
    /// [`DiscoveryError::UntrustedAuthorizationServer`] before anything is sent.
    ///
    /// ```
    /// # use bytes::Bytes; use http_body_util::Full;
    /// # use hyper_util::client::legacy::Client; use hyper_util::rt::TokioExecutor;
    /// # let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    /// let source = refresh_layer::Discovery::builder("https://mcp.example.com/mcp", "my-agent")
    ///     .client_secret("agent-secret")
    ///     .trust_issuer("https://id.example.com")
    ///     .client_credentials(http)
    ///     .unwrap();
    /// # let _ = source;
    /// ```
    pub fn trust_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.trusted.push(issuer.into());
        self
    }

    /// The client secret (`client_secret_basic` or `client_secret_post`, as the server
    /// supports; Basic when it supports both).
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// The client's private key (`private_key_jwt`, preferred when the server supports it).
    pub fn private_key_jwt(mut self, key: ClientKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Always ask for this scope, whatever the challenges and the metadata say.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Tokens from the `client_credentials` grant, every request (metadata and token) going
    /// through `http` — a plain client, not one wrapped in the refresh layer.
    pub fn client_credentials(
        self,
        http: impl HttpClient<Full<Bytes>>,
    ) -> Result<Discovery, BuildError> {
        let resource_uri: Uri = self
            .resource
            .parse()
            .ok()
            .filter(|u: &Uri| crate::Origin::of(u).is_some())
            .ok_or_else(|| BuildError::InvalidResource(self.resource.clone()))?;
        if self.secret.is_none() && self.key.is_none() {
            return Err(BuildError::MissingClientSecret);
        }
        Ok(Discovery {
            inner: Arc::new(Inner {
                resource: self.resource,
                resource_uri,
                client_id: self.client_id,
                secret: self.secret,
                key: self.key,
                scope: self.scope,
                trusted: self.trusted,
                http: erase(http),
                state: Mutex::default(),
            }),
        })
    }
}

fn scopes(s: &str) -> impl Iterator<Item = &str> {
    s.split_ascii_whitespace()
}

/// `a ∪ b`, in order of first appearance.
fn union(a: Option<&str>, b: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in a.into_iter().flat_map(scopes).chain(scopes(b)) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(" ")
}

/// The longest scope string asked for. Step-up adds what each refusal names to what the token
/// had, so a server naming new scopes in every refusal would otherwise grow it without end.
const MAX_SCOPE: usize = 4096;

/// The scope to ask for after a refusal naming `scope`: for a step-up, what the token `had`
/// and what is missing; otherwise what the challenge names. `None` (keep the current one) when
/// that would be longer than [`MAX_SCOPE`].
fn next_scope(had: Option<&str>, scope: &str, step_up: bool) -> Option<String> {
    let next = if step_up {
        union(had, scope)
    } else {
        scope.to_owned()
    };
    (next.len() <= MAX_SCOPE).then_some(next)
}

/// Two identifiers of one resource or issuer: scheme and host compared without case, the
/// default port the same as none, a trailing slash on the path ignored.
fn same_identifier(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> Option<String> {
        let u: Uri = s.parse().ok()?;
        let origin = crate::Origin::of(&u)?;
        let path = u.path().trim_end_matches('/');
        let query = u.query().map(|q| format!("?{q}")).unwrap_or_default();
        Some(format!("{origin}{path}{query}"))
    }
    match (norm(a), norm(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `scheme://authority`.
fn base(u: &Uri) -> String {
    format!(
        "{}://{}",
        u.scheme_str().unwrap_or("https"),
        u.authority().map(|a| a.as_str()).unwrap_or_default()
    )
}

/// RFC 9728 §3.1: the well-known segment between the host and the resource's path; the
/// path-suffixed URI first, then the root one.
fn resource_metadata_urls(resource: &Uri) -> Vec<String> {
    let base = base(resource);
    let path = resource.path().trim_end_matches('/');
    let mut urls = Vec::new();
    if !path.is_empty() {
        urls.push(format!("{base}/.well-known/oauth-protected-resource{path}"));
    }
    urls.push(format!("{base}/.well-known/oauth-protected-resource"));
    urls
}

/// RFC 8414 §3.1 and OpenID Connect Discovery, in the order MCP clients try them: for an
/// issuer with a path, the path goes after the well-known segment (both kinds), then after
/// the path (OpenID Connect's own form).
fn server_metadata_urls(issuer: &Uri) -> Vec<String> {
    let base = base(issuer);
    let path = issuer.path().trim_end_matches('/');
    if path.is_empty() {
        vec![
            format!("{base}/.well-known/oauth-authorization-server"),
            format!("{base}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{base}/.well-known/oauth-authorization-server{path}"),
            format!("{base}/.well-known/openid-configuration{path}"),
            format!("{base}{path}/.well-known/openid-configuration"),
        ]
    }
}

fn alg_name(alg: jsonwebtoken::Algorithm) -> String {
    // The JOSE name, as metadata lists it.
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Discovery {
    /// A source for the resource at `resource` (the URL requests go to, an absolute `http` or
    /// `https` URL, compared with the metadata's `resource`), as the client `client_id`.
    pub fn builder(resource: &str, client_id: &str) -> DiscoveryBuilder {
        DiscoveryBuilder {
            resource: resource.to_owned(),
            client_id: client_id.to_owned(),
            secret: None,
            key: None,
            scope: None,
            trusted: Vec::new(),
        }
    }

    /// What discovery found, once it has run.
    pub fn discovered(&self) -> Option<Discovered> {
        self.lock().found.as_deref().cloned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `GET url` for a JSON document: `Ok(None)` when the server has none there (any
    /// non-success status), the reason kept in `tried`.
    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        url: &str,
        tried: &mut Vec<String>,
    ) -> Result<Option<T>, RefreshError> {
        let Ok(uri) = url.parse::<Uri>() else {
            tried.push(format!("{url} (not a URL)"));
            return Ok(None);
        };
        if crate::Origin::of(&uri).is_none() {
            tried.push(format!("{url} (not an http(s) URL)"));
            return Ok(None);
        }
        let mut req = Request::new(Full::default());
        *req.uri_mut() = uri;
        req.headers_mut()
            .insert(ACCEPT, HeaderValue::from_static("application/json"));
        req.extensions_mut().insert(crate::SkipCredential);
        let res = self
            .inner
            .http
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| RefreshError::Network(error_chain(&*e).into()))?;
        if !res.status().is_success() {
            tried.push(format!("{url} ({})", res.status()));
            return Ok(None);
        }
        serde_json::from_slice(res.body()).map(Some).map_err(|e| {
            RefreshError::Discovery(DiscoveryError::InvalidMetadata {
                url: url.to_owned(),
                why: e.to_string(),
            })
        })
    }

    async fn discover(&self, hint: Option<String>) -> Result<Discovered, RefreshError> {
        let fail = RefreshError::Discovery;
        let i = &self.inner;
        // The challenge's URL when it gave one; the well-known URIs otherwise.
        let candidates = match hint {
            Some(url) => vec![url],
            None => resource_metadata_urls(&i.resource_uri),
        };
        let mut tried = Vec::new();
        let mut found = None;
        for url in candidates {
            if let Some(meta) = self.get_json::<ResourceMetadata>(&url, &mut tried).await? {
                found = Some((url, meta));
                break;
            }
        }
        let (metadata_url, meta) =
            found.ok_or_else(|| fail(DiscoveryError::NoResourceMetadata { tried }))?;
        if !same_identifier(&meta.resource, &i.resource) {
            return Err(fail(DiscoveryError::ResourceMismatch {
                expected: i.resource.clone(),
                advertised: meta.resource,
            }));
        }
        if meta.authorization_servers.is_empty() {
            return Err(fail(DiscoveryError::NoAuthorizationServer));
        }
        let issuer = if i.trusted.is_empty() {
            meta.authorization_servers[0].clone()
        } else {
            meta.authorization_servers
                .iter()
                .find(|named| i.trusted.iter().any(|t| same_identifier(t, named)))
                .cloned()
                .ok_or_else(|| {
                    // The list comes from the resource: a few names say enough, and an error
                    // that may be logged does not grow with what a hostile server sends.
                    fail(DiscoveryError::UntrustedAuthorizationServer {
                        named: meta.authorization_servers.iter().take(8).cloned().collect(),
                    })
                })?
        };
        let issuer_uri: Uri = issuer.parse().map_err(|_| {
            fail(DiscoveryError::InvalidMetadata {
                url: metadata_url.clone(),
                why: "the authorization server is not a URL".into(),
            })
        })?;
        let mut tried = Vec::new();
        let mut server = None;
        for url in server_metadata_urls(&issuer_uri) {
            if let Some(m) = self.get_json::<ServerMetadata>(&url, &mut tried).await? {
                server = Some((url, m));
                break;
            }
        }
        let (server_url, server) =
            server.ok_or_else(|| fail(DiscoveryError::NoServerMetadata { tried }))?;
        if !same_identifier(&server.issuer, &issuer) {
            return Err(fail(DiscoveryError::IssuerMismatch {
                expected: issuer,
                advertised: server.issuer,
            }));
        }
        let token_endpoint = server.token_endpoint.ok_or_else(|| {
            fail(DiscoveryError::InvalidMetadata {
                url: server_url.clone(),
                why: "no token_endpoint".into(),
            })
        })?;
        // Listed without client_credentials: asking would only be refused. (Absent, RFC 8414
        // would mean authorization_code and implicit, but many servers leave it out.)
        if let Some(grants) = server.grant_types_supported
            && !grants.iter().any(|g| g == "client_credentials")
        {
            return Err(fail(DiscoveryError::GrantNotSupported {
                supported: grants,
            }));
        }
        // RFC 8414 §2: when absent, the default is client_secret_basic.
        let methods = server
            .token_endpoint_auth_methods_supported
            .unwrap_or_else(|| vec!["client_secret_basic".into()]);
        let supports = |m: &str| methods.iter().any(|x| x == m);
        let key_alg_ok = |key: &ClientKey| {
            server
                .token_endpoint_auth_signing_alg_values_supported
                .as_ref()
                .is_none_or(|algs| algs.contains(&alg_name(key.algorithm())))
        };
        let client_auth = if i.key.as_ref().is_some_and(key_alg_ok) && supports("private_key_jwt") {
            ClientAuth::PrivateKeyJwt
        } else if i.secret.is_some() && supports("client_secret_basic") {
            ClientAuth::Basic
        } else if i.secret.is_some() && supports("client_secret_post") {
            ClientAuth::Post
        } else {
            return Err(fail(DiscoveryError::NoClientAuthMethod {
                supported: methods,
            }));
        };
        tracing::debug!(target: "portcullis::client", %metadata_url, %issuer, %token_endpoint, ?client_auth, "discovered the authorization server");
        Ok(Discovered {
            metadata_url,
            issuer,
            token_endpoint,
            client_auth,
            scopes_supported: meta.scopes_supported,
        })
    }

    async fn fetch_now(self) -> Result<Credential, RefreshError> {
        let (refused, hint, challenge_scope, cached) = {
            let st = self.lock();
            (
                st.refused,
                st.hint.clone(),
                st.scope.clone(),
                st.found.clone(),
            )
        };
        let cached = cached.filter(|f| hint.as_ref().is_none_or(|h| *h == f.metadata_url));
        let found = match cached {
            Some(found) => found,
            // Nothing refused yet: go without a credential and let the 401 say where to go.
            None if !refused => return Ok(Credential::none()),
            None => {
                let found = Arc::new(self.discover(hint).await?);
                self.lock().found = Some(found.clone());
                found
            }
        };
        let i = &self.inner;
        let scope = i.scope.clone().or(challenge_scope).or_else(|| {
            (!found.scopes_supported.is_empty()).then(|| found.scopes_supported.join(" "))
        });
        let mut builder = OAuth2::builder(&found.token_endpoint, &i.client_id)
            // RFC 8707: the resource the metadata was checked against.
            .resource(i.resource.clone())
            .client_auth(found.client_auth);
        if let Some(secret) = &i.secret {
            builder = builder.client_secret(secret.clone());
        }
        if let (ClientAuth::PrivateKeyJwt, Some(key)) = (found.client_auth, &i.key) {
            builder = builder
                .private_key_jwt(key.clone())
                .assertion_audience(found.issuer.clone());
        }
        if let Some(scope) = &scope {
            builder = builder.scope(scope.clone());
        }
        let source = builder
            .client_credentials_via(i.http.clone())
            .map_err(|_| {
                RefreshError::Discovery(DiscoveryError::InvalidMetadata {
                    url: found.metadata_url.clone(),
                    why: "the token endpoint is not an absolute http(s) URL".into(),
                })
            })?;
        self.lock().requested = scope;
        let tokens = source.exchange(None).await?;
        bearer_of(&tokens.access_token, tokens.expires_in)
    }
}

impl CredentialSource for Discovery {
    fn fetch(&self) -> FetchFuture {
        Box::pin(self.clone().fetch_now())
    }

    fn refused(&self, failure: &AuthFailure) {
        let mut st = self.lock();
        st.refused = true;
        let Some(bearer) = failure.bearer() else {
            return;
        };
        if let Some(url) = bearer.param("resource_metadata") {
            st.hint = Some(url.to_owned());
        }
        if let Some(scope) = bearer.param("scope") {
            let step_up = bearer.param("error") == Some("insufficient_scope");
            let had = st.requested.as_deref().or(st.scope.as_deref());
            if let Some(next) = next_scope(had, scope, step_up) {
                st.scope = Some(next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_uris_follow_rfc_9728_and_rfc_8414() {
        let u: Uri = "http://127.0.0.1:3000/mcp/".parse().unwrap();
        assert_eq!(
            resource_metadata_urls(&u),
            [
                "http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp",
                "http://127.0.0.1:3000/.well-known/oauth-protected-resource",
            ]
        );
        let root: Uri = "https://api.test".parse().unwrap();
        assert_eq!(
            resource_metadata_urls(&root),
            ["https://api.test/.well-known/oauth-protected-resource"]
        );
        let tenant: Uri = "https://id.test/tenant1".parse().unwrap();
        assert_eq!(
            server_metadata_urls(&tenant),
            [
                "https://id.test/.well-known/oauth-authorization-server/tenant1",
                "https://id.test/.well-known/openid-configuration/tenant1",
                "https://id.test/tenant1/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn identifiers_compare_as_urls() {
        assert!(same_identifier(
            "https://API.test:443/mcp/",
            "https://api.test/mcp"
        ));
        assert!(!same_identifier(
            "https://api.test/mcp",
            "https://api.test/other"
        ));
        assert!(!same_identifier(
            "https://evil.test/mcp",
            "https://api.test/mcp"
        ));
        assert!(!same_identifier(
            "http://api.test/mcp",
            "https://api.test/mcp"
        ));
        assert!(!same_identifier("not a url", "not a url"));
    }

    #[test]
    fn step_up_scopes_are_a_union() {
        assert_eq!(union(Some("read"), "write read"), "read write");
        assert_eq!(union(None, "a  b"), "a b");
    }

    /// A server naming new scopes in every refusal cannot grow what is asked for without end.
    #[test]
    fn the_scope_asked_for_is_bounded() {
        let mut had = String::from("read");
        for i in 0..10_000 {
            match next_scope(Some(&had), &format!("s{i}"), true) {
                Some(next) => had = next,
                None => break,
            }
        }
        assert!(had.len() <= MAX_SCOPE, "{}", had.len());
        assert!(had.starts_with("read "));
        let huge = "x".repeat(MAX_SCOPE + 1);
        assert_eq!(next_scope(None, &huge, false), None);
        assert_eq!(next_scope(Some("a"), "b", false).as_deref(), Some("b"));
    }
}
