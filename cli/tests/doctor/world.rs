//! Every server of the situations, and the tokens sent to them.

use std::net::SocketAddr;

use jsonwebtoken::{Algorithm, Header};
use portcullis::testkit::{TestIssuer, now};
use serde_json::json;

use crate::demo_app::{AUDIENCE, DemoApi};
use crate::legacy::{Legacy, legacy};
use crate::support::{demo, demo_with_jwks, resource_server};

/// The servers: the demo (`d`), the legacy API (`l`), the demo verifying keys from the legacy
/// server's providers (`--jwks-url` mode: one rotated, one down), and a resource server with
/// RFC 9728 metadata.
pub(crate) struct World {
    pub d: SocketAddr,
    pub l: SocketAddr,
    pub rotated_api: SocketAddr,
    pub down_api: SocketAddr,
    pub rs: SocketAddr,
    pub tokens: Tokens,
}

/// The tokens of the situations, each wrong (or right) in one way.
pub(crate) struct Tokens {
    pub valid: String,
    pub read_only: String,
    pub expired: String,
    pub future: String,
    pub other_aud: String,
    pub other_iss: String,
    pub gone_kid: String,
    pub confused: String,
    pub forged: String,
    pub for_mcp: String,
    pub legacy_valid: String,
    pub legacy_hs: String,
    pub legacy_expired: String,
    pub legacy_other_aud: String,
    pub from_old: String,
    pub from_down: String,
}

impl World {
    /// Start every server and mint every token.
    pub(crate) async fn start() -> World {
        let (d, api) = demo().await;
        let legacy = legacy().await;
        let old = &legacy.old;
        let down = &legacy.down;
        let rotated_api = demo_with_jwks(&format!("{}/jwks", old.issuer()), old.issuer()).await;
        let down_api = demo_with_jwks(&format!("{}/jwks", down.issuer()), down.issuer()).await;
        let rs = resource_server(&api.issuer).await;
        let tokens = Tokens::mint(&api, &legacy, &format!("http://{rs}/mcp"));
        World {
            d,
            l: legacy.addr,
            rotated_api,
            down_api,
            rs,
            tokens,
        }
    }

    /// `http://{addr}{path}`.
    pub(crate) fn url(&self, addr: SocketAddr, path: &str) -> String {
        format!("http://{addr}{path}")
    }

    /// The demo's `/api/me`.
    pub(crate) fn me(&self) -> String {
        self.url(self.d, "/api/me")
    }

    /// The resource server's `/mcp`.
    pub(crate) fn mcp(&self) -> String {
        self.url(self.rs, "/mcp")
    }

    /// Every token, none of which may be printed.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        let t = &self.tokens;
        [
            &t.valid,
            &t.read_only,
            &t.expired,
            &t.future,
            &t.other_aud,
            &t.other_iss,
            &t.gone_kid,
            &t.confused,
            &t.forged,
            &t.legacy_valid,
            &t.legacy_hs,
            &t.legacy_expired,
            &t.legacy_other_aud,
            &t.from_old,
            &t.from_down,
            &t.for_mcp,
        ]
        .map(String::as_str)
        .to_vec()
    }
}

impl Tokens {
    fn mint(api: &DemoApi, legacy: &Legacy, mcp: &str) -> Tokens {
        let t = &api.tokens;
        let iss = &api.issuer;
        let (idp, old, down) = (&legacy.idp, &legacy.old, &legacy.down);
        let valid = t.access_token("alice", "read write", 300);
        let read_only = t.access_token("alice", "read", 300);
        let with = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut c = iss.access_claims("alice", AUDIENCE, "read", 300);
            change(&mut c);
            iss.mint(Algorithm::ES256, c)
        };
        let with_header = |kid: &str, alg: Algorithm| {
            let header = Header {
                kid: Some(kid.into()),
                ..Header::new(alg)
            };
            iss.mint_with_header(header, iss.access_claims("alice", AUDIENCE, "read", 300))
        };
        let legacy_aud = |who: &TestIssuer, alg, aud: &str, ttl| {
            who.mint(alg, who.access_claims("bob", aud, "read", ttl))
        };
        Tokens {
            expired: t.access_token("alice", "read", -300),
            future: iss.mint(Algorithm::ES256, {
                let mut c = iss.access_claims("alice", AUDIENCE, "read", 900);
                c["nbf"] = json!(now() + 630);
                c
            }),
            other_aud: iss.mint(
                Algorithm::ES256,
                iss.access_claims("alice", "billing-api", "read", 300),
            ),
            other_iss: with(&|c| c["iss"] = json!(format!("{}/idp", legacy_base(legacy)))),
            gone_kid: with_header("retired-2025", Algorithm::ES256),
            // HS256 with the secret, naming the published P-256 key: algorithm confusion.
            confused: with_header(iss.kid(Algorithm::ES256), Algorithm::HS256),
            forged: tampered(&valid, &read_only),
            for_mcp: iss.mint(
                Algorithm::ES256,
                iss.access_claims("alice", mcp, "read", 300),
            ),
            legacy_valid: legacy_aud(idp, Algorithm::RS256, "legacy", 1_800),
            legacy_hs: legacy_aud(idp, Algorithm::HS256, "legacy", 600),
            legacy_expired: legacy_aud(idp, Algorithm::RS256, "legacy", -600),
            legacy_other_aud: legacy_aud(idp, Algorithm::RS256, "somebody-else", 600),
            from_old: legacy_aud(old, Algorithm::ES256, AUDIENCE, 600),
            from_down: legacy_aud(down, Algorithm::ES256, AUDIENCE, 600),
            valid,
            read_only,
        }
    }
}

fn legacy_base(legacy: &Legacy) -> String {
    format!("http://{}", legacy.addr)
}

/// `token` with the signature of `other`.
fn tampered(token: &str, other: &str) -> String {
    let (head, _) = token.rsplit_once('.').unwrap();
    let (_, sig) = other.rsplit_once('.').unwrap();
    format!("{head}.{sig}")
}
