//! The test authorization server over real HTTP, driven by hand: what it advertises, what it
//! issues, and what it refuses (so a client test that passes against it passed against a
//! strict server).

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use portcullis_testkit::loopback::{LoopbackClient, Reply, client, empty, send};
use portcullis_testkit::{AuthorizeMode, HOSTILE_DESCRIPTION, TestAuthorizationServer};
use portcullis_wire::form::form_encode;
use serde_json::{Value, json};

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const RESOURCE: &str = "https://api.test/mcp";
const REDIRECT: &str = "http://127.0.0.1:8976/cb";

async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("the test did not finish in time")
}

struct Kit {
    server: TestAuthorizationServer,
    http: LoopbackClient,
}

impl Kit {
    async fn start() -> Kit {
        Kit {
            server: TestAuthorizationServer::start("default-audience").await,
            http: client(),
        }
    }

    async fn get(&self, path_and_query: &str) -> Reply {
        let url = format!("{}{path_and_query}", self.server.issuer());
        send(&self.http, Request::get(url).body(empty()).unwrap()).await
    }

    async fn register(&self, body: Value) -> Reply {
        let req = Request::post(format!("{}/register", self.server.issuer()))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        send(&self.http, req).await
    }

    /// `/authorize` with a valid request for `client_id`, `changes` applied (an empty value
    /// leaves the parameter out).
    async fn authorize(&self, client_id: &str, changes: &[(&str, &str)]) -> Reply {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "st4te"),
            ("scope", "read"),
            ("resource", RESOURCE),
        ];
        for (k, v) in changes {
            params.retain(|(name, _)| name != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        self.get(&format!("/authorize?{}", form_encode(&params)))
            .await
    }

    /// A fresh code for the public client `client_id`.
    async fn code(&self, client_id: &str) -> String {
        let reply = self.authorize(client_id, &[]).await;
        redirect(&reply)["code"].as_str().unwrap().to_owned()
    }

    async fn token(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
        let mut req = Request::post(format!("{}/oauth/token", self.server.issuer()))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            let pair = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            req = req.header("authorization", format!("Basic {pair}"));
        }
        let body = Full::new(Bytes::from(form_encode(form)));
        send(&self.http, req.body(body).unwrap()).await
    }

    /// A code redeemed by the public client `client_id`, `changes` applied to the request.
    async fn redeem(&self, client_id: &str, code: &str, changes: &[(&str, &str)]) -> Reply {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", RESOURCE),
            ("client_id", client_id),
        ];
        for (k, v) in changes {
            form.retain(|(name, _)| name != k);
            if !v.is_empty() {
                form.push((k, v));
            }
        }
        self.token(&form, None).await
    }
}

