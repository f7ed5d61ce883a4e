//! Permissions, wildcard grants and requirement queries.
//!
//! A permission is a dotted name such as `billing.read`. A grant may end in a
//! wildcard: `billing.*` covers every permission under `billing.`, and `*`
//! covers everything.

pub(crate) mod name;
mod set;

use crate::error::Error;
pub use name::{MAX_PERMISSION_LEN, Permission};
pub use set::PermissionSet;
use std::fmt;

/// Most grants a key may be issued with directly, and a role may hold.
pub const MAX_GRANTS: usize = 256;

impl Permission {
    /// Parses `segment(.segment)*` where a segment is `[A-Za-z0-9_-]+`, and the
    /// last segment may be `*`. At most 128 bytes.
    ///
    /// ```
    /// use keyward_core::Permission;
    /// assert!(Permission::new("billing.read").is_ok());
    /// assert!(Permission::new("billing.*").is_ok());
    /// assert!(Permission::new("billing.*.read").is_err());
    /// ```
    pub fn new(value: &str) -> Result<Self, Error> {
        check(value).map(|()| Self(value.to_owned().into()))
    }
}

/// Checks that `value` is a permission or wildcard grant (without copying it).
pub(crate) fn check(value: &str) -> Result<(), Error> {
    if name::is_valid(value.as_bytes()) {
        Ok(())
    } else {
        Err(Error::invalid(
            "permission",
            "must be dot-separated segments of [A-Za-z0-9_-], optionally ending in `*`, at most 128 bytes",
        ))
    }
}

impl std::str::FromStr for Permission {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

/// As its text (`"billing.read"`).
impl serde::Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// From its text, checked as [`Permission::new`] checks it.
impl<'de> serde::Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Permission::new(&text).map_err(serde::de::Error::custom)
    }
}

/// As an array of its grants, sorted (`["billing.*", "deploy"]`).
impl serde::Serialize for PermissionSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// From an array of grants in any order, each checked, at most
/// [`MAX_GRANTS`] of them.
impl<'de> serde::Deserialize<'de> for PermissionSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let grants = <Vec<std::borrow::Cow<'de, str>>>::deserialize(deserializer)?;
        if grants.len() > MAX_GRANTS {
            return Err(serde::de::Error::custom(format!(
                "at most {MAX_GRANTS} grants"
            )));
        }
        PermissionSet::parse(&grants).map_err(serde::de::Error::custom)
    }
}

/// Most levels of nesting a [`Requirement`] may have (`all_of(any_of(p))` is 2).
pub const MAX_REQUIREMENT_DEPTH: usize = 16;
/// Most permissions a [`Requirement`] may name in all.
pub const MAX_REQUIREMENT_PERMISSIONS: usize = 256;
/// Most kinds a [`Requirement`] may accept.
pub const MAX_REQUIREMENT_KINDS: usize = 16;

/// What a request needs: a permission, all of several, any of several,
/// nested; optionally, which token kinds it accepts.
///
/// Checking it against a key's effective permissions answers with what is
/// missing, itself a requirement. Its size is capped when it is built
/// ([`MAX_REQUIREMENT_DEPTH`] levels, [`MAX_REQUIREMENT_PERMISSIONS`]
/// permissions), so checking one costs a bounded amount of stack and time.
///
/// ```
/// use keyward_core::{PermissionSet, Requirement};
/// let need = Requirement::all([
///     Requirement::permission("files.write".parse()?),
///     Requirement::any_of(["billing.read", "billing.admin"])?,
/// ])?;
/// let held = PermissionSet::parse(["files.*"])?;
/// let missing = need.missing_from(&held).unwrap();
/// assert_eq!(missing.to_string(), "any_of(billing.read, billing.admin)");
/// assert!(need.missing_from(&PermissionSet::parse(["*"])?).is_none());
///
/// // A management route accepts management tokens only.
/// let manage = Requirement::all_of(["projects.manage"])?.with_kinds(["mgmt"])?;
/// assert!(manage.accepts_kind("mgmt") && !manage.accepts_kind("mt"));
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    node: Node,
    depth: usize,
    size: usize,
    /// The kinds accepted; `None`: any kind.
    kinds: Option<Box<[String]>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Nothing,
    Permission(Permission),
    AllOf(Vec<Node>),
    AnyOf(Vec<Node>),
    /// Every one of these permissions, written in the code
    /// ([`Requirement::all_of_static`]); checked when it was built.
    AllOfStatic(&'static [&'static str]),
}

