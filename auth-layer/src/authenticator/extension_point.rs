//! The [`Authenticator`] trait.

use std::sync::Arc;

use super::authentication::Authentication;
use super::fast_path;
use crate::credential::PresentedCredential;

/// Turns a credential found in a request into a [`Principal`](crate::Principal), or refuses it.
///
/// JWT verification, API keys, sessions and token introspection all have this shape. The
/// trait is object safe: the layer stores authenticators as `Arc<dyn Authenticator>`.
///
/// # Example
/// ```
/// use auth_layer::{Authentication, Authenticator, PresentedCredential, Principal};
/// use portcullis_wire::ErrorCode;
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
