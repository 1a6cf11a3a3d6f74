//! Where credentials come from: the [`CredentialSource`] trait and its built-ins — a fixed
//! [`Credential`](crate::Credential), a closure ([`from_fn`](crate::from_fn)), an OAuth2 token
//! endpoint ([`OAuth2`](crate::OAuth2)), a token endpoint found by [`discovery`], one
//! grant shared by every replica ([`shared_grant`]), and a person's sign-in
//! ([`authorization_code`]). How a client authenticates to a token
//! endpoint is shared with the server: [`portcullis_wire::client_auth`].
//!
//! [`CredentialSource`]: crate::CredentialSource

pub mod authorization_code;
pub(crate) mod credential_source;
pub mod discovery;
pub(crate) mod from_fn;
pub(crate) mod oauth2;
pub mod shared_grant;
pub(crate) mod token_http;
pub(crate) mod token_response;
