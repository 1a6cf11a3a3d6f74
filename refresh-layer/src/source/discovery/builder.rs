//! [`DiscoveryBuilder`]: which authorization servers may receive the client's credentials,
//! and the named opt-ins that widen where discovery may send.

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use portcullis_wire::buffered_client::HttpClient;

use super::finder::{Finder, Reach, Trust};
use super::{Discovery, Inner};
use crate::error::BuildError;
use crate::source::token_http::erase;
use portcullis_wire::client_auth::ClientKey;

/// Configures a [`Discovery`] source; see [`Discovery::builder`].
#[must_use]
pub struct DiscoveryBuilder {
    resource: String,
    client_id: String,
    secret: Option<String>,
    key: Option<ClientKey>,
    scope: Option<String>,
    trusted: Vec<String>,
    trust_any: bool,
    reach: Reach,
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
            .field("trust_any_authorization_server", &self.trust_any)
            .field("reach", &self.reach)
            .finish()
    }
}

impl DiscoveryBuilder {
    /// Send the client's credentials to this authorization server (call again to trust
    /// several). The client's secret or signed assertion goes only to an authorization server
    /// that the resource names **and** that is pinned here, compared as exact strings (RFC 8414
    /// §3.3: `https://id.example.com` and `https://id.example.com/` are different issuers);
    /// a resource naming no pinned one is refused with
    /// [`DiscoveryError::UntrustedAuthorizationServer`](crate::DiscoveryError::UntrustedAuthorizationServer) before anything is sent. At least one
    /// pin is required (or [`trust_any_authorization_server`](Self::trust_any_authorization_server)).
    ///
    /// ```
    /// # use bytes::Bytes; use http_body_util::Full;
    /// # use hyper_util::client::legacy::Client; use hyper_util::rt::TokioExecutor;
    /// # let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    /// let source = portcullis::client::source::discovery::Discovery::builder("https://mcp.example.com/mcp", "my-agent")
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

    /// **Risky**: send the client's credentials to whichever authorization server the resource
    /// names first. Any resource this client calls (and anything that can answer in its name)
    /// then decides who receives the secret or the signed assertion. For a client whose
    /// credentials were issued for one server, pin it with [`trust_issuer`](Self::trust_issuer)
    /// instead.
    pub fn trust_any_authorization_server(mut self) -> Self {
        self.trust_any = true;
        self
    }

    /// Also fetch `resource_metadata` URLs on this origin (`scheme://host[:port]`) when a
    /// challenge names one; by default only the resource's own origin is fetched, so a `401`
    /// cannot make the client call a host of the attacker's choosing.
    pub fn trust_resource_metadata_origin(mut self, origin: &str) -> Self {
        self.reach.trust_metadata_origin(origin);
        self
    }

    /// **Risky**: accept plain-`http` metadata, authorization-server and token URLs on other
    /// machines: anyone on the path reads the client's secret and tokens. Plain `http` to this
    /// machine (`localhost`, `127.0.0.0/8`, `[::1]`) is always accepted.
    pub fn allow_insecure_http(mut self) -> Self {
        self.reach.allow_insecure_http = true;
        self
    }

    /// **Risky**: let a resource on a public address send this client to authorization
    /// servers on private, loopback or link-local addresses (and to names that do not
    /// resolve here, as behind an HTTP proxy). Without it such a resource cannot steer the
    /// client into its own network.
    pub fn allow_internal_authorization_servers(mut self) -> Self {
        self.reach.allow_internal = true;
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
    ///
    /// Fails with [`BuildError::NoTrustedAuthorizationServer`] when no authorization server
    /// was pinned.
    pub fn client_credentials(
        self,
        http: impl HttpClient<Full<Bytes>>,
    ) -> Result<Discovery, BuildError> {
        if self.secret.is_none() && self.key.is_none() {
            return Err(BuildError::MissingClientSecret);
        }
        let trust = match (self.trusted.is_empty(), self.trust_any) {
            (false, _) => Trust::Pinned(self.trusted),
            (true, true) => Trust::AnyNamedByTheResource,
            (true, false) => return Err(BuildError::NoTrustedAuthorizationServer),
        };
        Ok(Discovery {
            inner: Arc::new(Inner {
                finder: Finder::new(self.resource, trust, self.reach, erase(http))?,
                client_id: self.client_id,
                secret: self.secret,
                key: self.key,
                scope: self.scope,
                state: Mutex::default(),
            }),
        })
    }
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
            trust_any: false,
            reach: Reach::default(),
        }
    }
}
