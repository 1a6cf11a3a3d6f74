//! The documents discovery reads (RFC 9728, RFC 8414) and the scope arithmetic of step-up.

use http::Uri;
use serde::Deserialize;

/// RFC 9728 §2, the members used here.
#[derive(Deserialize)]
pub(crate) struct ResourceMetadata {
    pub(crate) resource: String,
    #[serde(default)]
    pub(crate) authorization_servers: Vec<String>,
    #[serde(default)]
    pub(crate) scopes_supported: Vec<String>,
}

/// RFC 8414 §2, the members used here.
#[derive(Deserialize)]
pub(crate) struct ServerMetadata {
    pub(crate) issuer: String,
    pub(crate) token_endpoint: Option<String>,
    pub(crate) token_endpoint_auth_methods_supported: Option<Vec<String>>,
    pub(crate) token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    pub(crate) grant_types_supported: Option<Vec<String>>,
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