impl Requirement {
    /// Nothing is needed beyond a valid token.
    pub const fn nothing() -> Self {
        Self {
            node: Node::Nothing,
            depth: 0,
            size: 0,
            kinds: None,
        }
    }

    /// Needs every one of `names`, written in the code: a `const`
    /// requirement for a route, checked when the program is compiled (see
    /// [`crate::require!`], which writes this for you). Called at run time
    /// with an invalid name it panics; for names from input use
    /// [`Requirement::all_of`].
    ///
    /// ```
    /// use keyward_core::{PermissionSet, Requirement};
    /// const INVOICES: Requirement = Requirement::all_of_static(&["billing.read"]);
    /// let held = PermissionSet::parse(["billing.*"])?;
    /// assert!(INVOICES.missing_from(&held).is_none());
    /// assert_eq!(INVOICES.to_string(), "all_of(billing.read)");
    /// Ok::<(), keyward_core::Error>(())
    /// ```
    ///
    /// ```compile_fail
    /// const BAD: keyward_core::Requirement =
    ///     keyward_core::Requirement::all_of_static(&["billing.*.read"]);
    /// ```
    pub const fn all_of_static(names: &'static [&'static str]) -> Self {
        assert!(
            names.len() <= MAX_REQUIREMENT_PERMISSIONS,
            "a requirement names at most 256 permissions"
        );
        let mut rest = names;
        while let [first, tail @ ..] = rest {
            assert!(
                name::is_valid(first.as_bytes()),
                "not a permission: dot-separated segments of [A-Za-z0-9_-], optionally ending in `*`, at most 128 bytes"
            );
            rest = tail;
        }
        Self {
            node: Node::AllOfStatic(names),
            depth: if names.is_empty() { 1 } else { 2 },
            size: names.len(),
            kinds: None,
        }
    }

    /// Needs `permission`.
    pub fn permission(permission: Permission) -> Self {
        Self {
            node: Node::Permission(permission),
            depth: 1,
            size: 1,
            kinds: None,
        }
    }

    /// Needs every part. Fails past [`MAX_REQUIREMENT_DEPTH`] levels or
    /// [`MAX_REQUIREMENT_PERMISSIONS`] permissions.
    pub fn all(parts: impl IntoIterator<Item = Requirement>) -> Result<Self, Error> {
        Self::combine(parts, Node::AllOf)
    }

    /// Needs at least one part. Fails past [`MAX_REQUIREMENT_DEPTH`] levels
    /// or [`MAX_REQUIREMENT_PERMISSIONS`] permissions.
    pub fn any(parts: impl IntoIterator<Item = Requirement>) -> Result<Self, Error> {
        Self::combine(parts, Node::AnyOf)
    }

    /// Needs every named permission.
    pub fn all_of<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<Self, Error> {
        Self::all(parse_all(names)?)
    }

    /// Needs at least one named permission.
    pub fn any_of<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<Self, Error> {
        Self::any(parse_all(names)?)
    }

    fn combine(
        parts: impl IntoIterator<Item = Requirement>,
        node: fn(Vec<Node>) -> Node,
    ) -> Result<Self, Error> {
        let (mut nodes, mut depth, mut size) = (Vec::new(), 0, 0);
        for part in parts {
            if part.kinds.is_some() {
                return Err(Error::invalid(
                    "requirement",
                    "accepted kinds apply to a whole requirement, not to a part",
                ));
            }
            depth = depth.max(part.depth);
            size += part.size;
            if size > MAX_REQUIREMENT_PERMISSIONS {
                return Err(Error::invalid(
                    "requirement",
                    format!("names at most {MAX_REQUIREMENT_PERMISSIONS} permissions"),
                ));
            }
            nodes.push(part.node);
        }
        if depth >= MAX_REQUIREMENT_DEPTH {
            return Err(Error::invalid(
                "requirement",
                format!("nests at most {MAX_REQUIREMENT_DEPTH} levels"),
            ));
        }
        Ok(Self {
            node: node(nodes),
            depth: depth + 1,
            size,
            kinds: None,
        })
    }

    /// Accepts only tokens of these kinds (prefixes); any other kind is
    /// refused with [`crate::Rejection::KindNotAccepted`], whatever it holds.
    pub fn with_kinds<S: AsRef<str>>(
        mut self,
        kinds: impl IntoIterator<Item = S>,
    ) -> Result<Self, Error> {
        let kinds: Vec<String> = kinds.into_iter().map(|k| k.as_ref().to_owned()).collect();
        if kinds.is_empty() || kinds.len() > MAX_REQUIREMENT_KINDS {
            return Err(Error::invalid(
                "requirement kinds",
                format!("name 1..={MAX_REQUIREMENT_KINDS} kinds"),
            ));
        }
        self.kinds = Some(kinds.into_boxed_slice());
        Ok(self)
    }

    /// Whether a token of `kind` may meet this requirement.
    pub fn accepts_kind(&self, kind: &str) -> bool {
        self.kinds
            .as_deref()
            .is_none_or(|kinds| kinds.iter().any(|k| k == kind))
    }

    /// The kinds accepted, if the requirement names them.
    pub fn kinds(&self) -> Option<&[String]> {
        self.kinds.as_deref()
    }

    /// What of this requirement `held` does not satisfy, or `None` when it is
    /// satisfied. An empty `any` can never be satisfied; an empty `all` always is.
    /// (Kinds are checked by [`Requirement::accepts_kind`].)
    pub fn missing_from(&self, held: &PermissionSet) -> Option<Requirement> {
        self.node.missing_from(held).map(|node| {
            let (depth, size) = node.measure();
            Self {
                node,
                depth,
                size,
                kinds: None,
            }
        })
    }

    /// The name of every permission this requirement names.
    pub fn permissions(&self) -> Vec<&str> {
        let mut out = Vec::with_capacity(self.size);
        self.node.collect(&mut out);
        out
    }
}

