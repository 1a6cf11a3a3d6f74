//! [`AuthorizationCodeBuilder`]: how the client registers, what it asks for, where its sign-in
//! is kept, and the named opt-ins that widen where discovery may go.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use portcullis_wire::buffered_client::HttpClient;
use tokio::sync::watch;

use super::registration::{RegisteredClient, Registration};
use super::session::Persist;
use super::user_agent::UserAgent;
use super::{AuthorizationCode, Inner, OnChange, State};
use crate::error::BuildError;
use crate::source::discovery::finder::{Finder, Legacy, Reach, Trust};
use crate::source::token_http::erase;
use crate::store::{CredentialStore, StoredTokens};

/// How long a person has to sign in, unless [`sign_in_timeout`](AuthorizationCodeBuilder::sign_in_timeout) says otherwise.
pub const DEFAULT_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);

/// At most five sign-ins in ten minutes, unless [`max_sign_ins`](AuthorizationCodeBuilder::max_sign_ins) says otherwise.
const DEFAULT_MAX_SIGN_INS: (u32, Duration) = (5, Duration::from_secs(600));

/// Configures an [`AuthorizationCode`] source; see [`AuthorizationCode::builder`].
#[must_use]
pub struct AuthorizationCodeBuilder {
    resource: String,
    user_agent: Arc<dyn UserAgent>,
    registration: Registration,
    scope: Option<String>,
    offline_access: bool,
    sign_in_timeout: Duration,
    max_step_ups: u32,
    max_sign_ins: (u32, Duration),
    accept_without_iss: bool,
    trusted: Vec<String>,
    reach: Reach,
    persist: Option<Persist>,
    on_change: Option<OnChange>,
}

impl fmt::Debug for AuthorizationCodeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCodeBuilder")
            .field("resource", &self.resource)
            .field("registration", &self.registration)
            .field("scope", &self.scope)
            .field("trusted_issuers", &self.trusted)
            .field("reach", &self.reach)
            .finish_non_exhaustive()
    }
}

impl AuthorizationCode {
    /// A source for the resource at `resource` (the URL requests go to), signing the person
    /// in through `user_agent`.
    pub fn builder(resource: &str, user_agent: impl UserAgent) -> AuthorizationCodeBuilder {
        AuthorizationCodeBuilder {
            resource: resource.to_owned(),
            user_agent: Arc::new(user_agent),
            registration: Registration {
                registered: Vec::new(),
                metadata_document: None,
                dynamic: true,
                client_name: "Portcullis client".into(),
            },
            scope: None,
            offline_access: true,
            sign_in_timeout: DEFAULT_SIGN_IN_TIMEOUT,
            max_step_ups: 2,
            max_sign_ins: DEFAULT_MAX_SIGN_INS,
            accept_without_iss: false,
            trusted: Vec::new(),
            reach: Reach {
                legacy: Legacy::OriginMetadata,
                ..Reach::default()
            },
            persist: None,
            on_change: None,
        }
    }
}

impl AuthorizationCodeBuilder {
    /// Credentials an authorization server issued to this client beforehand (repeat for
    /// several servers): used with that server only, ahead of any other registration.
    pub fn registered_client(mut self, client: RegisteredClient) -> Self {
        self.registration.registered.push(client);
        self
    }

    /// The https URL of this client's client ID metadata document (the `client_id` at servers
    /// that advertise `client_id_metadata_document_supported`); serving the document there is
    /// the application's part.
    pub fn client_metadata_document(mut self, url: impl Into<String>) -> Self {
        self.registration.metadata_document = Some(url.into());
        self
    }

    /// Whether to register dynamically (RFC 7591) where nothing else applies (default: yes).
    pub fn dynamic_registration(mut self, on: bool) -> Self {
        self.registration.dynamic = on;
        self
    }

