//! OpenID Connect discovery: the issuer's metadata names its key set.

use super::fetch::{JwksHttp, get, parse_url};
use super::settings::JwksSettings;
use super::source::JwksKeySource;
use crate::error::{ConfigError, JwksError};

/// Read `{issuer}/.well-known/openid-configuration`, check that it names the same `issuer`,
/// and fetch the key set at its `jwks_uri` once before answering.
pub(crate) async fn discover(
    issuer: &str,
    settings: JwksSettings,
    http: JwksHttp,
) -> Result<JwksKeySource, JwksError> {
    #[derive(serde::Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let url = portcullis_wire::well_known::openid_configuration_url(issuer);
    let discovery_uri = parse_url(&url, settings.allow_http).map_err(|e| url_error(e, &url))?;
    let res = get(&http, &discovery_uri, &settings).await?;
    let doc: Discovery = serde_json::from_slice(res.body())
        .map_err(|e| JwksError::InvalidDocument(e.to_string()))?;
    if doc.issuer != issuer {
        return Err(JwksError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: doc.issuer,
        });
    }
    // Never downgrade: keys for an https issuer come over https.
    if discovery_uri.scheme_str() == Some("https") && !doc.jwks_uri.starts_with("https://") {
        return Err(JwksError::InsecureUrl(doc.jwks_uri));
    }
    let jwks_uri =
        parse_url(&doc.jwks_uri, settings.allow_http).map_err(|e| url_error(e, &doc.jwks_uri))?;
    let source = JwksKeySource::from_parts(jwks_uri, settings, http);
    source.refresh().await?;
    Ok(source)
}

/// A URL refused on the way: discovery reports it as a fetch error, whether the issuer named
/// it or the provider's document did.
fn url_error(e: ConfigError, url: &str) -> JwksError {
    match e {
        ConfigError::InsecureKeySetUrl(u) => JwksError::InsecureUrl(u),
        _ => JwksError::InvalidUrl(url.to_owned()),
    }
}
