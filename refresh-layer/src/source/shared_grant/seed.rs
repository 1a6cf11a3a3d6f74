//! A grant's seed (its configured refresh token): what to do when it is new, and the hash a
//! stored set records instead of it.

/// What a grant does when its configured refresh token (its seed) is not the one the stored
/// token set started from; see the [module docs](crate::source::shared_grant#a-new-seed). There is no default:
/// each grant names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewSeed {
    /// The configured seed replaces the stored token set (exchanged once, subject checked,
    /// committed with compare-and-set), unless the stored set already replaced that seed once.
    Replace,
    /// The stored token set stays; the configured seed is never sent.
    KeepStored,
}

/// The lowercase hex SHA-256 of a seed: what a stored set records instead of the seed.
pub(super) fn seed_hash(seed: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
