//! Which `WWW-Authenticate` challenges a failure carries (RFC 6750 §3, RFC 9110 §11.6.1,
//! RFC 9728 §5.1): one per accepted scheme, the failing scheme's with the error.

use http::{HeaderValue, StatusCode};
use portcullis_wire::ChallengeBuilder;
use portcullis_wire::grammar::{is_quotable, is_token};

use crate::error::{AuthError, ConfigError, ErrorCode};

impl Default for Challenges {
    /// `Bearer realm="api"`: where no layer configured challenges (a policy used alone).
    fn default() -> Self {
        Challenges {
            realm: "api".into(),
            bearer: true,
            api_key_scheme: None,
            resource_metadata: None,
        }
    }
}

/// The challenge settings of one layer, checked when it is built so that rendering never fails.
#[derive(Debug, Clone)]
pub(crate) struct Challenges {
    realm: String,
    bearer: bool,
    api_key_scheme: Option<String>,
    resource_metadata: Option<String>,
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
        if let Some(s) = api_key_scheme.as_ref().filter(|s| !is_token(s)) {
            return Err(ConfigError::InvalidScheme(s.clone()));
        }
        if let Some(url) = resource_metadata.as_ref().filter(|u| !quotable(u)) {
            return Err(ConfigError::InvalidResource(url.clone()));
        }
        Ok(Challenges {
            realm,
            bearer,
            api_key_scheme,
            resource_metadata,
        })
    }

    /// `scheme realm="…"`, and on Bearer the RFC 9728 `resource_metadata`. The scheme and the
    /// values were checked when the responder was built.
    fn plain(&self, scheme: &str) -> Option<ChallengeBuilder> {
        let c = ChallengeBuilder::new(scheme)
            .ok()?
            .param("realm", &self.realm);
        Some(match &self.resource_metadata {
            Some(url) if scheme == "Bearer" => c.param("resource_metadata", url),
            _ => c,
        })
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
        let api_scheme = self.api_key_scheme.as_deref();
        // A 401 always carries at least one challenge: Bearer unless only API keys are accepted.
        let bearer = self.bearer || api_scheme.is_none();
        let bearer_challenge = self.plain("Bearer").map(|mut c| {
            if let Some(error) = code.bearer_error().filter(|_| bearer) {
                c = c
                    .param("error", error)
                    .param("error_description", err.detail());
                if !err.required_scopes().is_empty() {
                    c = c.param("scope", &err.required_scopes().join(" "));
                }
            }
            c
        });
        let api_key_challenge = api_scheme.and_then(|s| self.plain(s));
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
