//! [`OAuth2`]: a client of one token endpoint (`client_credentials` or `refresh_token`
//! grant), and its builder.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request};
use http_body_util::Full;
use portcullis_wire::buffered_client::HttpClient;
use portcullis_wire::client_auth::{ClientAuth, ClientKey, authenticate};
use portcullis_wire::form::form_encode;

use super::credential_source::{CredentialSource, FetchFuture};
use super::token_http::{TokenHttp, erase, send};
use super::token_response::{TokenSet, bearer_of, invalid, parse_token_response};
use crate::credential::Credential;
use crate::error::{BuildError, RefreshError};

enum Grant {
    ClientCredentials,
    RefreshToken(RefreshGrant),
}

/// The refresh token of a `refresh_token` grant.
struct RefreshGrant {
    /// Held across each exchange, so no two exchanges ever send the same refresh token.
    exchange: tokio::sync::Mutex<()>,
    /// The token, and the sign-in it belongs to (bumped when a new one is set or it is
    /// forgotten): an exchange that started before stores no rotated token over a new one.
    token: std::sync::Mutex<(Option<String>, u64)>,
}

impl RefreshGrant {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<String>, u64)> {
        self.token.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// OAuth2 token endpoint source: `client_credentials` or `refresh_token` grant.
///
/// # Example
/// ```
/// use portcullis::client::OAuth2;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let http = Client::builder(TokioExecutor::new()).build_http();
/// let source = OAuth2::builder("http://127.0.0.1:9/oauth/token", "demo")
///     .client_secret("demo-secret")
///     .scope("read write")
///     .client_credentials(http)
///     .unwrap();
/// # let _ = source;
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct OAuth2 {
    inner: Arc<OAuth2Inner>,
}

/// Shared by every clone of a source: one grant, so one refresh token, whoever refreshes.
struct OAuth2Inner {
    endpoint: http::Uri,
    client_id: String,
    client_secret: Option<String>,
    client_auth: ClientAuth,
    client_key: Option<ClientKey>,
    /// The `aud` of client assertions: the token endpoint unless set.
    assertion_audience: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
    grant: Grant,
    http: TokenHttp,
}

impl fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2")
            .field("endpoint", &self.inner.endpoint)
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

/// Configures an [`OAuth2`] source; see [`OAuth2::builder`].
#[must_use]
pub struct OAuth2Builder {
    endpoint: String,
    client_id: String,
    client_secret: Option<String>,
    client_auth: ClientAuth,
    client_key: Option<ClientKey>,
    assertion_audience: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

impl fmt::Debug for OAuth2Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Builder")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_auth", &self.client_auth)
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .finish()
    }
}

impl OAuth2Builder {
    /// The client secret (confidential clients; required by `client_credentials`).
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// The scope to request.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The resource the tokens are for (RFC 8707 `resource`, an absolute URI), sent with every
    /// token request.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// How to authenticate the client (default: HTTP Basic).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// Authenticate with a client assertion signed by `key` (`private_key_jwt`, RFC 7523):
    /// no secret is sent. The assertion's `aud` is the token endpoint unless
    /// [`assertion_audience`](Self::assertion_audience) says otherwise.
    pub fn private_key_jwt(mut self, key: ClientKey) -> Self {
        self.client_key = Some(key);
        self.client_auth = ClientAuth::PrivateKeyJwt;
        self
    }

