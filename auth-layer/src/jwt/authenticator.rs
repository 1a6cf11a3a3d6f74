use std::any::TypeId;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;

use jsonwebtoken::Algorithm;

use super::cache::{CacheStats, VerifiedCache};
use super::claims::{self, Registered, RolesClaim};
use super::header::{self, malformed};
use super::keys::{JwtKey, KeyLookup, KeySource};
use super::time::{check_times, expired_from, unix_now};

use crate::authenticator::fast_path::{FastPath, Seal};
use crate::authenticator::{Authentication, Authenticator};
use crate::credential::{CredentialKind, PresentedCredential, check_syntax};
use crate::error::{AuthError, ErrorCode};
use crate::principal::{ClaimsType, Fields, Principal};
use crate::revocation::{CheckOutcome, Revocation, RevocationStatus};

/// Tokens longer than this are refused before any decoding (a bound on work per request).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Verifies JWT bearer tokens (in the `Authorization` header or a cookie).
///
/// `C` is the type of your own claims, parsed from the payload and attached to the
/// [`Principal`] (read them with `principal.claims::<C>()` or the `Claims<C>` extractor).
/// With the default `C = ()` nothing beyond the registered claims is parsed.
///
/// # Clones share everything
/// An authenticator is one [`Arc`] inside: a clone is a new handle on the same key source (a
/// `JwksKeySource`'s cached key set and its single fetch included), the same checks (issuers,
/// audiences, leeway, `typ`, required claims), the same revocation hook and the same
/// verified-token cache and its [`cache_stats`](Self::cache_stats).
/// Build it once and clone it wherever tokens are read: for the bearer header and a session
/// cookie of one [`AuthLayer`](crate::AuthLayer), or for several layers. A cache entry also
/// records how its token was presented, so a token verified as a bearer is verified once more
/// the first time it comes in the cookie.
///
/// ```
/// use portcullis::server::jsonwebtoken::Algorithm;
/// use portcullis::server::jwt::{JwtAuthenticator, JwtKey};
/// use portcullis::server::{AuthLayer, CsrfKey, CsrfPolicy};
/// # fn main() -> Result<(), portcullis::server::ConfigError> {
/// let jwt = JwtAuthenticator::builder()
///     .key(JwtKey::hmac(b"an-hmac-secret-of-at-least-32-bytes!", &[Algorithm::HS256])?)
///     .audience("orders-api")
///     .build()?;
/// let layer = AuthLayer::builder()
///     .bearer(jwt.clone())
///     .cookie("__Host-session", jwt)
///     .csrf(CsrfPolicy::session_bound(CsrfKey::new(b"a-csrf-secret-of-at-least-32-bytes")?))
///     .build()?;
/// # let _ = layer; Ok(()) }
/// ```
pub struct JwtAuthenticator<C = ()> {
    pub(super) inner: Arc<Inner>,
    pub(super) _claims: PhantomData<fn() -> C>,
}

impl<C> Clone for JwtAuthenticator<C> {
    fn clone(&self) -> Self {
        JwtAuthenticator {
            inner: self.inner.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C> fmt::Debug for JwtAuthenticator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("issuers", &self.inner.issuers)
            .field("audiences", &self.inner.audiences)
            .field("leeway", &self.inner.leeway)
            .finish_non_exhaustive()
    }
}

pub(super) struct Inner {
    pub(super) keys: Arc<dyn KeySource>,
    pub(super) issuers: Vec<String>,
    pub(super) audiences: Vec<String>,
    pub(super) leeway: u64,
    pub(super) required: Vec<&'static str>,
    pub(super) token_type: Option<String>,
    /// Where the roles are read from.
    pub(super) roles: RolesClaim,
    /// This authenticator's key in the per-thread header memo (`token_type` is its rule).
    pub(super) reader: u64,
    pub(super) revocation: Option<Arc<dyn Revocation>>,
    pub(super) cache: Option<VerifiedCache>,
}

impl<C> JwtAuthenticator<C> {
    /// Hit/miss counts of the verified-token cache (`None` when it is off).
    pub fn cache_stats(&self) -> Option<&CacheStats> {
        self.inner.cache.as_ref().map(|c| &c.stats)
    }
}

/// A token taken apart, before its signature is known to be good: only the JOSE header has
/// been read; the claims stay encoded until [`Inner::check`].
struct Parsed<'t> {
    alg: Algorithm,
    kid: Option<Arc<str>>,
    signing_input: &'t [u8],
    payload: &'t [u8],
    signature: &'t [u8],
}

