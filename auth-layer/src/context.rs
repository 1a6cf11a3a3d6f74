//! [`LayerContext`]: what route policies and extractors need of the layer that handled a
//! request, to answer with its realm and renderer and to count refusals in its metrics.

use std::fmt;
use std::sync::Arc;

use crate::metrics::AuthMetrics;
use crate::response::problem::Responder;

/// One `Arc`, built with the layer: handing it to a request costs one reference count.
///
/// An authenticated request carries it inside its [`Principal`](crate::Principal) (one
/// extension for both: every `Extensions::insert` boxes its value, and a fifth extension
/// makes axum's map grow); an anonymous request (optional mode) carries it as an extension
/// of its own.
#[derive(Clone)]
pub(crate) struct LayerContext(Arc<Parts>);

struct Parts {
    responder: Arc<Responder>,
    metrics: Arc<AuthMetrics>,
}

impl LayerContext {
    pub(crate) fn new(responder: Arc<Responder>, metrics: Arc<AuthMetrics>) -> Self {
        LayerContext(Arc::new(Parts { responder, metrics }))
    }

    pub(crate) fn responder(&self) -> &Arc<Responder> {
        &self.0.responder
    }

    pub(crate) fn metrics(&self) -> &AuthMetrics {
        &self.0.metrics
    }
}

impl fmt::Debug for LayerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LayerContext")
    }
}
