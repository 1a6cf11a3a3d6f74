//! Where metadata documents live: the well-known URLs of a protected resource (RFC 9728) and
//! of an authorization server (RFC 8414, OpenID Connect Discovery 1.0).
//!
//! The server serves its document at these paths, the client looks for documents there and
//! the doctor probes them: one builder, so that all three agree.
//!
//! # Example
//! ```
//! use portcullis::wire::well_known;
//!
//! let resource = "https://api.example.com/v1/".parse().unwrap();
//! assert_eq!(
//!     well_known::protected_resource_urls(&resource),
//!     [
//!         "https://api.example.com/.well-known/oauth-protected-resource/v1",
//!         "https://api.example.com/.well-known/oauth-protected-resource",
//!     ]
//! );
//! ```

use http::Uri;

/// RFC 9728 §3: the well-known segment of protected-resource metadata.
pub const OAUTH_PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// RFC 8414 §3: the well-known segment of authorization-server metadata.
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";

/// OpenID Connect Discovery 1.0 §4: the well-known segment of an OpenID provider's
/// configuration.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";

/// RFC 9728 §3.1: the path protected-resource metadata is served at for a resource whose
/// identifier has the path `resource_path`. The well-known segment goes between the host and
/// the path; a trailing slash is not part of the path.
///
/// ```
/// use portcullis::wire::well_known::protected_resource_path;
/// assert_eq!(protected_resource_path("/v1/"), "/.well-known/oauth-protected-resource/v1");
/// assert_eq!(protected_resource_path("/"), "/.well-known/oauth-protected-resource");
/// ```
pub fn protected_resource_path(resource_path: &str) -> String {
    format!(
        "{OAUTH_PROTECTED_RESOURCE}{}",
        resource_path.trim_end_matches('/')
    )
}

/// RFC 9728 §3.1: the URLs a resource's metadata may be at, in the order to try them: the
/// path-suffixed one first, then the root one (the same when the resource has no path).
pub fn protected_resource_urls(resource: &Uri) -> Vec<String> {
    let base = base(resource);
    let suffixed = format!("{base}{}", protected_resource_path(resource.path()));
    let root = format!("{base}{OAUTH_PROTECTED_RESOURCE}");
    if suffixed == root {
        vec![root]
    } else {
        vec![suffixed, root]
    }
}

/// RFC 8414 §3.1 and OpenID Connect Discovery, in the order MCP clients try them: for an
/// issuer with a path, the path goes after the well-known segment (both kinds), then after
/// the path (OpenID Connect's own form); for an issuer without one, RFC 8414 first.
pub fn authorization_server_urls(issuer: &Uri) -> Vec<String> {
    let base = base(issuer);
    let path = issuer.path().trim_end_matches('/');
    if path.is_empty() {
        vec![
            format!("{base}{OAUTH_AUTHORIZATION_SERVER}"),
            openid_configuration_url(&base),
        ]
    } else {
        vec![
            format!("{base}{OAUTH_AUTHORIZATION_SERVER}{path}"),
            format!("{base}{OPENID_CONFIGURATION}{path}"),
            openid_configuration_url(&format!("{base}{path}")),
        ]
    }
}

/// OpenID Connect Discovery 1.0 §4: the issuer (without its trailing slash) followed by the
/// well-known segment.
///
/// ```
/// use portcullis::wire::well_known::openid_configuration_url;
/// assert_eq!(
///     openid_configuration_url("https://id.example.com/tenant/"),
///     "https://id.example.com/tenant/.well-known/openid-configuration"
/// );
/// ```
pub fn openid_configuration_url(issuer: &str) -> String {
    format!("{}{OPENID_CONFIGURATION}", issuer.trim_end_matches('/'))
}

/// `scheme://authority` of a URL (`https` when it has no scheme).
fn base(u: &Uri) -> String {
    format!(
        "{}://{}",
        u.scheme_str().unwrap_or("https"),
        u.authority().map(|a| a.as_str()).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    /// RFC 9728 §3.1's example: `https://resource.example.com/resource1` has its metadata at
    /// `https://resource.example.com/.well-known/oauth-protected-resource/resource1`.
    #[test]
    fn protected_resource_urls_follow_rfc_9728() {
        assert_eq!(
            protected_resource_urls(&uri("https://resource.example.com/resource1")),
            [
                "https://resource.example.com/.well-known/oauth-protected-resource/resource1",
                "https://resource.example.com/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            protected_resource_urls(&uri("http://127.0.0.1:3000/mcp/")),
            [
                "http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp",
                "http://127.0.0.1:3000/.well-known/oauth-protected-resource",
            ]
        );
        for root in ["https://api.test", "https://api.test/"] {
            assert_eq!(
                protected_resource_urls(&uri(root)),
                ["https://api.test/.well-known/oauth-protected-resource"],
                "{root}"
            );
        }
        // The query is not part of the resource's path.
        assert_eq!(
            protected_resource_urls(&uri("https://api.test/v1?x=1"))[0],
            "https://api.test/.well-known/oauth-protected-resource/v1"
        );
    }

    #[test]
    fn the_served_path_is_the_first_url_without_its_origin() {
        assert_eq!(
            protected_resource_path("/resource1"),
            "/.well-known/oauth-protected-resource/resource1"
        );
        assert_eq!(protected_resource_path(""), OAUTH_PROTECTED_RESOURCE);
        let u = uri("https://api.test/a/b/");
        assert_eq!(
            protected_resource_urls(&u)[0],
            format!("https://api.test{}", protected_resource_path(u.path()))
        );
    }

    /// RFC 8414 §3.1's example: the issuer `https://example.com/issuer1` has its metadata at
    /// `https://example.com/.well-known/oauth-authorization-server/issuer1`; OpenID Connect
    /// Discovery appends its segment to the issuer.
    #[test]
    fn authorization_server_urls_follow_rfc_8414_then_openid_connect() {
        assert_eq!(
            authorization_server_urls(&uri("https://example.com/issuer1")),
            [
                "https://example.com/.well-known/oauth-authorization-server/issuer1",
                "https://example.com/.well-known/openid-configuration/issuer1",
                "https://example.com/issuer1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            authorization_server_urls(&uri("https://id.test/tenant1/")),
            [
                "https://id.test/.well-known/oauth-authorization-server/tenant1",
                "https://id.test/.well-known/openid-configuration/tenant1",
                "https://id.test/tenant1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            authorization_server_urls(&uri("http://127.0.0.1:9")),
            [
                "http://127.0.0.1:9/.well-known/oauth-authorization-server",
                "http://127.0.0.1:9/.well-known/openid-configuration",
            ]
        );
    }

    /// OpenID Connect Discovery 1.0 §4.1's example.
    #[test]
    fn openid_configuration_is_appended_to_the_issuer() {
        assert_eq!(
            openid_configuration_url("https://example.com"),
            "https://example.com/.well-known/openid-configuration"
        );
        assert_eq!(
            openid_configuration_url("https://example.com/issuer1/"),
            "https://example.com/issuer1/.well-known/openid-configuration"
        );
    }
}