/// The redirect's query parameters, as JSON (each once).
fn redirect(reply: &Reply) -> Value {
    assert_eq!(
        reply.status,
        302,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let location = reply.header("location").unwrap();
    let (base, query) = location.split_once('?').unwrap();
    let mut out = json!({"base": base});
    for (k, v) in url_pairs(query) {
        assert!(out.get(&k).is_none(), "{k} twice in {location}");
        out[k] = json!(v);
    }
    out
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A JWT's claims, unverified.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn error(reply: &Reply) -> String {
    reply.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A public client registered through RFC 7591.
async fn public_client(kit: &Kit) -> String {
    let reply = kit
        .register(json!({"redirect_uris": ["http://127.0.0.1/cb"], "application_type": "native"}))
        .await;
    assert_eq!(reply.status, 201);
    reply.json()["client_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn metadata_advertises_the_code_flow_and_what_the_test_changed() {
    bounded(async {
        let kit = Kit::start().await;
        let issuer = kit.server.issuer().to_owned();
        let doc = kit
            .get("/.well-known/oauth-authorization-server")
            .await
            .json();
        assert_eq!(doc["issuer"], issuer);
        assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
        assert_eq!(doc["registration_endpoint"], format!("{issuer}/register"));
        assert_eq!(doc["token_endpoint"], format!("{issuer}/oauth/token"));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        let grants = doc["grant_types_supported"].as_array().unwrap();
        assert!(grants.contains(&json!("authorization_code")));
        assert!(grants.contains(&json!("refresh_token")));
        let methods = doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        assert!(methods.contains(&json!("none")));

        kit.server.set_code_challenge_methods(None);
        kit.server.set_iss_parameter_supported(false);
        kit.server
            .set_metadata_issuer(Some("https://elsewhere.test"));
        kit.server.set_dynamic_registration(false);
        let doc = kit
            .get("/.well-known/oauth-authorization-server")
            .await
            .json();
        assert!(doc.get("code_challenge_methods_supported").is_none());
        assert_eq!(doc["authorization_response_iss_parameter_supported"], false);
        assert_eq!(doc["issuer"], "https://elsewhere.test");
        assert!(doc.get("registration_endpoint").is_none());
        let refused = kit.register(json!({"redirect_uris": [REDIRECT]})).await;
        assert_eq!(refused.status, 404);
    })
    .await;
}

#[tokio::test]
async fn authorize_redirects_only_to_a_registered_uri_and_requires_s256() {
    bounded(async {
        let kit = Kit::start().await;
        let id = public_client(&kit).await;
        // Never redirected: an unknown client, a redirect URI not registered.
        assert_eq!(kit.authorize("nobody", &[]).await.status, 400);
        let elsewhere = kit
            .authorize(&id, &[("redirect_uri", "http://evil.test/cb")])
            .await;
        assert_eq!(elsewhere.status, 400);
        let localhost = kit
            .authorize(&id, &[("redirect_uri", "http://localhost:8976/cb")])
            .await;
        assert_eq!(
            localhost.status, 400,
            "localhost is not a loopback IP literal"
        );
        // Any port on 127.0.0.1 (RFC 8252 §7.3).
        let other_port = "http://127.0.0.1:1234/cb";
        let ok = redirect(&kit.authorize(&id, &[("redirect_uri", other_port)]).await);
        assert_eq!(ok["base"], other_port);
        assert_eq!(
            (&ok["state"], &ok["iss"]),
            (&json!("st4te"), &json!(kit.server.issuer()))
        );
        // Errors go back to the client, with state and iss.
        for (change, expected) in [
            (("code_challenge_method", "plain"), "invalid_request"),
            (("code_challenge_method", ""), "invalid_request"),
            (("code_challenge", ""), "invalid_request"),
            (("response_type", "token"), "unsupported_response_type"),
            (("resource", "not a uri"), "invalid_target"),
        ] {
            let back = redirect(&kit.authorize(&id, &[change]).await);
            assert_eq!(back["error"], expected, "{change:?}");
            assert_eq!(back["state"], "st4te");
            assert!(back.get("code").is_none());
        }
        assert_eq!(kit.server.authorize_requests().len(), 9);
    })
    .await;
}

#[tokio::test]
async fn the_modes_change_state_iss_or_deny() {
    bounded(async {
        let kit = Kit::start().await;
        let id = public_client(&kit).await;
        kit.server.set_authorize_mode(AuthorizeMode::WrongState);
        assert_ne!(redirect(&kit.authorize(&id, &[]).await)["state"], "st4te");
        kit.server
            .set_authorize_mode(AuthorizeMode::WrongIssuer("https://evil.test".into()));
        assert_eq!(
            redirect(&kit.authorize(&id, &[]).await)["iss"],
            "https://evil.test"
        );
        kit.server.set_authorize_mode(AuthorizeMode::OmitIssuer);
        assert!(
            redirect(&kit.authorize(&id, &[]).await)
                .get("iss")
                .is_none()
        );
        kit.server.set_authorize_mode(AuthorizeMode::Deny);
        let denied = redirect(&kit.authorize(&id, &[]).await);
        assert_eq!(denied["error"], "access_denied");
        let description = denied["error_description"].as_str().unwrap();
        assert!(description.starts_with(HOSTILE_DESCRIPTION));
        assert!(description.len() > 1024);
        assert!(denied.get("code").is_none());
    })
    .await;
}

#[tokio::test]
async fn a_code_needs_its_verifier_redirect_uri_and_resource() {
    bounded(async {
        let kit = Kit::start().await;
        let id = public_client(&kit).await;
        for (change, expected) in [
            (("code_verifier", "x".repeat(43)), "invalid_grant"),
            (("code_verifier", String::new()), "invalid_request"),
            (
                ("redirect_uri", "http://127.0.0.1:1/cb".into()),
                "invalid_grant",
            ),
            (
                ("resource", "https://api.test/other".into()),
                "invalid_target",
            ),
            (("resource", String::new()), "invalid_target"),
        ] {
            let code = kit.code(&id).await;
            let refused = kit.redeem(&id, &code, &[(change.0, &change.1)]).await;
            assert_eq!(
                (refused.status.as_u16(), error(&refused)),
                (400, expected.into())
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_code_is_redeemed_once_by_its_client_and_a_replay_revokes_what_it_issued() {
    bounded(async {
        let kit = Kit::start().await;
        let id = public_client(&kit).await;
        // Another client (or none) cannot redeem it, and does not spend it.
        let code = kit.code(&id).await;
        let other = public_client(&kit).await;
        assert_eq!(
            error(&kit.redeem(&other, &code, &[]).await),
            "invalid_grant"
        );
        let anonymous = kit.redeem(&id, &code, &[("client_id", "")]).await;
        assert_eq!(
            (anonymous.status.as_u16(), error(&anonymous)),
            (401, "invalid_client".into())
        );

        let tokens = kit.redeem(&id, &code, &[]).await;
        assert_eq!(tokens.status, 200, "{:?}", tokens.json());
        let body = tokens.json();
        let at = claims(body["access_token"].as_str().unwrap());
        assert_eq!(at["aud"], RESOURCE);
        assert_eq!(at["scope"], "read");
        assert_eq!(at["sub"], "alice");
        assert_eq!(at["client_id"], id.as_str());
        assert_eq!(at["iss"], kit.server.issuer());
        assert_eq!(tokens.header("cache-control"), Some("no-store"));
        let rt = body["refresh_token"].as_str().unwrap().to_owned();

        // A public client refreshes with its client_id; the token rotates.
        let refresh = |rt: String| {
            let id = id.clone();
            let kit = &kit;
            async move {
                kit.token(
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &rt),
                        ("client_id", &id),
                    ],
                    None,
                )
                .await
            }
        };
        let refreshed = refresh(rt.clone()).await;
        assert_eq!(refreshed.status, 200, "{:?}", refreshed.json());
        let next = refreshed.json()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(next, rt);
        let at = claims(refreshed.json()["access_token"].as_str().unwrap());
        assert_eq!(
            (&at["aud"], &at["scope"]),
            (&json!(RESOURCE), &json!("read"))
        );

        // The code again: refused, and what it issued is revoked.
        let replay = kit.redeem(&id, &code, &[]).await;
        assert_eq!(error(&replay), "invalid_grant");
        assert_eq!(kit.server.replayed_codes(), 1);
        assert_eq!(error(&refresh(next).await), "invalid_grant");
        let seen = kit.server.redemptions();
        assert!(
            seen.iter()
                .all(|r| r.resource.is_none() || r.code_verifier || r.error.is_some())
        );
        assert_eq!(seen.iter().filter(|r| r.error.is_none()).count(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_confidential_client_authenticates_by_the_method_it_registered() {
    bounded(async {
        let kit = Kit::start().await;
        let reply = kit
            .register(json!({
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "client_secret_post",
            }))
            .await;
        assert_eq!(reply.status, 201);
        let id = reply.json()["client_id"].as_str().unwrap().to_owned();
        let secret = reply.json()["client_secret"].as_str().unwrap().to_owned();
        let code = kit.code(&id).await;
        let form = |secret| {
            [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("resource", RESOURCE),
                ("client_id", id.as_str()),
                ("client_secret", secret),
            ]
        };
        let wrong = kit.token(&form("wrong"), None).await;
        assert_eq!(
            (wrong.status.as_u16(), error(&wrong)),
            (401, "invalid_client".into())
        );
        // HTTP Basic is not the method it registered.
        let basic = kit.token(&form(&secret)[..5], Some((&id, &secret))).await;
        assert_eq!(error(&basic), "invalid_client");
        let ok = kit.token(&form(&secret), None).await;
        assert_eq!(ok.status, 200, "{:?}", ok.json());
        let seen = kit.server.redemptions();
        assert_eq!(seen.last().unwrap().client_auth, "client_secret_post");
    })
    .await;
}