    /// The `aud` of client assertions (some servers want their issuer identifier rather than
    /// the token endpoint URL).
    pub fn assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.assertion_audience = Some(audience.into());
        self
    }

    /// The `client_credentials` grant (RFC 6749 §4.4), posting through `http`.
    pub fn client_credentials(
        self,
        http: impl HttpClient<Full<Bytes>>,
    ) -> Result<OAuth2, BuildError> {
        if self.client_secret.is_none() && self.client_key.is_none() {
            return Err(BuildError::MissingClientSecret);
        }
        self.finish(Grant::ClientCredentials, erase(http))
    }

    /// `client_credentials` through a client already erased (discovery builds one source per
    /// authorization server it finds, all posting through the same client).
    pub(crate) fn client_credentials_via(self, http: TokenHttp) -> Result<OAuth2, BuildError> {
        if self.client_secret.is_none() && self.client_key.is_none() {
            return Err(BuildError::MissingClientSecret);
        }
        self.finish(Grant::ClientCredentials, http)
    }

    /// The `refresh_token` grant (RFC 6749 §6), starting from `refresh_token`, posting through
    /// `http`. When the server rotates refresh tokens, the new one is stored before the refresh
    /// completes, and the old one is never sent again.
    pub fn refresh_token(
        self,
        refresh_token: &str,
        http: impl HttpClient<Full<Bytes>>,
    ) -> Result<OAuth2, BuildError> {
        let grant = Grant::RefreshToken(RefreshGrant {
            exchange: tokio::sync::Mutex::new(()),
            token: std::sync::Mutex::new((Some(refresh_token.to_owned()), 0)),
        });
        self.finish(grant, erase(http))
    }

    /// A client of the token endpoint that keeps no refresh token itself, through a client
    /// already erased: a person's sign-in keeps its token set (and hands the refresh token
    /// to [`OAuth2::exchange`]) itself.
    pub(crate) fn sign_in_via(self, http: TokenHttp) -> Result<OAuth2, BuildError> {
        let grant = Grant::RefreshToken(RefreshGrant {
            exchange: tokio::sync::Mutex::new(()),
            token: std::sync::Mutex::new((None, 0)),
        });
        self.finish(grant, http)
    }

    fn finish(self, grant: Grant, http: TokenHttp) -> Result<OAuth2, BuildError> {
        let invalid = || BuildError::InvalidTokenEndpoint(self.endpoint.clone());
        let endpoint: http::Uri = self.endpoint.parse().map_err(|_| invalid())?;
        portcullis_wire::Origin::of(&endpoint).ok_or_else(invalid)?;
        if self.client_auth == ClientAuth::PrivateKeyJwt && self.client_key.is_none() {
            return Err(BuildError::InvalidClientKey(
                "private_key_jwt was chosen without a key",
            ));
        }
        Ok(OAuth2 {
            inner: Arc::new(OAuth2Inner {
                endpoint,
                client_id: self.client_id,
                client_secret: self.client_secret,
                client_auth: self.client_auth,
                client_key: self.client_key,
                assertion_audience: self.assertion_audience,
                scope: self.scope,
                resource: self.resource,
                grant,
                http,
            }),
        })
    }
}

impl OAuth2 {
    /// Start configuring a client of the token endpoint at `endpoint` (an absolute `http` or
    /// `https` URL) as `client_id`; finish with a grant.
    pub fn builder(endpoint: &str, client_id: &str) -> OAuth2Builder {
        OAuth2Builder {
            endpoint: endpoint.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: None,
            client_auth: ClientAuth::Basic,
            client_key: None,
            assertion_audience: None,
            scope: None,
            resource: None,
        }
    }

    fn request(&self, params: &[(&str, &str)]) -> Result<Request<Full<Bytes>>, RefreshError> {
        let i = &self.inner;
        let mut params = params.to_vec();
        if let Some(scope) = &i.scope {
            params.push(("scope", scope));
        }
        if let Some(resource) = &i.resource {
            params.push(("resource", resource));
        }
        let audience = i
            .assertion_audience
            .clone()
            .unwrap_or_else(|| i.endpoint.to_string());
        let auth = authenticate(
            i.client_auth,
            &i.client_id,
            i.client_secret.as_deref(),
            i.client_key.as_ref(),
            &audience,
        )
        .map_err(|e| invalid(e.to_string()))?;
        params.extend(auth.params.iter().map(|(k, v)| (*k, v.as_str())));
        let mut req = Request::new(Full::new(Bytes::from(form_encode(&params))));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = i.endpoint.clone();
        // Even if this service is wrapped in a refresh layer by mistake, it must not inject
        // or refresh around its own token request.
        req.extensions_mut().insert(crate::SkipCredential);
        let h = req.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(v) = auth.authorization {
            h.insert(AUTHORIZATION, v);
        }
        Ok(req)
    }

    async fn post(&self, params: &[(&str, &str)]) -> Result<TokenSet, RefreshError> {
        let req = self.request(params)?;
        let res = send(&self.inner.http, req).await?;
        parse_token_response(res.status(), res.body())
    }

    async fn fetch_now(self) -> Result<Credential, RefreshError> {
        let tokens = match &self.inner.grant {
            Grant::ClientCredentials => self.exchange(None).await?,
            Grant::RefreshToken(grant) => {
                let _exchange = grant.exchange.lock().await;
                let (rt, signed_in) = grant.lock().clone();
                let rt = rt.ok_or(RefreshError::SignedOut)?;
                let tokens = self.exchange(Some(&rt)).await?;
                if let Some(next) = &tokens.refresh_token {
                    let mut current = grant.lock();
                    if current.1 == signed_in {
                        current.0 = Some(next.clone());
                    }
                }
                tokens
            }
        };
        bearer_of(&tokens.access_token, tokens.expires_in)
    }

