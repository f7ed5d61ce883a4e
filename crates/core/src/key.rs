//! The stored model: key ids, owners, key records and roles.

use crate::error::Error;
use crate::lifecycle::{KeyState, Status};
use crate::permission::PermissionSet;
use crate::secret::TokenDigest;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// The shortest key id (4 characters: 14.7 million ids; a collision on issue is retried).
pub const MIN_KEY_ID_LEN: usize = 4;
/// The longest key id.
pub const MAX_KEY_ID_LEN: usize = 24;
/// Longest key name, in bytes.
pub const MAX_NAME_LEN: usize = 16 * 1024;
/// Longest owner id, in bytes.
pub const MAX_OWNER_LEN: usize = 256;
/// Most metadata entries per key.
pub const MAX_METADATA_ENTRIES: usize = 64;
/// Longest metadata key, in bytes.
pub const MAX_METADATA_KEY_LEN: usize = 128;
/// Longest metadata value, in bytes.
pub const MAX_METADATA_VALUE_LEN: usize = 16 * 1024;

/// The public key id: the lookup selector, safe to log and show.
///
/// Held inline (at most 24 ASCII characters, no heap allocation), so a
/// cached key, a usage record or an audit event carries its id without a
/// pointer to chase. Ordered, compared and hashed as its text.
#[derive(Clone)]
pub struct KeyId {
    len: u8,
    bytes: [u8; MAX_KEY_ID_LEN],
}

