//! The documents discovery reads (RFC 9728, RFC 8414) and the scope arithmetic of step-up.

use http::Uri;
use serde::Deserialize;

/// RFC 9728 §2, the members used here.
#[derive(Deserialize, Default)]
pub(crate) struct ResourceMetadata {
    pub(crate) resource: String,
    #[serde(default)]
    pub(crate) authorization_servers: Vec<String>,
    #[serde(default)]
    pub(crate) scopes_supported: Vec<String>,
}

/// RFC 8414 §2, the members used here.
#[derive(Deserialize, Default)]
pub(crate) struct ServerMetadata {
    pub(crate) issuer: String,
    pub(crate) token_endpoint: Option<String>,
    pub(crate) token_endpoint_auth_methods_supported: Option<Vec<String>>,
    pub(crate) token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    pub(crate) grant_types_supported: Option<Vec<String>>,
    pub(crate) authorization_endpoint: Option<String>,
    pub(crate) registration_endpoint: Option<String>,
    pub(crate) code_challenge_methods_supported: Option<Vec<String>>,
    /// RFC 9207 §3.
    #[serde(default)]
    pub(crate) authorization_response_iss_parameter_supported: bool,
    /// OAuth Client ID Metadata Documents (`draft-ietf-oauth-client-id-metadata-document`).
    #[serde(default)]
    pub(crate) client_id_metadata_document_supported: bool,
    pub(crate) scopes_supported: Option<Vec<String>>,
}

impl ServerMetadata {
    /// MCP 2025-03-26 §2.3.3: a server without metadata has its endpoints at these paths of
    /// its origin. Nothing says it supports PKCE: assumed, which is why this fallback is an
    /// opt-in.
    pub(crate) fn defaults_2025_03_26(origin: &str) -> Self {
        ServerMetadata {
            issuer: origin.to_owned(),
            authorization_endpoint: Some(format!("{origin}/authorize")),
            token_endpoint: Some(format!("{origin}/token")),
            registration_endpoint: Some(format!("{origin}/register")),
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            ..ServerMetadata::default()
        }
    }
}

pub(crate) fn scopes(s: &str) -> impl Iterator<Item = &str> {
    s.split_ascii_whitespace()
}

/// `a ∪ b`, in order of first appearance.
pub(crate) fn union(a: Option<&str>, b: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in a.into_iter().flat_map(scopes).chain(scopes(b)) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(" ")
}

/// The longest scope string asked for. Step-up adds what each refusal names to what the token
/// had, so a server naming new scopes in every refusal would otherwise grow it without end.
pub(crate) const MAX_SCOPE: usize = 4096;

/// The scope to ask for after a refusal naming `scope`: for a step-up, what the token `had`
/// and what is missing; otherwise what the challenge names. `None` (keep the current one) when
/// that would be longer than [`MAX_SCOPE`].
pub(crate) fn next_scope(had: Option<&str>, scope: &str, step_up: bool) -> Option<String> {
    let next = if step_up {
        union(had, scope)
    } else {
        scope.to_owned()
    };
    (next.len() <= MAX_SCOPE).then_some(next)
}

/// Two identifiers of one resource (RFC 9728 `resource`): scheme and host compared without case, the
/// default port the same as none, a trailing slash on the path ignored.
pub(crate) fn same_identifier(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> Option<String> {
        let u: Uri = s.parse().ok()?;
        let origin = portcullis_wire::Origin::of(&u)?;
        let path = u.path().trim_end_matches('/');
        let query = u.query().map(|q| format!("?{q}")).unwrap_or_default();
        Some(format!("{origin}{path}{query}"))
    }
    match (norm(a), norm(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Whether the resource identifier a resource's metadata gives (`advertised`) covers the URL
/// the client calls (`called`): the same identifier, or one on the same origin whose path is
/// a whole-segment prefix of the called path (an MCP server whose identifier is its origin,
/// its metadata at the root well-known URI). Never another origin.
pub(crate) fn covers(advertised: &str, called: &str) -> bool {
    if same_identifier(advertised, called) {
        return true;
    }
    let (Ok(a), Ok(c)) = (advertised.parse::<Uri>(), called.parse::<Uri>()) else {
        return false;
    };
    let (Some(ao), Some(co)) = (
        portcullis_wire::Origin::of(&a),
        portcullis_wire::Origin::of(&c),
    ) else {
        return false;
    };
    let prefix = a.path().trim_end_matches('/');
    ao == co
        && a.query().is_none()
        && !advertised.contains('#')
        && c.path()
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub(crate) fn alg_name(alg: jsonwebtoken::Algorithm) -> String {
    // The JOSE name, as metadata lists it.
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_compare_as_urls() {
        assert!(same_identifier(
            "https://API.test:443/mcp/",
            "https://api.test/mcp"
        ));
        assert!(!same_identifier(
            "https://api.test/mcp",
            "https://api.test/other"
        ));
        assert!(!same_identifier(
            "https://evil.test/mcp",
            "https://api.test/mcp"
        ));
        assert!(!same_identifier(
            "http://api.test/mcp",
            "https://api.test/mcp"
        ));
        assert!(!same_identifier("not a url", "not a url"));
    }

    #[test]
    fn a_resource_covers_its_own_paths_on_its_own_origin() {
        assert!(covers("http://localhost:3000", "http://localhost:3000/mcp"));
        assert!(covers(
            "http://localhost:3000/",
            "http://localhost:3000/mcp"
        ));
        assert!(covers("https://api.test/v1", "https://api.test/v1/mcp"));
        assert!(!covers("https://api.test/v", "https://api.test/v1/mcp"));
        assert!(!covers("https://api.test/mcp/x", "https://api.test/mcp"));
        assert!(!covers("https://evil.test", "https://api.test/mcp"));
        assert!(!covers("http://api.test", "https://api.test/mcp"));
        assert!(!covers("https://api.test:8443", "https://api.test/mcp"));
        assert!(!covers(
            "https://evil.example.com/mcp",
            "http://localhost:3000/mcp"
        ));
    }

    #[test]
    fn step_up_scopes_are_a_union() {
        assert_eq!(union(Some("read"), "write read"), "read write");
        assert_eq!(union(None, "a  b"), "a b");
    }

    /// A server naming new scopes in every refusal cannot grow what is asked for without end.
    #[test]
    fn the_scope_asked_for_is_bounded() {
        let mut had = String::from("read");
        for i in 0..10_000 {
            match next_scope(Some(&had), &format!("s{i}"), true) {
                Some(next) => had = next,
                None => break,
            }
        }
        assert!(had.len() <= MAX_SCOPE, "{}", had.len());
        assert!(had.starts_with("read "));
        let huge = "x".repeat(MAX_SCOPE + 1);
        assert_eq!(next_scope(None, &huge, false), None);
        assert_eq!(next_scope(Some("a"), "b", false).as_deref(), Some("b"));
    }
}
