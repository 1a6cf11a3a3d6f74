//! [`Principal`]: who made a request, as an authenticator established it.

use std::any::Any;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use http::Extensions;

use crate::context::LayerContext;
use crate::credential::CredentialKind;

/// Who made a request, as established by an [`Authenticator`](crate::Authenticator).
///
/// Cheap to clone (one `Arc`). It is inserted into the request extensions, where route
/// policies and handlers (see the `axum` extractors) read it. Typed claims, when the
/// authenticator produced them, are available through [`Principal::claims`].
///
/// Its strings (subject, issuer, key and token ids, scopes, roles) live in one buffer, and
/// the typed claims in the same allocation as the rest: a principal made from a token costs
/// three allocations however many scopes and roles the token grants.
#[derive(Clone)]
pub struct Principal {
    inner: Arc<PrincipalInner<dyn Any + Send + Sync>>,
    /// The layer that authenticated this request (set as the layer hands the principal to
    /// the request; a cached principal is shared by many requests, so it is not in `inner`).
    context: Option<LayerContext>,
}

/// Where a string lies in a [`Text`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

/// Strings one after another in one buffer, and the spans of list members (scopes, roles,
/// audiences): the first [`INLINE`] in place, the rest in a vector. Lists are ranges of
/// member indices.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Text {
    buf: String,
    first: [Span; INLINE],
    len: u32,
    more: Vec<Span>,
}

/// List members held without an allocation: a token's audience, scopes and roles together
/// rarely number more.
const INLINE: usize = 8;

/// A range of [`Text`] list members.
pub(crate) type List = Range<u32>;

/// Spans are `u32`: a principal's text comes from a token of at most 16 KiB or from a
/// builder; a longer string is cut at a character boundary rather than wrapped.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Text {
    /// Room for `bytes` of text, so that filling it does not grow it.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Text {
            buf: String::with_capacity(bytes),
            ..Text::default()
        }
    }

    pub(crate) fn push(&mut self, s: &str) -> Span {
        let start = offset(self.buf.len());
        if self.buf.len().saturating_add(s.len()) <= u32::MAX as usize {
            self.buf.push_str(s);
        }
        Span {
            start,
            end: offset(self.buf.len()),
        }
    }

    /// Append a list member; lists are the members pushed between [`list_start`](Self::list_start)
    /// and [`list_end`](Self::list_end).
    pub(crate) fn push_item(&mut self, s: &str) {
        let span = self.push(s);
        match self.first.get_mut(self.len as usize) {
            Some(slot) => *slot = span,
            None => self.more.push(span),
        }
        self.len = self.len.saturating_add(1);
    }

    pub(crate) fn list_start(&self) -> u32 {
        self.len
    }

    pub(crate) fn list_end(&self, start: u32) -> List {
        start..self.len
    }

    fn item(&self, i: u32) -> Span {
        let i = i as usize;
        match self.first.get(i) {
            Some(span) => *span,
            None => self.more.get(i - INLINE).copied().unwrap_or_default(),
        }
    }

    pub(crate) fn get(&self, span: Span) -> &str {
        self.buf
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    pub(crate) fn list(&self, list: &List) -> impl Iterator<Item = &str> + '_ {
        list.clone().map(|i| self.get(self.item(i)))
    }
}

/// The type of the claims an authenticator attaches to its principals (what
/// [`Principal::claims`] and the `Claims<T>` extractor read), compared when a layer is built
/// ([`AuthLayerBuilder::claims`](crate::AuthLayerBuilder::claims)).
///
/// ```
/// use portcullis::server::ClaimsType;
/// #[derive(Clone, serde::Deserialize)]
/// struct Org { org_id: String }
/// assert_eq!(ClaimsType::of::<Org>(), ClaimsType::of::<Org>());
/// assert_ne!(ClaimsType::of::<Org>(), ClaimsType::none());
/// assert!(ClaimsType::of::<Org>().name().ends_with("Org"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimsType {
    id: std::any::TypeId,
    name: &'static str,
}

