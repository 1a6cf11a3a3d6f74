//! A credential source that starts from the resource, not from a token URL: the way an MCP
//! client (MCP authorization, 2025-11-25) finds where to get a token.
//!
//! 1. The first request goes without a credential ([`Credential::none`]).
//! 2. Its `401` names the resource's RFC 9728 metadata (`resource_metadata="…"`); a URL on
//!    another origin than the resource's is not fetched (unless that origin was
//!    [trusted](DiscoveryBuilder::trust_resource_metadata_origin)). Without a usable one the
//!    well-known URIs are probed, the path-suffixed one first, then the root one.
//! 3. The metadata's `resource` must be the URL the client was configured for, or an
//!    identifier on the same origin whose path is a whole-segment prefix of it (an MCP server
//!    identified by its origin): a server cannot send the client's credentials to an
//!    authorization server of another resource.
//! 4. Of the authorization servers it names, only one the client
//!    [pinned](DiscoveryBuilder::trust_issuer) is used, compared as an exact string: the
//!    client's secret or signed assertion goes nowhere else. A client without a pin is
//!    refused when it is built.
//! 5. The authorization server's RFC 8414 metadata is fetched (with the OpenID Connect
//!    discovery fallbacks), and its `issuer` must be exactly the one the resource named.
//! 6. A `client_credentials` token is requested with RFC 8707 `resource` and the scope of the
//!    challenge (else the resource's `scopes_supported`, else none), authenticating as the
//!    server supports: `private_key_jwt`, `client_secret_basic` or `client_secret_post`.
//!
//! Every URL discovery sends to is checked before anything is sent (the `destination` rules):
//! `https` off loopback, and no private, loopback or link-local address named by a resource
//! that is not on one itself. Give it a client that does not follow redirects (hyper-util's
//! does not): a redirect followed inside the client would carry a request past these checks,
//! so a redirect is treated as "no document here".
//!
//! The layer then retries the request once. With
//! [`step_up`](crate::RefreshLayerBuilder::step_up) an `insufficient_scope` refusal asks for
//! a token carrying the scope the challenge names as well, once.

mod builder;
pub(crate) mod destination;
pub(crate) mod finder;
pub(crate) mod metadata;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::credential::Credential;
use crate::error::DiscoveryError;
use crate::error::RefreshError;
use crate::failure::AuthFailure;
use crate::source::credential_source::{CredentialSource, FetchFuture};
use crate::source::oauth2::OAuth2;
use crate::source::token_response::bearer_of;
pub use builder::DiscoveryBuilder;
use finder::{Finder, Found, bounded};
use metadata::{ServerMetadata, alg_name, next_scope};
use portcullis_wire::client_auth::{ClientAuth, ClientKey};

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
/// [module docs](crate::source::discovery).
///
/// ```no_run
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use portcullis::client::RefreshLayer;
/// use portcullis::client::source::discovery::Discovery;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let source = Discovery::builder("http://127.0.0.1:3000/mcp", "my-agent")
///     .client_secret("agent-secret")
///     .trust_issuer("http://127.0.0.1:3001")
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
    finder: Finder,
    client_id: String,
    secret: Option<String>,
    key: Option<ClientKey>,
    /// A scope fixed by the user: wins over what the server says.
    scope: Option<String>,
    state: Mutex<State>,
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("resource", &self.inner.finder.resource)
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// What discovery found, once it has run.
    pub fn discovered(&self) -> Option<Discovered> {
        self.lock().found.as_deref().cloned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn discover(&self, hint: Option<String>) -> Result<Discovered, RefreshError> {
        let finder = &self.inner.finder;
        let found = finder.find(hint).await?;
        let token_endpoint = finder
            .endpoint(
                &found,
                found.server.token_endpoint.as_ref(),
                "token_endpoint",
            )
            .await?
            .to_string();
        let Found {
            metadata_url,
            resource,
            issuer,
            server,
            ..
        } = found;
        let client_auth = self.client_auth(server)?;
        tracing::debug!(target: "portcullis::client", %metadata_url, %issuer, %token_endpoint, ?client_auth, "discovered the authorization server");
        Ok(Discovered {
            metadata_url,
            issuer,
            token_endpoint,
            client_auth,
            scopes_supported: resource.scopes_supported,
        })
    }

    /// How this client authenticates to a server with this metadata.
    fn client_auth(&self, server: ServerMetadata) -> Result<ClientAuth, RefreshError> {
        let fail = RefreshError::Discovery;
        let i = &self.inner;
        // Listed without client_credentials: asking would only be refused. (Absent, RFC 8414
        // would mean authorization_code and implicit, but many servers leave it out.)
        if let Some(grants) = server.grant_types_supported
            && !grants.iter().any(|g| g == "client_credentials")
        {
            return Err(fail(DiscoveryError::GrantNotSupported {
                supported: bounded(&grants),
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
        if i.key.as_ref().is_some_and(key_alg_ok) && supports("private_key_jwt") {
            Ok(ClientAuth::PrivateKeyJwt)
        } else if i.secret.is_some() && supports("client_secret_basic") {
            Ok(ClientAuth::Basic)
        } else if i.secret.is_some() && supports("client_secret_post") {
            Ok(ClientAuth::Post)
        } else {
            Err(fail(DiscoveryError::NoClientAuthMethod {
                supported: bounded(&methods),
            }))
        }
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
            .resource(i.finder.resource.clone())
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
            .client_credentials_via(i.finder.http.clone())
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
        if let Some(hint) = self.inner.finder.hint_of(bearer) {
            st.hint = Some(hint);
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
