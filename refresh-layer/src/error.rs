//! The client's errors: the wrapped service's own, or a refresh that failed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use portcullis_wire::InvalidOrigin;

/// A boxed error, at the edges only.
pub use portcullis_wire::buffered_client::BoxError;

/// Why a credential could not be obtained. `Clone`, because one refresh answers every request
/// that waited for it. Never contains a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The token endpoint could not be reached (connect, I/O, body).
    #[error("cannot reach the token endpoint: {0}")]
    Network(Arc<str>),
    /// The token endpoint refused (RFC 6749 §5.2) or failed.
    #[error("the token endpoint answered {status}{}", error.as_deref().map(|e| format!(" ({})", error_code_shown(e))).unwrap_or_default())]
    TokenEndpoint {
        /// HTTP status.
        status: StatusCode,
        /// RFC 6749 `error`, when the body had one.
        error: Option<String>,
        /// RFC 6749 `error_description`.
        description: Option<String>,
    },
    /// `invalid_grant`: the refresh token is dead. The user must sign in again; no further
    /// refresh is attempted until a new credential is set.
    #[error("the grant was rejected (invalid_grant): sign in again")]
    SignInAgain {
        /// RFC 6749 `error_description`.
        description: Option<String>,
    },
    /// The token endpoint's answer is not a valid token response.
    #[error("invalid token response: {0}")]
    InvalidResponse(Arc<str>),
    /// The refresh took longer than the configured timeout.
    #[error("the refresh did not finish within {0:?}")]
    Timeout(Duration),
    /// A recent refresh failed; the next attempt is allowed after `retry_in`.
    #[error("refresh is backing off for {retry_in:?} after: {last}")]
    BackingOff {
        /// How long until a refresh may be tried again.
        retry_in: Duration,
        /// The failure that started the backoff.
        last: Box<RefreshError>,
    },
    /// The refresh task ended without an answer (the credential source panicked, or the
    /// runtime shut down).
    #[error("the refresh task ended without a result")]
    Aborted,
    /// Signed out ([`CredentialHandle::sign_out`](crate::CredentialHandle::sign_out)), or
    /// signed in with an access credential only and that credential needs replacing: nothing
    /// is sent or refreshed until the next [`sign_in`](crate::CredentialHandle::sign_in).
    #[error("signed out: sign in first")]
    SignedOut,
    /// The refresh this request waited for was started before a new refresh token was set;
    /// its result belonged to the previous sign-in and was dropped. Send the request again.
    #[error("the credential was replaced while this refresh ran")]
    Superseded,
    /// The shared credential store could not be used, so no refresh was attempted: refreshing
    /// without it could present a refresh token another replica has already rotated. (Opt
    /// into a local refresh with
    /// [`SharedGrantBuilder::local_fallback`](crate::source::shared_grant::SharedGrantBuilder::local_fallback).)
    #[error("the shared credential store cannot be used: {0}")]
    Store(StoreError),
    /// A [`SharedGrant`](crate::source::shared_grant::SharedGrant)'s token set is not shown to belong to the grant's
    /// one identity: a token response or a stored set names another subject than the one
    /// the grant was configured with ([`SharedGrantBuilder::subject`]) or has seen, or names
    /// none while one was configured. Nothing was sent with it, and a token response refused
    /// this way is not stored. Usually two identities configured under one grant id.
    ///
    /// [`SharedGrantBuilder::subject`]: crate::source::shared_grant::SharedGrantBuilder::subject
    #[error(
        "the shared token set belongs to another subject than this grant's: refused (one SharedGrant is one identity)"
    )]
    WrongSubject,
    /// The resource's metadata or its authorization server's could not be found or used
    /// ([`Discovery`](crate::source::discovery::Discovery)): nothing was sent to a token endpoint.
    #[error("discovery failed: {0}")]
    Discovery(DiscoveryError),
    /// A person's sign-in (the authorization-code grant) failed or was refused before the
    /// code was redeemed.
    #[error("sign-in failed: {0}")]
    Authorization(AuthorizationError),
    /// A custom credential source failed.
    #[error("credential source failed: {0}")]
    Source(Arc<dyn std::error::Error + Send + Sync>),
}

