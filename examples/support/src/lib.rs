//! What the examples share (not published): the demo application with its embedded identity
//! provider (`demo`, `server`, `gateway`), and the MCP examples' verifier for an OpenID issuer;
//! and the parts of examples that tests and benches build too: the MCP notes server
//! (`mcp_server`), the orders app (`orders_api`) and the MCP gateway's proxy (`mcp_gateway`).

pub mod demo_app;
pub mod issuer_verifier;
pub mod mcp_notes;
pub mod mcp_proxy;
pub mod orders_app;
