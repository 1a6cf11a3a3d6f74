//! axum extractors: [`Principal`], `Option<Principal>` and [`Claims<T>`].

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::error::{AuthError, ErrorCode};
use crate::principal::Principal;
use crate::problem::Responder;
use crate::shared::LayerContext;

/// Why an extractor refused: answered like any other failure of the layer.
#[derive(Debug)]
pub struct AuthRejection {
    error: AuthError,
    realm_source: Option<LayerContext>,
}

impl std::fmt::Debug for LayerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LayerContext")
    }
}

impl AuthRejection {
    /// The failure.
    pub fn error(&self) -> &AuthError {
        &self.error
    }
}

fn rejection(parts: &Parts, error: AuthError) -> AuthRejection {
    AuthRejection {
        error,
        realm_source: parts.extensions.get::<LayerContext>().cloned(),
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let responder = self
            .realm_source
            .map(|c| c.responder)
            .unwrap_or_else(Responder::fallback);
        responder.respond(&self.error).map(axum::body::Body::from)
    }
}

/// Renders with the default realm (`api`) and body; inside a handler behind the layer, prefer
/// returning an [`AuthRejection`] from an extractor so the layer's realm is used.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        Responder::fallback()
            .respond(&self)
            .map(axum::body::Body::from)
    }
}

/// The authenticated principal; 401 `missing_credentials` when the request is anonymous.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| rejection(parts, AuthError::new(ErrorCode::MissingCredentials)))
    }
}

/// `Option<Principal>`: `None` for anonymous requests (see `AuthLayerBuilder::optional`).
impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

/// The typed claims of the token (see `JwtAuthenticatorBuilder::claims`).
///
/// ```
/// use auth_layer::Claims;
/// #[derive(Clone, serde::Deserialize)]
/// struct Org { org_id: String }
/// async fn handler(Claims(org): Claims<Org>) -> String { org.org_id }
/// # let _: axum::routing::MethodRouter = axum::routing::get(handler);
/// ```
#[derive(Debug, Clone)]
pub struct Claims<T>(pub T);

/// Why the [`Claims<T>`] extractor refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClaimsRejection {
    /// The request is anonymous: 401 `missing_credentials`, answered like the layer would.
    Unauthenticated(AuthRejection),
    /// The principal carries no claims of this type: the authenticator was configured with
    /// another claims type (`JwtAuthenticatorBuilder::claims`). A server bug, so 500.
    WrongClaimsType,
}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        match self {
            ClaimsRejection::Unauthenticated(r) => r.into_response(),
            ClaimsRejection::WrongClaimsType => (
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "the authenticator does not produce the claims type this handler asks for",
            )
                .into_response(),
        }
    }
}

impl<S, T> FromRequestParts<S> for Claims<T>
where
    S: Send + Sync,
    T: Clone + Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(principal) = parts.extensions.get::<Principal>() else {
            return Err(ClaimsRejection::Unauthenticated(rejection(
                parts,
                AuthError::new(ErrorCode::MissingCredentials),
            )));
        };
        principal
            .claims::<T>()
            .map(|c| Claims(c.clone()))
            .ok_or(ClaimsRejection::WrongClaimsType)
    }
}
