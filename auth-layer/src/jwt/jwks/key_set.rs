//! A fetched key set: parsed from a JWK Set document, public keys only.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};

use super::settings::JwksSettings;
use crate::error::JwksError;
use crate::jwt::key_map::KeyMap;
use crate::jwt::keys::JwtKey;

/// A parsed key set: its keys by `kid` (a token without `kid` may use the only key of a
/// document that has one key; a `kid` no key has is a reason to fetch again).
pub(crate) struct KeySet {
    pub(crate) map: KeyMap,
    /// Every key with the JWK it came from. A key that is in the next fetch unchanged keeps
    /// its `Arc`, so tokens it verified stay in the verified-token cache; a key that left
    /// the set is dropped, and with it every cached verdict it gave.
    /// Keyed by the JWK's JSON as `serde_json` writes it (members sorted), so a provider that
    /// reorders members does not look like a rotation.
    pub(crate) all: Vec<(String, Arc<JwtKey>)>,
}

impl KeySet {
    pub(crate) fn get(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<JwtKey>> {
        self.map.get(kid, alg).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }
}

/// The most JWKs read from one document. Providers publish a handful; a document with more
/// would cost a key parse each (and an O(n²) duplicate check per `kid`) on every fetch.
pub(crate) const MAX_KEYS: usize = 256;

/// Parse a JWK Set, keeping every public key usable for signature verification and skipping
/// the rest. Keys unchanged since `previous` keep their identity.
pub(crate) fn parse_key_set(
    body: &[u8],
    settings: &JwksSettings,
    previous: Option<&KeySet>,
) -> Result<KeySet, JwksError> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc =
        serde_json::from_slice(body).map_err(|e| JwksError::InvalidDocument(e.to_string()))?;
    if doc.keys.len() > MAX_KEYS {
        tracing::warn!(target: "portcullis::jwks", keys = doc.keys.len(), "the key set has more JWKs than are read; the first {MAX_KEYS} are used");
    }
    let kept: HashMap<&str, &Arc<JwtKey>> = previous
        .map(|p| p.all.iter().map(|(j, k)| (j.as_str(), k)).collect())
        .unwrap_or_default();
    let mut by_kid: HashMap<String, Vec<Arc<JwtKey>>> = HashMap::new();
    let mut all: Vec<(String, Arc<JwtKey>)> = Vec::new();
    for value in doc.keys.into_iter().take(MAX_KEYS) {
        let json = value.to_string();
        let key = match kept.get(json.as_str()) {
            Some(key) => Arc::clone(key),
            None => match parse_public_jwk(&value, settings) {
                Some(key) => Arc::new(key),
                None => continue,
            },
        };
        if let Some(kid) = key.kid() {
            let same_kid = by_kid.entry(kid.to_owned()).or_default();
            if same_kid
                .iter()
                .any(|k| k.algorithms().iter().any(|a| key.allows(*a)))
            {
                tracing::debug!(target: "portcullis::jwks", kid, "skipping a JWK whose kid and algorithm repeat an earlier key; the first is kept");
                continue;
            }
            same_kid.push(key.clone());
        }
        all.push((json, key));
    }
    if all.is_empty() {
        return Err(JwksError::NoUsableKeys);
    }
    let only = (all.len() == 1).then(|| all[0].1.clone());
    Ok(KeySet {
        map: KeyMap::fetched(by_kid, only),
        all,
    })
}

