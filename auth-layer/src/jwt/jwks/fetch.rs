//! The HTTP side of a key source: the default client, URL checks, and one bounded GET.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Empty;
use portcullis_wire::buffered_client::{BufferedClient, buffered};
use tower::ServiceExt;

use super::settings::JwksSettings;
use crate::error::{ConfigError, JwksError};

/// The HTTP client a key source fetches with, type-erased, bodies read whole up to the limit.
pub(crate) type JwksHttp = BufferedClient<Empty<Bytes>>;

/// hyper-util's client with rustls (system roots) for https and plain http.
pub(crate) fn default_http(settings: &JwksSettings) -> Result<JwksHttp, ConfigError> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    // The URL check already refuses `http`; the connector refuses it again, so a redirect or
    // a custom URL path cannot reach a plain-text connection.
    let https = portcullis_wire::https::connector(settings.allow_http, settings.timeout)
        .map_err(|e| ConfigError::NoTlsRoots(e.to_string()))?;
    Ok(buffered(
        Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(https),
        settings.max_body,
    ))
}

pub(crate) fn parse_url(url: &str, allow_http: bool) -> Result<Uri, ConfigError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| ConfigError::InvalidKeySetUrl(url.to_owned()))?;
    match uri.scheme_str() {
        _ if uri.authority().is_none() => Err(ConfigError::InvalidKeySetUrl(url.to_owned())),
        Some("https") => Ok(uri),
        Some("http") if allow_http => Ok(uri),
        Some("http") => Err(ConfigError::InsecureKeySetUrl(url.to_owned())),
        _ => Err(ConfigError::InvalidKeySetUrl(url.to_owned())),
    }
}

/// GET `uri`, bounded in time and size.
pub(crate) async fn get(
    http: &JwksHttp,
    uri: &Uri,
    settings: &JwksSettings,
) -> Result<Response<Bytes>, JwksError> {
    let mut req = Request::new(Empty::new());
    *req.uri_mut() = uri.clone();
    req.headers_mut()
        .insert(ACCEPT, HeaderValue::from_static("application/json"));
    let limit = settings.max_body;
    let fetch = async {
        let res = http.clone().oneshot(req).await.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                JwksError::TooLarge(limit)
            } else {
                JwksError::Network(e.to_string())
            }
        })?;
        if !res.status().is_success() {
            return Err(JwksError::Status(res.status()));
        }
        // Every client, custom ones included, is wrapped by `buffered` with this limit; the
        // check states the invariant the parser relies on.
        if res.body().len() > limit {
            return Err(JwksError::TooLarge(limit));
        }
        Ok(res)
    };
    tokio::time::timeout(settings.timeout, fetch)
        .await
        .map_err(|_| JwksError::Timeout(settings.timeout))?
}

/// `max-age` of a `Cache-Control` header, if any.
pub(crate) fn max_age(res: &Response<Bytes>) -> Option<Duration> {
    let cc = res.headers().get(CACHE_CONTROL)?.to_str().ok()?;
    cc.split(',').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        let res = |v: &'static str| {
            let mut r = Response::new(Bytes::new());
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static(v));
            r
        };
        assert_eq!(
            max_age(&res("public, max-age=300")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age(&res("no-cache")), None);
        assert_eq!(max_age(&res("max-age=abc")), None);
    }
}
