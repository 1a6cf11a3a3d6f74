//! axum extractors: [`Principal`], `Option<Principal>` and [`Claims<T>`].

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::context::LayerContext;
use crate::credential::CredentialKind;
use crate::error::{AuthError, ErrorCode};
use crate::principal::Principal;
use crate::response::misconfiguration::no_auth_layer;
use crate::response::problem::Responder;

/// Why an extractor refused: answered like any other failure of the layer, or with 500 when
/// the route is not behind an [`AuthLayer`](crate::AuthLayer) at all.
#[derive(Debug)]
pub struct AuthRejection {
    kind: RejectionKind,
}

#[derive(Debug)]
enum RejectionKind {
    Refused {
        error: AuthError,
        context: Option<LayerContext>,
    },
    NoAuthLayer,
}

impl AuthRejection {
    /// The authentication failure; `None` when the route is not behind an auth layer (a
    /// server misconfiguration, answered with 500).
    pub fn error(&self) -> Option<&AuthError> {
        match &self.kind {
            RejectionKind::Refused { error, .. } => Some(error),
            RejectionKind::NoAuthLayer => None,
        }
    }

    /// True when the extractor ran on a route that no `AuthLayer` wraps.
    pub fn is_missing_auth_layer(&self) -> bool {
        matches!(self.kind, RejectionKind::NoAuthLayer)
    }
}

/// Anonymous behind a layer (401 as the layer answers), or no layer at all (500).
fn unauthenticated(parts: &Parts) -> AuthRejection {
    let kind = match parts.extensions.get::<LayerContext>() {
        Some(context) => RejectionKind::Refused {
            error: AuthError::new(ErrorCode::MissingCredentials),
            context: Some(context.clone()),
        },
        None => RejectionKind::NoAuthLayer,
    };
    AuthRejection { kind }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self.kind {
            RejectionKind::Refused { error, context } => {
                let responder = context
                    .map(|c| c.responder().clone())
                    .unwrap_or_else(Responder::fallback);
                responder.respond(&error).map(axum::body::Body::from)
            }
            RejectionKind::NoAuthLayer => no_auth_layer("Principal"),
        }
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

/// The authenticated principal; 401 `missing_credentials` when the request is anonymous, 500
/// when the route is not behind an auth layer.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| unauthenticated(parts))
    }
}

/// `Option<Principal>`: `None` for anonymous requests (see `AuthLayerBuilder::optional`); 500
/// when the route is not behind an auth layer (every request would look anonymous).
impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<Principal>() {
            Some(p) => Ok(Some(p.clone())),
            None if parts.extensions.get::<LayerContext>().is_some() => Ok(None),
            None => Err(AuthRejection {
                kind: RejectionKind::NoAuthLayer,
            }),
        }
    }
}

/// The typed claims of the token (see `JwtAuthenticatorBuilder::claims`). Declare the same
/// type on the layer ([`AuthLayerBuilder::claims`](crate::AuthLayerBuilder::claims)) and a
/// mismatch is an error when the layer is built, not a 500 at the first request.
///
/// ```
/// use portcullis::server::Claims;
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
    /// The request is anonymous (401 `missing_credentials`, answered like the layer would), or
    /// the route is not behind an auth layer (500).
    Unauthenticated(AuthRejection),
    /// The principal was authenticated by an API key that carries no typed claims, on a
    /// route that reads a token's claims. The client chose that credential, so this is 403
    /// `forbidden`, answered like the layer would.
    NoClaims(AuthRejection),
    /// The principal carries no claims or claims of another type, and was not authenticated
    /// by an API key: the authenticator was configured with another claims type, or none
    /// (`JwtAuthenticatorBuilder::claims`). A server bug, so 500 (logged);
    /// [`AuthLayerBuilder::claims`](crate::AuthLayerBuilder::claims) catches it when the
    /// layer is built.
    WrongClaimsType,
}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        match self {
            ClaimsRejection::Unauthenticated(r) | ClaimsRejection::NoClaims(r) => r.into_response(),
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
            return Err(ClaimsRejection::Unauthenticated(unauthenticated(parts)));
        };
        // An API key without claims on a claims route is the client's choice of credential
        // (403); a token without them is the server's configuration (500 below, logged).
        if !principal.has_claims() && principal.kind() == CredentialKind::ApiKey {
            return Err(ClaimsRejection::NoClaims(AuthRejection {
                kind: RejectionKind::Refused {
                    error: AuthError::with_detail(
                        ErrorCode::Forbidden,
                        "this resource reads a token's claims; an API key carries none",
                    ),
                    context: parts.extensions.get::<LayerContext>().cloned(),
                },
            }));
        }
        principal
            .claims::<T>()
            .map(|c| Claims(c.clone()))
            .ok_or_else(|| {
                tracing::error!(
                    target: "portcullis::auth",
                    expected = std::any::type_name::<T>(),
                    "server misconfiguration: the authenticator attaches another claims type than this handler reads (declare it with AuthLayerBuilder::claims to catch this when the layer is built)"
                );
                ClaimsRejection::WrongClaimsType
            })
    }
}
