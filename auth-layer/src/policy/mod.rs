//! Route policies: required scopes, roles, or any predicate over the [`Principal`](crate::Principal).
//!
//! Apply them per route with axum's `route_layer` (or `ServiceBuilder` around a service), inside
//! an [`AuthLayer`](crate::AuthLayer). They answer with the same realm and body shape as the
//! auth layer around them. The everyday two, [`RequireScope`](crate::RequireScope) and
//! [`RequireRole`](crate::RequireRole), are named at the crate root only.
//!
//! # Example
//! ```
//! use portcullis::server::policy::RequirePolicy;
//! use portcullis::server::{RequireRole, RequireScope};
//! use axum::{Router, routing::get};
//!
//! let app: Router = Router::new()
//!     .route("/admin", get(|| async { "hi" }).route_layer(RequireScope::all(["admin"])))
//!     .route("/billing", get(|| async { "$" }).route_layer(RequireRole::any(["finance"])))
//!     .route("/ours", get(|| async { "!" }).route_layer(RequirePolicy::new(|p: &portcullis::server::Principal| {
//!         p.issuer() == Some("https://id.example.com")
//!     })));
//! ```

// `pub(crate)`: the crate root re-exports `RequireScope` and `RequireRole` from here, their one path.
pub(crate) mod layer;
pub(crate) mod refusal;
mod rules;
mod service;

pub use layer::{PolicyLayer, RequireCredential, RequirePolicy};
pub use rules::{AccessPolicy, CredentialPolicy, RolePolicy, ScopePolicy};
pub use service::PolicyService;
