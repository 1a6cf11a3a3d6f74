//! [`Authentication`]: an authenticator's answer, now or after some I/O.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::error::AuthError;
use crate::principal::Principal;

type BoxAuthFuture = Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send>>;

/// The outcome of [`Authenticator::authenticate`](crate::Authenticator::authenticate): known now ([`ready`](Self::ready)), or
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
