//! What one layer's services share at run time, built once by the layer's builder.

use std::sync::Arc;

use bytes::Bytes;

use http::Extensions;

use crate::authenticator::fast_path::Engine;
use crate::context::LayerContext;
use crate::csrf::CsrfCheck;
use crate::metrics::AuthMetrics;
use crate::principal::Principal;
use crate::response::problem::Responder;
use crate::sources::Sources;

/// What every service of one layer shares: the configuration, checked and compiled once.
pub(crate) struct Shared {
    pub(crate) sources: Sources,
    pub(crate) bearer: Option<Engine>,
    pub(crate) cookie: Option<Engine>,
    pub(crate) api_key: Option<Engine>,
    pub(crate) optional: bool,
    pub(crate) pass_preflights: bool,
    /// Remove the credential from an accepted request before the inner service sees it.
    pub(crate) strip: bool,
    pub(crate) csrf: Option<CsrfCheck>,
    pub(crate) responder: Arc<Responder>,
    pub(crate) metrics: Arc<AuthMetrics>,
    /// `responder` and `metrics` again, behind one `Arc`, for the requests.
    pub(crate) context: LayerContext,
    pub(crate) metadata: Option<(Vec<String>, Bytes)>,
}

/// The context of the layer that handled a request: in its principal when it authenticated,
/// else (anonymous, optional mode) in an extension of its own; `None` when no layer did.
pub(crate) fn layer_context(extensions: &Extensions) -> Option<&LayerContext> {
    match extensions.get::<Principal>() {
        Some(p) => p.context().or_else(|| extensions.get::<LayerContext>()),
        None => extensions.get::<LayerContext>(),
    }
}
