//! [`from_fn`]: a credential source from a closure.

use std::future::Future;

use super::credential_source::{CredentialSource, FetchFuture};
use crate::credential::Credential;
use crate::error::RefreshError;

/// A source from a closure; see [`from_fn`].
#[derive(Clone)]
pub struct FnSource<F>(F);

impl<F> std::fmt::Debug for FnSource<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnSource(..)")
    }
}

/// A source from a closure returning a future.
pub fn from_fn<F, Fut>(f: F) -> FnSource<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Credential, RefreshError>> + Send + 'static,
{
    FnSource(f)
}

impl<F, Fut> CredentialSource for FnSource<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Credential, RefreshError>> + Send + 'static,
{
    fn fetch(&self) -> FetchFuture {
        Box::pin((self.0)())
    }
}
