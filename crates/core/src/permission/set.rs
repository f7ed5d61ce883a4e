//! A set of grants, packed: the grants sorted and joined by single spaces
//! (a permission holds no space), held inline when short.
//!
//! Every cached key holds one, and every cache hit reads it: inline, a
//! typical set (`billing.read deploy`) is read with the snapshot's own cache
//! line instead of through a vector and one string per grant, two or three
//! pointer chases a hit at a million keys paid for in cache misses.

use super::check;
use super::name::{Permission, covers, is_valid};
use crate::error::Error;
use std::fmt;

/// Longest packed set held inline, in bytes: two typical grants
/// (`billing.read billing.write`, 26) fit. The set is then 32 bytes and
/// owns no heap memory, so a cache hit reads it with the snapshot's own
/// cache line.
const INLINE: usize = 30;

/// A set of grants.
///
/// Sorted and deduplicated. Two sets are equal when they hold the same
/// grants (wildcards are not expanded: `billing.*` is not `billing.read`).
#[derive(Clone, Default)]
pub struct PermissionSet(Packed);

/// The sorted grants joined by spaces. Canonical: inline exactly when the
/// text fits, with zeros past its end, so the derived equality is content
/// equality.
#[derive(Clone, PartialEq, Eq)]
enum Packed {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl Default for Packed {
    fn default() -> Self {
        Self::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl Packed {
    fn new(text: &str) -> Self {
        let mut bytes = [0; INLINE];
        match (bytes.get_mut(..text.len()), u8::try_from(text.len())) {
            (Some(to), Ok(len)) => {
                to.copy_from_slice(text.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(text.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Self::Heap(text) => text.as_bytes(),
        }
    }

    /// Each grant's bytes, sorted.
    fn grants(&self) -> impl Iterator<Item = &[u8]> {
        let bytes = self.as_bytes();
        bytes
            .split(|b| *b == b' ')
            .filter(move |_| !bytes.is_empty())
    }
}

impl PermissionSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set is held inline (no heap memory).
    #[cfg(test)]
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.0, Packed::Inline { .. })
    }

    /// Parses each string as a [`Permission`].
    ///
    /// ```
    /// use keyward_core::PermissionSet;
    /// let set = PermissionSet::parse(["publish", "billing.*"])?;
    /// assert!(set.covers(&"billing.read".parse()?));
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Result<Self, Error> {
        let values: Vec<S> = values.into_iter().collect();
        for value in &values {
            check(value.as_ref())?;
        }
        Ok(Self::from_unsorted(values.iter().map(AsRef::as_ref)))
    }

    /// The set that covers everything (`*`).
    pub fn all() -> Self {
        Self(Packed::new("*"))
    }

    /// A set of `grants` in any order, with repeats.
    fn from_unsorted<'a>(grants: impl IntoIterator<Item = &'a str>) -> Self {
        let mut grants: Vec<&str> = grants.into_iter().collect();
        grants.sort_unstable();
        grants.dedup();
        Self(Packed::new(&grants.join(" ")))
    }

    /// Adds a grant.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "a set takes its items as other collections do; the packed form copies the text"
    )]
    pub fn insert(&mut self, permission: Permission) {
        if !self.iter().any(|g| g == permission.as_str()) {
            *self = Self::from_unsorted(self.iter().chain([permission.as_str()]));
        }
    }

    /// Whether some grant covers `permission`.
    pub fn covers(&self, permission: &Permission) -> bool {
        self.covers_name(permission.as_str())
    }

    /// Whether some grant covers the permission named `wanted` (checked
    /// already).
    pub(super) fn covers_name(&self, wanted: &str) -> bool {
        self.0
            .grants()
            .any(|grant| covers(grant, wanted.as_bytes()))
    }

    /// Whether this set covers every grant of `other` (wildcards included):
    /// the check behind "nobody grants more than they hold".
    pub fn covers_all(&self, other: &PermissionSet) -> bool {
        other
            .0
            .grants()
            .all(|wanted| self.0.grants().any(|grant| covers(grant, wanted)))
    }

    /// The grants of `other` that this set does not cover.
    pub fn uncovered(&self, other: &PermissionSet) -> Vec<Permission> {
        other
            .iter()
            .filter(|wanted| {
                !self
                    .0
                    .grants()
                    .any(|grant| covers(grant, wanted.as_bytes()))
            })
            .map(Permission::trusted)
            .collect()
    }

    /// Adds every grant of `other`.
    pub fn extend(&mut self, other: &PermissionSet) {
        if !other.is_empty() {
            *self = Self::from_unsorted(self.iter().chain(other.iter()));
        }
    }

    /// The grants covered by both sets, wildcards included: `billing.*` ∩
    /// `billing.read` is `billing.read`.
    ///
    /// Two grants that both cover a permission are nested (one covers the
    /// other), so keeping each grant of one side that the other side covers is
    /// exact.
    pub fn intersection(&self, other: &PermissionSet) -> PermissionSet {
        let covered_by =
            |set: &PermissionSet, grant: &str| set.0.grants().any(|g| covers(g, grant.as_bytes()));
        let ours = self.iter().filter(|g| covered_by(other, g));
        let theirs = other.iter().filter(|g| covered_by(self, g));
        Self::from_unsorted(ours.chain(theirs))
    }

