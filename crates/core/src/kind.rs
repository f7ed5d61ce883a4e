//! Token kinds: what a deployment issues, and the rules per kind.

use crate::error::Error;
use crate::expiry::ExpiryPolicy;
use crate::key::{MAX_KEY_ID_LEN, MIN_KEY_ID_LEN};
use crate::permission::{MAX_GRANTS, Permission, PermissionSet};

/// The shortest allowed secret: 22 base62 characters carry 130 bits.
pub const MIN_SECRET_LEN: usize = 22;
/// The default secret: 27 base62 characters carry 160 bits.
pub const DEFAULT_SECRET_LEN: usize = 27;
/// The longest secret: 55 bytes keep SHA-256 at one compression block.
pub const MAX_SECRET_LEN: usize = 55;
/// The default key id length (10 characters: 8.4 × 10^17 ids).
pub const DEFAULT_KEY_ID_LEN: usize = 10;
/// Length of the base62 CRC32 checksum at the end of every token.
pub const CHECKSUM_LEN: usize = 6;
const MAX_PREFIX_LEN: usize = 16;

/// What a token of one kind may do to tokens of another kind.
///
/// Held by a managing kind (a management token): it names the kind it may
/// manage and the permission a token needs for each action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manages {
    /// The managed kind's prefix.
    pub kind: String,
    /// Needed to issue and rotate.
    pub create: Permission,
    /// Needed to list and read details.
    pub view: Permission,
    /// Needed to revoke and disable: taking access away.
    pub revoke: Permission,
    /// Needed to enable a disabled key again: giving access back is its own
    /// permission, so a token that may only revoke cannot undo an
    /// operator's disable.
    pub enable: Permission,
}

/// One kind of token: its prefix, sizes, expiry policy, live-key limit and
/// what tokens of this kind may manage.
///
/// ```
/// use keyward_core::{Lifetime, ExpiryPolicy, TokenKind};
/// let kind = TokenKind::new("mt")?
///     .with_expiry(ExpiryPolicy::from_choices(
///         [Lifetime::Months(1), Lifetime::Months(3), Lifetime::Months(6)],
///         Lifetime::Months(3),
///     )?)
///     .with_live_limit(3);
/// assert_eq!(kind.prefix(), "mt");
/// assert_eq!(kind.token_len(), "mt_".len() + 10 + 27 + 6);
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TokenKind {
    prefix: String,
    key_id_len: usize,
    secret_len: usize,
    expiry: ExpiryPolicy,
    live_limit: Option<u32>,
    manages: Vec<Manages>,
    catalog: Option<PermissionSet>,
}

impl TokenKind {
    /// A kind with the given prefix (`[a-z][a-z0-9]*` words joined by single
    /// underscores, at most 16 bytes: `mt`, `tak`, `mm_pat`), a 10-character key
    /// id, a 160-bit secret, no expiry, no limit, managing nothing.
    pub fn new(prefix: &str) -> Result<Self, Error> {
        validate_prefix(prefix)?;
        Ok(Self {
            prefix: prefix.to_owned(),
            key_id_len: DEFAULT_KEY_ID_LEN,
            secret_len: DEFAULT_SECRET_LEN,
            expiry: ExpiryPolicy::never(),
            live_limit: None,
            manages: Vec::new(),
            catalog: None,
        })
    }

