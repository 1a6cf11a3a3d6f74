//! The [`CredentialSource`] trait: what the layer asks for a credential, and what it tells
//! a source about a refusal.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::credential::Credential;
use crate::error::RefreshError;
use crate::failure::AuthFailure;

/// The future of [`CredentialSource::fetch`].
pub type FetchFuture = Pin<Box<dyn Future<Output = Result<Credential, RefreshError>> + Send>>;

/// Produces credentials: the first one, and a new one every time a refresh is needed.
///
/// `fetch` is only ever called by the layer's single-flight refresh, one call at a time per
/// layer; the future it returns is driven to completion in its own task even if every request
/// waiting for it is dropped, so state it keeps (a rotated refresh token) is never lost.
///
/// # Example
/// ```
/// use portcullis::client::{Credential, from_fn};
/// let source = from_fn(|| async { Credential::bearer("t0k").map_err(|e| portcullis::client::RefreshError::InvalidResponse(e.to_string().into())) });
/// # let _ = source;
/// ```
pub trait CredentialSource: Send + Sync + 'static {
    /// Obtain a fresh credential.
    fn fetch(&self) -> FetchFuture;

    /// Start over from `refresh_token` (a new sign-in): later fetches use it, and a fetch
    /// under way does not overwrite it with the token it rotated. Returns `false` when the
    /// source keeps no refresh token (the default).
    fn set_refresh_token(&self, refresh_token: &str) -> bool {
        let _ = refresh_token;
        false
    }

    /// Forget any refresh token (a sign-out). The default has nothing to forget.
    fn forget(&self) {}

    /// What the server said when it refused the credential, just before the layer asks for a
    /// new one: a source that reads the challenge (its `resource_metadata`, its `scope`)
    /// learns it here. Called for every refusal the layer acts on, concurrently for
    /// concurrent refusals; the default ignores it.
    fn refused(&self, failure: &AuthFailure) {
        let _ = failure;
    }

    /// How long one fetch may take because a person takes part in it (a sign-in in a
    /// browser). The layer waits at least this long, plus a minute for the network: its
    /// [`refresh_timeout`](crate::RefreshLayerBuilder::refresh_timeout) and
    /// [`refresh_exchange_limit`](crate::RefreshLayerBuilder::refresh_exchange_limit) are
    /// raised to it when they are shorter, so a sign-in is never cut short and never started
    /// twice. `None` (the default): a fetch is a network exchange only.
    fn interaction_time(&self) -> Option<Duration> {
        None
    }
}

/// A fixed credential is its own source (refreshing returns it again).
impl CredentialSource for Credential {
    fn fetch(&self) -> FetchFuture {
        let c = self.clone();
        Box::pin(async move { Ok(c) })
    }
}

impl<S: CredentialSource + ?Sized> CredentialSource for Arc<S> {
    fn fetch(&self) -> FetchFuture {
        (**self).fetch()
    }

    fn set_refresh_token(&self, refresh_token: &str) -> bool {
        (**self).set_refresh_token(refresh_token)
    }

    fn forget(&self) {
        (**self).forget()
    }

    fn refused(&self, failure: &AuthFailure) {
        (**self).refused(failure)
    }

    fn interaction_time(&self) -> Option<Duration> {
        (**self).interaction_time()
    }
}
