//! The verifier the MCP examples use with `--issuer URL`: RFC 9068 access tokens from an
//! OpenID provider, its keys found by OpenID discovery and JWKS, bound to this resource.

use portcullis::server::jwt::{JwksKeySource, JwtAuthenticator};

/// `at+jwt` tokens of `issuer` for `resource`. Plain-http discovery only when both this server
/// and the provider are on this machine (tests, local setups).
pub async fn for_issuer(
    issuer: &str,
    resource: &str,
    listening_on_loopback: bool,
) -> Result<JwtAuthenticator, Box<dyn std::error::Error>> {
    let loopback = listening_on_loopback && issuer.starts_with("http://127.0.0.1:");
    let keys = JwksKeySource::discovery(issuer)
        .allow_http(loopback)
        .discover()
        .await?;
    Ok(JwtAuthenticator::builder()
        .key_source(keys)
        .issuer(issuer)
        .audience(resource)
        .token_type("at+jwt")
        .build()?)
}
