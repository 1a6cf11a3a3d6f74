//! The clients an authorization server knows: registered by the test or through RFC 7591,
//! their redirect URIs (RFC 8252 §7.3 for loopback ones), and how each authenticates at the
//! token endpoint: by its secret, its `client_id` alone, or an RFC 7523 client assertion
//! signed by its key.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;

use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Value, json};

use crate::client_assertion::{client_public_key, verified_assertion};
use crate::issuer::random_hex;

/// The client authentication methods RFC 7591 registration takes here (§2). A
/// `private_key_jwt` client is registered by the test, with its public key
/// ([`TestAuthorizationServer::register_key_client`](crate::TestAuthorizationServer::register_key_client)).
const METHODS: [&str; 3] = ["none", "client_secret_basic", "client_secret_post"];

/// The method of a client that authenticates with a client assertion (RFC 7523 §2.2).
pub(crate) const PRIVATE_KEY_JWT: &str = "private_key_jwt";

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client registered at a [`TestAuthorizationServer`](crate::TestAuthorizationServer).
/// `Debug` leaves the secret out.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use portcullis::testkit::TestAuthorizationServer;
/// let server = TestAuthorizationServer::start("https://api.test/mcp").await;
/// let client = server.register_client(&["http://127.0.0.1/callback"], "client_secret_post");
/// assert!(client.client_secret.is_some());
/// assert!(!format!("{client:?}").contains(client.client_secret.as_deref().unwrap()));
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestClient {
    /// Its `client_id`.
    pub client_id: String,
    /// Its secret (`None` for a public client).
    pub client_secret: Option<String>,
    /// `none`, `client_secret_basic`, `client_secret_post` or `private_key_jwt`: how it must
    /// authenticate.
    pub token_endpoint_auth_method: String,
    /// Its redirect URIs.
    pub redirect_uris: Vec<String>,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

/// RFC 7591 §3.2.2: why a registration was refused.
pub(crate) struct Refused {
    pub(crate) error: &'static str,
    pub(crate) description: String,
}

/// An absolute URI with a host and no fragment (RFC 6749 §3.1.2).
pub(crate) fn absolute(uri: &str) -> bool {
    !uri.contains('#')
        && uri
            .parse::<Uri>()
            .is_ok_and(|u| u.scheme().is_some() && u.host().is_some_and(|h| !h.is_empty()))
}

/// Whether `asked` is the registered redirect URI `registered`: the same string, or — for
/// `http` on a loopback IP literal — the same but for the port, which a native app picks when
/// it starts (RFC 8252 §7.3). `localhost` is not such a literal.
pub(crate) fn redirect_matches(registered: &str, asked: &str) -> bool {
    if registered == asked {
        return true;
    }
    let (Ok(r), Ok(a)) = (registered.parse::<Uri>(), asked.parse::<Uri>()) else {
        return false;
    };
    let loopback =
        |u: &Uri| u.scheme_str() == Some("http") && matches!(u.host(), Some("127.0.0.1" | "[::1]"));
    loopback(&r)
        && loopback(&a)
        && r.host() == a.host()
        && r.path_and_query() == a.path_and_query()
        && !asked.contains('#')
}

/// Secrets compared in constant time.
fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// `Authorization: Basic` as `(client_id, secret)` (RFC 6749 §2.3.1: each form-encoded).
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let b = v.strip_prefix("Basic ")?;
    let pair = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
    let pair = String::from_utf8(pair).ok()?;
    let (id, secret) = pair.split_once(':')?;
    let decode = |s: &str| percent_decode(&s.replace('+', " ")).unwrap_or_else(|| s.to_owned());
    Some((decode(id), decode(secret)))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The public key a `private_key_jwt` client's assertions must be signed with.
struct ClientKey {
    key: DecodingKey,
    alg: Algorithm,
}

/// The registered clients, by `client_id`.
#[derive(Default)]
pub(crate) struct Clients {
    by_id: Mutex<HashMap<String, TestClient>>,
    /// The keys of the `private_key_jwt` clients, by `client_id`.
    keys: Mutex<HashMap<String, ClientKey>>,
    /// `(client_id, jti)` of every client assertion accepted: one presented again is refused
    /// (RFC 7523 §3 lets a server keep them for that).
    assertions: Mutex<HashSet<(String, String)>>,
    /// Every RFC 7591 request body received, valid or not.
    requests: Mutex<Vec<Value>>,
}

fn check_redirect_uris(redirect_uris: &[String]) -> Result<(), Refused> {
    if redirect_uris.is_empty() || !redirect_uris.iter().all(|u| absolute(u)) {
        return Err(Refused {
            error: "invalid_redirect_uri",
            description: "redirect_uris must be absolute URIs without a fragment".into(),
        });
    }
    Ok(())
}

impl Clients {
    /// A new client with these redirect URIs and authentication method.
    pub(crate) fn register(
        &self,
        redirect_uris: Vec<String>,
        method: &str,
    ) -> Result<TestClient, Refused> {
        check_redirect_uris(&redirect_uris)?;
        if !METHODS.contains(&method) {
            return Err(Refused {
                error: "invalid_client_metadata",
                description: format!("token_endpoint_auth_method must be one of {METHODS:?}"),
            });
        }
        let secret = (method != "none").then(|| random_hex(24));
        Ok(self.insert(redirect_uris, method, secret))
    }

    /// A new `private_key_jwt` client with these redirect URIs, whose assertions must be
    /// signed with `alg` by the key whose public half is `public_pem` (panics on a PEM that is
    /// not such a key).
    pub(crate) fn register_key(
        &self,
        redirect_uris: Vec<String>,
        public_pem: &[u8],
        alg: Algorithm,
    ) -> Result<TestClient, Refused> {
        check_redirect_uris(&redirect_uris)?;
        let key = client_public_key(public_pem, alg);
        let client = self.insert(redirect_uris, PRIVATE_KEY_JWT, None);
        self.keys
            .lock()
            .expect("not poisoned")
            .insert(client.client_id.clone(), ClientKey { key, alg });
        Ok(client)
    }

    fn insert(
        &self,
        redirect_uris: Vec<String>,
        method: &str,
        client_secret: Option<String>,
    ) -> TestClient {
        let client = TestClient {
            client_id: format!("client-{}", random_hex(12)),
            client_secret,
            token_endpoint_auth_method: method.to_owned(),
            redirect_uris,
        };
        self.by_id
            .lock()
            .expect("not poisoned")
            .insert(client.client_id.clone(), client.clone());
        client
    }

    /// RFC 7591 §3: the request body recorded, the client registered, the answer (§3.2.1
    /// `201` with the client's metadata, or §3.2.2 `400`).
    pub(crate) fn register_request(&self, body: Value) -> (StatusCode, Value) {
        self.requests
            .lock()
            .expect("not poisoned")
            .push(body.clone());
        let uris: Option<Vec<String>> = body["redirect_uris"].as_array().and_then(|a| {
            a.iter()
                .map(|u| u.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        });
        // This kit's default is a public client, as native apps and MCP clients register.
        let method = match &body["token_endpoint_auth_method"] {
            Value::Null => Some("none"),
            v => v.as_str(),
        };
        let result = match (uris, method) {
            (Some(uris), Some(method)) => self.register(uris, method),
            (None, _) => Err(Refused {
                error: "invalid_redirect_uri",
                description: "redirect_uris (an array of URIs) is required".into(),
            }),
            (_, None) => Err(Refused {
                error: "invalid_client_metadata",
                description: "token_endpoint_auth_method is a string".into(),
            }),
        };
        match result {
            Ok(client) => (StatusCode::CREATED, registered(&body, &client)),
            Err(r) => (
                StatusCode::BAD_REQUEST,
                json!({"error": r.error, "error_description": r.description}),
            ),
        }
    }

    /// The request bodies received so far.
    pub(crate) fn requests(&self) -> Vec<Value> {
        self.requests.lock().expect("not poisoned").clone()
    }

    /// The client `client_id`, if registered.
    pub(crate) fn get(&self, client_id: &str) -> Option<TestClient> {
        self.by_id
            .lock()
            .expect("not poisoned")
            .get(client_id)
            .cloned()
    }

    /// The client a token request authenticates as, by the method it registered: a public
    /// client names itself with `client_id`, a confidential one proves its secret by HTTP
    /// Basic or form parameters, whichever it registered, or its key with a client assertion
    /// for the server `issuer` ([`Self::assertion_client`]). `Err` says how it failed.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
        issuer: &str,
    ) -> Result<TestClient, &'static str> {
        if form.contains_key("client_assertion") || form.contains_key("client_assertion_type") {
            return self.assertion_client(headers, form, issuer);
        }
        let (id, secret, how) = match basic(headers) {
            Some((id, secret)) => (id, Some(secret), "client_secret_basic"),
            None => match (form.get("client_id"), form.get("client_secret")) {
                (Some(id), Some(s)) => (id.clone(), Some(s.clone()), "client_secret_post"),
                (Some(id), None) => (id.clone(), None, "none"),
                (None, _) => return Err("no client authentication"),
            },
        };
        if form.get("client_id").is_some_and(|f| *f != id) {
            return Err("two different client_ids");
        }
        let client = self.get(&id).ok_or("unknown client")?;
        if client.token_endpoint_auth_method != how {
            return Err("not the authentication method the client registered");
        }
        match (&client.client_secret, secret) {
            (None, None) => Ok(client),
            (Some(expected), Some(given)) if same(expected, &given) => Ok(client),
            _ => Err("wrong client secret"),
        }
    }

    /// RFC 7523 §2.2 and §3: a `private_key_jwt` client's assertion, alone (no secret, no
    /// Basic header), of type `jwt-bearer`, naming the client (`client_id` if sent, else the
    /// assertion's `sub`), verified with its key ([`verified_assertion`]: `iss` = `sub` =
    /// `client_id`, `aud` = `issuer` or the token URL, not expired), and not presented before
    /// (by its `jti`).
    fn assertion_client(
        &self,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
        issuer: &str,
    ) -> Result<TestClient, &'static str> {
        if headers.contains_key("authorization") || form.contains_key("client_secret") {
            return Err("more than one client authentication method");
        }
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER_ASSERTION) {
            return Err("client_assertion_type is not jwt-bearer");
        }
        let assertion = form
            .get("client_assertion")
            .ok_or("client_assertion is missing")?;
        let id = match form.get("client_id") {
            Some(id) => id.clone(),
            None => unverified_subject(assertion).ok_or("the client assertion names no client")?,
        };
        let client = self.get(&id).ok_or("unknown client")?;
        if client.token_endpoint_auth_method != PRIVATE_KEY_JWT {
            return Err("not the authentication method the client registered");
        }
        let claims = {
            let keys = self.keys.lock().expect("not poisoned");
            let key = keys.get(&id).ok_or("the client has no key")?;
            verified_assertion(assertion, &key.key, key.alg, &id, issuer)
                .ok_or("the client assertion does not verify")?
        };
        // Without a jti its reuse could not be told apart: refused, as RFC 7523 §3 allows.
        let jti = claims["jti"]
            .as_str()
            .ok_or("the client assertion has no jti")?;
        let mut seen = self.assertions.lock().expect("not poisoned");
        if !seen.insert((id, jti.to_owned())) {
            return Err("the client assertion was presented before");
        }
        Ok(client)
    }
}