impl ClaimsType {
    /// Principals that carry no typed claims (`JwtAuthenticator` without `.claims::<T>()`).
    pub fn none() -> Self {
        ClaimsType::of::<()>()
    }

    /// The claims type `T`.
    pub fn of<T: 'static>() -> Self {
        ClaimsType {
            id: std::any::TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
        }
    }

    /// The type's name, for messages (`std::any::type_name`).
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

struct PrincipalInner<C: ?Sized> {
    fields: Fields,
    has_claims: bool,
    claims: C,
}

impl Principal {
    /// Start building a principal authenticated by a credential of `kind`.
    ///
    /// ```
    /// use portcullis::server::{CredentialKind, Principal};
    /// let p = Principal::builder(CredentialKind::ApiKey)
    ///     .subject("build-bot")
    ///     .scopes(["deploy"])
    ///     .build();
    /// assert!(p.has_scope("deploy"));
    /// ```
    pub fn builder(kind: CredentialKind) -> PrincipalBuilder {
        PrincipalBuilder {
            fields: Fields {
                kind,
                expires_at: None,
                text: Text::default(),
                subject: None,
                issuer: None,
                key_id: None,
                token_id: None,
                scopes: [0..0, 0..0],
                roles: 0..0,
            },
            claims: None,
        }
    }

    /// How the credential was presented.
    pub fn kind(&self) -> CredentialKind {
        self.inner.fields.kind
    }

    fn string(&self, span: Option<Span>) -> Option<&str> {
        span.map(|s| self.inner.fields.text.get(s))
    }

    /// The subject (`sub`), when known.
    pub fn subject(&self) -> Option<&str> {
        self.string(self.inner.fields.subject)
    }

    /// The issuer (`iss`), when known.
    pub fn issuer(&self) -> Option<&str> {
        self.string(self.inner.fields.issuer)
    }

    /// The signing key id (`kid`), when known.
    pub fn key_id(&self) -> Option<&str> {
        self.string(self.inner.fields.key_id)
    }

    /// The token id (`jti`), when known.
    pub fn token_id(&self) -> Option<&str> {
        self.string(self.inner.fields.token_id)
    }

