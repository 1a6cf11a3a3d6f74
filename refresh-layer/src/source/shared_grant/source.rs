//! A [`SharedGrant`] as the layer's credential source: fetches, sign-ins and sign-outs.

use super::*;

impl CredentialSource for SharedGrant {
    fn fetch(&self) -> FetchFuture {
        let inner = self.inner.clone();
        Box::pin(async move {
            let out = inner.clone().fetch().await;
            if matches!(out, Err(RefreshError::WrongSubject)) {
                // Another identity's tokens met this grant: nothing stored is used here again
                // until a new sign-in, so a later refresh cannot fall back to the stored set.
                inner.known().signed_out = true;
            }
            out
        })
    }

    /// A new sign-in: written over the stored token set by the next refresh, for every
    /// process.
    fn set_refresh_token(&self, refresh_token: &str) -> bool {
        // A client_credentials grant has no refresh token to write over the store.
        if !self.inner.oauth.keeps_refresh_token() {
            return false;
        }
        let mut k = self.inner.known();
        k.sign_in = Some(refresh_token.to_owned());
        k.held = None;
        k.signed_out = false;
        true
    }

    /// Signs this process out of the grant: nothing stored is used here until the next
    /// sign-in (the stored token set stays for the other processes), and a sign-in that had
    /// not reached the store yet is dropped.
    fn forget(&self) {
        let mut k = self.inner.known();
        k.held = None;
        k.unsynced = None;
        k.sign_in = None;
        k.last = None;
        k.signed_out = true;
    }
}
