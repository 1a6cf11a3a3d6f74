//! Who the client is at an authorization server, in the order the MCP authorization
//! specification gives: credentials registered beforehand for that server, a client ID
//! metadata document, then dynamic client registration (RFC 7591).

use std::fmt;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use serde::Deserialize;

use crate::error::{AuthorizationError, RefreshError};
use crate::source::discovery::finder::{Finder, Found, bounded};
use crate::source::token_http::send;
use crate::store::StoredSignIn;
use portcullis_wire::client_auth::{ClientAuth, ClientKey};

/// Credentials an authorization server issued to this client beforehand. They are used with
/// that server only — its issuer identifier compared as an exact string — and never sent to
/// another, whatever a resource names.
///
/// ```
/// use portcullis::client::source::authorization_code::RegisteredClient;
/// let client = RegisteredClient::new("https://id.example.com", "my-cli");
/// let confidential = RegisteredClient::new("https://id.example.com", "my-app").client_secret("s3cret");
/// # let _ = (client, confidential);
/// ```
#[derive(Clone)]
#[must_use]
pub struct RegisteredClient {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) secret: Option<String>,
    pub(crate) key: Option<ClientKey>,
}

impl fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("key", &self.key)
            .finish()
    }
}

impl RegisteredClient {
    /// The public client `client_id` of the authorization server `issuer`.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        RegisteredClient {
            issuer: issuer.into(),
            client_id: client_id.into(),
            secret: None,
            key: None,
        }
    }

    /// Its secret (`client_secret_basic` or `client_secret_post`, as the server supports).
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Its private key (`private_key_jwt`, preferred when the server supports it).
    pub fn private_key_jwt(mut self, key: ClientKey) -> Self {
        self.key = Some(key);
        self
    }
}

/// How a client may register, as configured.
#[derive(Clone, Debug)]
pub(crate) struct Registration {
    pub(crate) registered: Vec<RegisteredClient>,
    /// The https URL of the client ID metadata document this client serves.
    pub(crate) metadata_document: Option<String>,
    pub(crate) dynamic: bool,
    pub(crate) client_name: String,
}

/// The client as one authorization server knows it.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) client_id: String,
    pub(crate) secret: Option<String>,
    pub(crate) key: Option<ClientKey>,
    pub(crate) auth: ClientAuth,
    pub(crate) kind: &'static str,
}

impl Client {
    /// The client a stored sign-in was made with. A pre-registered client's secret and key
    /// come from the configuration, never from the store (and a client no longer configured
    /// for that issuer is not used); a registered one's secret from the store.
    pub(crate) fn of_stored(stored: &StoredSignIn, registration: &Registration) -> Option<Self> {
        let auth = auth_of_name(&stored.token_endpoint_auth_method)?;
        let configured = registration
            .registered
            .iter()
            .find(|c| c.issuer == stored.issuer && c.client_id == stored.client_id);
        let (kind, secret, key) = match stored.registration.as_str() {
            "pre-registered" => {
                let c = configured?;
                ("pre-registered", c.secret.clone(), c.key.clone())
            }
            "metadata-document" => ("metadata-document", None, None),
            _ => ("dynamic", stored.client_secret.clone(), None),
        };
        let usable = match auth {
            ClientAuth::PrivateKeyJwt => key.is_some(),
            ClientAuth::None => true,
            _ => secret.is_some(),
        };
        usable.then(|| Client {
            client_id: stored.client_id.clone(),
            secret,
            key,
            auth,
            kind,
        })
    }
}

/// The RFC 7591 name of a client authentication method.
pub(crate) fn auth_name(auth: ClientAuth) -> &'static str {
    match auth {
        ClientAuth::Post => "client_secret_post",
        ClientAuth::PrivateKeyJwt => "private_key_jwt",
        ClientAuth::None => "none",
        _ => "client_secret_basic",
    }
}

fn auth_of_name(name: &str) -> Option<ClientAuth> {
    Some(match name {
        "client_secret_basic" => ClientAuth::Basic,
        "client_secret_post" => ClientAuth::Post,
        "private_key_jwt" => ClientAuth::PrivateKeyJwt,
        "none" => ClientAuth::None,
        _ => return None,
    })
}

/// The token endpoint authentication methods the server lists (RFC 8414 §2: when absent,
/// `client_secret_basic`).
fn methods(found: &Found) -> Vec<String> {
    found
        .server
        .token_endpoint_auth_methods_supported
        .clone()
        .unwrap_or_else(|| vec!["client_secret_basic".into()])
}

