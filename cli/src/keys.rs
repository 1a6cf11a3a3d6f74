//! The issuer's side: its metadata (OpenID discovery, RFC 8414), its key set, and whether the
//! token's `kid`, `alg` and signature agree with them.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use portcullis_wire::well_known;
use serde_json::Value;

use crate::http::Http;
use crate::report::{Check, Outcome, quoted, quoted_list};
use crate::token::Decoded;

/// At most this many keys are tried for one token.
const MAX_CANDIDATES: usize = 8;

/// What the key set says of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyVerdict {
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

/// The key type and curve of a token's algorithm.
struct Family {
    alg: Algorithm,
    kty: &'static str,
    crv: Option<&'static str>,
}

/// Fetch the issuer's metadata and key set and judge the token's key, algorithm and signature,
/// recording each step in `checks`.
pub(crate) async fn judge(
    http: &Http,
    issuer: &str,
    token: &Decoded,
    checks: &mut Vec<Check>,
) -> KeyVerdict {
    let family = match token_family(token) {
        Ok(f) => f,
        Err(why) => {
            checks.push(Check::new("alg", Outcome::Fail, why.clone()));
            return KeyVerdict::AlgorithmNotAllowed(why);
        }
    };
    let jwks_uri = match find_jwks_uri(http, issuer, checks).await {
        Ok(uri) => uri,
        Err(why) => return KeyVerdict::Unavailable(why),
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
    match candidates(token, &family, &keys, checks) {
        Ok(candidates) => verify(token, &family, candidates, checks),
        Err(verdict) => verdict,
    }
}

/// The token's algorithm and the key type it needs, or why it has none.
fn token_family(token: &Decoded) -> Result<Family, String> {
    let alg_name = token.alg().unwrap_or("");
    let parsed = alg_name.parse::<Algorithm>().ok();
    match parsed.and_then(|a| Some((a, family(a)?))) {
        Some((alg, (kty, crv))) => Ok(Family { alg, kty, crv }),
        None if alg_name.eq_ignore_ascii_case("none") => {
            Err("the token is unsigned (alg \"none\"), which no careful server accepts".to_owned())
        }
        None => Err(format!(
            "the token's alg {} is not a JWS signature algorithm",
            quoted(alg_name)
        )),
    }
}

/// The issuer's `jwks_uri`, from the first metadata document that names one, at the URLs
/// clients look (RFC 8414, then OpenID Connect Discovery).
async fn find_jwks_uri(
    http: &Http,
    issuer: &str,
    checks: &mut Vec<Check>,
) -> Result<String, String> {
    let urls = match issuer.parse::<http::Uri>() {
        Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => {
            well_known::authorization_server_urls(&uri)
        }
        _ => Vec::new(),
    };
    let mut failures = Vec::new();
    if urls.is_empty() {
        failures.push(format!("{} is not an absolute URL", quoted(issuer)));
    }
    for url in urls {
        let meta = match http.get_json(&url).await {
            Ok(meta) => meta,
            Err(e) => {
                failures.push(format!("{url} {e}"));
                continue;
            }
        };
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
        match text(&meta, "jwks_uri") {
            Some(uri) => return Ok(uri.to_owned()),
            // RFC 8414 makes `jwks_uri` optional: the OpenID Connect document may have it.
            None => failures.push(format!("{url} has no jwks_uri")),
        }
    }
    let why = format!("no issuer metadata with a key set: {}", failures.join("; "));
    checks.push(Check::new("issuer_metadata", Outcome::Fail, why.clone()));
    Err(why)
}

/// The published keys that may have signed the token: those its `kid` names, else those of
/// its key type. A verdict instead when there is nothing to verify with.
fn candidates<'k>(
    token: &Decoded,
    family: &Family,
    keys: &[&'k Value],
    checks: &mut Vec<Check>,
) -> Result<Vec<&'k Value>, KeyVerdict> {
    let alg_name = token.alg().unwrap_or("");
    let named: Vec<&Value> = match token.kid() {
        Some(kid) => keys
            .iter()
            .copied()
            .filter(|k| text(k, "kid") == Some(kid))
            .collect(),
        None => Vec::new(),
    };
    if family.kty == "oct" {
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
            return Err(KeyVerdict::AlgorithmNotAllowed(why));
        }
        checks.push(Check::new(
            "signature",
            Outcome::Skip,
            format!("{alg_name} is signed with a shared secret, which no key set publishes"),
        ));
        return Err(KeyVerdict::NotChecked);
    }
    let candidates = match token.kid() {
        Some(_) => named,
        None => keys
            .iter()
            .copied()
            .filter(|k| text(k, "kty") == Some(family.kty))
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
        return Err(KeyVerdict::UnknownKey { kid, known });
    }
    checks.push(Check::new(
        "kid",
        Outcome::Pass,
        "the key set has the token's key",
    ));
    Ok(candidates)
}

/// Verify the token's signature with the first candidate that fits its algorithm.
fn verify(
    token: &Decoded,
    family: &Family,
    candidates: Vec<&Value>,
    checks: &mut Vec<Check>,
) -> KeyVerdict {
    let alg_name = token.alg().unwrap_or("");
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
        if text(key, "kty") != Some(family.kty)
            || (family.crv.is_some() && text(key, "crv") != family.crv)
        {
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
                    family.alg,
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
