//! [`Principal`]: who made a request, as an authenticator established it.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::context::LayerContext;
use crate::credential::CredentialKind;

/// Who made a request, as established by an [`Authenticator`](crate::Authenticator).
///
/// Cheap to clone (one `Arc`). It is inserted into the request extensions, where route
/// policies and handlers (see the `axum` extractors) read it. Typed claims, when the
/// authenticator produced them, are available through [`Principal::claims`].
#[derive(Clone)]
pub struct Principal {
    inner: Arc<PrincipalInner>,
    /// The layer that authenticated this request (set as the layer hands the principal to
    /// the request; a cached principal is shared by many requests, so it is not in `inner`).
    context: Option<LayerContext>,
}

struct PrincipalInner {
    kind: CredentialKind,
    subject: Option<String>,
    issuer: Option<String>,
    key_id: Option<String>,
    token_id: Option<String>,
    expires_at: Option<u64>,
    scopes: Vec<String>,
    roles: Vec<String>,
    claims: Option<Box<dyn Any + Send + Sync>>,
}

impl Principal {
    /// Start building a principal authenticated by a credential of `kind`.
    ///
    /// ```
    /// use auth_layer::{CredentialKind, Principal};
    /// let p = Principal::builder(CredentialKind::ApiKey)
    ///     .subject("build-bot")
    ///     .scopes(["deploy"])
    ///     .build();
    /// assert!(p.has_scope("deploy"));
    /// ```
    pub fn builder(kind: CredentialKind) -> PrincipalBuilder {
        PrincipalBuilder {
            inner: PrincipalInner {
                kind,
                subject: None,
                issuer: None,
                key_id: None,
                token_id: None,
                expires_at: None,
                scopes: Vec::new(),
                roles: Vec::new(),
                claims: None,
            },
        }
    }

    /// How the credential was presented.
    pub fn kind(&self) -> CredentialKind {
        self.inner.kind
    }

    /// The subject (`sub`), when known.
    pub fn subject(&self) -> Option<&str> {
        self.inner.subject.as_deref()
    }

    /// The issuer (`iss`), when known.
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// The signing key id (`kid`), when known.
    pub fn key_id(&self) -> Option<&str> {
        self.inner.key_id.as_deref()
    }

    /// The token id (`jti`), when known.
    pub fn token_id(&self) -> Option<&str> {
        self.inner.token_id.as_deref()
    }

    /// When the credential expires, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> Option<u64> {
        self.inner.expires_at
    }

    /// Granted scopes (from `scope` or `scp`).
    pub fn scopes(&self) -> &[String] {
        &self.inner.scopes
    }

    /// Granted roles.
    pub fn roles(&self) -> &[String] {
        &self.inner.roles
    }

    /// True when `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.scopes.iter().any(|s| s == scope)
    }

    /// True when `role` was granted.
    pub fn has_role(&self, role: &str) -> bool {
        self.inner.roles.iter().any(|r| r == role)
    }

    /// The typed claims the authenticator attached, if they are of type `T`.
    pub fn claims<T: 'static>(&self) -> Option<&T> {
        self.inner.claims.as_ref()?.downcast_ref::<T>()
    }

    pub(crate) fn with_context(self, context: LayerContext) -> Self {
        Principal {
            inner: self.inner,
            context: Some(context),
        }
    }

    pub(crate) fn context(&self) -> Option<&LayerContext> {
        self.context.as_ref()
    }
}

impl fmt::Debug for Principal {
    // Claims may hold personal data; Debug shows only what tracing may show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("kind", &self.inner.kind)
            .field("subject", &self.inner.subject)
            .field("issuer", &self.inner.issuer)
            .field("key_id", &self.inner.key_id)
            .field("scopes", &self.inner.scopes)
            .field("roles", &self.inner.roles)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Principal`]; see [`Principal::builder`].
pub struct PrincipalBuilder {
    inner: PrincipalInner,
}

impl PrincipalBuilder {
    /// Set the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.inner.subject = Some(subject.into());
        self
    }

    /// Set the issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.inner.issuer = Some(issuer.into());
        self
    }

    /// Set the key id.
    pub fn key_id(mut self, kid: impl Into<String>) -> Self {
        self.inner.key_id = Some(kid.into());
        self
    }

    /// Set the token id.
    pub fn token_id(mut self, jti: impl Into<String>) -> Self {
        self.inner.token_id = Some(jti.into());
        self
    }

    /// Set the expiry (seconds since the Unix epoch).
    pub fn expires_at(mut self, exp: u64) -> Self {
        self.inner.expires_at = Some(exp);
        self
    }

    /// Set the granted scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Set the granted roles.
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Attach typed claims, readable with [`Principal::claims`].
    pub fn claims<T: Send + Sync + 'static>(mut self, claims: T) -> Self {
        self.inner.claims = Some(Box::new(claims));
        self
    }

    /// Finish.
    pub fn build(self) -> Principal {
        Principal {
            inner: Arc::new(self.inner),
            context: None,
        }
    }
}