    /// When the credential expires, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> Option<u64> {
        self.inner.fields.expires_at
    }

    /// Granted scopes (from `scope` and `scp`), in the order the credential lists them.
    ///
    /// ```
    /// use portcullis::server::{CredentialKind, Principal};
    /// let p = Principal::builder(CredentialKind::Bearer).scopes(["read", "write"]).build();
    /// assert_eq!(p.scopes().collect::<Vec<_>>(), ["read", "write"]);
    /// ```
    pub fn scopes(&self) -> impl Iterator<Item = &str> + '_ {
        let [a, b] = &self.inner.fields.scopes;
        self.inner
            .fields
            .text
            .list(a)
            .chain(self.inner.fields.text.list(b))
    }

    /// Granted roles. From a JWT, the strings of the claim its
    /// [`JwtAuthenticator`](crate::jwt::JwtAuthenticator) reads roles from: the top-level
    /// `roles` claim unless
    /// [`roles_claim`](crate::jwt::JwtAuthenticatorBuilder::roles_claim) names another
    /// (`groups`, `cognito:groups`, `https://example.com/roles`) or
    /// [`roles_claim_path`](crate::jwt::JwtAuthenticatorBuilder::roles_claim_path) a nested one
    /// (Keycloak's `["realm_access", "roles"]`); that claim alone, and none when the token
    /// lacks it. From another authenticator, what it gave [`PrincipalBuilder::roles`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use portcullis::server::jsonwebtoken::Algorithm;
    /// use portcullis::server::jwt::JwtAuthenticator;
    /// use portcullis::server::{Authenticator, CredentialKind, PresentedCredential};
    /// use portcullis::testkit::TestIssuer;
    ///
    /// let idp = TestIssuer::new("https://id.example.com");
    /// // Okta and Azure AD put group names in `groups`: this API takes its roles from there.
    /// let jwt = JwtAuthenticator::builder()
    ///     .key(idp.verification_key(Algorithm::HS256))
    ///     .audience("orders-api")
    ///     .roles_claim("groups")
    ///     .build()?;
    /// let mut claims = idp.access_claims("alice", "orders-api", "read", 300);
    /// claims["groups"] = serde_json::json!(["finance"]);
    /// claims["roles"] = serde_json::json!(["admin"]); // not the roles claim here: not read
    /// let token = idp.mint(Algorithm::HS256, claims);
    /// let bearer = PresentedCredential::new(CredentialKind::Bearer, &token).unwrap();
    /// let principal = jwt.authenticate(&bearer).resolve().await?;
    /// assert_eq!(principal.roles().collect::<Vec<_>>(), ["finance"]);
    /// assert!(principal.has_role("finance") && !principal.has_role("admin"));
    /// # Ok(()) }
    /// ```
    pub fn roles(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.fields.text.list(&self.inner.fields.roles)
    }

    /// True when `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// True when `role` is one of [`roles`](Self::roles): for a JWT, a string of the claim its
    /// authenticator reads roles from (`roles` unless
    /// [`roles_claim`](crate::jwt::JwtAuthenticatorBuilder::roles_claim) or
    /// [`roles_claim_path`](crate::jwt::JwtAuthenticatorBuilder::roles_claim_path) names
    /// another), compared exactly.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles().any(|r| r == role)
    }

    /// The typed claims the authenticator attached, if they are of type `T`.
    pub fn claims<T: 'static>(&self) -> Option<&T> {
        if !self.inner.has_claims {
            return None;
        }
        let claims: &(dyn Any + Send + Sync) = &self.inner.claims;
        claims.downcast_ref::<T>()
    }

    /// Whether the authenticator attached typed claims at all.
    pub(crate) fn has_claims(&self) -> bool {
        self.inner.has_claims
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
            .field("kind", &self.inner.fields.kind)
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .field("key_id", &self.key_id())
            .field("scopes", &self.scopes().collect::<Vec<_>>())
            .field("roles", &self.roles().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Everything of a principal but its claims.
pub(crate) struct Fields {
    pub(crate) kind: CredentialKind,
    pub(crate) expires_at: Option<u64>,
    pub(crate) text: Text,
    pub(crate) subject: Option<Span>,
    pub(crate) issuer: Option<Span>,
    pub(crate) key_id: Option<Span>,
    pub(crate) token_id: Option<Span>,
    pub(crate) scopes: [List; 2],
    pub(crate) roles: List,
}

impl Fields {
    /// The principal, with `claims` in the same allocation when there are some.
    pub(crate) fn into_principal<C: Send + Sync + 'static>(self, claims: Option<C>) -> Principal {
        let inner: Arc<PrincipalInner<dyn Any + Send + Sync>> = match claims {
            Some(claims) => Arc::new(PrincipalInner {
                fields: self,
                has_claims: true,
                claims,
            }),
            None => Arc::new(PrincipalInner {
                fields: self,
                has_claims: false,
                claims: (),
            }),
        };
        Principal {
            inner,
            context: None,
        }
    }
}

/// Builds a [`Principal`]; see [`Principal::builder`].
pub struct PrincipalBuilder {
    fields: Fields,
    claims: Option<Box<dyn FnOnce(Fields) -> Principal + Send + Sync>>,
}

impl PrincipalBuilder {
    /// Set the subject.
    pub fn subject(mut self, subject: impl AsRef<str>) -> Self {
        self.fields.subject = Some(self.fields.text.push(subject.as_ref()));
        self
    }

    /// Set the issuer.
    pub fn issuer(mut self, issuer: impl AsRef<str>) -> Self {
        self.fields.issuer = Some(self.fields.text.push(issuer.as_ref()));
        self
    }

    /// Set the key id.
    pub fn key_id(mut self, kid: impl AsRef<str>) -> Self {
        self.fields.key_id = Some(self.fields.text.push(kid.as_ref()));
        self
    }

    /// Set the token id.
    pub fn token_id(mut self, jti: impl AsRef<str>) -> Self {
        self.fields.token_id = Some(self.fields.text.push(jti.as_ref()));
        self
    }

    /// Set the expiry (seconds since the Unix epoch).
    pub fn expires_at(mut self, exp: u64) -> Self {
        self.fields.expires_at = Some(exp);
        self
    }

    /// Set the granted scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let start = self.fields.text.list_start();
        for s in scopes {
            self.fields.text.push_item(s.as_ref());
        }
        self.fields.scopes = [self.fields.text.list_end(start), 0..0];
        self
    }

    /// Set the granted roles.
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let start = self.fields.text.list_start();
        for r in roles {
            self.fields.text.push_item(r.as_ref());
        }
        self.fields.roles = self.fields.text.list_end(start);
        self
    }

    /// Attach typed claims, readable with [`Principal::claims`].
    pub fn claims<T: Send + Sync + 'static>(mut self, claims: T) -> Self {
        self.claims = Some(Box::new(move |f: Fields| f.into_principal(Some(claims))));
        self
    }

    /// Finish.
    pub fn build(self) -> Principal {
        match self.claims {
            Some(with_claims) => with_claims(self.fields),
            None => self.fields.into_principal::<()>(None),
        }
    }
}

