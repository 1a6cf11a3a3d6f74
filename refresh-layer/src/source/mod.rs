//! Where credentials come from: the [`CredentialSource`] trait and its built-ins — a fixed
//! [`Credential`](crate::Credential), a closure ([`from_fn`](crate::from_fn)), an OAuth2 token
//! endpoint ([`OAuth2`](crate::OAuth2)), a token endpoint found by [`discovery`], and one
//! grant shared by every replica ([`shared_grant`]).
//!
//! [`CredentialSource`]: crate::CredentialSource

pub(crate) mod client_auth;
pub(crate) mod credential_source;
pub mod discovery;
pub(crate) mod form;
pub(crate) mod from_fn;
pub(crate) mod oauth2;
pub mod shared_grant;
pub(crate) mod token_http;
pub(crate) mod token_response;

// What client_auth.rs reads through `use super::*`.
use std::fmt;
use std::sync::Arc;

use crate::error::{BuildError, RefreshError};
#[allow(unused_imports)] // client_auth.rs's doc links
use oauth2::OAuth2Builder;
use token_response::invalid;
