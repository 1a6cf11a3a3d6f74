//! When a response calls for a refresh: the default rule, and the type of a custom one.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};

use crate::failure::AuthFailure;

/// Decides whether a response to a request that carried our credential calls for a refresh.
pub(crate) type RefreshPredicate = Arc<dyn Fn(StatusCode, &HeaderMap) -> bool + Send + Sync>;

/// The default predicate: `401`, unless its Bearer challenge says `insufficient_scope` or
/// `invalid_request` (a new token would not help).
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// let mut h = HeaderMap::new();
/// assert!(refresh_layer::refresh_on_401(StatusCode::UNAUTHORIZED, &h));
/// assert!(!refresh_layer::refresh_on_401(StatusCode::FORBIDDEN, &h));
/// h.insert("www-authenticate", r#"Bearer realm="api", error="invalid_request""#.parse().unwrap());
/// assert!(!refresh_layer::refresh_on_401(StatusCode::UNAUTHORIZED, &h));
/// ```
pub fn refresh_on_401(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UNAUTHORIZED
        && !AuthFailure::challenges_of(headers).iter().any(|c| {
            c.is("Bearer")
                && matches!(
                    c.param("error"),
                    Some("insufficient_scope" | "invalid_request")
                )
        })
}
