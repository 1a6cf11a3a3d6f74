//! [`CredentialHandle`]: watch and steer a layer's credential (sign-in, sign-out, counters).

use std::fmt;
use std::sync::Arc;

use crate::credential::Credential;
use crate::credential_cell::Cell;

/// Observes and steers the credential cell of a [`RefreshLayer`](crate::RefreshLayer).
#[derive(Clone)]
pub struct CredentialHandle {
    pub(crate) cell: Arc<Cell>,
}

impl fmt::Debug for CredentialHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialHandle")
            .field("generation", &self.generation())
            .field("refreshes", &self.refreshes())
            .finish()
    }
}

impl CredentialHandle {
    /// How many token requests were started: the first fetch of a credential counts too (a
    /// layer built without an initial credential fetches one on the first request), so after
    /// one fetch and one refresh this is 2.
    pub fn refreshes(&self) -> u64 {
        self.cell.refreshes()
    }

    /// How many refreshes failed.
    pub fn failures(&self) -> u64 {
        self.cell.failures()
    }

    /// The generation of the current credential (`None` before the first).
    pub fn generation(&self) -> Option<u64> {
        self.cell.generation()
    }

    /// Replace the credential (after a new sign-in); clears any backoff. A refresh that is
    /// under way when this is called does not overwrite it: its result is dropped.
    pub fn set(&self, credential: Credential) {
        self.cell.set(credential);
    }

    /// Sign out: drop the credential and the source's refresh token, and drop the result of
    /// any refresh under way. Requests in scope then fail with [`RefreshError::SignedOut`](crate::RefreshError::SignedOut)
    /// (nothing is sent, the token endpoint is not called) until [`set`](Self::set) or
    /// [`set_refresh_token`](Self::set_refresh_token).
    pub fn clear(&self) {
        self.cell.clear();
    }

    /// Start again from a new refresh token (a new sign-in, another account): the current
    /// access token belonged to the previous one and is dropped, as is the result of any
    /// refresh under way; the next request refreshes with `refresh_token`. Returns `false`
    /// (and changes nothing) when the layer's source keeps no refresh token.
    pub fn set_refresh_token(&self, refresh_token: &str) -> bool {
        self.cell.set_refresh_token(refresh_token)
    }
}