impl Node {
    fn missing_from(&self, held: &PermissionSet) -> Option<Node> {
        match self {
            Self::Nothing => None,
            Self::Permission(p) => (!held.covers(p)).then(|| self.clone()),
            Self::AllOf(parts) => {
                let missing: Vec<Node> =
                    parts.iter().filter_map(|p| p.missing_from(held)).collect();
                match missing.len() {
                    0 => None,
                    1 => missing.into_iter().next(),
                    _ => Some(Self::AllOf(missing)),
                }
            }
            Self::AnyOf(parts) => {
                if parts.iter().any(|p| p.missing_from(held).is_none()) {
                    None
                } else {
                    Some(self.clone())
                }
            }
            Self::AllOfStatic(names) => {
                let mut missing: Vec<Node> = names
                    .iter()
                    .filter(|name| !held.covers_name(name))
                    .map(|name| Self::Permission(Permission::trusted(name)))
                    .collect();
                match missing.len() {
                    0 => None,
                    1 => missing.pop(),
                    _ => Some(Self::AllOf(missing)),
                }
            }
        }
    }

    /// (depth, permissions named).
    fn measure(&self) -> (usize, usize) {
        match self {
            Self::Nothing => (0, 0),
            Self::Permission(_) => (1, 1),
            Self::AllOf(parts) | Self::AnyOf(parts) => {
                let (depth, size) = parts
                    .iter()
                    .map(Node::measure)
                    .fold((0, 0), |(depth, size), (d, s)| (depth.max(d), size + s));
                (depth + 1, size)
            }
            Self::AllOfStatic(names) => (if names.is_empty() { 1 } else { 2 }, names.len()),
        }
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Self::Nothing => {}
            Self::Permission(p) => out.push(p.as_str()),
            Self::AllOf(parts) | Self::AnyOf(parts) => {
                parts.iter().for_each(|p| p.collect(out));
            }
            Self::AllOfStatic(names) => out.extend(names.iter().copied()),
        }
    }
}

/// A requirement of every named permission, built and checked when the
/// program is compiled: a route's requirement as a `const` or a `static`,
/// or inline, with no `Result` to handle. An invalid name fails the build.
///
/// ```
/// use keyward_core::{PermissionSet, Requirement, require};
/// const PUBLISH: Requirement = require!("publish");
/// static BILLING: Requirement = require!("billing.read", "billing.write");
/// let held = PermissionSet::parse(["publish", "billing.read"])?;
/// assert!(PUBLISH.missing_from(&held).is_none());
/// assert_eq!(BILLING.missing_from(&held).unwrap().to_string(), "billing.write");
/// assert!(require!("files.*").missing_from(&held).is_some());
/// Ok::<(), keyward_core::Error>(())
/// ```
///
/// ```compile_fail
/// const BAD: keyward_core::Requirement = keyward_core::require!("no spaces");
/// ```
#[macro_export]
macro_rules! require {
    ($($name:literal),+ $(,)?) => {
        const { $crate::Requirement::all_of_static(&[$($name),+]) }
    };
}

fn parse_all<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<Vec<Requirement>, Error> {
    names
        .into_iter()
        .map(|n| Permission::new(n.as_ref()).map(Requirement::permission))
        .collect()
}

