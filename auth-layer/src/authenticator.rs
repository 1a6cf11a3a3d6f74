//! The [`Authenticator`] trait: the one extension point of the server layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::credential::{CredentialKind, Found, PresentedCredential};
use crate::error::AuthError;
use crate::principal::Principal;

/// Turns a credential found in a request into a [`Principal`], or refuses it.
///
/// JWT verification, API keys, sessions and token introspection all have this shape. The
/// trait is object safe: the layer stores authenticators as `Arc<dyn Authenticator>`.
///
/// # Example
/// ```
/// use auth_layer::{Authentication, Authenticator, PresentedCredential, ErrorCode, Principal};
///
/// /// Accepts exactly one hard-coded session id (for illustration only).
/// struct Sessions;
///
/// impl Authenticator for Sessions {
///     fn authenticate(&self, credential: &PresentedCredential) -> Authentication {
///         if credential.secret_eq("s3ss10n") {
///             Authentication::ready(Ok(Principal::builder(credential.kind()).subject("alice").build()))
///         } else {
///             Authentication::ready(Err(ErrorCode::TokenRevoked.into()))
///         }
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// Authenticate one credential.
    ///
    /// Return [`Authentication::ready`] when the answer is known without waiting (static
    /// keys, caches) and [`Authentication::pending`] when it needs I/O.
    fn authenticate(&self, credential: &PresentedCredential) -> Authentication;

    /// Not part of the protocol: lets the layer's own authenticators answer a repeated
    /// credential from their cache before any other work. It cannot be implemented outside
    /// this crate (its argument cannot be named there).
    #[doc(hidden)]
    fn __fast_path(self: Arc<Self>, _: fast_path::Seal) -> Option<Arc<dyn fast_path::FastPath>> {
        None
    }
}

impl<A: Authenticator + ?Sized> Authenticator for Arc<A> {
    fn authenticate(&self, credential: &PresentedCredential) -> Authentication {
        (**self).authenticate(credential)
    }

    fn __fast_path(self: Arc<Self>, seal: fast_path::Seal) -> Option<Arc<dyn fast_path::FastPath>> {
        A::__fast_path(Arc::clone(&*self), seal)
    }
}

/// What the crate's own authenticators do beyond [`Authenticator::authenticate`]. Public items
/// in a private module: nameable here, unnameable (so unimplementable) by users.
pub(crate) mod fast_path {
    use super::*;

    /// Proof that the caller is this crate.
    #[derive(Debug, Clone, Copy)]
    pub struct Seal(pub(crate) ());

    /// An authenticator that recalls verdicts and checks the bearer grammar itself.
    pub trait FastPath: Send + Sync {
        /// The verdict on exactly this credential if already known (a cache hit), without
        /// verifying anything; only credentials this authenticator accepted or refused before.
        /// Pending only when the revocation hook has to ask its store.
        fn recall(&self, secret: &[u8], kind: CredentialKind) -> Option<Authentication>;

        /// [`Authenticator::authenticate`] for a credential `recall` did not know, read where
        /// it lies in the headers; `owned` copies it out, only if the answer has to wait for
        /// I/O.
        fn verify(
            &self,
            secret: &[u8],
            kind: CredentialKind,
            owned: &dyn Fn() -> PresentedCredential,
        ) -> Authentication;
    }

    /// An authenticator as the layer runs it, its fast path looked up once when the layer is
    /// built rather than per request.
    pub(crate) struct Engine {
        authenticator: Arc<dyn Authenticator>,
        fast: Option<Arc<dyn FastPath>>,
    }

    impl Engine {
        pub(crate) fn new(authenticator: Arc<dyn Authenticator>) -> Self {
            Engine {
                fast: authenticator.clone().__fast_path(Seal(())),
                authenticator,
            }
        }

        #[cfg(test)]
        pub(crate) fn has_fast_path(&self) -> bool {
            self.fast.is_some()
        }

        /// The fast path first when there is one; otherwise the deferred bearer grammar
        /// check, then [`Authenticator::authenticate`]. An authenticator with a fast path
        /// refuses malformed bearer tokens itself, with the same 400.
        pub(crate) fn authenticate(&self, found: &Found<'_>) -> Authentication {
            if let Some(fast) = &self.fast {
                if let Some(verdict) = fast.recall(found.secret_bytes(), found.kind()) {
                    return verdict;
                }
                return fast.verify(found.secret_bytes(), found.kind(), &|| found.to_owned());
            }
            let credential = found.to_owned();
            match credential.check_syntax() {
                Ok(()) => self.authenticator.authenticate(&credential),
                Err(e) => Authentication::ready(Err(e)),
            }
        }
    }
}

type BoxAuthFuture = Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send>>;

/// The outcome of [`Authenticator::authenticate`]: known now ([`ready`](Self::ready)), or
/// after some I/O ([`pending`](Self::pending)).
///
/// The ready case costs no allocation, which keeps the hot path of JWT verification with
/// static keys free of boxing.
pub struct Authentication(pub(crate) Outcome);

pub(crate) enum Outcome {
    Ready(Result<Principal, AuthError>),
    Pending(BoxAuthFuture),
}

impl Authentication {
    /// An answer known now.
    pub fn ready(result: Result<Principal, AuthError>) -> Self {
        Authentication(Outcome::Ready(result))
    }

    /// An answer that needs to wait for `future` (a key fetch, an introspection call).
    pub fn pending<F>(future: F) -> Self
    where
        F: Future<Output = Result<Principal, AuthError>> + Send + 'static,
    {
        Authentication(Outcome::Pending(Box::pin(future)))
    }

    /// Wait for the answer, whichever kind it is.
    pub async fn resolve(self) -> Result<Principal, AuthError> {
        match self.0 {
            Outcome::Ready(r) => r,
            Outcome::Pending(f) => f.await,
        }
    }
}

impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Outcome::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            Outcome::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fast_path::Engine;
    use super::*;
    use crate::jwt::{JwtAuthenticator, JwtKey};
    use jsonwebtoken::Algorithm;

    /// The JWT authenticator's cache is found once, when the layer is built, also through an
    /// `Arc` around it; an authenticator of another crate has no fast path.
    #[test]
    fn the_fast_path_is_found_once_and_only_for_the_crates_own_authenticators() {
        let jwt = JwtAuthenticator::builder()
            .key(JwtKey::hmac(&[7; 32], &[Algorithm::HS256]).unwrap())
            .any_audience()
            .build()
            .unwrap();
        assert!(Engine::new(Arc::new(jwt.clone())).has_fast_path());
        assert!(Engine::new(Arc::new(Arc::new(jwt))).has_fast_path());
        assert!(!Engine::new(Arc::new(crate::ApiKeys::new())).has_fast_path());
    }
}