impl RefreshError {
    /// True when only a new sign-in helps.
    pub fn is_sign_in_again(&self) -> bool {
        match self {
            RefreshError::SignInAgain { .. }
            | RefreshError::SignedOut
            | RefreshError::WrongSubject => true,
            RefreshError::BackingOff { last, .. } => last.is_sign_in_again(),
            _ => false,
        }
    }
}

/// Why a store could not be used. Never contains a token or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store's address is not valid.
    #[error("the store's URL is not valid")]
    InvalidUrl,
    /// The store could not be reached or did not answer in time.
    #[error("the credential store is unavailable: {0}")]
    Unavailable(String),
    /// A stored token set could not be decrypted or read: another encryption key (Redis), or
    /// not a document this crate wrote (a corrupt or foreign file).
    #[error("the stored token set cannot be read: another key, or not a document this crate wrote")]
    Unreadable,
    /// The stored version cannot grow any further (`u64::MAX`): it was written from outside,
    /// since commits add one at a time. Nothing is committed or refreshed over it; delete the
    /// grant's stored token set to start again from the configured refresh token.
    #[error("the stored token set's version cannot grow any further")]
    VersionOverflow,
}

/// A configuration mistake found when a [`RefreshLayer`](crate::RefreshLayer) or an
/// [`OAuth2`](crate::OAuth2) source is built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An allowed origin could not be parsed.
    #[error(transparent)]
    InvalidOrigin(#[from] InvalidOrigin),
    /// No origin was allowed: the credential would never be sent.
    #[error(
        "allow at least one origin: a credential is only ever sent to the origins it belongs to"
    )]
    NoOrigin,
    /// The token endpoint is not an absolute `http` or `https` URL.
    #[error("the token endpoint {0:?} is not an absolute http(s) URL")]
    InvalidTokenEndpoint(String),
    /// The `client_credentials` grant was asked for without a client secret or key.
    #[error("the client_credentials grant needs a client secret or a private key")]
    MissingClientSecret,
    /// A `private_key_jwt` key could not be read, or its algorithm is not an asymmetric one.
    #[error("the client's private key cannot be used: {0}")]
    InvalidClientKey(&'static str),
    /// Discovery was given a client credential without saying which authorization servers
    /// may receive it: name them with
    /// [`trust_issuer`](crate::source::discovery::DiscoveryBuilder::trust_issuer), or accept whatever server a
    /// resource names with
    /// [`trust_any_authorization_server`](crate::source::discovery::DiscoveryBuilder::trust_any_authorization_server).
    #[error(
        "name the authorization servers this client's credentials may go to (trust_issuer): \
         without a pin, any resource could name a server that collects them"
    )]
    NoTrustedAuthorizationServer,
    /// A [`SharedGrant`](crate::source::shared_grant::SharedGrant)'s grant id is empty, longer than 256 bytes, or
    /// holds a control character.
    #[error("a grant id is 1 to 256 bytes without control characters")]
    InvalidGrantId,
    /// The resource to discover is not an absolute `http` or `https` URL.
    #[error("the resource {0:?} is not an absolute http(s) URL")]
    InvalidResource(String),
}

/// A key [`ClientKey::from_pem`](portcullis_wire::client_auth::ClientKey::from_pem) refused,
/// so that `?` works in a function that builds a client.
impl From<portcullis_wire::client_auth::InvalidClientKey> for BuildError {
    fn from(e: portcullis_wire::client_auth::InvalidClientKey) -> Self {
        BuildError::InvalidClientKey(e.reason())
    }
}

/// A sign-in the layer could not take; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// A refresh token was given to a layer whose source keeps none (a `client_credentials`
    /// grant, a closure): it would be silently unused.
    #[error("this layer's credential source keeps no refresh token")]
    SourceKeepsNoRefreshToken,
}

