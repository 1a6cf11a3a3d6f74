//! What one layer's services share at run time, built once by the layer's builder.

use std::sync::Arc;

use bytes::Bytes;

use crate::authenticator::fast_path::Engine;
use crate::csrf::CsrfCheck;
use crate::metrics::AuthMetrics;
use crate::problem::Responder;
use crate::sources::Sources;

/// Lets route policies and extractors answer with the layer's realm and renderer, and count
/// their refusals in the layer's metrics. One extension (not two): each insert costs.
#[derive(Clone)]
pub(crate) struct LayerContext {
    pub(crate) responder: Arc<Responder>,
    pub(crate) metrics: Arc<AuthMetrics>,
}

/// What every service of one layer shares: the configuration, checked and compiled once.
pub(crate) struct Shared {
    pub(crate) sources: Sources,
    pub(crate) bearer: Option<Engine>,
    pub(crate) cookie: Option<Engine>,
    pub(crate) api_key: Option<Engine>,
    pub(crate) optional: bool,
    pub(crate) pass_preflights: bool,
    pub(crate) csrf: Option<CsrfCheck>,
    pub(crate) responder: Arc<Responder>,
    pub(crate) metrics: Arc<AuthMetrics>,
    pub(crate) metadata: Option<(String, Bytes)>,
}