    /// Sets the key id and secret lengths in base62 characters.
    ///
    /// The key id needs 4..=24 characters; the secret 22..=55 (at least 128 bits).
    pub fn with_lengths(mut self, key_id_len: usize, secret_len: usize) -> Result<Self, Error> {
        if !(MIN_KEY_ID_LEN..=MAX_KEY_ID_LEN).contains(&key_id_len) {
            return Err(Error::invalid(
                "key_id_len",
                format!("must be {MIN_KEY_ID_LEN}..={MAX_KEY_ID_LEN} characters"),
            ));
        }
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret_len) {
            return Err(Error::invalid(
                "secret_len",
                format!(
                    "must be {MIN_SECRET_LEN}..={MAX_SECRET_LEN} characters (at least 128 bits)"
                ),
            ));
        }
        self.key_id_len = key_id_len;
        self.secret_len = secret_len;
        Ok(self)
    }

    /// Sets the expiry policy.
    pub fn with_expiry(mut self, policy: ExpiryPolicy) -> Self {
        self.expiry = policy;
        self
    }

    /// At most `limit` live keys of this kind per owner (live: not revoked and
    /// not expired; a disabled key is live because it can be re-enabled).
    pub fn with_live_limit(mut self, limit: u32) -> Self {
        self.live_limit = Some(limit);
        self
    }

    /// Lets tokens of this kind manage tokens of another kind, each action
    /// gated by a permission the token must hold.
    pub fn with_manages(mut self, manages: Manages) -> Self {
        self.manages.push(manages);
        self
    }

    /// Bounds what any token of this kind may carry: issue and rotate refuse
    /// a grant outside the catalog ([`Error::OutsideCatalog`]), and verify
    /// never resolves a permission outside it, even if a role is later
    /// edited to hold one. Entries may be wildcards (`billing.*`). At most
    /// 256 entries.
    ///
    /// ```
    /// use keyward_core::{PermissionSet, TokenKind};
    /// let mgmt = TokenKind::new("mgmt")?.with_catalog(PermissionSet::parse([
    ///     "projects.view", "projects.manage", "api_keys.view", "api_keys.delete", "api_keys.create",
    /// ])?)?;
    /// assert_eq!(mgmt.catalog().map(|c| c.len()), Some(5));
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_catalog(mut self, catalog: PermissionSet) -> Result<Self, Error> {
        if catalog.len() > MAX_GRANTS {
            return Err(Error::invalid(
                "catalog",
                format!("at most {MAX_GRANTS} permissions"),
            ));
        }
        self.catalog = Some(catalog);
        Ok(self)
    }

    /// The permission catalog, if the kind has one.
    pub fn catalog(&self) -> Option<&PermissionSet> {
        self.catalog.as_ref()
    }

    /// The part of `grant` this kind's tokens may carry: all of it without
    /// a catalog, else what the catalog covers.
    pub(crate) fn bound(&self, grant: PermissionSet) -> PermissionSet {
        match &self.catalog {
            Some(catalog) => catalog.intersection(&grant),
            None => grant,
        }
    }

    /// The grants of `grant` outside the catalog (none without one).
    pub(crate) fn outside_catalog(&self, grant: &PermissionSet) -> Vec<Permission> {
        self.catalog
            .as_ref()
            .map_or_else(Vec::new, |catalog| catalog.uncovered(grant))
    }

    /// The prefix, which is also the kind's name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Key id length in characters.
    pub fn key_id_len(&self) -> usize {
        self.key_id_len
    }
    /// Secret length in characters.
    pub fn secret_len(&self) -> usize {
        self.secret_len
    }
    /// Entropy of the secret in bits (rounded down).
    pub fn secret_bits(&self) -> u32 {
        // log2(62) = 5.954…; rounding down keeps the claim honest.
        (self.secret_len as f64 * 62f64.log2()).floor() as u32
    }
    /// The expiry policy.
    pub fn expiry(&self) -> &ExpiryPolicy {
        &self.expiry
    }
    /// The live-key limit per owner, if any.
    pub fn live_limit(&self) -> Option<u32> {
        self.live_limit
    }
    /// What tokens of this kind may manage.
    pub fn manages(&self) -> &[Manages] {
        &self.manages
    }
    /// The body length: key id + secret + checksum.
    pub fn body_len(&self) -> usize {
        self.key_id_len + self.secret_len + CHECKSUM_LEN
    }
    /// The whole token length: prefix, underscore, body.
    pub fn token_len(&self) -> usize {
        self.prefix.len() + 1 + self.body_len()
    }
}

fn validate_prefix(prefix: &str) -> Result<(), Error> {
    let well_formed = !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_LEN
        && prefix.split('_').all(|word| {
            let mut bytes = word.bytes();
            matches!(bytes.next(), Some(b'a'..=b'z'))
                && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if well_formed {
        Ok(())
    } else {
        Err(Error::invalid(
            "prefix",
            "must be lowercase words of [a-z0-9] starting with a letter, joined by single underscores, at most 16 bytes",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_the_grammar() {
        for ok in ["mt", "tak", "mm_pat", "mgmt", "a1_b2"] {
            assert!(TokenKind::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "MT",
            "_mt",
            "mt_",
            "m__t",
            "1mt",
            "m-t",
            "toolongprefixabcd",
            "mt pat",
            "é",
        ] {
            assert!(TokenKind::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_catalog_holds_at_most_256_permissions() {
        assert_eq!(MAX_GRANTS, 256);
        let names: Vec<String> = (0..=MAX_GRANTS).map(|n| format!("p{n}")).collect();
        let kind = TokenKind::new("mgmt").unwrap();
        let most = PermissionSet::parse(&names[..MAX_GRANTS]).unwrap();
        assert!(kind.clone().with_catalog(most).is_ok());
        let too_many = PermissionSet::parse(&names).unwrap();
        assert!(matches!(
            kind.with_catalog(too_many),
            Err(Error::InvalidInput {
                field: "catalog",
                ..
            })
        ));
    }

    #[test]
    fn lengths_are_bounded_to_keep_128_bits_and_one_hash_block() {
        let kind = TokenKind::new("mm_pat").unwrap();
        assert!(
            kind.clone().with_lengths(4, 21).is_err(),
            "125 bits is too few"
        );
        assert!(
            kind.clone().with_lengths(4, 56).is_err(),
            "two SHA-256 blocks"
        );
        assert!(kind.clone().with_lengths(3, 22).is_err());
        let e = kind.with_lengths(4, 22).unwrap();
        assert_eq!(e.body_len(), 32);
        assert!(e.secret_bits() >= 128);
        assert!(TokenKind::new("mt").unwrap().secret_bits() >= 160);
    }
}