/// The error of a [`RefreshService`](crate::RefreshService).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The wrapped service failed.
    Inner(E),
    /// No valid credential could be obtained.
    Refresh(RefreshError),
    /// The request body failed while it was being buffered for a possible retry.
    Body(BoxError),
    /// An answer's body the layer had to read to judge the answer (a `403` problem body, with
    /// [`refresh_on_revoked_token`](crate::RefreshLayerBuilder::refresh_on_revoked_token))
    /// stopped before its end: the answer is lost rather than handed on cut short.
    ResponseBody(BoxError),
    /// The whole call did not finish within the request's timeout: every redirect hop, the
    /// refresh and the retry together. `reqwest::ReqwestClient` (feature `reqwest`) bounds a
    /// call by its `reqwest::Request`'s timeout this way, because reqwest applies that
    /// timeout to each hop alone (and loses it on a hop to another origin).
    Timeout(Duration),
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Inner(e) => write!(f, "request failed: {e}"),
            Error::Refresh(e) => write!(f, "credential refresh failed: {e}"),
            Error::Body(e) => write!(f, "request body failed: {e}"),
            Error::ResponseBody(e) => write!(f, "response body failed: {e}"),
            Error::Timeout(d) => write!(f, "the request did not finish within {d:?}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Inner(e) => Some(e),
            Error::Refresh(e) => Some(e),
            Error::Body(e) => Some(&**e),
            Error::ResponseBody(e) => Some(&**e),
            Error::Timeout(_) => None,
        }
    }
}

/// Why the authorization server could not be found or used. URLs are shown; nothing the
/// client holds (secret, key, token) ever is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// No protected-resource metadata at any URL tried.
    #[error("no protected-resource metadata found (tried {tried:?})")]
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
    /// ([`DiscoveryBuilder::trust_issuer`](crate::source::discovery::DiscoveryBuilder::trust_issuer), compared
    /// as exact strings): the client's credentials are not sent to them.
    #[error("the resource names no trusted authorization server (it names {named:?})")]
    UntrustedAuthorizationServer {
        /// What the resource's metadata names (its first eight).
        named: Vec<String>,
    },
    /// A metadata, authorization-server or token URL is plain `http` on another machine:
    /// refused before anything is sent (`https` is required off loopback).
    #[error("{url} is not https: metadata and tokens travel over https off this machine")]
    InsecureUrl {
        /// The URL refused.
        url: String,
    },
    /// A resource on a public address named a server on a private, loopback or link-local
    /// one: refused before anything is sent, so a resource cannot steer the client into its
    /// own network.
    #[error("{url} is on a {kind} address, and the resource is not")]
    InternalAddress {
        /// The URL refused.
        url: String,
        /// `loopback`, `private`, `link-local` or `unspecified`.
        kind: &'static str,
    },
    /// A server's host name does not resolve, so where it leads cannot be checked.
    #[error("{url}: the host name does not resolve, so its address cannot be checked")]
    Unresolvable {
        /// The URL refused.
        url: String,
    },
    /// No authorization-server metadata at any URL tried.
    #[error("no authorization-server metadata found (tried {tried:?})")]
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
    #[error("invalid metadata at {url}: {why:?}")]
    InvalidMetadata {
        /// Where it came from.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The server's metadata lists the grants it supports, and `client_credentials` is not
    /// one of them.
    #[error(
        "the authorization server does not support the client_credentials grant (it supports {supported:?})"
    )]
    GrantNotSupported {
        /// What the server's metadata lists.
        supported: Vec<String>,
    },
    /// The server supports none of the client authentication methods this client can use.
    #[error(
        "the authorization server supports none of this client's authentication methods (it supports {supported:?})"
    )]
    NoClientAuthMethod {
        /// What the server's metadata lists.
        supported: Vec<String>,
    },
}

