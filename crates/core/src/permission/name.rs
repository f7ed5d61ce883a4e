//! One permission or wildcard grant, as a plain value: below the error type
//! (which names it), so it imports nothing from the crate. Parsing, which
//! can fail, is in the parent module.

use std::borrow::Cow;
use std::fmt;

/// Longest permission, in bytes.
pub const MAX_PERMISSION_LEN: usize = 128;

/// A permission or a wildcard grant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission(pub(super) Cow<'static, str>);

impl Permission {
    /// The permission as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A permission written in the code, checked when the program is
    /// compiled: use it in a `const` (or through [`crate::require!`]), where
    /// an invalid name fails the build. Called at run time with an invalid
    /// name it panics; for names from input use [`Permission::new`].
    ///
    /// ```
    /// use keyward_core::Permission;
    /// const PUBLISH: Permission = Permission::from_static("publish");
    /// assert_eq!(PUBLISH.as_str(), "publish");
    /// ```
    ///
    /// ```compile_fail
    /// const BAD: keyward_core::Permission = keyward_core::Permission::from_static("a b");
    /// ```
    pub const fn from_static(name: &'static str) -> Self {
        assert!(
            is_valid(name.as_bytes()),
            "not a permission: dot-separated segments of [A-Za-z0-9_-], optionally ending in `*`, at most 128 bytes"
        );
        Self(Cow::Borrowed(name))
    }

    /// Whether this grant covers `other`: equal, or a wildcard over it.
    pub fn covers(&self, other: &Permission) -> bool {
        covers(self.0.as_bytes(), other.0.as_bytes())
    }

    /// A permission from text already checked (a piece of a packed set).
    pub(super) fn trusted(text: &str) -> Self {
        Self(Cow::Owned(text.to_owned()))
    }
}

/// Whether `bytes` spell a permission or wildcard grant: dot-separated
/// segments of `[A-Za-z0-9_-]`, the last of which may be `*`, at most
/// [`MAX_PERMISSION_LEN`] bytes. `const`, so a permission written in the
/// code is checked by the compiler by the same rule as one read at run time.
#[allow(
    clippy::indexing_slicing,
    reason = "every index is below `bytes.len()`, checked by the loops"
)]
pub(super) const fn is_valid(bytes: &[u8]) -> bool {
    // The length first: nothing is scanned for a huge input.
    if bytes.is_empty() || bytes.len() > MAX_PERMISSION_LEN {
        return false;
    }
    let (mut start, mut at) = (0, 0);
    while at <= bytes.len() {
        if at == bytes.len() || bytes[at] == b'.' {
            let wildcard = at - start == 1 && bytes[start] == b'*';
            if wildcard {
                if at != bytes.len() {
                    return false;
                }
            } else {
                if at == start {
                    return false;
                }
                let mut i = start;
                while i < at {
                    let b = bytes[i];
                    if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                        return false;
                    }
                    i += 1;
                }
            }
            start = at + 1;
        }
        at += 1;
    }
    true
}

/// Whether `grant` covers `wanted`: equal, or a wildcard over it.
pub(super) fn covers(grant: &[u8], wanted: &[u8]) -> bool {
    match grant.strip_suffix(b"*") {
        None => grant == wanted,
        Some(prefix) => wanted.starts_with(prefix),
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