impl From<Permission> for Requirement {
    fn from(p: Permission) -> Self {
        Self::permission(p)
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, name: &str, parts: &[Node]| {
            let inner: Vec<String> = parts.iter().map(ToString::to_string).collect();
            write!(f, "{name}({})", inner.join(", "))
        };
        match self {
            Self::Nothing => f.write_str("nothing"),
            Self::Permission(p) => f.write_str(p.as_str()),
            Self::AllOf(parts) => list(f, "all_of", parts),
            Self::AnyOf(parts) => list(f, "any_of", parts),
            Self::AllOfStatic(names) => write!(f, "all_of({})", names.join(", ")),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.node.fmt(f)?;
        match &self.kinds {
            Some(kinds) => write!(f, " for kinds {}", kinds.join(", ")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Permission {
        Permission::new(s).unwrap()
    }

    fn set(items: &[&str]) -> PermissionSet {
        PermissionSet::parse(items).unwrap()
    }

    #[test]
    fn wildcards_cover_their_subtree_only() {
        assert!(p("*").covers(&p("billing.read")));
        assert!(p("billing.*").covers(&p("billing.read")));
        assert!(p("billing.*").covers(&p("billing.invoices.read")));
        assert!(!p("billing.*").covers(&p("billingx.read")));
        assert!(!p("billing.*").covers(&p("billing")));
        assert!(!p("billing.read").covers(&p("billing.write")));
        assert!(p("billing.*").covers(&p("billing.*")));
        assert!(!p("billing.read").covers(&p("billing.*")));
    }

    #[test]
    fn invalid_permissions_are_refused() {
        for bad in [
            "",
            ".",
            "a..b",
            "a.",
            "*.a",
            "a b",
            "a.*b",
            "é",
            "a;drop table",
        ] {
            assert!(Permission::new(bad).is_err(), "{bad}");
        }
        assert!(Permission::new(&"a".repeat(129)).is_err());
    }

    #[test]
    fn intersection_respects_wildcards() {
        assert_eq!(
            set(&["billing.*"]).intersection(&set(&["billing.read"])),
            set(&["billing.read"])
        );
        assert_eq!(
            set(&["*"]).intersection(&set(&["files", "publish"])),
            set(&["files", "publish"])
        );
        assert_eq!(set(&["files"]).intersection(&set(&["publish"])), set(&[]));
        assert_eq!(set(&["*"]).intersection(&set(&["*"])), set(&["*"]));
    }

    #[test]
    fn missing_reports_only_unsatisfied_parts() {
        let need = Requirement::all([
            Requirement::all_of(["a", "b"]).unwrap(),
            Requirement::any_of(["c", "d"]).unwrap(),
        ])
        .unwrap();
        let missing = need.missing_from(&set(&["a"])).unwrap();
        assert_eq!(missing.to_string(), "all_of(b, any_of(c, d))");
        assert!(need.missing_from(&set(&["a", "b", "d"])).is_none());
        assert!(Requirement::nothing().missing_from(&set(&[])).is_none());
        assert!(
            Requirement::any([])
                .unwrap()
                .missing_from(&set(&["*"]))
                .is_some()
        );
    }

    #[test]
    fn a_huge_permission_is_refused_before_it_is_split() {
        // 16 MiB of dots: refused by length, never split into 16 M segments.
        let dots = ".".repeat(16 << 20);
        assert!(Permission::new(&dots).is_err());
        assert!(Permission::new(&"a".repeat(MAX_PERMISSION_LEN)).is_ok());
        assert!(Permission::new(&"a".repeat(MAX_PERMISSION_LEN + 1)).is_err());
        assert_eq!(MAX_PERMISSION_LEN, 128);
    }

    /// A requirement names 1..=16 kinds.
    #[test]
    fn a_requirement_names_at_most_16_kinds() {
        assert_eq!(MAX_REQUIREMENT_KINDS, 16);
        let kinds: Vec<String> = (0..17).map(|n| format!("k{n}")).collect();
        assert!(Requirement::nothing().with_kinds(&kinds[..16]).is_ok());
        assert!(Requirement::nothing().with_kinds(&kinds).is_err());
    }

    #[test]
    fn requirements_nest_a_bounded_depth_without_overflowing_the_stack() {
        let mut need = Requirement::permission(p("a"));
        let mut refused_at = None;
        for level in 1..10_000 {
            match Requirement::all([need.clone()]) {
                Ok(deeper) => need = deeper,
                Err(e) => {
                    assert!(matches!(e, Error::InvalidInput { .. }));
                    refused_at = Some(level);
                    break;
                }
            }
        }
        assert_eq!(refused_at, Some(MAX_REQUIREMENT_DEPTH));
        assert!(need.missing_from(&set(&["a"])).is_none());
        assert!(need.missing_from(&set(&["b"])).is_some());
    }

    #[test]
    fn requirements_name_a_bounded_number_of_permissions() {
        let names: Vec<String> = (0..=MAX_REQUIREMENT_PERMISSIONS)
            .map(|i| format!("p{i}"))
            .collect();
        assert!(Requirement::all_of(&names).is_err());
        assert!(Requirement::all_of(&names[..MAX_REQUIREMENT_PERMISSIONS]).is_ok());
        let half = Requirement::all_of(&names[..200]).unwrap();
        assert!(
            Requirement::any([half.clone(), half]).is_err(),
            "counted across parts"
        );
    }

    #[test]
    fn a_requirement_may_name_the_kinds_it_accepts() {
        let need = Requirement::all_of(["projects.manage"])
            .unwrap()
            .with_kinds(["mgmt"])
            .unwrap();
        assert!(need.accepts_kind("mgmt"));
        assert!(!need.accepts_kind("mt"));
        assert!(Requirement::nothing().accepts_kind("mt"));
        assert!(
            Requirement::nothing()
                .with_kinds(Vec::<&str>::new())
                .is_err()
        );
        assert!(
            Requirement::all([need.clone()]).is_err(),
            "kinds bind the whole requirement"
        );
        assert_eq!(need.to_string(), "all_of(projects.manage) for kinds mgmt");
        assert_eq!(
            need.missing_from(&set(&[])).unwrap().to_string(),
            "projects.manage"
        );
    }

    #[test]
    fn a_compiled_requirement_answers_as_the_parsed_one() {
        const STATIC: Requirement = crate::require!("billing.read", "publish", "files.*");
        let dynamic = Requirement::all_of(["billing.read", "publish", "files.*"]).unwrap();
        assert_eq!(STATIC.to_string(), dynamic.to_string());
        assert_eq!(STATIC.permissions(), dynamic.permissions());
        for held in [
            set(&[]),
            set(&["billing.*"]),
            set(&["billing.read", "publish"]),
            set(&["*"]),
            set(&["files.*", "publish"]),
        ] {
            assert_eq!(
                STATIC.missing_from(&held).map(|m| m.to_string()),
                dynamic.missing_from(&held).map(|m| m.to_string()),
                "{held}"
            );
        }
        const EMPTY: Requirement = Requirement::all_of_static(&[]);
        assert!(EMPTY.missing_from(&set(&[])).is_none());
        // Checked by the same rule at run time too.
        let bad = std::panic::catch_unwind(|| Requirement::all_of_static(&["a b"]));
        assert!(bad.is_err());
    }

    #[test]
    fn permissions_serialize_as_text_and_are_checked_on_the_way_in() {
        let set = set(&["deploy", "billing.*"]);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["billing.*","deploy"]"#);
        assert_eq!(serde_json::from_str::<PermissionSet>(&json).unwrap(), set);
        assert_eq!(
            serde_json::from_str::<PermissionSet>(r#"["deploy","billing.*","deploy"]"#).unwrap(),
            set
        );
        assert!(serde_json::from_str::<PermissionSet>(r#"["billing.*.read"]"#).is_err());
        assert!(serde_json::from_str::<PermissionSet>(r#""deploy""#).is_err());
        let too_many: Vec<String> = (0..=MAX_GRANTS).map(|i| format!("p{i}")).collect();
        let too_many = serde_json::to_string(&too_many).unwrap();
        assert!(serde_json::from_str::<PermissionSet>(&too_many).is_err());
        assert_eq!(serde_json::to_string(&p("a.b")).unwrap(), r#""a.b""#);
        assert!(serde_json::from_str::<Permission>(r#""a b""#).is_err());
    }

    proptest! {
        #[test]
        fn permission_parser_never_panics(s in ".{0,200}") {
            let _ = Permission::new(&s);
        }

        #[test]
        fn intersection_is_what_both_cover(
            a in proptest::collection::vec("(a|b|\\*)(\\.(a|b|\\*)){0,2}", 0..4),
            b in proptest::collection::vec("(a|b|\\*)(\\.(a|b|\\*)){0,2}", 0..4),
            probe in "(a|b)(\\.(a|b)){0,3}",
        ) {
            let (Ok(a), Ok(b)) = (PermissionSet::parse(&a), PermissionSet::parse(&b)) else {
                return Ok(());
            };
            let probe = p(&probe);
            let both = a.covers(&probe) && b.covers(&probe);
            prop_assert_eq!(a.intersection(&b).covers(&probe), both);
        }
    }
}
