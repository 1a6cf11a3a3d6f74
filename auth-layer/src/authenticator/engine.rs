//! An authenticator as the layer runs it.

use std::sync::Arc;

use super::authentication::Authentication;
use super::extension_point::Authenticator;
use super::fast_path::{FastPath, Seal};
use crate::credential::Found;

/// An authenticator as the layer runs it, its fast path looked up once when the layer is
/// built rather than per request. Cloned, it is the same authenticator (copies of a layer
/// share it).
#[derive(Clone)]
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

#[cfg(test)]
mod tests {
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
