//! RFC 9728 protected-resource metadata: the document the layer serves, and the URL its
//! Bearer challenges advertise.

use portcullis_wire::well_known;

/// RFC 9728 OAuth 2.0 Protected Resource Metadata, served by the layer and advertised in its
/// Bearer challenges (`resource_metadata="…"`), as MCP servers and RFC 9728 clients expect.
///
/// ```
/// use portcullis::server::ProtectedResource;
/// let meta = ProtectedResource::new("https://api.example.com/v1")
///     .authorization_server("https://id.example.com")
///     .scopes_supported(["read", "write"]);
/// assert_eq!(meta.metadata_path(), "/.well-known/oauth-protected-resource/v1");
/// ```
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProtectedResource {
    resource: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorization_servers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    bearer_methods_supported: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<String>,
    /// The `scope` a `401` challenge names (not part of the document).
    #[serde(skip)]
    challenge_scope: Option<String>,
    /// Also served at the root well-known URI (not part of the document).
    #[serde(skip)]
    at_root: bool,
}

impl ProtectedResource {
    /// Metadata for the resource identified by `resource` (an absolute `https` or `http` URL).
    pub fn new(resource: impl Into<String>) -> Self {
        ProtectedResource {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header"],
            resource_name: None,
            challenge_scope: None,
            at_root: false,
        }
    }

    /// An authorization server that issues tokens for this resource.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// The scopes this resource understands.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// A human-readable name.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// The scope every `401` challenge names (`scope="…"`, RFC 6750 §3): what a client that
    /// discovers its authorization server from the challenge, as MCP clients do, asks for
    /// first. A `403 insufficient_scope` names the scopes that request lacked instead.
    ///
    /// ```
    /// use portcullis::server::ProtectedResource;
    /// let meta = ProtectedResource::new("https://api.example.com/mcp").challenge_scope("mcp:read");
    /// # let _ = meta;
    /// ```
    pub fn challenge_scope(mut self, scope: impl Into<String>) -> Self {
        self.challenge_scope = Some(scope.into());
        self
    }

    /// Serve the document at the root well-known URI too
    /// (`/.well-known/oauth-protected-resource`), where clients look when the path-suffixed
    /// one is missing. Only for a resource that is the origin's one protected resource: the
    /// root URI speaks for the whole origin.
    pub fn also_at_root(mut self, at_root: bool) -> Self {
        self.at_root = at_root;
        self
    }

    /// The paths the document is served at.
    pub(crate) fn served_paths(&self) -> Vec<String> {
        let mut paths = vec![self.metadata_path()];
        let root = well_known::OAUTH_PROTECTED_RESOURCE.to_owned();
        if self.at_root && !paths.contains(&root) {
            paths.push(root);
        }
        paths
    }

    pub(crate) fn scope_of_challenge(&self) -> Option<&str> {
        self.challenge_scope.as_deref()
    }

    /// The resource identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    pub(crate) fn uri(&self) -> Option<http::Uri> {
        let uri: http::Uri = self.resource.parse().ok()?;
        (uri.scheme().is_some() && uri.authority().is_some()).then_some(uri)
    }

    /// The path the metadata is served at (RFC 9728 §3.1: the well-known segment goes between
    /// the host and the resource's path).
    pub fn metadata_path(&self) -> String {
        let uri = self.uri();
        well_known::protected_resource_path(uri.as_ref().map_or("", |u| u.path()))
    }

    pub(crate) fn metadata_url(&self) -> Option<String> {
        let uri = self.uri()?;
        well_known::protected_resource_urls(&uri).into_iter().next()
    }
}