    /// The grants, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        // Packed from permissions, which are ASCII: every piece is UTF-8.
        self.0
            .grants()
            .map(|grant| std::str::from_utf8(grant).unwrap_or_default())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.as_bytes().is_empty()
    }

    /// Number of grants.
    pub fn len(&self) -> usize {
        self.0.grants().count()
    }
}

impl PartialEq for PermissionSet {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes() == other.0.as_bytes()
    }
}

impl Eq for PermissionSet {}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let grants: Vec<Permission> = iter.into_iter().collect();
        Self::from_unsorted(grants.iter().map(Permission::as_str))
    }
}

/// Parses grants separated by whitespace, as [`PermissionSet`]'s `Display`
/// writes them (and the SQL adapters store them).
///
/// ```
/// use keyward_core::PermissionSet;
/// let set: PermissionSet = "deploy billing.*".parse()?;
/// assert_eq!(set.to_string(), "billing.* deploy");
/// assert_eq!(set.to_string().parse::<PermissionSet>()?, set);
/// Ok::<(), keyward_core::Error>(())
/// ```
impl std::str::FromStr for PermissionSet {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        // Text as this set writes it (valid grants, strictly sorted, joined
        // by single spaces) is taken as it is, checked once and not sorted
        // again: what stores read back.
        let mut previous: Option<&str> = None;
        let canonical = text.split(' ').all(|grant| {
            let next = is_valid(grant.as_bytes()) && previous.is_none_or(|p| p < grant);
            previous = Some(grant);
            next
        });
        if canonical {
            return Ok(Self(Packed::new(text)));
        }
        for grant in text.split_whitespace() {
            check(grant)?;
        }
        Ok(Self::from_unsorted(text.split_whitespace()))
    }
}

impl fmt::Display for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(self.0.as_bytes()).unwrap_or_default())
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> PermissionSet {
        PermissionSet::parse(items).unwrap()
    }

    #[test]
    fn a_short_set_is_held_inline_and_a_long_one_on_the_heap() {
        assert!(matches!(
            set(&["billing.read", "deploy"]).0,
            Packed::Inline { .. }
        ));
        assert!(matches!(set(&[]).0, Packed::Inline { len: 0, .. }));
        assert!(set(&["billing.read", "billing.write"]).is_inline());
        let long = set(&["billing.read", "billing.write", "deploy"]);
        assert!(matches!(long.0, Packed::Heap(_)));
        assert_eq!(
            long.iter().collect::<Vec<_>>(),
            ["billing.read", "billing.write", "deploy"]
        );
        assert_eq!(std::mem::size_of::<PermissionSet>(), 32);
    }

    #[test]
    fn sets_are_sorted_deduplicated_and_equal_by_content() {
        let a = set(&["b", "a", "b", "c.*"]);
        assert_eq!(a.iter().collect::<Vec<_>>(), ["a", "b", "c.*"]);
        assert_eq!(a.len(), 3);
        assert_eq!(a, set(&["c.*", "a", "b"]));
        assert_ne!(a, set(&["a", "b"]));
        let mut grown = set(&["a"]);
        grown.insert("c.*".parse().unwrap());
        grown.insert("b".parse().unwrap());
        grown.insert("b".parse().unwrap());
        assert_eq!(grown, a);
        assert_eq!(a.to_string(), "a b c.*");
        assert_eq!(format!("{a:?}"), r#"{"a", "b", "c.*"}"#);
        assert!(PermissionSet::new().is_empty());
        assert_eq!(PermissionSet::new().len(), 0);
        assert_eq!(PermissionSet::new().iter().count(), 0);
    }

    #[test]
    fn text_parses_back_to_the_same_set_whatever_its_spacing_or_order() {
        let expected = set(&["a.*", "b", "c"]);
        for text in ["a.* b c", "c b a.*", " a.*  b\tc ", "b a.* c b", "a.*\nb c"] {
            let parsed: PermissionSet = text.parse().unwrap();
            assert_eq!(parsed, expected, "{text:?}");
            assert_eq!(
                parsed.iter().collect::<Vec<_>>(),
                ["a.*", "b", "c"],
                "{text:?}"
            );
        }
        for empty in ["", " ", "\t\n"] {
            assert!(
                empty.parse::<PermissionSet>().unwrap().is_empty(),
                "{empty:?}"
            );
        }
        assert!("a b.*.c".parse::<PermissionSet>().is_err());
        assert!("a b;c".parse::<PermissionSet>().is_err());
    }

    #[test]
    fn a_grant_covers_by_whole_grant_never_by_a_piece_of_the_packed_text() {
        // "billing.read deploy" holds neither "read deploy" nor "billing".
        let held = set(&["billing.read", "deploy"]);
        assert!(held.covers(&"deploy".parse().unwrap()));
        assert!(!held.covers(&"billing".parse().unwrap()));
        assert!(!held.covers(&"read".parse().unwrap()));
        assert!(!held.covers(&"deplo".parse().unwrap()));
        assert!(!PermissionSet::new().covers(&"deploy".parse().unwrap()));
    }
}