/// The `sub` of a JWT, read without verifying it: only to find whose key verifies it.
fn unverified_subject(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"].as_str().map(str::to_owned)
}

/// RFC 7591 §3.2.1: the metadata sent back, with what the server set.
fn registered(body: &Value, client: &TestClient) -> Value {
    let mut out = match body {
        Value::Object(m) => Value::Object(m.clone()),
        _ => json!({}),
    };
    out["client_id"] = json!(client.client_id);
    out["client_id_issued_at"] = json!(crate::issuer::now());
    out["redirect_uris"] = json!(client.redirect_uris);
    out["token_endpoint_auth_method"] = json!(client.token_endpoint_auth_method);
    if let Some(secret) = &client.client_secret {
        out["client_secret"] = json!(secret);
        out["client_secret_expires_at"] = json!(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "http://127.0.0.1:1";

    /// Signs ES256 client assertions as a client with a private key would.
    struct Signer(String);

    static NEXT_JTI: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    impl Signer {
        fn assertion(&self, id: &str, aud: &str) -> String {
            self.expiring(id, aud, crate::issuer::now() + 60)
        }

        fn expiring(&self, id: &str, aud: &str, exp: u64) -> String {
            let claims = json!({
                "iss": id, "sub": id, "aud": aud, "exp": exp,
                "jti": NEXT_JTI.fetch_add(1, std::sync::atomic::Ordering::SeqCst).to_string(),
            });
            let key = jsonwebtoken::EncodingKey::from_ec_pem(self.0.as_bytes()).unwrap();
            let header = jsonwebtoken::Header::new(Algorithm::ES256);
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        }
    }

    #[test]
    fn loopback_redirect_uris_match_on_any_port_and_nothing_else_does() {
        let r = "http://127.0.0.1/callback";
        assert!(redirect_matches(r, "http://127.0.0.1:49152/callback"));
        assert!(redirect_matches(
            "http://[::1]:1/cb",
            "http://[::1]:65000/cb"
        ));
        for other in [
            "http://127.0.0.1:49152/callback/",
            "http://127.0.0.1:49152/other",
            "http://127.0.0.2:49152/callback",
            "https://127.0.0.1:49152/callback",
            "http://localhost:49152/callback",
            "http://127.0.0.1:49152/callback?x=1",
            "http://127.0.0.1:49152/callback#f",
        ] {
            assert!(!redirect_matches(r, other), "{other}");
        }
        let web = "https://app.test/cb";
        assert!(redirect_matches(web, web));
        assert!(!redirect_matches(web, "https://app.test:8443/cb"));
        assert!(!redirect_matches(
            "http://localhost/cb",
            "http://localhost:1/cb"
        ));
    }

    #[test]
    fn registration_needs_absolute_redirect_uris_and_a_known_method() {
        let clients = Clients::default();
        let (status, body) = clients.register_request(json!({"client_name": "x"}));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_redirect_uri");
        let (status, _) = clients.register_request(json!({"redirect_uris": ["/relative"]}));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, body) = clients.register_request(json!({
            "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
        }));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_client_metadata");
        let (status, body) = clients.register_request(json!({
            "redirect_uris": ["http://127.0.0.1/cb"],
            "application_type": "native",
        }));
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["token_endpoint_auth_method"], "none");
        assert_eq!(body["application_type"], "native");
        assert!(body.get("client_secret").is_none());
        assert_eq!(clients.requests().len(), 4);
    }

    #[test]
    fn each_client_authenticates_by_the_method_it_registered() {
        let clients = Clients::default();
        let uris = || vec!["http://127.0.0.1/cb".to_owned()];
        let public = clients.register(uris(), "none").ok().unwrap();
        let basic_client = clients
            .register(uris(), "client_secret_basic")
            .ok()
            .unwrap();
        let form = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let none = HeaderMap::new();
        let ok = clients.authenticate(&none, &form(&[("client_id", &public.client_id)]), ISSUER);
        assert_eq!(ok.unwrap().client_id, public.client_id);
        // A confidential client cannot pass as public, nor use the other method.
        let id = basic_client.client_id.as_str();
        let secret = basic_client.client_secret.clone().unwrap();
        assert!(
            clients
                .authenticate(&none, &form(&[("client_id", id)]), ISSUER)
                .is_err()
        );
        let post = form(&[("client_id", id), ("client_secret", &secret)]);
        assert!(clients.authenticate(&none, &post, ISSUER).is_err());
        let mut headers = HeaderMap::new();
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        headers.insert("authorization", format!("Basic {pair}").parse().unwrap());
        assert!(clients.authenticate(&headers, &form(&[]), ISSUER).is_ok());
        let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{id}:nope"));
        headers.insert("authorization", format!("Basic {wrong}").parse().unwrap());
        assert!(clients.authenticate(&headers, &form(&[]), ISSUER).is_err());
    }

    #[test]
    fn a_key_client_authenticates_with_a_fresh_assertion_for_this_server_only() {
        let clients = Clients::default();
        let (private, public) = crate::es256_key_pair();
        let uris = vec!["http://127.0.0.1/cb".to_owned()];
        let client = clients
            .register_key(uris, public.as_bytes(), Algorithm::ES256)
            .ok()
            .unwrap();
        assert_eq!(client.token_endpoint_auth_method, PRIVATE_KEY_JWT);
        assert_eq!(client.client_secret, None);
        let id = client.client_id.as_str();
        let signer = Signer(private);
        let form = |assertion: &str, with_id: bool| -> HashMap<String, String> {
            let mut f = HashMap::from([
                ("client_assertion_type".into(), JWT_BEARER_ASSERTION.into()),
                ("client_assertion".into(), assertion.to_owned()),
            ]);
            if with_id {
                f.insert("client_id".into(), id.to_owned());
            }
            f
        };
        let none = HeaderMap::new();
        let token_url = format!("{ISSUER}/oauth/token");
        for (aud, with_id) in [(ISSUER, true), (token_url.as_str(), false)] {
            let assertion = signer.assertion(id, aud);
            let ok = clients.authenticate(&none, &form(&assertion, with_id), ISSUER);
            assert_eq!(ok.unwrap().client_id, id);
            // The same assertion again is a replay.
            let again = clients.authenticate(&none, &form(&assertion, with_id), ISSUER);
            assert!(again.is_err());
        }
        let refused = |f: &HashMap<String, String>, headers: &HeaderMap| {
            clients.authenticate(headers, f, ISSUER).unwrap_err()
        };
        // Another server's audience, expired, another key, a secret or Basic header besides,
        // no assertion at all, no assertion type.
        let elsewhere = signer.assertion(id, "https://other.test");
        assert!(refused(&form(&elsewhere, true), &none).contains("verify"));
        let expired = signer.expiring(id, ISSUER, crate::issuer::now() - 120);
        assert!(refused(&form(&expired, true), &none).contains("verify"));
        let (other, _) = crate::es256_key_pair();
        let other = Signer(other);
        let forged = other.assertion(id, ISSUER);
        assert!(refused(&form(&forged, true), &none).contains("verify"));
        let mut with_secret = form(&signer.assertion(id, ISSUER), true);
        with_secret.insert("client_secret".into(), "x".into());
        assert!(refused(&with_secret, &none).contains("more than one"));
        let mut basic = HeaderMap::new();
        basic.insert("authorization", "Basic eDp5".parse().unwrap());
        let signed = form(&signer.assertion(id, ISSUER), true);
        assert!(refused(&signed, &basic).contains("more than one"));
        let alone = HashMap::from([("client_id".to_owned(), id.to_owned())]);
        assert!(refused(&alone, &none).contains("registered"));
        let mut untyped = form(&signer.assertion(id, ISSUER), true);
        untyped.remove("client_assertion_type");
        assert!(refused(&untyped, &none).contains("jwt-bearer"));
    }
}