    /// One token request: `client_credentials`, or `refresh_token` with `refresh_token` (this
    /// source's own refresh token is neither read nor changed).
    pub(crate) async fn exchange(
        &self,
        refresh_token: Option<&str>,
    ) -> Result<TokenSet, RefreshError> {
        match (&self.inner.grant, refresh_token) {
            (Grant::ClientCredentials, _) => {
                self.post(&[("grant_type", "client_credentials")]).await
            }
            (Grant::RefreshToken(_), Some(rt)) => {
                self.post(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
                    .await
            }
            (Grant::RefreshToken(_), None) => Err(RefreshError::SignedOut),
        }
    }

    /// Redeem an authorization code (RFC 6749 §4.1.3) with the PKCE verifier of its request
    /// (RFC 7636 §4.5) and the redirect URI it was sent with.
    pub(crate) async fn redeem_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenSet, RefreshError> {
        self.post(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// What names this grant wherever tokens are shared: the token endpoint, the client, the
    /// scope set (order and repeats do not matter), the resource, and the identity the
    /// sharing code gave it (`grant_id`: two users of one client are two grants).
    pub(crate) fn grant_key(&self, grant_id: &str) -> String {
        let i = &self.inner;
        let mut scopes: Vec<&str> = i
            .scope
            .as_deref()
            .unwrap_or("")
            .split_ascii_whitespace()
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        let kind = match i.grant {
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken(_) => "refresh_token",
        };
        // JSON, so no value can be mistaken for a separator.
        serde_json::json!([
            kind,
            i.endpoint.to_string(),
            i.client_id,
            scopes,
            i.resource,
            grant_id
        ])
        .to_string()
    }

    /// Whether this source works from a refresh token (a `refresh_token` grant).
    pub(crate) fn keeps_refresh_token(&self) -> bool {
        matches!(self.inner.grant, Grant::RefreshToken(_))
    }

    /// The refresh token this source holds now (`refresh_token` grants).
    pub(crate) fn refresh_token_now(&self) -> Option<String> {
        match &self.inner.grant {
            Grant::RefreshToken(grant) => grant.lock().0.clone(),
            Grant::ClientCredentials => None,
        }
    }
}

impl CredentialSource for OAuth2 {
    fn fetch(&self) -> FetchFuture {
        Box::pin(self.clone().fetch_now())
    }

    fn set_refresh_token(&self, refresh_token: &str) -> bool {
        match &self.inner.grant {
            Grant::RefreshToken(grant) => {
                let mut current = grant.lock();
                *current = (Some(refresh_token.to_owned()), current.1 + 1);
                true
            }
            Grant::ClientCredentials => false,
        }
    }

    fn forget(&self) {
        if let Grant::RefreshToken(grant) = &self.inner.grant {
            let mut current = grant.lock();
            *current = (None, current.1 + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the builder was given goes into the token request; what it needs and lacks is a
    /// typed error, not a panic.
    #[tokio::test]
    async fn the_builder_configures_the_token_request_and_refuses_what_cannot_work() {
        use http_body_util::BodyExt;
        let http = tower::service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::<Bytes>::default()))
        });
        let body = |s: &OAuth2| {
            let req = s.request(&[]).unwrap();
            async move { req.into_body().collect().await.unwrap().to_bytes() }
        };
        let plain = OAuth2::builder("https://id.test/token", "c")
            .refresh_token("rt", http)
            .unwrap();
        assert_eq!(body(&plain).await, "client_id=c");
        let post = OAuth2::builder("https://id.test/token", "c")
            .client_secret("s")
            .scope("read")
            .client_auth(ClientAuth::Post)
            .client_credentials(http)
            .unwrap();
        assert_eq!(body(&post).await, "scope=read&client_id=c&client_secret=s");
        assert!(matches!(
            OAuth2::builder("https://id.test/token", "c").client_credentials(http),
            Err(BuildError::MissingClientSecret)
        ));
        for bad in ["not a url", "/token", "ftp://id.test/token"] {
            assert!(
                matches!(
                    OAuth2::builder(bad, "c").refresh_token("rt", http),
                    Err(BuildError::InvalidTokenEndpoint(_))
                ),
                "{bad}"
            );
        }
    }

    /// A token request that cannot connect says why, with every cause in the chain: the
    /// README's https endpoint with a plain-http client used to fail as "client error (Connect)".
    #[tokio::test]
    async fn network_errors_keep_their_causes() {
        use hyper_util::client::legacy::Client;
        use hyper_util::rt::TokioExecutor;
        let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let source = OAuth2::builder("https://127.0.0.1:9/oauth/token", "c")
            .client_secret("s")
            .client_credentials(http)
            .unwrap();
        let err = source.fetch().await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, RefreshError::Network(_)), "{err:?}");
        assert!(text.contains("scheme is not http"), "{text}");
    }
}