const THREE_PARTS: &str =
    "a JWT has exactly three dot-separated parts (encrypted tokens are not accepted)";

impl Inner {
    /// Everything that can be decided from the header, without the key.
    ///
    /// Works on bytes: the base64url decoding of each part is the only character check a good
    /// token needs, so the token is never scanned as UTF-8 or as a `b64token` on its own.
    fn parse<'t>(&self, token: &'t [u8]) -> Result<Parsed<'t>, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(malformed("the token is longer than 16 KiB"));
        }
        // The header and the signature are short: find their dots from either end. A third
        // dot in the long middle is looked for only once the token is refused (or before a
        // key fetch, see `three_parts`): the payload's base64url decoding refuses a dot, so
        // such a token is never accepted, and the scan costs as much as the header.
        let (Some(h_end), Some(s_start)) = (first_dot(token), last_dot(token)) else {
            return Err(malformed(THREE_PARTS));
        };
        if h_end == s_start {
            return Err(malformed(THREE_PARTS));
        }
        let header = header::read(self.reader, &token[..h_end], self.token_type.as_deref())?;
        Ok(Parsed {
            alg: header.alg,
            kid: header.kid,
            signing_input: &token[..s_start],
            payload: &token[h_end + 1..s_start],
            signature: &token[s_start + 1..],
        })
    }

    /// Decode the payload, read the registered claims (and `C`, in the same pass); refuse a
    /// token outside its time window.
    fn claims<C: DeserializeOwned + 'static>(
        &self,
        parsed: &Parsed<'_>,
        now: u64,
    ) -> Result<(Registered, UserClaims<C>), AuthError> {
        let payload = URL_SAFE_NO_PAD
            .decode(parsed.payload)
            .map_err(|_| malformed("the JWT payload is not base64url"))?;
        let (c, user) = read_claims::<C>(&payload, &self.roles)?;
        check_times(c.exp, c.nbf, c.iat, now, self.leeway)?;
        Ok((c, user))
    }

    /// Verify the signature and check the claims. Returns the registered claims and the
    /// user's claims (whose refusal, if any, comes after every other check).
    ///
    /// Which comes first follows the cost: an HMAC is cheaper than parsing the claims, so an
    /// HMAC token's claims are read only once its signature holds (a forged token costs no
    /// JSON parsing); an RSA/EC/EdDSA signature costs 30–65 times as much as the claims, so those claims
    /// are read first and a token outside its time window is refused without the signature
    /// check (reading the time claims early can only refuse a token, never accept a forged
    /// one).
    fn check<C: DeserializeOwned + 'static>(
        &self,
        parsed: &Parsed<'_>,
        key: &JwtKey,
        now: u64,
    ) -> Result<(Registered, UserClaims<C>), AuthError> {
        if !key.allows(parsed.alg) {
            return Err(AuthError::with_detail(
                ErrorCode::AlgorithmNotAllowed,
                "the token algorithm is not allowed for the key it names",
            ));
        }
        let hmac = matches!(
            parsed.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        );
        let early = if hmac {
            None
        } else {
            Some(self.claims::<C>(parsed, now)?)
        };
        if !key.verify(parsed.alg, parsed.signing_input, parsed.signature) {
            return Err(AuthError::new(ErrorCode::InvalidSignature));
        }
        let (c, user) = match early {
            Some(read) => read,
            None => self.claims::<C>(parsed, now)?,
        };
        if !self.issuers.is_empty() {
            match c.str(c.iss) {
                None => {
                    return Err(AuthError::with_detail(
                        ErrorCode::MissingClaim,
                        "the token has no iss claim",
                    ));
                }
                Some(iss) if !self.issuers.iter().any(|i| i == iss) => {
                    return Err(AuthError::new(ErrorCode::InvalidIssuer));
                }
                Some(_) => {}
            }
        }
        if !self.audiences.is_empty() {
            if c.aud.is_empty() {
                return Err(AuthError::with_detail(
                    ErrorCode::MissingClaim,
                    "the token has no aud claim",
                ));
            }
            if !c
                .audiences()
                .any(|a| self.audiences.iter().any(|ours| ours == a))
            {
                return Err(AuthError::new(ErrorCode::InvalidAudience));
            }
        }
        if let Some(name) = self.required.iter().find(|n| !c.has(n)) {
            return Err(AuthError::with_detail(
                ErrorCode::MissingClaim,
                format!("the token lacks the required claim {name}"),
            ));
        }
        Ok((c, user))
    }

    /// `Ok(None)`: not revoked; `Ok(Some(_))`: the hook has to look it up first.
    fn revoked(&self, p: &Principal) -> Result<Option<StatusFuture>, AuthError> {
        let Some(hook) = &self.revocation else {
            return Ok(None);
        };
        match hook.check(p).0 {
            CheckOutcome::Ready(status) => status.into_result().map(|()| None),
            CheckOutcome::Pending(status) => Ok(Some(status)),
        }
    }
}

