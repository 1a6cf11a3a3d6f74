//! What the crate's own authenticators do beyond `Authenticator::authenticate`. Public items
//! in a private module: nameable here, unnameable (so unimplementable) by users.

use super::authentication::Authentication;
use crate::credential::{CredentialKind, PresentedCredential};

/// Proof that the caller is this crate.
#[derive(Debug, Clone, Copy)]
pub struct Seal(pub(crate) ());

/// An authenticator that recalls verdicts and checks the bearer grammar itself.
pub trait FastPath: Send + Sync {
    /// The verdict on exactly this credential if already known (a cache hit), without
    /// verifying anything; only credentials this authenticator accepted or refused before.
    /// Pending only when the revocation hook has to ask its store.
    fn recall(&self, secret: &[u8], kind: CredentialKind) -> Option<Authentication>;

    /// `Authenticator::authenticate` for a credential `recall` did not know, read where
    /// it lies in the headers; `owned` copies it out, only if the answer has to wait for
    /// I/O.
    fn verify(
        &self,
        secret: &[u8],
        kind: CredentialKind,
        owned: &dyn Fn() -> PresentedCredential,
    ) -> Authentication;
}
