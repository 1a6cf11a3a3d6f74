//! Per-tool scopes for MCP servers (and any JSON-RPC endpoint): a `tools/call` for a tool
//! whose scopes the token lacks is answered with 403 `insufficient_scope`, at the HTTP level,
//! before the MCP server runs it.
//!
//! An MCP server is one endpoint: which tool a request calls is in its JSON-RPC body, so a
//! route policy cannot tell a harmless call from a dangerous one. And an error the tool
//! returns is a JSON-RPC error inside a `200`, which no MCP client reads as "ask for more
//! scope". The MCP authorization spec wants the HTTP answer: `403` with
//! `WWW-Authenticate: Bearer error="insufficient_scope", scope="…", resource_metadata="…"`,
//! which conforming clients (refresh-layer's [step-up], the TypeScript SDK) answer by getting
//! a token with that scope and retrying once.
//!
//! [`ToolScopesLayer`] reads the body (bounded), finds every `tools/call` in it (a single message
//! or a batch), and refuses the request when a called tool needs a scope the
//! [`Principal`](crate::Principal) lacks; the refusal is rendered by the [`AuthLayer`](crate::AuthLayer) around
//! it, so it has the same realm, `resource_metadata` and problem body as every other failure.
//! Everything else passes through, the body unchanged byte for byte. A compressed body
//! (`Content-Encoding` other than `identity`) is `415`: put a decompression layer *outside*
//! this one, never between it and the server.
//!
//! # Bodies it cannot read are refused
//!
//! A check on the JSON holds only if the server reads the same JSON. Many read more than the
//! standard: Python's `json` takes `NaN` and detects UTF-16 and UTF-32, Node's decoders drop
//! a byte order mark, Express decodes by the `charset`, NDJSON readers take one message a
//! line, JSON5 readers take comments, Go's `encoding/json` matches `"Method"` to `method`.
//! So once any tool is gated, a request with a body is `400 invalid_request` unless:
//!
//! - its one `Content-Type` is `application/json` (any case), with no `charset` parameter or
//!   `charset=utf-8` (any case, quoted or not); a missing `Content-Type`, `text/plain`,
//!   `application/json-rpc` or another charset is refused, whatever the body says;
//! - the body is exactly one JSON value (RFC 8259) in UTF-8: no byte order mark, no second
//!   value or other data after it, no `NaN`, comments or trailing commas;
//! - each message's `method`, `params` and `name` appear once, with the types MCP gives them,
//!   and no other member of a message or its `params` is one of those names in another case
//!   (Unicode simple case folding: `PARAMS`, or `params` spelled with U+017F for the `s`).
//!
//! A request with no body at all (the SSE stream's `GET`, the session-ending `DELETE`) passes.
//! A server that reads JSON exactly as strictly as serde_json (rmcp does) may be given the old
//! behaviour with [`ToolScopesLayer::pass_unparseable_bodies_unchecked`].
//!
//! Name every scope a tool needs, the baseline ones included: the 403 names exactly those,
//! and some clients (the TypeScript SDK 1.x) *replace* their scope with the challenge's
//! rather than adding to it, so a challenge naming only the new scope would cost them the
//! old ones.
//!
//! [step-up]: https://docs.rs/refresh-layer
//!
//! # Example
//! ```
//! use portcullis::server::mcp::ToolScopesLayer;
//! use portcullis::server::{AuthLayer, ProtectedResource, jwt::{JwtAuthenticator, JwtKey}};
//! use portcullis::server::jsonwebtoken::Algorithm;
//! use tower::ServiceBuilder;
//!
//! # fn main() -> Result<(), portcullis::server::ConfigError> {
//! let jwt = JwtAuthenticator::builder()
//!     .key(JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256])?)
//!     .audience("https://mcp.example.com/mcp")
//!     .build()?;
//! let stack = ServiceBuilder::new()
//!     .layer(
//!         AuthLayer::builder()
//!             .bearer(jwt)
//!             .resource_metadata(
//!                 ProtectedResource::new("https://mcp.example.com/mcp")
//!                     .authorization_server("https://id.example.com")
//!                     .scopes_supported(["notes:read", "notes:write"])
//!                     .challenge_scope("notes:read"),
//!             )
//!             .strip_credentials(true)
//!             .build()?,
//!     )
//!     .layer(
//!         ToolScopesLayer::new()
//!             .tool("list_notes", ["notes:read"])
//!             .tool("add_note", ["notes:read", "notes:write"]),
//!     );
//! # let _ = stack;
//! # Ok(())
//! # }
//! ```

mod content_type;
mod layer;
mod message;
mod service;

pub use layer::{DEFAULT_MAX_BODY, ToolScopesLayer};
pub use service::{ToolScopes, ToolScopesBody};
