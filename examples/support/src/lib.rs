//! What the examples share (not published): the demo application with its embedded identity
//! provider (`demo`, `server`, `gateway`), and the MCP examples' verifier for an OpenID issuer.

pub mod demo_app;
pub mod issuer_verifier;