impl fmt::Debug for PrincipalBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrincipalBuilder").finish_non_exhaustive()
    }
}

/// The context of the layer that handled a request: in its principal when it authenticated,
/// else (anonymous, optional mode) in an extension of its own; `None` when no layer did.
pub(crate) fn layer_context(extensions: &Extensions) -> Option<&LayerContext> {
    match extensions.get::<Principal>() {
        Some(p) => p.context().or_else(|| extensions.get::<LayerContext>()),
        None => extensions.get::<LayerContext>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_reads_back_from_the_one_buffer() {
        #[derive(Debug, PartialEq)]
        struct Org(&'static str);
        let p = Principal::builder(CredentialKind::Bearer)
            .subject("sub-1")
            .issuer("https://id")
            .key_id("k")
            .token_id("jti-é")
            .scopes(["a", "b"])
            .roles(vec![String::from("admin")])
            .expires_at(9)
            .claims(Org("o-1"))
            .build();
        assert_eq!(p.subject(), Some("sub-1"));
        assert_eq!(p.issuer(), Some("https://id"));
        assert_eq!(p.key_id(), Some("k"));
        assert_eq!(p.token_id(), Some("jti-é"));
        assert_eq!(p.scopes().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(p.roles().collect::<Vec<_>>(), ["admin"]);
        assert!(p.has_scope("b") && !p.has_scope("c") && p.has_role("admin"));
        assert_eq!(p.expires_at(), Some(9));
        assert_eq!(p.claims::<Org>(), Some(&Org("o-1")));
        assert_eq!(p.claims::<()>(), None);
        let bare = Principal::builder(CredentialKind::ApiKey).build();
        assert_eq!((bare.subject(), bare.scopes().count()), (None, 0));
        assert_eq!(
            bare.claims::<()>(),
            None,
            "no claims attached is not `()` claims"
        );
    }

    #[test]
    fn long_lists_spill_past_the_inline_members() {
        let scopes: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
        let p = Principal::builder(CredentialKind::Bearer)
            .roles(["r0", "r1", "r2"])
            .scopes(&scopes)
            .subject("after")
            .build();
        assert_eq!(p.scopes().collect::<Vec<_>>(), scopes);
        assert_eq!(p.roles().collect::<Vec<_>>(), ["r0", "r1", "r2"]);
        assert!(p.has_scope("s19") && !p.has_scope("s20"));
        assert_eq!(p.subject(), Some("after"));
    }

    #[test]
    fn principals_and_their_builders_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Principal>();
        send_sync::<PrincipalBuilder>();
    }

    #[test]
    fn debug_shows_no_claims() {
        let p = Principal::builder(CredentialKind::Bearer)
            .subject("s")
            .claims(String::from("secret-claim"))
            .build();
        let d = format!("{p:?}");
        assert!(d.contains("\"s\"") && !d.contains("secret-claim"), "{d}");
    }
}