type StatusFuture = std::pin::Pin<Box<dyn std::future::Future<Output = RevocationStatus> + Send>>;

/// A verified token, as far as the revocation check.
enum Finished {
    /// Not revoked (and remembered by the cache, if there is one).
    Live(Principal),
    /// The revocation hook has to look it up in its store first.
    Asking(Asking),
}

/// A verified principal waiting for its revocation look-up.
struct Asking {
    principal: Principal,
    status: StatusFuture,
    /// What the verified-token cache needs once the principal is known to be live: the time
    /// the entry is good until, the time of verification and the key.
    remember: Option<(u64, u64, Arc<JwtKey>)>,
}

/// A refused bearer token outside RFC 6750 `b64token` is a malformed request (400), whatever
/// else was wrong with it. Checked only on refusal: a token that verifies decoded as base64url
/// in all three parts, so it cannot be outside the grammar.
fn syntax_first(kind: CredentialKind, token: &[u8], e: AuthError) -> AuthError {
    check_syntax(kind, token).err().unwrap_or(e)
}

const DOTS: u64 = u64::from_ne_bytes([b'.'; 8]);
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// 0x80 in exactly the bytes of `w` that are '.' (no borrow crosses bytes, so no false
/// positives next to a real one): eight bytes per step where a byte loop takes one.
fn dot_mask(w: u64) -> u64 {
    let x = w ^ DOTS;
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

fn word(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

fn first_dot(b: &[u8]) -> Option<usize> {
    let mut chunks = b.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let m = dot_mask(word(c));
        if m != 0 {
            return Some(base + (m.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| x == b'.')
        .map(|i| base + i)
}

fn last_dot(b: &[u8]) -> Option<usize> {
    let mut chunks = b.rchunks_exact(8);
    let mut end = b.len();
    for c in &mut chunks {
        end -= 8;
        let m = dot_mask(word(c));
        if m != 0 {
            return Some(end + 7 - (m.leading_zeros() / 8) as usize);
        }
    }
    chunks.remainder().iter().rposition(|&x| x == b'.')
}

/// A token of more than three parts (a JWE has five) is refused as such, before anything
/// else is said about it; [`Inner::parse`] leaves this to the refusal path.
fn three_parts(token: &[u8]) -> Result<(), AuthError> {
    let first = token.iter().position(|&b| b == b'.');
    let last = token.iter().rposition(|&b| b == b'.');
    match (first, last) {
        (Some(f), Some(l)) if f < l && !token[f + 1..l].contains(&b'.') => Ok(()),
        _ => Err(malformed(THREE_PARTS)),
    }
}

fn parts_first(token: &[u8], e: AuthError) -> AuthError {
    three_parts(token).err().unwrap_or(e)
}

/// The user's claims as read alongside the registered ones: `None` for `C = ()`; a refusal is
/// held back until every other check has passed, so that which refusal a token gets does not
/// depend on whether the API reads its own claims.
type UserClaims<C> = Result<Option<C>, AuthError>;

/// Read the registered claims, and `C` in the same pass unless `C` is `()`.
fn read_claims<C: DeserializeOwned + 'static>(
    payload: &[u8],
    roles: &RolesClaim,
) -> Result<(Registered, UserClaims<C>), AuthError> {
    let unreadable = || malformed("the JWT claims are not a JSON object of the expected types");
    if TypeId::of::<C>() == TypeId::of::<()>() {
        let c = claims::read(payload, roles).map_err(|_| unreadable())?;
        return Ok((c, Ok(None)));
    }
    match claims::read_with::<C>(payload, roles) {
        Ok((c, user)) => Ok((c, Ok(Some(user)))),
        // One pass cannot tell whose reading failed; on this refusal path only, the
        // registered claims are read again on their own to give the refusal they always got.
        Err(_) => {
            let c = claims::read(payload, roles).map_err(|_| unreadable())?;
            Ok((
                c,
                // The token is authentic and readable; what it lacks, a refresh from the same
                // grant lacks too: a 403 no client refreshes on, not a 401.
                Err(AuthError::with_detail(
                    ErrorCode::InvalidClaims,
                    "the token lacks a claim this API requires, or a claim has another type",
                )),
            ))
        }
    }
}

impl<C> JwtAuthenticator<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    fn finish(
        &self,
        token: &[u8],
        kind: CredentialKind,
        parsed: Parsed<'_>,
        key: &Arc<JwtKey>,
        now: u64,
    ) -> Result<Finished, AuthError> {
        let inner = &*self.inner;
        let (c, user) = inner.check::<C>(&parsed, key, now)?;
        // After the signature, time, issuer and audience checks (so only a holder of a valid
        // token learns its claims do not fit), before revocation: a revoked token whose
        // claims do not fit is refused as `invalid_claims`, a refusal either way.
        let custom = user?;
        let mut text = c.text;
        let key_id = parsed
            .kid
            .as_deref()
            .or_else(|| key.kid())
            .map(|kid| text.push(kid));
        let fields = Fields {
            kind,
            expires_at: c.exp,
            text,
            subject: c.sub,
            issuer: c.iss,
            key_id,
            token_id: c.jti,
            scopes: [c.scope, c.scp],
            roles: c.roles,
        };
        let principal = fields.into_principal(custom);
        let remember = c.exp.filter(|_| inner.cache.is_some());
        if let Some(status) = inner.revoked(&principal)? {
            return Ok(Finished::Asking(Asking {
                principal,
                status,
                remember: remember.map(|exp| (expired_from(exp, inner.leeway), now, key.clone())),
            }));
        }
        if let (Some(cache), Some(exp)) = (&inner.cache, remember) {
            cache.insert(
                token,
                principal.clone(),
                expired_from(exp, inner.leeway),
                now,
                key,
            );
        }
        Ok(Finished::Live(principal))
    }

    /// The end of a verification whose revocation check had to wait.
    async fn conclude(&self, asking: Asking, token: &[u8]) -> Result<Principal, AuthError> {
        asking.status.await.into_result()?;
        if let (Some(cache), Some((until, now, key))) = (&self.inner.cache, asking.remember) {
            cache.insert(token, asking.principal.clone(), until, now, &key);
        }
        Ok(asking.principal)
    }

    fn verify_now(&self, credential: &PresentedCredential) -> Authentication {
        // Called directly (outside the layer) the cache still answers first; inside the layer
        // the engine asked `recall` already and calls `verify_found`.
        let (token, kind) = (credential.secret_bytes(), credential.kind());
        if let Some(verdict) = self.recall(token, kind) {
            return verdict;
        }
        self.verify_found(token, kind, || credential.clone())
    }

    /// Verify a token the cache does not know; `owned` copies the credential out, for the
    /// case where the answer waits for a key fetch.
    fn verify_found(
        &self,
        token: &[u8],
        kind: CredentialKind,
        owned: impl FnOnce() -> PresentedCredential,
    ) -> Authentication {
        let inner = &*self.inner;
        if let Some(cache) = &inner.cache {
            cache.count_miss();
        }
        let ready = |r: Result<Principal, AuthError>| {
            Authentication::ready(r.map_err(|e| syntax_first(kind, token, e)))
        };
        let now = unix_now();
        let parsed = match inner.parse(token) {
            Ok(p) => p,
            Err(e) => return ready(Err(parts_first(token, e))),
        };
        // A key source that may fetch is not asked about a token that can never verify.
        if inner.keys.may_fetch()
            && let Err(e) = three_parts(token)
        {
            return ready(Err(e));
        }
        match inner.keys.lookup(parsed.kid.as_deref(), parsed.alg) {
            KeyLookup::Found(key) => match self.finish(token, kind, parsed, &key, now) {
                Ok(Finished::Live(p)) => ready(Ok(p)),
                Err(e) => ready(Err(parts_first(token, e))),
                Ok(Finished::Asking(asking)) => {
                    let this = self.clone();
                    let credential = owned();
                    Authentication::pending(async move {
                        let token = credential.secret_bytes();
                        let r = this.conclude(asking, token).await;
                        r.map_err(|e| syntax_first(kind, token, e))
                    })
                }
            },
            KeyLookup::Unknown => ready(Err(parts_first(
                token,
                AuthError::new(ErrorCode::UnknownKey),
            ))),
            KeyLookup::Pending(key) => {
                let this = self.clone();
                let credential = owned();
                Authentication::pending(async move {
                    let token = credential.secret_bytes();
                    let verified = async {
                        let key = key.await?;
                        let parsed = this.inner.parse(token)?;
                        match this.finish(token, kind, parsed, &key, unix_now())? {
                            Finished::Live(p) => Ok(p),
                            Finished::Asking(asking) => this.conclude(asking, token).await,
                        }
                    };
                    verified.await.map_err(|e| syntax_first(kind, token, e))
                })
            }
        }
    }
}

impl<C> Authenticator for JwtAuthenticator<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    fn authenticate(&self, credential: &PresentedCredential) -> Authentication {
        self.verify_now(credential)
    }

    /// `C` (`ClaimsType::none()` for `()`): every principal carries it.
    fn claims_type(&self) -> Option<ClaimsType> {
        Some(ClaimsType::of::<C>())
    }

    fn __fast_path(self: Arc<Self>, _: Seal) -> Option<Arc<dyn FastPath>> {
        Some(self)
    }
}

impl<C> FastPath for JwtAuthenticator<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    /// A cache hit: this exact token, presented the same way, was verified before and has not
    /// expired; revocation is still asked (and may have to wait for its store).
    fn recall(&self, secret: &[u8], kind: CredentialKind) -> Option<Authentication> {
        let inner = &*self.inner;
        let p = inner.cache.as_ref()?.get(secret, kind, unix_now())?;
        Some(match inner.revoked(&p) {
            Ok(None) => Authentication::ready(Ok(p)),
            Err(e) => Authentication::ready(Err(e)),
            Ok(Some(status)) => {
                Authentication::pending(async move { status.await.into_result().map(|()| p) })
            }
        })
    }

    fn verify(
        &self,
        secret: &[u8],
        kind: CredentialKind,
        owned: &dyn Fn() -> PresentedCredential,
    ) -> Authentication {
        self.verify_found(secret, kind, owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The word-at-a-time searches find what a byte loop finds, wherever the dots are
        /// and whatever bytes surround them (0x2d, 0x2f and 0xae sit next to '.').
        #[test]
        fn dots_are_found_where_a_byte_loop_finds_them(
            bytes in proptest::collection::vec(proptest::sample::select(
                vec![b'.', b'-', b'/', 0xae, 0x00, 0xff, b'a', 0x2e ^ 0x80]), 0..40)
        ) {
            proptest::prop_assert_eq!(first_dot(&bytes), bytes.iter().position(|&b| b == b'.'));
            proptest::prop_assert_eq!(last_dot(&bytes), bytes.iter().rposition(|&b| b == b'.'));
        }
    }
}
