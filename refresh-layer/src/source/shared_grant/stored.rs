//! What a token response becomes in the store.

use std::time::Duration;

use crate::credential::Credential;
use crate::error::RefreshError;
use crate::source::token_response::{TokenSet, bearer_of};
use crate::store::{StoredTokens, unix_ms};

/// How many replaced seeds a stored set remembers (their hashes, 64 bytes each).
const RETIRED_SEEDS: usize = 16;

/// What a token response becomes in the store, and the credential to use now. A response
/// without a refresh token keeps the one that was used (servers that do not rotate); what
/// `before` records of the seed and subject carries over (the subject the response names, if
/// any, has been admitted).
pub(crate) fn stored_of(
    t: TokenSet,
    used: Option<String>,
    before: &StoredTokens,
) -> Result<(StoredTokens, Credential), RefreshError> {
    let credential = bearer_of(&t.access_token, t.expires_in)?;
    let now = unix_ms();
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let subject = t.subject().or_else(|| before.subject.clone());
    let stored = StoredTokens {
        access_token: Some(t.access_token),
        expires_at_ms: t.expires_in.map(|d| now.saturating_add(ms(d))),
        lifetime_ms: t.expires_in.map(ms),
        refresh_token: t.refresh_token.or(used),
        seed_sha256: before.seed_sha256.clone(),
        retired_seeds: before.retired_seeds.clone(),
        subject,
        sign_in: before.sign_in.clone(),
    };
    Ok((stored, credential))
}

/// The replaced seeds `stored` remembers once its own seed is replaced too: the newest last,
/// the oldest forgotten beyond [`RETIRED_SEEDS`] (a replica configured with a seed that old
/// could put it back; by then the identity provider has long revoked it).
pub(super) fn retire(stored: &StoredTokens) -> Vec<String> {
    let mut retired = stored.retired_seeds.clone();
    if let Some(old) = &stored.seed_sha256
        && !retired.contains(old)
    {
        retired.push(old.clone());
    }
    let excess = retired.len().saturating_sub(RETIRED_SEEDS);
    retired.drain(..excess);
    retired
}
