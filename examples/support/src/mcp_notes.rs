//! A small MCP server (rmcp, Streamable HTTP) with three tools, and the Portcullis stack that
//! makes it an OAuth 2.1 resource server as the MCP authorization spec asks:
//!
//! - RFC 9728 metadata at `/.well-known/oauth-protected-resource/mcp` and at the root;
//! - `401` + `WWW-Authenticate: Bearer resource_metadata="…", scope="notes:read"`;
//! - tokens for another resource refused (`401 invalid_audience`);
//! - `403 insufficient_scope` naming the scopes of the tool called (step-up);
//! - the token removed before rmcp sees the request, so no tool can pass it on;
//! - CORS for browser clients: preflights answered, `WWW-Authenticate` readable.
//!
//! `examples/mcp_server/main.rs` runs it; `tests/mcp_server.rs` builds it in process, and the
//! `mcp` bench measures a tool call through it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use jsonwebtoken::Algorithm;
use portcullis::server::cors::CorsPreset;
use portcullis::server::jwt::JwtAuthenticator;
use portcullis::server::mcp::ToolScopesLayer;
use portcullis::server::{AuthLayer, Authenticator, ConfigError, Principal, ProtectedResource};
use portcullis::testkit::TestTokenEndpoint;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde_json::json;

/// The scope every client is told to ask for first (in the 401's challenge).
pub const READ: &str = "notes:read";
/// The scope `add_note` needs on top of it.
pub const WRITE: &str = "notes:write";

/// What the deployment decides: where the server is, who issues its tokens, which browser
/// pages may call it.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// The canonical URI of the MCP endpoint, e.g. `https://notes.example.com/mcp`: the
    /// `resource` of the metadata and the audience every token must name.
    pub resource: String,
    /// The authorization server's issuer URL.
    pub authorization_server: String,
    /// Browser origins allowed to call the server.
    pub allow_origins: Vec<String>,
}

/// The whole server: `/mcp` and the metadata, behind CORS and authentication. `jwt` must
/// check the audience against `deployment.resource` (see `examples/mcp_server/main.rs`).
pub fn app(deployment: &Deployment, jwt: impl Authenticator) -> Result<Router, ConfigError> {
    let metadata = ProtectedResource::new(&deployment.resource)
        .authorization_server(&deployment.authorization_server)
        .scopes_supported([READ, WRITE])
        .resource_name("Portcullis notes (MCP)")
        .challenge_scope(READ)
        .also_at_root(true);
    let auth = AuthLayer::builder()
        .realm("mcp")
        .bearer(jwt)
        .resource_metadata(metadata)
        .strip_credentials(true)
        .build()?;
    let mut cors = CorsPreset::new()
        .allow_header("mcp-protocol-version")
        .allow_header("mcp-session-id")
        .allow_header("last-event-id");
    for origin in &deployment.allow_origins {
        cors = cors.allow_origin(origin);
    }
    // The HTTP answer a client can step up from: the tool named in the body decides.
    let tool_scopes = ToolScopesLayer::new()
        .tool("list_notes", [READ])
        .tool("add_note", [READ, WRITE]);
    let host = deployment
        .resource
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let store = Store::default();
    let mcp = StreamableHttpService::new(
        move || {
            Ok(Notes {
                store: store.clone(),
            })
        },
        Arc::new(NeverSessionManager::default()),
        // Stateless: every request stands alone, so every request is authenticated on its
        // own and no session outlives the token that opened it.
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_allowed_hosts([host]),
    );
    let mut router = Router::new()
        .route_service(
            "/mcp",
            tower::ServiceBuilder::new().layer(tool_scopes).service(mcp),
        )
        .layer(auth);
    if !deployment.allow_origins.is_empty() {
        router = router.layer(cors.build()?);
    }
    Ok(router)
}

/// A demo authorization server on another loopback port (the testkit's token endpoint:
/// `client_credentials` for `client_id`/`client_secret`, scopes [`READ`] and [`WRITE`], tokens
/// for `resource`), and the authenticator that checks its tokens.
pub async fn embedded_provider(
    resource: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<(TestTokenEndpoint, JwtAuthenticator), ConfigError> {
    let (endpoint, _) = TestTokenEndpoint::start(resource, client_id, client_secret).await;
    endpoint.set_client_scopes([READ, WRITE]);
    let jwt = JwtAuthenticator::builder()
        .key(endpoint.issuer().verification_key(Algorithm::ES256))
        .issuer(endpoint.issuer().issuer())
        .audience(resource)
        .build()?;
    Ok((endpoint, jwt))
}

/// Notes per subject.
#[derive(Clone, Default)]
struct Store(Arc<Mutex<HashMap<String, Vec<String>>>>);

#[derive(Clone)]
struct Notes {
    store: Store,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct AddNote {
    /// The note's text.
    text: String,
}

/// The caller, as the auth layer authenticated it: rmcp hands every tool the request head,
/// and the layer put the [`Principal`] in its extensions.
fn caller(parts: &http::request::Parts) -> Result<&Principal, ErrorData> {
    parts
        .extensions
        .get::<Principal>()
        .ok_or_else(|| ErrorData::internal_error("no principal: the auth layer is missing", None))
}

fn subject(p: &Principal) -> String {
    p.subject().unwrap_or("anonymous").to_owned()
}

#[tool_router]
impl Notes {
    #[tool(description = "Who the server thinks is calling, with the scopes of the token")]
    async fn whoami(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let p = caller(&parts)?;
        Ok(CallToolResult::structured(json!({
            "subject": p.subject(),
            "issuer": p.issuer(),
            "scopes": p.scopes().collect::<Vec<_>>(),
            // Always false: the layer removed the token before rmcp saw the request.
            "token_visible_to_tools": parts.headers.contains_key(http::header::AUTHORIZATION),
        })))
    }

    #[tool(description = "The caller's notes (needs notes:read)")]
    async fn list_notes(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = subject(caller(&parts)?);
        let notes = self
            .store
            .0
            .lock()
            .expect("not poisoned")
            .get(&who)
            .cloned();
        Ok(CallToolResult::structured(
            json!({ "notes": notes.unwrap_or_default() }),
        ))
    }

    #[tool(description = "Add a note (needs notes:read and notes:write)")]
    async fn add_note(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(AddNote { text }): Parameters<AddNote>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = subject(caller(&parts)?);
        let mut store = self.store.0.lock().expect("not poisoned");
        let notes = store.entry(who).or_default();
        notes.push(text);
        Ok(CallToolResult::structured(json!({ "count": notes.len() })))
    }
}

#[tool_handler]
impl ServerHandler for Notes {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "portcullis-notes",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Notes per caller. list_notes needs notes:read; add_note needs notes:write too.",
            )
    }
}
