//! Rendering failures: `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9110 §11) and the
//! RFC 9457 problem body. This is the only place that turns an [`AuthError`] into bytes.
//!
//! Responses that do not depend on the request (every code with its default detail) are
//! rendered once, when the layer is built, and reused: a rejection costs a few refcount
//! increments, not a JSON serialisation.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use portcullis_wire::grammar::{is_quotable, is_token};
use portcullis_wire::{ChallengeBuilder, PROBLEM_JSON};

pub use portcullis_wire::Problem;

use crate::error::{AuthError, ConfigError, ErrorCode};

/// A rendered body and its media type.
#[derive(Debug, Clone)]
pub struct RenderedProblem {
    /// The `Content-Type` of `body`.
    pub content_type: HeaderValue,
    /// The body.
    pub body: Bytes,
}

/// Turns a [`Problem`] into a response body.
///
/// Replace it to give failures your own body shape; the status, the challenges and
/// `Cache-Control: no-store` stay as the contract says.
///
/// # Example
/// ```
/// use auth_layer::{Problem, ProblemRenderer, RenderedProblem};
/// use http::HeaderValue;
///
/// struct PlainText;
/// impl ProblemRenderer for PlainText {
///     fn render(&self, p: &Problem<'_>) -> RenderedProblem {
///         RenderedProblem {
///             content_type: HeaderValue::from_static("text/plain; charset=utf-8"),
///             body: format!("{}: {}", p.code, p.detail).into(),
///         }
///     }
/// }
/// ```
pub trait ProblemRenderer: Send + Sync + 'static {
    /// Render one failure.
    fn render(&self, problem: &Problem<'_>) -> RenderedProblem;
}

/// The default renderer: `application/problem+json` (RFC 9457) with the members
/// `type`, `title`, `status`, `detail`, `code`, and, where they apply, `error`, `scope` and
/// `required_scopes`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProblemJson;

impl ProblemRenderer for ProblemJson {
    fn render(&self, p: &Problem<'_>) -> RenderedProblem {
        RenderedProblem {
            content_type: HeaderValue::from_static(PROBLEM_JSON),
            body: p.to_json().into(),
        }
    }
}

fn check_quotable(what: &'static str, s: &str) -> Result<(), ConfigError> {
    if !s.bytes().all(is_quotable) {
        return Err(ConfigError::InvalidValue {
            what,
            why: "only printable ASCII without '\"' and '\\' is allowed",
        });
    }
    Ok(())
}

fn check_scheme(s: &str) -> Result<(), ConfigError> {
    if !is_token(s) {
        return Err(ConfigError::InvalidValue {
            what: "authentication scheme",
            why: "a scheme is an RFC 9110 token",
        });
    }
    Ok(())
}

/// What the responder needs to know about the layer's configuration.
#[derive(Clone)]
pub(crate) struct ResponderConfig {
    pub(crate) realm: String,
    pub(crate) bearer: bool,
    pub(crate) api_key_scheme: Option<String>,
    pub(crate) resource_metadata: Option<String>,
    pub(crate) type_base: String,
    pub(crate) renderer: Arc<dyn ProblemRenderer>,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            realm: "api".into(),
            bearer: true,
            api_key_scheme: None,
            resource_metadata: None,
            type_base: "urn:portcullis:error:".into(),
            renderer: Arc::new(ProblemJson),
        }
    }
}

/// The headers and body of a failure, built once per error code: answering with them is two
/// clones (one allocation for the header map) instead of building the map header by header.
struct Prebuilt {
    headers: HeaderMap,
    body: Bytes,
}

/// Renders failures for one layer. Shared (`Arc`) by the layer, its services and, through the
/// request extensions, by route policies so that they answer with the same realm and body.
pub(crate) struct Responder {
    config: ResponderConfig,
    prebuilt: Vec<Prebuilt>,
}

impl Responder {
    pub(crate) fn new(config: ResponderConfig) -> Result<Self, ConfigError> {
        check_quotable("realm", &config.realm)?;
        if let Some(s) = &config.api_key_scheme {
            check_scheme(s)?;
        }
        if let Some(url) = &config.resource_metadata {
            check_quotable("resource metadata URL", url)?;
        }
        let mut responder = Responder {
            config,
            prebuilt: Vec::new(),
        };
        responder.prebuilt = ErrorCode::ALL
            .iter()
            .map(|&code| {
                let (headers, body) = responder.build(&AuthError::new(code));
                Prebuilt { headers, body }
            })
            .collect();
        Ok(responder)
    }

    /// The responder used where no layer configured one (an extractor or policy used alone).
    pub(crate) fn fallback() -> Arc<Responder> {
        static FALLBACK: std::sync::OnceLock<Arc<Responder>> = std::sync::OnceLock::new();
        FALLBACK
            .get_or_init(|| {
                Arc::new(
                    Responder::new(ResponderConfig::default()).expect("default config is valid"),
                )
            })
            .clone()
    }

    fn render_body(&self, err: &AuthError) -> RenderedProblem {
        let code = err.code();
        let type_uri = format!("{}{}", self.config.type_base, code.as_str());
        self.config.renderer.render(&Problem::new(
            code,
            &type_uri,
            err.detail(),
            err.required_scopes(),
        ))
    }

