//! What one layer's services share at run time, built once by the layer's builder.

use std::sync::Arc;

use bytes::Bytes;

use crate::authenticator::engine::Engine;
use crate::context::LayerContext;
use crate::credential::CredentialKind;
use crate::csrf::CsrfCheck;
use crate::metrics::AuthMetrics;
use crate::response::problem::Responder;
use crate::sources::Sources;

/// What every service of one layer shares: the configuration, checked and compiled once.
pub(crate) struct Shared {
    pub(crate) sources: Sources,
    /// The authenticator of each credential kind the layer accepts.
    pub(crate) engines: Engines,
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

/// One authenticator per credential kind, indexed by the kind: which one answers a request is
/// decided by where its credential was found, in one place.
#[derive(Default)]
pub(crate) struct Engines([Option<Engine>; CredentialKind::COUNT]);

impl Engines {
    /// `engine` answers the credentials of `kind`.
    pub(crate) fn set(&mut self, kind: CredentialKind, engine: Engine) {
        self.0[kind.index()] = Some(engine);
    }

    /// The authenticator of `kind`, if the layer accepts that kind.
    pub(crate) fn get(&self, kind: CredentialKind) -> Option<&Engine> {
        self.0[kind.index()].as_ref()
    }
}