/// How a pre-registered client authenticates at a server with `supported` methods.
fn registered_auth(client: &RegisteredClient, supported: &[String]) -> Option<ClientAuth> {
    let has = |m: &str| supported.iter().any(|s| s == m);
    if client.key.is_some() && has("private_key_jwt") {
        Some(ClientAuth::PrivateKeyJwt)
    } else if client.secret.is_some() && has("client_secret_basic") {
        Some(ClientAuth::Basic)
    } else if client.secret.is_some() && has("client_secret_post") {
        Some(ClientAuth::Post)
    } else if client.secret.is_none() && client.key.is_none() {
        Some(ClientAuth::None)
    } else {
        None
    }
}

/// RFC 7591 §3.2.1, the members used.
#[derive(Deserialize)]
struct Registered {
    client_id: String,
    client_secret: Option<String>,
    token_endpoint_auth_method: Option<String>,
}

impl Registration {
    /// The client to use with the server `found` names, registering it if need be.
    pub(crate) async fn client_for(
        &self,
        finder: &Finder,
        found: &Found,
        redirect_uri: &str,
    ) -> Result<Client, RefreshError> {
        let supported = methods(found);
        let fail = |e| RefreshError::Authorization(e);
        if let Some(c) = self.registered.iter().find(|c| c.issuer == found.issuer) {
            let auth = registered_auth(c, &supported).ok_or_else(|| {
                RefreshError::Discovery(crate::DiscoveryError::NoClientAuthMethod {
                    supported: bounded(&supported),
                })
            })?;
            return Ok(Client {
                client_id: c.client_id.clone(),
                secret: c.secret.clone(),
                key: c.key.clone(),
                auth,
                kind: "pre-registered",
            });
        }
        if let Some(url) = &self.metadata_document
            && found.server.client_id_metadata_document_supported
        {
            return Ok(Client {
                client_id: url.clone(),
                secret: None,
                key: None,
                auth: ClientAuth::None,
                kind: "metadata-document",
            });
        }
        match &found.server.registration_endpoint {
            Some(_) if self.dynamic => self.register(finder, found, redirect_uri).await,
            _ => Err(fail(AuthorizationError::NoRegistration {
                issuer: found.issuer.clone(),
            })),
        }
    }

    /// RFC 7591 dynamic registration of a client for the authorization-code grant.
    async fn register(
        &self,
        finder: &Finder,
        found: &Found,
        redirect_uri: &str,
    ) -> Result<Client, RefreshError> {
        let fail = |why: String| RefreshError::Authorization(AuthorizationError::Registration(why));
        let endpoint = finder
            .endpoint(
                found,
                found.server.registration_endpoint.as_ref(),
                "registration_endpoint",
            )
            .await?;
        let supported = methods(found);
        // A public client when the server takes one: a CLI cannot keep a secret from its
        // user anyway. Otherwise the secret the server issues, by the method it lists first.
        let method = ["none", "client_secret_basic", "client_secret_post"]
            .into_iter()
            .find(|m| supported.iter().any(|s| s == m))
            .unwrap_or("client_secret_basic");
        let body = registration_request(&self.client_name, redirect_uri, method);
        let mut req = Request::new(Full::new(Bytes::from(body.to_string())));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = endpoint;
        req.extensions_mut().insert(crate::SkipCredential);
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let res = send(&finder.http, req).await?;
        if !res.status().is_success() {
            return Err(fail(format!(
                "the registration endpoint answered {}",
                res.status()
            )));
        }
        let got: Registered = serde_json::from_slice(res.body())
            // Where, not what: serde's message can quote the server's text.
            .map_err(|e| {
                fail(format!(
                    "not an RFC 7591 response (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })?;
        let auth = got
            .token_endpoint_auth_method
            .as_deref()
            .map_or(auth_of_name(method), auth_of_name)
            .filter(|a| *a != ClientAuth::PrivateKeyJwt)
            .ok_or_else(|| fail("an authentication method this client cannot use".into()))?;
        if auth != ClientAuth::None && got.client_secret.is_none() {
            return Err(fail("a confidential client without a secret".into()));
        }
        tracing::debug!(target: "portcullis::client", issuer = %found.issuer, auth = auth_name(auth), "registered a client dynamically");
        Ok(Client {
            client_id: got.client_id,
            secret: got.client_secret,
            key: None,
            auth,
            kind: "dynamic",
        })
    }
}

/// The registration request (RFC 7591 §2, with OpenID Connect's `application_type`: `native`
/// for a loopback redirect URI, as MCP requires).
fn registration_request(client_name: &str, redirect_uri: &str, method: &str) -> serde_json::Value {
    let loopback = redirect_uri
        .parse::<Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned))
        .is_some_and(|h| h == "127.0.0.1" || h == "[::1]" || h == "localhost");
    serde_json::json!({
        "client_name": client_name,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "application_type": if loopback { "native" } else { "web" },
    })
}