    /// `scheme realm="…"`, and on Bearer the RFC 9728 `resource_metadata`. The scheme and the
    /// values were checked when the responder was built.
    fn plain(&self, scheme: &str) -> Option<ChallengeBuilder> {
        let c = ChallengeBuilder::new(scheme)
            .ok()?
            .param("realm", &self.config.realm);
        Some(match &self.config.resource_metadata {
            Some(url) if scheme == "Bearer" => c.param("resource_metadata", url),
            _ => c,
        })
    }

    /// One challenge per accepted scheme; the failing scheme's challenge carries the error.
    pub(crate) fn challenges(&self, err: &AuthError) -> Vec<HeaderValue> {
        let code = err.code();
        if code.status() != StatusCode::UNAUTHORIZED
            && code != ErrorCode::InsufficientScope
            && code != ErrorCode::InvalidRequest
        {
            return Vec::new();
        }
        let api_scheme = self.config.api_key_scheme.as_deref();
        // A 401 always carries at least one challenge: Bearer unless only API keys are accepted.
        let bearer = self.config.bearer || api_scheme.is_none();
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
            (
                api_key_challenge,
                bearer_challenge.filter(|_| self.config.bearer),
            )
        } else {
            (bearer_challenge.filter(|_| bearer), api_key_challenge)
        };
        [first, second]
            .into_iter()
            .flatten()
            .filter_map(|c| HeaderValue::from_str(&c.finish()).ok())
            .collect()
    }

    /// The complete failure response.
    pub(crate) fn respond(&self, err: &AuthError) -> Response<Bytes> {
        let (headers, body) = if err.is_canonical() {
            let p = &self.prebuilt[err.code().position()];
            (p.headers.clone(), p.body.clone())
        } else {
            self.build(err)
        };
        let mut res = Response::new(body);
        *res.status_mut() = err.status();
        *res.headers_mut() = headers;
        res
    }

    /// The headers and body of the failure response to `err`. `Content-Length` is included:
    /// servers (axum, hyper) would otherwise add it to every failure one by one.
    fn build(&self, err: &AuthError) -> (HeaderMap, Bytes) {
        let rendered = self.render_body(err);
        let challenges = self.challenges(err);
        let mut h = HeaderMap::with_capacity(4 + challenges.len());
        h.insert(CONTENT_TYPE, rendered.content_type);
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for c in challenges {
            h.append(WWW_AUTHENTICATE, c);
        }
        if let Some(after) = err.retry_after() {
            let secs = after
                .as_secs()
                .saturating_add(u64::from(after.subsec_nanos() > 0));
            h.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        h.insert(CONTENT_LENGTH, HeaderValue::from(rendered.body.len()));
        (h, rendered.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responder(api_key: Option<&str>) -> Responder {
        Responder::new(ResponderConfig {
            api_key_scheme: api_key.map(Into::into),
            ..ResponderConfig::default()
        })
        .unwrap()
    }

    fn challenge_strings(r: &Responder, err: &AuthError) -> Vec<String> {
        r.respond(err)
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn missing_credentials_challenge_has_realm_and_no_error() {
        let r = responder(None);
        assert_eq!(
            challenge_strings(&r, &ErrorCode::MissingCredentials.into()),
            ["Bearer realm=\"api\""]
        );
    }

    #[test]
    fn one_challenge_per_accepted_scheme() {
        let r = responder(Some("ApiKey"));
        assert_eq!(
            challenge_strings(&r, &ErrorCode::MissingCredentials.into()),
            ["Bearer realm=\"api\"", "ApiKey realm=\"api\""]
        );
        assert_eq!(
            challenge_strings(&r, &ErrorCode::InvalidApiKey.into())[0],
            "ApiKey realm=\"api\""
        );
    }

    #[test]
    fn description_is_sanitised() {
        let r = responder(None);
        let err = AuthError::with_detail(ErrorCode::TokenMalformed, "bad \"x\" \\ é\n");
        let c = &challenge_strings(&r, &err)[0];
        assert_eq!(
            c,
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"bad x  \""
        );
    }

    #[test]
    fn forbidden_has_no_challenge_and_503_has_retry_after() {
        let r = responder(None);
        assert!(challenge_strings(&r, &ErrorCode::Forbidden.into()).is_empty());
        let res = r.respond(&AuthError::key_set_unavailable(
            std::time::Duration::from_millis(1500),
        ));
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[RETRY_AFTER], "2");
        assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn realm_with_quote_is_a_config_error() {
        let err = Responder::new(ResponderConfig {
            realm: "a\"b".into(),
            ..ResponderConfig::default()
        });
        assert!(err.is_err());
    }

    #[test]
    fn prebuilt_and_fresh_renderings_agree() {
        let r = responder(Some("ApiKey"));
        for &code in ErrorCode::ALL {
            let canonical = r.respond(&AuthError::new(code));
            let fresh_err = AuthError::with_detail(code, code.default_detail().to_owned());
            let fresh = r.respond(&fresh_err);
            assert_eq!(canonical.headers(), fresh.headers(), "{code}");
            assert_eq!(canonical.body(), fresh.body(), "{code}");
        }
    }
}