    /// The `client_name` a dynamic registration sends (the authorization server shows it on
    /// its consent page).
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.registration.client_name = name.into();
        self
    }

    /// Always ask for this scope, whatever the challenges and the metadata say.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Whether to ask for `offline_access` where the authorization server lists it, so that
    /// a refresh token comes back (default: yes).
    pub fn offline_access(mut self, on: bool) -> Self {
        self.offline_access = on;
        self
    }

    /// How long a person has to sign in (default [`DEFAULT_SIGN_IN_TIMEOUT`]). Give the
    /// layer a [`refresh_timeout`](crate::RefreshLayerBuilder::refresh_timeout) and
    /// [`refresh_exchange_limit`](crate::RefreshLayerBuilder::refresh_exchange_limit) at
    /// least this long, or requests stop waiting before the person is done.
    pub fn sign_in_timeout(mut self, timeout: Duration) -> Self {
        self.sign_in_timeout = timeout;
        self
    }

    /// How many sign-ins in a row may ask for more scope (default 2): a server that keeps
    /// refusing the scope it was given is not followed further.
    pub fn max_step_ups(mut self, n: u32) -> Self {
        self.max_step_ups = n;
        self
    }

    /// At most `n` sign-ins (trips to the browser) within `window` (default 5 in 10
    /// minutes); past it, [`AuthorizationError::TooManySignIns`](crate::AuthorizationError::TooManySignIns).
    pub fn max_sign_ins(mut self, n: u32, window: Duration) -> Self {
        self.max_sign_ins = (n, window);
        self
    }

    /// **Risky** (mix-up, RFC 9207): accept an authorization response without `iss` from an
    /// authorization server that does not advertise sending it, when the issuer was not
    /// pinned with [`trust_issuer`](Self::trust_issuer). Without `iss`, a hostile server
    /// the resource names can relay the person to an honest server and be handed that
    /// server's code with this client's PKCE verifier. MCP 2026-07-28 lets clients proceed
    /// there; this client refuses ([`AuthorizationError::IssuerNotSent`](crate::AuthorizationError::IssuerNotSent))
    /// unless told.
    pub fn accept_authorization_responses_without_iss(mut self) -> Self {
        self.accept_without_iss = true;
        self
    }

    /// Sign in only at this authorization server (call again for several), compared as an
    /// exact string with what the resource names. Without any, the person signs in wherever
    /// the resource says (no client secret goes there unless registered for it).
    pub fn trust_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.trusted.push(issuer.into());
        self
    }

    /// Also fetch `resource_metadata` URLs on this origin when a challenge names one.
    pub fn trust_resource_metadata_origin(mut self, origin: &str) -> Self {
        self.reach.trust_metadata_origin(origin);
        self
    }

    /// **Risky**: accept plain-`http` metadata, authorization and token URLs on other
    /// machines (see [`DiscoveryBuilder::allow_insecure_http`](crate::source::discovery::DiscoveryBuilder::allow_insecure_http)).
    pub fn allow_insecure_http(mut self) -> Self {
        self.reach.allow_insecure_http = true;
        self
    }

    /// **Risky**: let a resource on a public address name authorization servers on private,
    /// loopback or link-local addresses (see
    /// [`DiscoveryBuilder::allow_internal_authorization_servers`](crate::source::discovery::DiscoveryBuilder::allow_internal_authorization_servers)).
    pub fn allow_internal_authorization_servers(mut self) -> Self {
        self.reach.allow_internal = true;
        self
    }

    /// **Risky**: for a resource that publishes no metadata at all (MCP 2025-03-26 servers),
    /// sign in at the default `/authorize`, `/token` and `/register` of its origin, assuming
    /// the server supports PKCE with `S256` — nothing says so. Without it, such a resource
    /// is used only when its origin publishes RFC 8414 metadata listing `S256`.
    pub fn allow_2025_03_26_default_endpoints(mut self) -> Self {
        self.reach.legacy = Legacy::DefaultEndpoints;
        self
    }

    /// Keep the sign-in (tokens, registration) in `store` under `account` (one per person
    /// and resource), so it survives a restart and every process sharing the store makes
    /// one refresh between them. A [`FileStore`](crate::store::FileStore) for CLIs.
    pub fn store(mut self, store: Arc<dyn CredentialStore>, account: &str) -> Self {
        let key = serde_json::json!(["authorization_code", self.resource, account]).to_string();
        self.persist = Some(Persist { store, key });
        self
    }

    /// Call `hook` with the token set whenever it changes, and with `None` on sign-out (to
    /// keep it somewhere a [`CredentialStore`] does not reach). It runs on the refresh task:
    /// keep it short.
    pub fn on_change(
        mut self,
        hook: impl Fn(Option<&StoredTokens>) + Send + Sync + 'static,
    ) -> Self {
        self.on_change = Some(Arc::new(hook));
        self
    }

    /// The source, every request (metadata, registration, token) going through `http` — a
    /// plain client, not one wrapped in the refresh layer.
    pub fn build(
        self,
        http: impl HttpClient<Full<Bytes>>,
    ) -> Result<AuthorizationCode, BuildError> {
        let trust = if self.trusted.is_empty() {
            Trust::AnyNamedByTheResource
        } else {
            Trust::Pinned(self.trusted)
        };
        let finder = Finder::new(self.resource, trust, self.reach, erase(http))?;
        let (cancel, _) = watch::channel(0);
        Ok(AuthorizationCode {
            inner: Arc::new(Inner {
                finder,
                registration: self.registration,
                user_agent: self.user_agent,
                scope: self.scope,
                offline_access: self.offline_access,
                sign_in_timeout: self.sign_in_timeout,
                max_step_ups: self.max_step_ups,
                max_sign_ins: self.max_sign_ins,
                accept_without_iss: self.accept_without_iss,
                persist: self.persist,
                on_change: self.on_change,
                cancel,
                sign_in_lock: tokio::sync::Mutex::new(()),
                write_lock: tokio::sync::Mutex::new(()),
                state: Mutex::new(State::default()),
            }),
        })
    }
}
