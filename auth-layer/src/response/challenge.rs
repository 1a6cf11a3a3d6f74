//! Which `WWW-Authenticate` challenges a failure carries (RFC 6750 §3, RFC 9110 §11.6.1,
//! RFC 9728 §5.1): one per accepted scheme, the failing scheme's with the error.

use http::{HeaderValue, StatusCode};
use portcullis_wire::ChallengeBuilder;
use portcullis_wire::grammar::is_quotable;

use crate::error::{AuthError, ConfigError, ErrorCode};

impl Default for Challenges {
    /// `Bearer realm="api"`: where no layer configured challenges (a policy used alone).
    fn default() -> Self {
        Challenges::new("api".into(), true, None, None).expect("the default realm is valid")
    }
}

/// The challenge settings of one layer, checked and rendered up to their first parameters
/// when it is built: a failure only appends its own parameters.
#[derive(Debug, Clone)]
pub(crate) struct Challenges {
    /// Whether bearer tokens (header or cookie) are accepted.
    bearer: bool,
    /// `Bearer realm="…"[, resource_metadata="…"]`.
    bearer_plain: ChallengeBuilder,
    /// `<scheme> realm="…"` for API keys, when they are accepted.
    api_key_plain: Option<ChallengeBuilder>,
    /// The `scope` a 401's Bearer challenge names.
    scope: Option<String>,
}

impl Challenges {
    pub(crate) fn new(
        realm: String,
        bearer: bool,
        api_key_scheme: Option<String>,
        resource_metadata: Option<String>,
    ) -> Result<Self, ConfigError> {
        if !quotable(&realm) {
            return Err(ConfigError::InvalidRealm);
        }
        if let Some(url) = resource_metadata.as_ref().filter(|u| !quotable(u)) {
            return Err(ConfigError::InvalidResource(url.clone()));
        }
        let plain = |scheme: &str| {
            ChallengeBuilder::new(scheme)
                .map(|c| c.param("realm", &realm))
                .map_err(|_| ConfigError::InvalidScheme(scheme.to_owned()))
        };
        let mut bearer_plain = plain("Bearer")?;
        if let Some(url) = &resource_metadata {
            bearer_plain = bearer_plain.param("resource_metadata", url);
        }
        Ok(Challenges {
            bearer,
            bearer_plain,
            api_key_plain: api_key_scheme.as_deref().map(plain).transpose()?,
            scope: None,
        })
    }

    /// These challenges for a copy of the layer that accepts fewer kinds: the Bearer challenge
    /// only if `bearer` (tokens in the header or a cookie), the API-key challenge only if
    /// `api_key`. At least one of them is among the layer's.
    pub(crate) fn only(&self, bearer: bool, api_key: bool) -> Challenges {
        Challenges {
            bearer: self.bearer && bearer,
            api_key_plain: self.api_key_plain.clone().filter(|_| api_key),
            ..self.clone()
        }
    }

    /// Name `scope` in every 401's Bearer challenge.
    pub(crate) fn with_scope(mut self, scope: Option<String>) -> Result<Self, ConfigError> {
        if let Some(s) = scope.as_ref().filter(|s| !quotable(s)) {
            return Err(ConfigError::InvalidScope(s.clone()));
        }
        self.scope = scope;
        Ok(self)
    }

    /// One challenge per accepted scheme; the failing scheme's challenge carries the error.
    pub(crate) fn for_error(&self, err: &AuthError) -> Vec<HeaderValue> {
        let code = err.code();
        if code.status() != StatusCode::UNAUTHORIZED
            && code != ErrorCode::InsufficientScope
            && code != ErrorCode::InvalidRequest
        {
            return Vec::new();
        }
        // A 401 always carries at least one challenge: Bearer unless only API keys are accepted.
        let bearer = self.bearer || self.api_key_plain.is_none();
        let mut bearer_challenge = self.bearer_plain.clone();
        if let Some(error) = code.bearer_error().filter(|_| bearer) {
            bearer_challenge = bearer_challenge
                .param("error", error)
                .param("error_description", err.detail());
            if !err.required_scopes().is_empty() {
                bearer_challenge =
                    bearer_challenge.param("scope", &err.required_scopes().join(" "));
            }
        }
        if let Some(scope) = self
            .scope
            .as_ref()
            .filter(|_| bearer && code.status() == StatusCode::UNAUTHORIZED)
            .filter(|_| err.required_scopes().is_empty())
        {
            bearer_challenge = bearer_challenge.param("scope", scope);
        }
        let bearer_challenge = Some(bearer_challenge);
        let api_key_challenge = self.api_key_plain.clone();
        let (first, second) = if code == ErrorCode::InvalidApiKey {
            (api_key_challenge, bearer_challenge.filter(|_| self.bearer))
        } else {
            (bearer_challenge.filter(|_| bearer), api_key_challenge)
        };
        [first, second]
            .into_iter()
            .flatten()
            .filter_map(|c| HeaderValue::from_str(&c.finish()).ok())
            .collect()
    }
}

fn quotable(s: &str) -> bool {
    s.bytes().all(is_quotable)
}