/// One JWK of a fetched set as a public verification key, or `None` (with a debug event) when
/// it is not one this layer may use.
fn parse_public_jwk(value: &serde_json::Value, settings: &JwksSettings) -> Option<JwtKey> {
    let Ok(jwk) = serde_json::from_value::<Jwk>(value.clone()) else {
        tracing::debug!(target: "portcullis::jwks", "skipping a JWK that does not parse");
        return None;
    };
    // RFC 7517 lets a client ignore keys it does not use. A symmetric key in a published
    // document is a secret anyone can read: trusting it would let anyone mint tokens.
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        tracing::debug!(target: "portcullis::jwks", kid = jwk.common.key_id.as_deref(), "skipping a symmetric (oct) JWK: a fetched key set yields public keys only");
        return None;
    }
    let key = match JwtKey::from_jwk(&jwk) {
        Ok(k) => k,
        Err(_)
            if jwk.common.key_algorithm.is_none()
                && matches!(jwk.algorithm, AlgorithmParameters::RSA(_)) =>
        {
            let dk = jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?;
            let k = JwtKey::new(dk, settings.rsa_default_algorithms).ok()?;
            match &jwk.common.key_id {
                Some(kid) => k.with_kid(kid.clone()),
                None => k,
            }
        }
        Err(e) => {
            tracing::debug!(target: "portcullis::jwks", kid = jwk.common.key_id.as_deref(), error = %e, "skipping an unusable JWK");
            return None;
        }
    };
    // Belt and braces: whatever the JWK claimed, no HMAC algorithm comes out of a fetched set.
    if key.is_symmetric() {
        tracing::debug!(target: "portcullis::jwks", kid = jwk.common.key_id.as_deref(), "skipping a symmetric JWK");
        return None;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_keep_usable_keys_and_skip_the_rest() {
        let cfg = JwksSettings::default();
        let doc = br#"{"keys":[
            {"kty":"RSA","kid":"r1","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"},
            {"kty":"EC","kid":"e1","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","alg":"ES256"},
            {"kty":"EC","kid":"bad-curve","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","alg":"ES384"},
            {"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB","alg":"RSA-OAEP"},
            {"kty":"oct","kid":"no-alg","k":"c2VjcmV0"},
            {"kty":"weird"},
            "not even an object"
        ]}"#;
        let set = parse_key_set(doc, &cfg, None).unwrap();
        let kids: Vec<_> = set.map.kids().collect();
        assert_eq!(kids, ["e1", "r1"]);
        assert_eq!(
            set.map.named("r1").unwrap()[0].algorithms(),
            [Algorithm::RS256]
        );
    }

    const RSA_N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    /// A published document is public: a symmetric key in it is skipped, with or without an
    /// `alg`, and the public keys beside it still work.
    #[test]
    fn symmetric_keys_in_a_fetched_set_are_skipped() {
        let cfg = JwksSettings::default();
        let doc = format!(
            r#"{{"keys":[
            {{"kty":"oct","kid":"hs","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0"}},
            {{"kty":"oct","kid":"hs2","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0"}},
            {{"kty":"RSA","kid":"r1","alg":"RS256","n":"{RSA_N}","e":"AQAB"}}
        ]}}"#
        );
        let set = parse_key_set(doc.as_bytes(), &cfg, None).unwrap();
        assert!(set.get(Some("hs"), Algorithm::HS256).is_none());
        assert!(set.get(Some("hs2"), Algorithm::HS256).is_none());
        assert!(set.get(Some("r1"), Algorithm::RS256).is_some());
        assert!(set.all.iter().all(|(_, k)| !k.is_symmetric()));
        let only_oct = br#"{"keys":[{"kty":"oct","kid":"hs","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0"}]}"#;
        assert_eq!(
            parse_key_set(only_oct, &cfg, None).err(),
            Some(JwksError::NoUsableKeys)
        );
    }

    /// Two keys under one `kid` for different algorithms are both kept and chosen by `alg`; a
    /// second key for the same `kid` and algorithm does not shadow the first.
    #[test]
    fn keys_sharing_a_kid_are_chosen_by_algorithm() {
        let cfg = JwksSettings::default();
        let doc = format!(
            r#"{{"keys":[
            {{"kty":"RSA","kid":"k","alg":"RS256","n":"{RSA_N}","e":"AQAB"}},
            {{"kty":"EC","kid":"k","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","alg":"ES256"}},
            {{"kty":"RSA","kid":"k","alg":"PS256","n":"{RSA_N}","e":"AQAB"}},
            {{"kty":"EC","kid":"k","use":"sig","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","alg":"ES256"}}
        ]}}"#
        );
        let set = parse_key_set(doc.as_bytes(), &cfg, None).unwrap();
        assert_eq!(
            set.map.named("k").unwrap().len(),
            3,
            "the repeated ES256 key is skipped"
        );
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::PS256] {
            assert!(set.get(Some("k"), alg).unwrap().allows(alg), "{alg:?}");
        }
        let es = set.get(Some("k"), Algorithm::ES256).unwrap();
        assert!(
            Arc::ptr_eq(&es, &set.map.named("k").unwrap()[1]),
            "the first ES256 key wins"
        );
        // An algorithm no key allows still finds a key, whose allowlist then refuses it.
        assert!(
            !set.get(Some("k"), Algorithm::ES384)
                .unwrap()
                .allows(Algorithm::ES384)
        );
    }

    /// A document of thousands of keys reads only the first `MAX_KEYS`.
    #[test]
    fn a_huge_key_set_is_read_up_to_the_bound() {
        let key =
            format!(r#"{{"kty":"RSA","alg":"RS256","n":"{RSA_N}","e":"AQAB","kid":"k{{}}"}}"#);
        let keys: Vec<String> = (0..1000)
            .map(|i| key.replace("{}", &i.to_string()))
            .collect();
        let doc = format!(r#"{{"keys":[{}]}}"#, keys.join(","));
        let set = parse_key_set(doc.as_bytes(), &JwksSettings::default(), None).unwrap();
        assert_eq!(set.len(), MAX_KEYS);
    }

    /// A key that is in the next fetch unchanged (members reordered or not) keeps its identity
    /// (its cached verdicts stay); a changed key is a new one.
    #[test]
    fn unchanged_keys_keep_their_identity_across_fetches() {
        let cfg = JwksSettings::default();
        let v1 = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"a","alg":"RS256","n":"{RSA_N}","e":"AQAB"}}]}}"#
        );
        let v2 = format!(
            r#"{{"keys":[{{"e":"AQAB","n":"{RSA_N}","alg":"RS256","kid":"a","kty":"RSA"}},{{"kty":"RSA","kid":"b","alg":"RS256","n":"{RSA_N}","e":"AQAB"}}]}}"#
        );
        let first = parse_key_set(v1.as_bytes(), &cfg, None).unwrap();
        let second = parse_key_set(v2.as_bytes(), &cfg, Some(&first)).unwrap();
        assert!(Arc::ptr_eq(
            &first.map.named("a").unwrap()[0],
            &second.map.named("a").unwrap()[0]
        ));
        assert!(!Arc::ptr_eq(
            &first.map.named("a").unwrap()[0],
            &second.map.named("b").unwrap()[0]
        ));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        let cfg = JwksSettings::default();
        for doc in [
            &b"<html>"[..],
            b"{\"keys\": [",
            b"{\"keys\": 7}",
            b"{}",
            b"{\"keys\":[]}",
            b"{\"keys\":[{\"kty\":\"RSA\"}]}",
        ] {
            assert!(
                parse_key_set(doc, &cfg, None).is_err(),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    proptest::proptest! {
        /// Any bytes, and JSON key sets of arbitrary members: a typed error or public keys,
        /// never a panic and never an HMAC key.
        #[test]
        fn key_set_parser_never_panics_nor_yields_a_symmetric_key(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            kty in "RSA|EC|OKP|oct|",
            alg in "HS256|RS256|ES256|EdDSA|none|",
            member in "[ -~]{0,40}",
        ) {
            let cfg = JwksSettings::default();
            let _ = parse_key_set(&body, &cfg, None);
            let doc = serde_json::json!({"keys": [
                {"kty": kty, "alg": alg, "kid": "k", "k": member, "n": member, "e": "AQAB",
                 "crv": "P-256", "x": member, "y": member},
            ]});
            if let Ok(set) = parse_key_set(doc.to_string().as_bytes(), &cfg, None) {
                proptest::prop_assert!(set.all.iter().all(|(_, k)| !k.is_symmetric()));
            }
        }
    }
}
