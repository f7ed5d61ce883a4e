//! The cache entry: a key as verification needs it, laid out for a hit, with
//! its usage slot. Built once per store read; immutable but for the slot.

use crate::key::{KeyAttributes, KeyId, VerifyRecord};
use crate::lifecycle::KeyState;
use crate::permission::PermissionSet;
use crate::secret::TokenDigest;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};

/// A key as verification needs it: loaded once, then checked on every
/// verify (from the cache, or straight after the store read). Immutable but
/// for its usage slot.
///
/// `repr(C)`, with everything a cache hit reads first and nothing a hit
/// reads behind a pointer: the id, digest and kind compared inline, the
/// state, expiry and load time, the usage slot it stamps, and the
/// permissions (a typical set is held inline, see [`PermissionSet`]), in
/// that order so that no byte is padding: 128 bytes, 144 with the `Arc`'s
/// counts; what only a host reads (names, metadata, roles) comes after.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct KeySnapshot {
    /// Held inline: compared on every hit without a pointer chase.
    pub(crate) key_id: KeyId,
    pub(crate) digest: TokenDigest,
    /// The kind's position in the service's format ([`NO_KIND`]: not
    /// configured, so no token can match it).
    kind_index: u16,
    pub(crate) state: KeyState,
    /// Whether the permissions were resolved (only for a live key).
    pub(crate) resolved: bool,
    pub(crate) inherits_owner: bool,
    /// When it expires, in micros (`i64::MAX`: never).
    pub(crate) expires_at: i64,
    /// When it was read from the store (micros, the service's clock).
    pub(crate) loaded_at: i64,
    /// The newest use since the last usage flush.
    pub(crate) usage: UsageSlot,
    /// Effective permissions when loaded (empty unless the key was live).
    pub(crate) permissions: PermissionSet,
    // ---- read by the host, not by a hit
    /// Kind, owner, name, metadata and roles (what the permissions were
    /// resolved from, for invalidation): shared with the store's read.
    pub(crate) attributes: Arc<KeyAttributes>,
}

/// The kind index of a key whose kind the service does not configure.
const NO_KIND: u16 = u16::MAX;

impl KeySnapshot {
    /// `kind_index` is the configured kind's position in the format,
    /// `None` for a kind the service does not configure.
    pub(crate) fn new(
        record: VerifyRecord,
        kind_index: Option<usize>,
        permissions: PermissionSet,
        resolved: bool,
        loaded_at: i64,
    ) -> Self {
        Self {
            kind_index: kind_index
                .and_then(|i| u16::try_from(i).ok())
                .unwrap_or(NO_KIND),
            state: record.state,
            resolved,
            inherits_owner: record.inherits_owner,
            digest: record.digest,
            expires_at: record
                .expires_at
                .map_or(i64::MAX, |at| at.timestamp_micros()),
            loaded_at,
            usage: UsageSlot::default(),
            permissions,
            key_id: record.id,
            attributes: record.attributes,
        }
    }
}

impl KeySnapshot {
    /// Whether the key is of the kind at `index` in the service's format.
    pub(crate) fn is_kind(&self, index: usize) -> bool {
        self.kind_index != NO_KIND && usize::from(self.kind_index) == index
    }

    /// Whether the key would verify at `now` (micros; permissions aside).
    pub(crate) fn is_live(&self, now: i64) -> bool {
        self.state == KeyState::Active && self.expires_at > now
    }
}

/// The newest use of one cached snapshot, and whether it is queued for the
/// next flush.
#[derive(Debug)]
pub(crate) struct UsageSlot {
    pub(crate) last_used: AtomicI64,
    pub(crate) queued: AtomicBool,
}

impl Default for UsageSlot {
    fn default() -> Self {
        Self {
            last_used: AtomicI64::new(i64::MIN),
            queued: AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn what_a_hit_reads_comes_first_in_128_bytes() {
        // Every field a hit reads ends before the first one only a host
        // reads, and within 128 bytes (with the Arc's two counts, 144).
        let hit_fields_end = offset_of!(KeySnapshot, permissions) + size_of::<PermissionSet>();
        assert!(hit_fields_end <= 128, "hit fields end at {hit_fields_end}");
        // A two-grant set such as `billing.read billing.write` is inline.
        let typical = PermissionSet::parse(["billing.read", "billing.write"]).unwrap();
        assert!(typical.is_inline());
        assert_eq!(offset_of!(KeySnapshot, attributes), hit_fields_end);
        for offset in [
            offset_of!(KeySnapshot, key_id),
            offset_of!(KeySnapshot, state),
            offset_of!(KeySnapshot, kind_index),
            offset_of!(KeySnapshot, expires_at),
            offset_of!(KeySnapshot, loaded_at),
            offset_of!(KeySnapshot, usage),
            offset_of!(KeySnapshot, digest),
        ] {
            assert!(offset < hit_fields_end);
        }
    }
}
