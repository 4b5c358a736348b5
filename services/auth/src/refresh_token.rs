//! Refresh tokens: 256 random bits, handed out once and stored only as a
//! SHA-256 hash, so a leaked database holds no usable token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The stored form of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(pub String);

/// A fresh token and its hash.
pub(crate) fn generate() -> (String, TokenHash) {
    let bytes: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

/// The hash under which a presented token is looked up.
pub(crate) fn hash(token: &str) -> TokenHash {
    TokenHash(sha256_hex(token))
}

/// SHA-256 of `text`, in lower-case hex: how secrets and addresses are
/// kept without being kept.
pub(crate) fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_deterministically() {
        let (a, ha) = generate();
        let (b, _) = generate();
        assert_ne!(a, b);
        assert_eq!(hash(&a), ha);
        assert_eq!(ha.0.len(), 64);
    }
}
