//! RFC 9728 protected-resource metadata: the document the layer serves, and the URL its
//! Bearer challenges advertise.

/// RFC 9728 OAuth 2.0 Protected Resource Metadata, served by the layer and advertised in its
/// Bearer challenges (`resource_metadata="…"`), as MCP servers and RFC 9728 clients expect.
///
/// ```
/// use auth_layer::ProtectedResource;
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
        let path = self.uri().map(|u| u.path().to_owned()).unwrap_or_default();
        let path = path.trim_end_matches('/');
        format!("/.well-known/oauth-protected-resource{path}")
    }

    pub(crate) fn metadata_url(&self) -> Option<String> {
        let uri = self.uri()?;
        Some(format!(
            "{}://{}{}",
            uri.scheme_str()?,
            uri.authority()?,
            self.metadata_path()
        ))
    }
}
