use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A string that must never be printed: tokens and client secrets.
///
/// `Debug` and `Display` print `[redacted]`; read the value with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 hash of the value.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A fresh opaque token: 32 random bytes in base64url (43 characters, 256 bits).
pub fn generate_token() -> Secret {
    let bytes: [u8; 32] = rand::random();
    Secret(URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 hash of a token: the only form in which tokens are stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a presented token.
    pub fn of(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_slice());
        Self(out)
    }

    /// Rebuilds a hash read back from storage; `None` unless exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 32 bytes in lowercase hexadecimal (64 characters): a key that identifies the token
    /// without being it (rate-limit buckets, SQL bulk inserts).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Compares two hashes in constant time.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A prefix of the hash identifies a token in logs without revealing it.
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// Compares two strings in constant time with respect to their contents
/// (by comparing their SHA-256 hashes, so lengths do not leak either).
pub fn ct_str_eq(a: &str, b: &str) -> bool {
    TokenHash::of(a).ct_eq(&TokenHash::of(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_hex_is_its_bytes_in_lowercase() {
        let bytes: [u8; 32] = std::array::from_fn(|i| [0x00, 0xff, 0x0a, 0x80][i % 4]);
        let hex = TokenHash::from_bytes(&bytes).unwrap().to_hex();
        assert_eq!(hex, "00ff0a80".repeat(8));
        assert_eq!(
            TokenHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "SHA-256 of \"abc\""
        );
    }

    #[test]
    fn tokens_are_43_url_safe_characters_and_distinct() {
        let a = generate_token();
        let b = generate_token();
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(!format!("{:?}", s.hash()).contains("hunter2"));
    }

    #[test]
    fn hash_comparison() {
        assert!(TokenHash::of("x").ct_eq(&TokenHash::of("x")));
        assert!(!TokenHash::of("x").ct_eq(&TokenHash::of("y")));
        assert!(ct_str_eq("abc", "abc"));
        assert!(!ct_str_eq("abc", "abd"));
        assert_eq!(
            TokenHash::from_bytes(TokenHash::of("x").as_bytes()),
            Some(TokenHash::of("x"))
        );
        assert_eq!(TokenHash::from_bytes(&[1, 2]), None);
    }
}
