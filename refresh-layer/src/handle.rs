//! [`CredentialHandle`]: watch and steer a layer's credential (sign-in, sign-out, counters).

use std::fmt;
use std::sync::Arc;

use crate::credential::Credential;
use crate::credential_cell::Cell;
use crate::error::SignInError;

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

    /// A new sign-in (this account or another): the access credential, the refresh token
    /// and whatever else the client holds for an account are replaced together. What the
    /// previous sign-in left (its refresh token above all) is gone, so no later refresh can
    /// return to the previous account; a refresh under way when this is called does not
    /// overwrite it (its result is dropped), and any backoff is cleared.
    ///
    /// Fails, changing nothing, when a refresh token is given to a layer whose source keeps
    /// none (a `client_credentials` grant, a closure).
    ///
    /// ```
    /// # use portcullis::client::{Credential, CredentialHandle, SignIn};
    /// # fn after_login(handle: &CredentialHandle, access: &str, refresh: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// handle.sign_in(SignIn::access(Credential::bearer(access)?).refresh_token(refresh))?;
    /// # Ok(()) }
    /// ```
    pub fn sign_in(&self, sign_in: SignIn) -> Result<(), SignInError> {
        let SignIn {
            credential,
            refresh_token,
        } = sign_in;
        if self.cell.sign_in(credential, refresh_token.as_deref()) {
            Ok(())
        } else {
            Err(SignInError::SourceKeepsNoRefreshToken)
        }
    }

    /// A new sign-in with an access credential only: [`sign_in`](Self::sign_in) with
    /// [`SignIn::access`]. The previous refresh token is forgotten, so when this credential
    /// is refused or expires, requests fail with
    /// [`RefreshError::SignedOut`](crate::RefreshError::SignedOut) (with a refresh-token
    /// source) rather than return to the previous account.
    pub fn set(&self, credential: Credential) {
        self.cell.sign_in(Some(credential), None);
    }

    /// The current access credential no longer serves (its roles changed, it was revoked):
    /// the next request refreshes it first, with the same sign-in's refresh token. For
    /// another account, use [`sign_in`](Self::sign_in).
    pub fn expire(&self) {
        self.cell.expire();
    }

    /// Sign out: the credential and the refresh token are dropped together, as is the result
    /// of any refresh under way. Requests in scope then fail with
    /// [`RefreshError::SignedOut`](crate::RefreshError::SignedOut) (nothing is sent, the token
    /// endpoint is not called) until the next [`sign_in`](Self::sign_in).
    pub fn sign_out(&self) {
        self.cell.sign_out();
    }

    /// Start over: the credential is dropped, as is the result of any refresh under way, and
    /// the source forgets what it holds; the next request asks the source afresh. For a source
    /// that signs a person in
    /// ([`AuthorizationCode`](crate::source::authorization_code::AuthorizationCode)) that is
    /// a sign-out after which the next request goes without a credential and its `401`
    /// starts a new sign-in; other sources fetch a new credential (a `client_credentials`
    /// grant) or fail as they would without one.
    pub fn restart(&self) {
        self.cell.sign_in(None, None);
    }
}

/// Everything a sign-in gives the client for one account; see [`CredentialHandle::sign_in`].
#[derive(Clone)]
#[must_use]
pub struct SignIn {
    credential: Option<Credential>,
    refresh_token: Option<String>,
}

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignIn")
            .field("credential", &self.credential)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl SignIn {
    /// A sign-in that gave this access credential.
    pub fn access(credential: Credential) -> Self {
        SignIn {
            credential: Some(credential),
            refresh_token: None,
        }
    }

    /// A sign-in that gave only a refresh token: the first request in scope fetches an access
    /// token with it.
    pub fn with_refresh_token(refresh_token: impl Into<String>) -> Self {
        SignIn {
            credential: None,
            refresh_token: Some(refresh_token.into()),
        }
    }

    /// The refresh token the same sign-in gave.
    pub fn refresh_token(mut self, refresh_token: impl Into<String>) -> Self {
        self.refresh_token = Some(refresh_token.into());
        self
    }
}
