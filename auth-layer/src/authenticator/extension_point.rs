//! The [`Authenticator`] trait.

use std::sync::Arc;

use super::authentication::Authentication;
use super::fast_path;
use crate::credential::PresentedCredential;
use crate::principal::ClaimsType;

/// Turns a credential found in a request into a [`Principal`](crate::Principal), or refuses it.
///
/// JWT verification, API keys, sessions and token introspection all have this shape. The
/// trait is object safe: the layer stores authenticators as `Arc<dyn Authenticator>`.
///
/// # Example
/// ```
/// use portcullis::server::{Authentication, Authenticator, PresentedCredential, Principal};
/// use portcullis::wire::ErrorCode;
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

    /// The type of the claims this authenticator's principals carry, when every one of them
    /// carries the same ([`ClaimsType::none`] when they carry none); `None` when it is not
    /// known. A layer built with [`AuthLayerBuilder::claims`](crate::AuthLayerBuilder::claims)
    /// compares it with the type its handlers read, so a mismatch is an error when the layer
    /// is built instead of a 500 at the first request.
    fn claims_type(&self) -> Option<ClaimsType> {
        None
    }

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

    fn claims_type(&self) -> Option<ClaimsType> {
        (**self).claims_type()
    }

    fn __fast_path(self: Arc<Self>, seal: fast_path::Seal) -> Option<Arc<dyn fast_path::FastPath>> {
        A::__fast_path(Arc::clone(&*self), seal)
    }
}
