//! The issuer's side: its metadata (OpenID discovery, RFC 8414), its key set, and whether the
//! token's `kid`, `alg` and signature agree with them.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::http::Http;
use crate::report::{Check, Outcome, quoted, quoted_list};
use crate::token::Decoded;

/// At most this many keys are tried for one token.
const MAX_CANDIDATES: usize = 8;

/// What the key set says of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// A published key verifies the signature.
    Verified,
    /// The `kid` names no key in the set (the set's kids, for the detail).
    UnknownKey { kid: String, known: Vec<String> },
    /// The token's `alg` cannot be used with the key it names (or at all).
    AlgorithmNotAllowed(String),
    /// The key is there and fits, and the signature does not verify.
    BadSignature,
    /// The metadata or the key set could not be fetched.
    Unavailable(String),
    /// Nothing to decide (an HMAC token, no issuer known); the check says why.
    NotChecked,
}

/// The URLs an issuer's metadata may be at: OpenID discovery, then RFC 8414 (whose
/// well-known segment goes between the host and the issuer's path).
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let trimmed = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{trimmed}/.well-known/openid-configuration")];
    if let Ok(uri) = issuer.parse::<http::Uri>()
        && let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority())
    {
        let path = uri.path().trim_end_matches('/');
        urls.push(format!(
            "{scheme}://{authority}/.well-known/oauth-authorization-server{path}"
        ));
    }
    urls
}

/// The key type (and curve) an algorithm needs.
fn family(alg: Algorithm) -> Option<(&'static str, Option<&'static str>)> {
    use Algorithm::*;
    Some(match alg {
        HS256 | HS384 | HS512 => ("oct", None),
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => ("RSA", None),
        ES256 => ("EC", Some("P-256")),
        ES384 => ("EC", Some("P-384")),
        EdDSA => ("OKP", Some("Ed25519")),
        _ => return None,
    })
}

fn text<'a>(key: &'a Value, name: &str) -> Option<&'a str> {
    key.get(name)?.as_str()
}

