//! The peers keyward's verify is measured against (docs/performance.md,
//! "Peers").
//!
//! - [`PrefixedTable`]: prefixed-api-key 0.3 in this process, as its README
//!   has an application use it: its own parse of the token, a std `HashMap`
//!   from its short token to the stored hash, its controller's digest check
//!   of the long token.

use crate::fixture::Tokens;
use prefixed_api_key::{PakControllerOsSha256, PrefixedApiKey};
use std::collections::HashMap;

/// The prefix of the peer's tokens: keyward's benchmark prefix.
const PREFIX: &str = crate::fixture::KIND;

/// The longest base58 text of `bytes` random bytes (prefixed-api-key
/// encodes its tokens in base58, so their lengths vary by a character).
fn base58_len(bytes: usize) -> usize {
    (bytes as f64 * 256_f64.ln() / 58_f64.ln()).ceil() as usize
}

/// prefixed-api-key's keys in a std `HashMap` from short token to the hex
/// SHA-256 of the long token (what the crate has an application store),
/// and their tokens.
pub struct PrefixedTable {
    controller: PakControllerOsSha256,
    map: HashMap<String, String>,
    tokens: Tokens,
}

impl std::fmt::Debug for PrefixedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixedTable")
            .field("keys", &self.map.len())
            .finish_non_exhaustive()
    }
}

impl PrefixedTable {
    /// `keys` keys from the crate's controller with its default lengths
    /// (8 random bytes of short token, 24 of long token, SHA-256, the OS
    /// RNG). Only keys of the full encoded length are kept (about 19 in
    /// 20), so that tokens pack end to end as keyward's do ([`Tokens`]):
    /// picking one costs the two sides the same.
    pub fn new(keys: usize) -> Self {
        let controller = PakControllerOsSha256::configure()
            .prefix(PREFIX.to_owned())
            .seam_defaults()
            .finalize()
            .expect("a valid prefixed-api-key configuration");
        let (short, long) = (base58_len(8), base58_len(24));
        let mut map = HashMap::with_capacity(keys);
        let mut tokens = Vec::with_capacity(keys);
        while tokens.len() < keys {
            let (key, hash) = controller.generate_key_and_hash();
            if key.short_token().len() != short || key.long_token().len() != long {
                continue;
            }
            if map.insert(key.short_token().to_owned(), hash).is_some() {
                panic!("two prefixed-api-key keys with one short token");
            }
            tokens.push(key.to_string());
        }
        Self {
            controller,
            map,
            tokens: Tokens::new(&tokens),
        }
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The peer's verify: its parse of the token, the lookup of its short
    /// token, its controller's constant-time check of the long token's
    /// digest. No state, expiry or scope: the crate has none.
    #[inline]
    pub fn check(&self, token: &str) -> bool {
        let Ok(key) = PrefixedApiKey::from_string(token) else {
            return false;
        };
        match self.map.get(key.short_token()) {
            Some(hash) => self.controller.check_hash(&key, hash),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefixed_table_knows_its_keys_and_nothing_else() {
        assert_eq!((base58_len(8), base58_len(24)), (11, 33));
        let table = PrefixedTable::new(40);
        let tokens = table.tokens();
        assert_eq!(tokens.count(), 40);
        assert!(
            tokens
                .iter()
                .all(|t| t.starts_with("bk_") && table.check(t))
        );
        let token = tokens.get(7);
        // A changed long token fails the digest check; a changed short
        // token is not in the table; a token of other parts does not parse.
        let mut long = token.to_owned();
        let last = long.pop().unwrap();
        long.push(if last == 'z' { 'y' } else { 'z' });
        assert!(!table.check(&long));
        let short = token.replacen("bk_", "bk_1", 1);
        assert!(!table.check(&short));
        assert!(!table.check("bk_only"));
    }
}
