//! The answer to a request refused after authentication (a route policy, tool scopes).

use http::Response;

use crate::body::AuthBody;
use crate::error::AuthError;
use crate::principal::{Principal, layer_context};
use crate::response::problem::Responder;

/// The answer to a request a policy refuses after authentication: rendered by the layer that
/// authenticated it (its realm, metadata and problem shape) and counted in its metrics.
pub(crate) fn refusal<B>(
    extensions: &http::Extensions,
    err: &AuthError,
    why: &'static str,
) -> Response<AuthBody<B>> {
    let context = layer_context(extensions);
    let responder = context
        .map(|c| c.responder().clone())
        .unwrap_or_else(Responder::fallback);
    if let Some(c) = context {
        c.metrics().record_reject(err.code());
    }
    tracing::debug!(
        target: "portcullis::auth",
        decision = "forbid",
        code = err.code().as_str(),
        subject = extensions.get::<Principal>().and_then(Principal::subject),
        "{why}"
    );
    responder.respond(err).map(AuthBody::problem)
}