/// Why a person's sign-in (the authorization-code grant,
/// [`AuthorizationCode`](crate::source::authorization_code::AuthorizationCode)) failed. What
/// an authorization server or a redirect said is kept bounded and shown with `{:?}`, so no
/// control character reaches a terminal raw; no code, verifier, secret or token is ever kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizationError {
    /// The authorization server's metadata does not list `S256` in
    /// `code_challenge_methods_supported`: without PKCE a stolen code could be redeemed.
    #[error("the authorization server does not support PKCE with S256 (it lists {supported:?})")]
    PkceNotSupported {
        /// What its metadata lists (its first eight).
        supported: Vec<String>,
    },
    /// The metadata names no `authorization_endpoint`.
    #[error("the authorization server's metadata names no authorization endpoint")]
    NoAuthorizationEndpoint,
    /// The redirect's `state` is not the one sent: the code is not redeemed.
    #[error("the redirect's state is not this sign-in's")]
    StateMismatch,
    /// RFC 9207: the redirect's `iss` is not the authorization server the request went to
    /// (compared as exact strings): the code is not redeemed.
    #[error("the redirect was issued by {got:?}, not by {expected:?}")]
    IssuerMismatch {
        /// The issuer the request went to.
        expected: String,
        /// The `iss` of the redirect.
        got: String,
    },
    /// The redirect carries no RFC 9207 `iss`, from an issuer this client did not pin: a
    /// server the resource chose could have relayed the person to another server and be
    /// handed that server's code (mix-up), so the code is not redeemed. Pin the issuer
    /// ([`trust_issuer`](crate::source::authorization_code::AuthorizationCodeBuilder::trust_issuer)),
    /// or accept the risk with
    /// [`accept_authorization_responses_without_iss`](crate::source::authorization_code::AuthorizationCodeBuilder::accept_authorization_responses_without_iss).
    #[error(
        "the redirect carries no iss, and {issuer:?} is not a pinned issuer: the code is not redeemed (mix-up); pin it with trust_issuer"
    )]
    IssuerNotSent {
        /// The issuer the request went to.
        issuer: String,
    },
    /// The token endpoint refused the authorization code (`invalid_grant`: used, expired, or
    /// not this client's). A new sign-in may succeed.
    #[error("the authorization code was refused{}", description.as_deref().map(|d| format!(" ({:?})", d.chars().take(200).collect::<String>())).unwrap_or_default())]
    CodeRejected {
        /// RFC 6749 `error_description`.
        description: Option<String>,
    },
    /// More sign-ins than the limit within its window: a resource that keeps refusing the
    /// tokens it gets, or keeps moving between authorization servers, does not send the
    /// person to the browser again and again.
    #[error(
        "{limit} sign-ins within {window:?} already: not sending the person to the browser again"
    )]
    TooManySignIns {
        /// The limit.
        limit: u32,
        /// Its window.
        window: Duration,
    },
    /// RFC 9207: the server advertises `authorization_response_iss_parameter_supported` and
    /// the redirect carries no `iss`: the code is not redeemed.
    #[error("the redirect carries no iss, and {expected:?} says it always sends one")]
    MissingIssuer {
        /// The issuer the request went to.
        expected: String,
    },
    /// The authorization server refused (RFC 6749 §4.1.2.1): the person declined, or the
    /// request was not acceptable.
    #[error("the authorization server refused: {error:?}{}", description.as_deref().map(|d| format!(" ({d:?})")).unwrap_or_default())]
    Denied {
        /// `error`.
        error: String,
        /// `error_description`.
        description: Option<String>,
    },
    /// The redirect is not an authorization response (no code, a parameter twice, too long).
    #[error("invalid redirect: {0}")]
    InvalidRedirect(String),
    /// The user agent could not complete its part (no browser, the listener failed).
    #[error("the user agent failed: {0}")]
    UserAgent(String),
    /// Nobody came back within the sign-in timeout.
    #[error("nobody signed in within {0:?}")]
    Timeout(Duration),
    /// The sign-in was cancelled.
    #[error("the sign-in was cancelled")]
    Cancelled,
    /// The client cannot register with this authorization server: it has no pre-registered
    /// credentials for it, no client ID metadata document the server accepts, and the server
    /// offers no dynamic registration.
    #[error(
        "no way to register with {issuer:?}: no credentials for it, no usable client ID metadata document, no registration endpoint"
    )]
    NoRegistration {
        /// The authorization server.
        issuer: String,
    },
    /// Dynamic client registration (RFC 7591) failed.
    #[error("client registration failed: {0}")]
    Registration(String),
    /// The token endpoint answered the code with tokens for less than the flow needs (no
    /// access token), or with a token type this client cannot send.
    #[error("the token response cannot be used: {0}")]
    TokenResponse(String),
    /// Step-up asked for more scope too many times for one sign-in: the server keeps
    /// refusing the scope it was given.
    #[error("the server kept asking for more scope ({0} sign-ins): giving up")]
    StepUpLimit(u32),
}

/// A token endpoint's `error` as shown in a message: as it is when it is an RFC 6749 §5.2 code
/// (`%x20-21 / %x23-5B / %x5D-7E`), else quoted with its control characters escaped and cut
/// to 200 characters: the server's text never reaches a terminal raw.
fn error_code_shown(e: &str) -> String {
    let code = |c: char| matches!(c, ' '..='!' | '#'..='[' | ']'..='~');
    if e.len() <= 200 && e.chars().all(code) {
        e.to_owned()
    } else {
        format!("{:?}", e.chars().take(200).collect::<String>())
    }
}
