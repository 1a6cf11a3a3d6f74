//! [`StoreKey`]: the AES-256-GCM key token sets are sealed with.

use super::*;

/// The 256-bit key the token sets are encrypted with. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct StoreKey(Arc<LessSafeKey>);

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(<redacted>)")
    }
}

/// A store key that is not 32 bytes (or not base64).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a store key is 32 random bytes (44 characters of base64)")]
pub struct InvalidStoreKey;

impl StoreKey {
    /// A key from 32 bytes.
    ///
    /// ```
    /// let key = portcullis::client::store::redis::StoreKey::from_bytes(&[7u8; 32]).unwrap();
    /// assert_eq!(format!("{key:?}"), "StoreKey(<redacted>)");
    /// assert!(portcullis::client::store::redis::StoreKey::from_bytes(b"short").is_err());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidStoreKey> {
        if bytes.len() != 32 {
            return Err(InvalidStoreKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| InvalidStoreKey)?;
        Ok(StoreKey(Arc::new(LessSafeKey::new(key))))
    }

    /// A key from its standard base64 form (`openssl rand -base64 32`).
    pub fn from_base64(text: &str) -> Result<Self, InvalidStoreKey> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| InvalidStoreKey)?;
        StoreKey::from_bytes(&bytes)
    }

    pub(super) fn seal(&self, aad: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| StoreError::Unavailable("no randomness".into()))?;
        let mut sealed = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| StoreError::Unavailable("cannot encrypt".into()))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    pub(super) fn open(&self, aad: &str, blob: &[u8]) -> Result<Vec<u8>, StoreError> {
        if blob.len() < NONCE_LEN {
            return Err(StoreError::Unreadable);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| StoreError::Unreadable)?;
        let mut buf = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| StoreError::Unreadable)?;
        Ok(plain.to_vec())
    }
}
