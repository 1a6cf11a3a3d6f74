//! What one layer's services share at run time, built once by the layer's builder.

use std::sync::Arc;

use bytes::Bytes;

use crate::authenticator::engine::Engine;
use crate::context::LayerContext;
use crate::credential::{CredentialKind, only_these_kinds};
use crate::csrf::CsrfCheck;
use crate::error::{AuthError, ConfigError, ErrorCode};
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
    pub(crate) csrf: Option<Arc<CsrfCheck>>,
    pub(crate) responder: Arc<Responder>,
    pub(crate) metrics: Arc<AuthMetrics>,
    /// `responder` and `metrics` again, behind one `Arc`, for the requests.
    pub(crate) context: LayerContext,
    pub(crate) metadata: Option<(Vec<String>, Bytes)>,
    /// In a copy made by [`AuthLayer::accepting`](crate::AuthLayer::accepting): the 403
    /// `forbidden` for a request that carries none of its kinds but another kind the original
    /// layer reads. Such a client holds a credential, just not one this route takes: a 401
    /// would make it refresh and retry for nothing. `None` in a built layer, which reads
    /// every kind it has.
    pub(crate) wrong_kind: Option<AuthError>,
}

impl Shared {
    /// A copy that reads only the credentials of `kinds` and answers with their challenges
    /// alone; its authenticators, CSRF check, metrics and renderer are this layer's own.
    /// Each of `kinds` must be one this layer accepts: a copy narrows, never widens.
    pub(crate) fn accepting(
        &self,
        kinds: impl IntoIterator<Item = CredentialKind>,
    ) -> Result<Shared, ConfigError> {
        let mut engines = Engines::default();
        let mut reads = [false; CredentialKind::COUNT];
        for kind in kinds {
            let engine = self.engines.get(kind);
            let engine = engine.ok_or(ConfigError::CredentialNotConfigured(kind.as_str()))?;
            engines.set(kind, engine.clone());
            reads[kind.index()] = true;
        }
        if !reads.contains(&true) {
            return Err(ConfigError::NoCredentialSource);
        }
        let sources = Sources {
            reads,
            ..self.sources.clone()
        };
        let has = |kind: CredentialKind| reads[kind.index()];
        let responder = Arc::new(self.responder.narrowed(
            has(CredentialKind::Bearer) || has(CredentialKind::Cookie),
            has(CredentialKind::ApiKey),
            missing_detail(&sources),
        ));
        let wrong_kind = AuthError::with_detail(ErrorCode::Forbidden, wrong_kind_detail(&reads));
        Ok(Shared {
            wrong_kind: Some(wrong_kind),
            engines,
            optional: self.optional,
            pass_preflights: self.pass_preflights,
            strip: self.strip,
            csrf: self.csrf.clone(),
            context: LayerContext::new(responder.clone(), self.metrics.clone()),
            responder,
            metrics: self.metrics.clone(),
            metadata: self.metadata.clone(),
            sources,
        })
    }
}

/// The detail of a narrowed copy's 403 for another kind of credential: the words of
/// [`RequireCredential`](crate::policy::RequireCredential)'s refusal, the same situation.
fn wrong_kind_detail(reads: &[bool; CredentialKind::COUNT]) -> String {
    only_these_kinds(
        CredentialKind::ALL
            .into_iter()
            .filter(|kind| reads[kind.index()]),
    )
}

/// The detail of a narrowed copy's 401 `missing_credentials`: where to send what it takes,
/// so that a client that sent it elsewhere (another scheme, another header) learns why it was
/// not seen.
fn missing_detail(sources: &Sources) -> String {
    let mut takes = Vec::new();
    if sources.reads(CredentialKind::Bearer) {
        takes.push("a bearer token in the Authorization header".to_owned());
    }
    if let Some(name) = sources.read_api_key() {
        takes.push(format!("an API key in the {name} header"));
    }
    if let Some(name) = sources.read_cookie() {
        takes.push(format!("a token in the {name} cookie"));
    }
    format!(
        "the request carries no credentials this resource accepts; it takes {}",
        takes.join(" or ")
    )
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