impl KeyId {
    /// Parses a key id (4..=24 base62 characters), for example from a URL.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let ok = (MIN_KEY_ID_LEN..=MAX_KEY_ID_LEN).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(Self::inline(value))
        } else {
            Err(Error::invalid(
                "key id",
                "must be 4..=24 characters of [A-Za-z0-9]",
            ))
        }
    }

    /// A key id the token format already checked (base62, the kind's id
    /// length, at most [`MAX_KEY_ID_LEN`]).
    pub(crate) fn from_parsed(value: &str) -> Self {
        Self::inline(value)
    }

    /// Copies `value` in; text beyond [`MAX_KEY_ID_LEN`] bytes (which the
    /// callers have already refused) would be cut.
    fn inline(value: &str) -> Self {
        let mut bytes = [0u8; MAX_KEY_ID_LEN];
        let len = value.len().min(MAX_KEY_ID_LEN);
        if let (Some(to), Some(from)) = (bytes.get_mut(..len), value.as_bytes().get(..len)) {
            to.copy_from_slice(from);
        }
        Self {
            len: u8::try_from(len).unwrap_or(0),
            bytes,
        }
    }

    /// Whether this is the id `text`: a byte compare, no UTF-8 check.
    pub(crate) fn is(&self, text: &str) -> bool {
        self.bytes.get(..usize::from(self.len)) == Some(text.as_bytes())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever copied in, so this never falls back.
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl KeyId {
    /// The id's bytes (ASCII), without the UTF-8 check of [`KeyId::as_str`].
    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl PartialEq for KeyId {
    fn eq(&self, other: &Self) -> bool {
        // Every id is built by `inline`, which zero-fills past its end, so
        // equal ids have equal arrays: one fixed-size compare.
        self.len == other.len && self.bytes == other.bytes
    }
}

impl Eq for KeyId {}

impl PartialOrd for KeyId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Byte order, which is `str`'s order.
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for KeyId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes (its bytes, then 0xff), without the UTF-8 check.
        state.write(self.as_bytes());
        state.write_u8(0xff);
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a key belongs to: an account, a workspace, a user, in the host's
/// own naming (`account:42`, `user:alice`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner(String);

impl Owner {
    /// 1..=256 bytes, no control characters.
    pub fn new(value: &str) -> Result<Self, Error> {
        if value.is_empty() || value.len() > MAX_OWNER_LEN || has_control(value) {
            return Err(Error::invalid(
                "owner",
                "must be 1..=256 bytes without control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The owner id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a role.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(String);

impl RoleName {
    /// 1..=64 bytes of `[A-Za-z0-9_.:-]`.
    pub fn new(value: &str) -> Result<Self, Error> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(Error::invalid(
                "role",
                "must be 1..=64 bytes of [A-Za-z0-9_.:-]",
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A named set of permissions held in the store, in its owner's namespace:
/// a role is identified by `(owner, name)`, so two owners may each have a
/// role "admin". Editing it changes every key of that owner that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Whose namespace the role lives in; only that owner's keys receive it.
    pub owner: Owner,
    /// The role's name, unique within its owner.
    pub name: RoleName,
    /// What the role grants.
    pub permissions: PermissionSet,
}

impl Role {
    /// The role `name` of `owner`, granting `permissions`.
    pub fn new(owner: Owner, name: RoleName, permissions: PermissionSet) -> Self {
        Self {
            owner,
            name,
            permissions,
        }
    }
}

/// Serializes an identifier as its text, and reads one back through its
/// checked constructor.
macro_rules! text_serde {
    ($type:ty, $parse:expr) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                $parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_serde!(KeyId, KeyId::parse);
text_serde!(Owner, Owner::new);
text_serde!(RoleName, RoleName::new);

/// Free-form host data carried by a key and returned on verify.
pub type Metadata = BTreeMap<String, String>;

/// A key as stored. Holds the digest, never the token.
///
/// Not `#[non_exhaustive]` on purpose: adapters in other crates build it from
/// their rows, and must persist every field, so a new field is a breaking
/// change for them either way.
///
/// Adding a field: the compiler points at every construction (the service's
/// issue, each adapter's row decoding, the testkit's record builder) and
/// at the destructures without `..` in the details view and the
/// conformance suite's comparison and round-trip case. What it cannot see,
/// an adapter's insert and SQL text (column lists, migrations), the
/// round-trip case then catches.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// Public key id, unique.
    pub id: KeyId,
    /// The kind's prefix.
    pub kind: String,
    /// Who the key belongs to.
    pub owner: Owner,
    /// The human name ("CI deploy").
    pub name: String,
    /// Digest of the secret.
    pub digest: TokenDigest,
    /// Masked preview (`tak_bUiB…`).
    pub preview: String,
    /// Direct grants; for an inheriting key, the ceiling.
    pub scopes: PermissionSet,
    /// Roles whose permissions the key holds.
    pub roles: BTreeSet<RoleName>,
    /// Acts with its owner's current permissions, capped by scopes ∪ roles.
    pub inherits_owner: bool,
    /// Host data.
    pub metadata: Metadata,
    /// Stored state.
    pub state: KeyState,
    /// When issued.
    pub created_at: DateTime<Utc>,
    /// When it stops verifying, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Newest flushed use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who issued it (an actor label such as `session:user:alice`).
    pub created_by: String,
    /// The key this one replaced.
    pub rotated_from: Option<KeyId>,
    /// The key that replaced this one.
    pub rotated_to: Option<KeyId>,
}

impl KeyRecord {
    /// The status at `now`: revoked first, then expired, then the state.
    pub fn status(&self, now: DateTime<Utc>) -> Status {
        match self.state {
            KeyState::Revoked => Status::Revoked,
            _ if self.is_expired(now) => Status::Expired,
            KeyState::Active => Status::Active,
            KeyState::Disabled => Status::Disabled,
        }
    }

    /// Whether `expires_at` has passed.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether it counts against the live-key limit at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.status(now).is_live()
    }
}

/// What a key is, as against the state it is in: its kind, owner, name,
/// host data and roles, set when it is issued and never changed after (no
/// store operation rewrites them). Shared behind an `Arc` by a
/// [`VerifyRecord`] and the verified key built from it, so a store that
/// keeps a key in memory hands it to verify without copying a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttributes {
    /// The kind's prefix.
    pub kind: String,
    /// Who the key belongs to.
    pub owner: Owner,
    /// The human name.
    pub name: String,
    /// Host data.
    pub metadata: Metadata,
    /// Roles whose permissions the key holds.
    pub roles: BTreeSet<RoleName>,
}

impl From<&KeyRecord> for KeyAttributes {
    fn from(record: &KeyRecord) -> Self {
        Self {
            kind: record.kind.clone(),
            owner: record.owner.clone(),
            name: record.name.clone(),
            metadata: record.metadata.clone(),
            roles: record.roles.clone(),
        }
    }
}

/// A key as verification reads it: what the checks and the verified key
/// need, none of the management columns (preview, times other than expiry,
/// issuer, rotation links). What [`crate::store::KeyStore::verify_key`]
/// returns, so an adapter reads and decodes only these on the hot path.
#[derive(Debug, Clone)]
pub struct VerifyRecord {
    /// Public key id.
    pub id: KeyId,
    /// Digest of the secret.
    pub digest: TokenDigest,
    /// Direct grants; for an inheriting key, the ceiling.
    pub scopes: PermissionSet,
    /// Acts with its owner's current permissions.
    pub inherits_owner: bool,
    /// Stored state.
    pub state: KeyState,
    /// When it stops verifying, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Kind, owner, name, host data and roles (never changed after issue).
    pub attributes: Arc<KeyAttributes>,
}

impl VerifyRecord {
    /// The verify read of `record`, with `attributes` already built from it
    /// (a store that keeps keys in memory keeps them too).
    pub fn with_attributes(record: &KeyRecord, attributes: Arc<KeyAttributes>) -> Self {
        Self {
            id: record.id.clone(),
            digest: record.digest.clone(),
            scopes: record.scopes.clone(),
            inherits_owner: record.inherits_owner,
            state: record.state,
            expires_at: record.expires_at,
            attributes,
        }
    }
}

impl From<&KeyRecord> for VerifyRecord {
    fn from(record: &KeyRecord) -> Self {
        Self::with_attributes(record, Arc::new(KeyAttributes::from(record)))
    }
}

/// The newest use of a key, as flushed by the usage recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// The key.
    pub key_id: KeyId,
    /// When it was last used.
    pub used_at: DateTime<Utc>,
}

impl UsageRecord {
    /// The newest use of each key in `batch`, once per key: what a one-statement
    /// batch update needs (a key named twice in one statement is ambiguous).
    pub fn newest_per_key(batch: &[UsageRecord]) -> Vec<UsageRecord> {
        let mut newest: BTreeMap<&KeyId, DateTime<Utc>> = BTreeMap::new();
        for usage in batch {
            let at = newest.entry(&usage.key_id).or_insert(usage.used_at);
            *at = (*at).max(usage.used_at);
        }
        newest
            .into_iter()
            .map(|(key_id, used_at)| UsageRecord {
                key_id: key_id.clone(),
                used_at,
            })
            .collect()
    }
}

/// "never", "just now", "5 minutes ago", "5 days ago": how lists show last use.
pub(crate) fn time_ago(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = at else {
        return "never".to_owned();
    };
    let secs = (now - at).num_seconds().max(0);
    let (n, unit) = match secs {
        0..60 => return "just now".to_owned(),
        60..3_600 => (secs / 60, "minute"),
        3_600..86_400 => (secs / 3_600, "hour"),
        86_400..2_592_000 => (secs / 86_400, "day"),
        2_592_000..31_536_000 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() || name.len() > MAX_NAME_LEN || has_control(name) {
        return Err(Error::invalid(
            "name",
            "must be 1..=16384 bytes, not blank, without control characters",
        ));
    }
    Ok(())
}

pub(crate) fn validate_metadata(metadata: &Metadata) -> Result<(), Error> {
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(Error::invalid("metadata", "at most 64 entries"));
    }
    for (k, v) in metadata {
        if k.is_empty() || k.len() > MAX_METADATA_KEY_LEN || has_control(k) {
            return Err(Error::invalid(
                "metadata",
                "keys must be 1..=128 bytes without control characters",
            ));
        }
        if v.len() > MAX_METADATA_VALUE_LEN || v.contains('\0') {
            return Err(Error::invalid(
                "metadata",
                "values must be at most 16384 bytes without NUL",
            ));
        }
    }
    Ok(())
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn names_allow_sql_looking_text_but_not_blank_control_or_huge() {
        assert!(validate_name("Robert'); DROP TABLE keys;--").is_ok());
        assert!(validate_name("100% _done_ ünïcødé 🔑").is_ok());
        assert!(validate_name(&"x".repeat(10_240)).is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("   ").is_err());
        assert!(validate_name("line\nbreak").is_err());
        assert!(validate_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn key_ids_order_compare_and_hash_as_their_text() {
        use std::hash::BuildHasher;
        let ids = [
            "B000",
            "a000",
            "abcd",
            "abcdE",
            "abcdEFGHijklMNOPqrstUVWX",
            "Zzzz",
        ];
        let hasher = std::collections::hash_map::RandomState::new();
        for a in ids {
            let ka = KeyId::parse(a).unwrap();
            assert_eq!(ka.as_str(), a);
            assert_eq!(ka.to_string(), a);
            assert_eq!(format!("{ka:?}"), format!("KeyId({a:?})"));
            assert!(ka.is(a) && !ka.is(&a[1..]));
            assert_eq!(hasher.hash_one(&ka), hasher.hash_one(a));
            for b in ids {
                let kb = KeyId::parse(b).unwrap();
                assert_eq!(ka.cmp(&kb), a.cmp(b), "{a} vs {b}");
                assert_eq!(ka == kb, a == b);
            }
        }
        assert!(
            KeyId::parse("abcdEFGHijklMNOPqrstUVWXy").is_err(),
            "25 characters"
        );
    }

    #[test]
    fn ids_owners_and_roles_are_validated() {
        assert!(KeyId::parse("abcD1234").is_ok());
        assert!(KeyId::parse("abc").is_err());
        assert!(KeyId::parse("abc_1234").is_err());
        assert!(Owner::new("user:alice").is_ok());
        assert!(Owner::new("").is_err());
        assert!(Owner::new("a\tb").is_err());
        assert!(RoleName::new("reader").is_ok());
        assert!(RoleName::new("read er").is_err());
    }

    #[test]
    fn time_ago_reads_like_a_list() {
        let now = Utc::now();
        assert_eq!(time_ago(None, now), "never");
        assert_eq!(time_ago(Some(now), now), "just now");
        assert_eq!(time_ago(Some(now - TimeDelta::days(5)), now), "5 days ago");
        assert_eq!(time_ago(Some(now - TimeDelta::hours(1)), now), "1 hour ago");
    }

    /// The caps of docs/security.md's input table, at the edge: the largest
    /// value passes, one byte (or entry) more is refused, and no refusal
    /// echoes the input.
    #[test]
    fn inputs_are_capped_at_the_documented_sizes_and_never_echoed() {
        let echoes = |error: Error, input: &str| {
            let shown = format!("{error} {error:?}");
            assert!(
                !shown.contains(input),
                "the refusal echoes its input: {shown}"
            );
        };
        assert_eq!(MAX_NAME_LEN, 16_384);
        assert!(validate_name(&"n".repeat(16_384)).is_ok());
        echoes(
            validate_name(&"n".repeat(16_385)).unwrap_err(),
            &"n".repeat(64),
        );
        echoes(validate_name("secret\u{7}name").unwrap_err(), "secret");
        assert!(Owner::new(&"o".repeat(256)).is_ok());
        echoes(Owner::new(&"o".repeat(257)).unwrap_err(), &"o".repeat(64));
        echoes(Owner::new("secret\nowner").unwrap_err(), "secret");
        assert!(RoleName::new(&"r".repeat(64)).is_ok());
        assert!(RoleName::new("Ops_1.deploy:eu-west").is_ok());
        echoes(RoleName::new(&"r".repeat(65)).unwrap_err(), &"r".repeat(64));
        assert!(RoleName::new("").is_err());
        echoes(RoleName::new("secret/role").unwrap_err(), "secret");

        let mut m: Metadata = (0..64).map(|n| (format!("k{n}"), String::new())).collect();
        assert!(validate_metadata(&m).is_ok());
        m.insert("one-more".into(), String::new());
        assert!(validate_metadata(&m).is_err(), "65 entries");
        let one = |k: &str, v: &str| Metadata::from([(k.to_owned(), v.to_owned())]);
        assert!(validate_metadata(&one(&"k".repeat(128), "")).is_ok());
        echoes(
            validate_metadata(&one(&"k".repeat(129), "")).unwrap_err(),
            &"k".repeat(64),
        );
        assert!(validate_metadata(&one("k", &"v".repeat(16_384))).is_ok());
        echoes(
            validate_metadata(&one("k", &"v".repeat(16_385))).unwrap_err(),
            &"v".repeat(64),
        );
    }

    #[test]
    fn metadata_limits() {
        let mut m = Metadata::new();
        m.insert("team".into(), "it's 100% \"quoted\"".into());
        assert!(validate_metadata(&m).is_ok());
        m.insert(String::new(), "x".into());
        assert!(validate_metadata(&m).is_err());
    }
}