/// Fetch the issuer's metadata and key set and judge the token's key, algorithm and signature,
/// recording each step in `checks`.
pub async fn judge(
    http: &Http,
    issuer: &str,
    token: &Decoded,
    checks: &mut Vec<Check>,
) -> KeyVerdict {
    let alg_name = token.alg().unwrap_or("");
    let parsed = alg_name.parse::<Algorithm>().ok();
    let (alg, (kty, crv)) = match parsed.and_then(|a| Some((a, family(a)?))) {
        Some(found) => found,
        None => {
            let why = if alg_name.eq_ignore_ascii_case("none") {
                "the token is unsigned (alg \"none\"), which no careful server accepts".to_owned()
            } else {
                format!(
                    "the token's alg {} is not a JWS signature algorithm",
                    quoted(alg_name)
                )
            };
            checks.push(Check::new("alg", Outcome::Fail, why.clone()));
            return KeyVerdict::AlgorithmNotAllowed(why);
        }
    };

    let mut jwks_uri = None;
    let mut failures = Vec::new();
    for url in metadata_urls(issuer) {
        match http.get_json(&url).await {
            Ok(meta) => {
                let stated = text(&meta, "issuer").unwrap_or("");
                if stated != issuer {
                    checks.push(Check::new(
                        "issuer_metadata",
                        Outcome::Warn,
                        format!(
                            "{url} names the issuer {}, not {}",
                            quoted(stated),
                            quoted(issuer)
                        ),
                    ));
                } else {
                    checks.push(Check::new(
                        "issuer_metadata",
                        Outcome::Pass,
                        format!("read {url}"),
                    ));
                }
                jwks_uri = text(&meta, "jwks_uri").map(str::to_owned);
                if jwks_uri.is_none() {
                    failures.push(format!("{url} has no jwks_uri"));
                }
                break;
            }
            Err(e) => failures.push(format!("{url} {e}")),
        }
    }
    let Some(jwks_uri) = jwks_uri else {
        let why = format!("no issuer metadata with a key set: {}", failures.join("; "));
        checks.push(Check::new("issuer_metadata", Outcome::Fail, why.clone()));
        return KeyVerdict::Unavailable(why);
    };
    let set = match http.get_json(&jwks_uri).await {
        Ok(set) => set,
        Err(e) => {
            let why = format!("the key set {jwks_uri} {e}");
            checks.push(Check::new("jwks", Outcome::Fail, why.clone()));
            return KeyVerdict::Unavailable(why);
        }
    };
    let keys: Vec<&Value> = set
        .get("keys")
        .and_then(Value::as_array)
        .map(|k| k.iter().collect())
        .unwrap_or_default();
    checks.push(Check::new(
        "jwks",
        Outcome::Pass,
        format!("{jwks_uri} holds {} key(s)", keys.len()),
    ));

    let named: Vec<&Value> = match token.kid() {
        Some(kid) => keys
            .iter()
            .copied()
            .filter(|k| text(k, "kid") == Some(kid))
            .collect(),
        None => Vec::new(),
    };
    if kty == "oct" {
        // A key set never publishes a shared secret. A token signed with one that names a
        // published (public) key is the HS/RS confusion attack; otherwise there is nothing here
        // to check the signature with.
        if let Some(key) = named.first() {
            let why = format!(
                "the token is signed with {alg_name} (a shared secret) but names the published {} \
                 key {}: servers refuse this (algorithm confusion)",
                text(key, "kty").unwrap_or("?"),
                quoted(token.kid().unwrap_or(""))
            );
            checks.push(Check::new("alg", Outcome::Fail, why.clone()));
            return KeyVerdict::AlgorithmNotAllowed(why);
        }
        checks.push(Check::new(
            "signature",
            Outcome::Skip,
            format!("{alg_name} is signed with a shared secret, which no key set publishes"),
        ));
        return KeyVerdict::NotChecked;
    }
    let candidates = match token.kid() {
        Some(_) => named,
        None => keys
            .iter()
            .copied()
            .filter(|k| text(k, "kty") == Some(kty))
            .collect(),
    };
    if candidates.is_empty() {
        let kid = token.kid().unwrap_or("(none)").to_owned();
        let known: Vec<String> = keys
            .iter()
            .filter_map(|k| text(k, "kid"))
            .map(str::to_owned)
            .collect();
        checks.push(Check::new(
            "kid",
            Outcome::Fail,
            format!(
                "kid {} is not in the key set (it has {})",
                quoted(&kid),
                quoted_list(&known)
            ),
        ));
        return KeyVerdict::UnknownKey { kid, known };
    }
    checks.push(Check::new(
        "kid",
        Outcome::Pass,
        "the key set has the token's key",
    ));

    let mut last = KeyVerdict::BadSignature;
    // A key set may hold any number of keys under one kid; a handful of verifications is
    // enough to judge, and bounds what a hostile key set can make this command do.
    for key in candidates.into_iter().take(MAX_CANDIDATES) {
        if let Some(key_alg) = text(key, "alg")
            && key_alg != alg_name
        {
            last = KeyVerdict::AlgorithmNotAllowed(format!(
                "the token says alg {alg_name} but its key allows only {key_alg}"
            ));
            continue;
        }
        if text(key, "kty") != Some(kty) || (crv.is_some() && text(key, "crv") != crv) {
            last = KeyVerdict::AlgorithmNotAllowed(format!(
                "the token says alg {alg_name} but its key is a {} {} key",
                text(key, "kty").unwrap_or("?"),
                text(key, "crv").unwrap_or("")
            ));
            continue;
        }
        let verified = serde_json::from_value::<Jwk>(key.clone())
            .ok()
            .and_then(|jwk| DecodingKey::from_jwk(&jwk).ok())
            .and_then(|dk| {
                jsonwebtoken::crypto::verify(
                    &token.signature,
                    token.signing_input.as_bytes(),
                    &dk,
                    alg,
                )
                .ok()
            });
        if verified == Some(true) {
            checks.push(Check::new(
                "signature",
                Outcome::Pass,
                format!(
                    "verifies with key {}",
                    quoted(text(key, "kid").unwrap_or(""))
                ),
            ));
            return KeyVerdict::Verified;
        }
        last = KeyVerdict::BadSignature;
    }
    match &last {
        KeyVerdict::AlgorithmNotAllowed(why) => {
            checks.push(Check::new("alg", Outcome::Fail, why.clone()))
        }
        _ => checks.push(Check::new(
            "signature",
            Outcome::Fail,
            "the signature does not verify with the token's key",
        )),
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_metadata_locations_are_tried_in_order() {
        assert_eq!(
            metadata_urls("https://id.example/tenant/"),
            [
                "https://id.example/tenant/.well-known/openid-configuration",
                "https://id.example/.well-known/oauth-authorization-server/tenant",
            ]
        );
        assert_eq!(
            metadata_urls("http://127.0.0.1:9"),
            [
                "http://127.0.0.1:9/.well-known/openid-configuration",
                "http://127.0.0.1:9/.well-known/oauth-authorization-server",
            ]
        );
    }
}
