//! What a failure looks like: its status, its challenges (chosen in `challenge.rs`), its
//! RFC 9457 problem body and its other headers. This is the only place that turns an
//! [`AuthError`] into a response.
//!
//! Responses that do not depend on the request (every code with its default detail) are
//! rendered once, when the layer is built, and reused: a rejection costs a few refcount
//! increments, not a JSON serialisation.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response};
use portcullis_wire::PROBLEM_JSON;

pub(crate) use portcullis_wire::Problem;

use crate::error::AuthError;
use crate::response::challenge::Challenges;
use portcullis_wire::ErrorCode;

/// A rendered body and its media type: [`RenderedProblem::new`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenderedProblem {
    /// The `Content-Type` of `body`.
    pub content_type: HeaderValue,
    /// The body.
    pub body: Bytes,
}

impl RenderedProblem {
    /// A body and its `Content-Type`.
    pub fn new(content_type: HeaderValue, body: impl Into<Bytes>) -> Self {
        RenderedProblem {
            content_type,
            body: body.into(),
        }
    }
}

/// Turns a [`Problem`] into a response body.
///
/// Replace it to give failures your own body shape; the status, the challenges and
/// `Cache-Control: no-store` stay as the contract says.
///
/// # Example
/// ```
/// use portcullis::server::{ProblemRenderer, RenderedProblem};
/// use portcullis::wire::Problem;
/// use http::HeaderValue;
///
/// struct PlainText;
/// impl ProblemRenderer for PlainText {
///     fn render(&self, p: &Problem<'_>) -> RenderedProblem {
///         RenderedProblem::new(
///             HeaderValue::from_static("text/plain; charset=utf-8"),
///             format!("{}: {}", p.code, p.detail),
///         )
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

/// What the responder needs to know about the layer's configuration.
#[derive(Clone)]
pub(crate) struct ResponderConfig {
    pub(crate) challenges: Challenges,
    pub(crate) type_base: String,
    pub(crate) renderer: Arc<dyn ProblemRenderer>,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            challenges: Challenges::default(),
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
    pub(crate) fn new(config: ResponderConfig) -> Self {
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
        responder
    }

    /// A responder for a copy of the layer that accepts fewer kinds: the same renderer and
    /// type base, the challenges of those kinds only ([`Challenges::only`]), and `missing` as
    /// the detail of its 401 `missing_credentials`, rendered now like every other canonical
    /// failure (answering it allocates nothing more).
    pub(crate) fn narrowed(&self, bearer: bool, api_key: bool, missing: String) -> Responder {
        let mut responder = Responder::new(ResponderConfig {
            challenges: self.config.challenges.only(bearer, api_key),
            ..self.config.clone()
        });
        let code = ErrorCode::MissingCredentials;
        let (headers, body) = responder.build(&AuthError::with_detail(code, missing));
        responder.prebuilt[code.position()] = Prebuilt { headers, body };
        responder
    }

    /// The responder used where no layer configured one (an extractor or policy used alone).
    pub(crate) fn fallback() -> Arc<Responder> {
        static FALLBACK: std::sync::OnceLock<Arc<Responder>> = std::sync::OnceLock::new();
        FALLBACK
            .get_or_init(|| Arc::new(Responder::new(ResponderConfig::default())))
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
        let challenges = self.config.challenges.for_error(err);
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
    use http::StatusCode;

    fn responder(api_key: Option<&str>) -> Responder {
        Responder::new(ResponderConfig {
            challenges: Challenges::new("api".into(), true, api_key.map(Into::into), None).unwrap(),
            ..ResponderConfig::default()
        })
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
        let err = Challenges::new("a\"b".into(), true, None, None);
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
