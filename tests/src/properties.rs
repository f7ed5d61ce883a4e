//! Property tests for the storage adapters: arbitrary names, metadata and
//! name filters (quotes, `%`, `_`, backslashes, SQL comment markers, emoji,
//! combining characters, 10 kB values) round-trip unchanged and never break a
//! query.
//!
//! [`names_metadata_and_filters_round_trip`] runs a proptest [`TestRunner`]
//! against one store: every case inserts a key with a generated name and
//! metadata (plus a plain decoy key) for an owner of its own, reads it back,
//! and lists the owner's keys with three filters:
//!
//! - a slice of the name, with random case changes that keep it matching
//!   under [`name_contains`];
//! - that slice with one character replaced by a SQL wildcard (`%` or `_`),
//!   which must be matched literally;
//! - an arbitrary string (empty, control characters, NUL, 10 kB …).
//!
//! Each list must return exactly the keys [`name_contains`] predicts, and
//! never an error. Failures shrink to a small input, printed with long
//! strings abbreviated.

use crate::records::key as record;
use keyward_core::chrono::{DateTime, TimeDelta};
use keyward_core::testkit::records::{issue_event, random_base62};
use keyward_core::{
    KeyId, Owner, limits::MAX_METADATA_KEY_LEN, store::KeyStore, store::ListQuery, store::Metadata,
    store::name_contains,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, TestCaseError, TestCaseResult, TestRunner};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::runtime::Runtime;

/// Cases per backend unless `KEYWARD_PROPTEST_CASES` says otherwise.
pub const DEFAULT_CASES: u32 = 32;

/// The longest generated name, filter and (long) metadata value: 10 kB, the
/// size the issue names (names may be up to 16 kB).
const LONG: usize = 10 * 1024;

/// Text that has broken SQL adapters before: quotes, wildcards, escapes,
/// comment and placeholder markers, and Unicode whose case mapping or
/// encoding is unusual (none of it is a control character).
const TRICKY: &[&str] = &[
    "'",
    "''",
    "\"",
    "`",
    "%",
    "_",
    "%_%",
    "\\",
    "\\%",
    "\\_",
    ";",
    "--",
    "/*",
    "*/",
    "?",
    "?1",
    ":name",
    "$1",
    "@p",
    "' OR '1'='1",
    "'); DROP TABLE keyward_keys;--",
    "NULL",
    "[a-z]",
    "*",
    "{\"a\":1}",
    "\\u0000",
    "é",
    "e\u{301}",
    "a\u{308}\u{301}",
    "ß",
    "ẞ",
    "İ",
    "ı",
    "Σ",
    "ς",
    "ﬁ",
    "ǅ",
    "Ω",
    "Å",
    "🔑",
    "👩\u{200d}👩\u{200d}👧",
    "🏳\u{fe0f}\u{200d}🌈",
    "日本語",
    "한국어",
    "עברית",
    "\u{202e}",
    "\u{200b}",
    "\u{feff}",
    "\u{2028}",
    "\u{3000}",
    "\u{10ffff}",
    "𝔘",
    " ",
    "a",
    "A",
];

/// Control characters: allowed in metadata values (except NUL) and in
/// filters, never in names or metadata keys.
const CONTROL: &[&str] = &[
    "\n", "\r\n", "\t", "\u{1}", "\u{1b}", "\u{1f}", "\u{7f}", "\u{85}", "\u{9f}",
];

/// One generated input.
#[derive(Clone)]
pub struct Case {
    /// A valid key name.
    pub name: String,
    /// Valid metadata.
    pub metadata: Metadata,
    /// Where the slice of the name used as a filter starts and ends.
    pub slice: (Index, Index),
    /// Case changes applied, cyclically, to the slice's characters.
    pub case_changes: Vec<CaseChange>,
    /// Which character of the slice becomes a wildcard, and which wildcard.
    pub wildcard: (Index, bool),
    /// An arbitrary filter string.
    pub filter: String,
}

/// A case change for one character of the filter slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseChange {
    /// Leave it.
    Keep,
    /// `char::to_uppercase`.
    Upper,
    /// `char::to_lowercase`.
    Lower,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let metadata: Vec<(Abbreviated<'_>, Abbreviated<'_>)> = self
            .metadata
            .iter()
            .map(|(k, v)| (Abbreviated(k), Abbreviated(v)))
            .collect();
        f.debug_struct("Case")
            .field("name", &Abbreviated(&self.name))
            .field("metadata", &metadata)
            .field("substring_filter", &Abbreviated(&self.substring()))
            .field(
                "wildcard_filter",
                &self.wildcarded().as_deref().map(Abbreviated),
            )
            .field("filter", &Abbreviated(&self.filter))
            .finish()
    }
}

/// Debug-prints a string, eliding the middle of long ones.
struct Abbreviated<'a>(&'a str);

impl fmt::Debug for Abbreviated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const EDGE: usize = 60;
        let chars = self.0.chars().count();
        if chars <= 2 * EDGE {
            return write!(f, "{:?}", self.0);
        }
        let head: String = self.0.chars().take(EDGE).collect();
        let tail: String = self.0.chars().skip(chars - EDGE).collect();
        write!(f, "{head:?} … {tail:?} ({} bytes)", self.0.len())
    }
}

impl Case {
    /// A slice of the name at character boundaries (never empty), with the
    /// case changes applied where they keep it matching the name under
    /// [`name_contains`].
    pub fn substring(&self) -> String {
        let bounds: Vec<usize> = self
            .name
            .char_indices()
            .map(|(i, _)| i)
            .chain([self.name.len()])
            .collect();
        let (mut start, mut end) = {
            let a = self.slice.0.index(bounds.len());
            let b = self.slice.1.index(bounds.len());
            (a.min(b), a.max(b))
        };
        if start == end {
            if end + 1 < bounds.len() {
                end += 1;
            } else {
                start -= 1;
            }
        }
        let slice = &self.name[bounds[start]..bounds[end]];
        let changed: String = slice
            .chars()
            .zip(self.case_changes.iter().cycle())
            .map(|(c, change)| {
                let mapped: String = match change {
                    CaseChange::Keep => c.to_string(),
                    CaseChange::Upper => c.to_uppercase().collect(),
                    CaseChange::Lower => c.to_lowercase().collect(),
                };
                // Only changes that fold back to the same text (`ß` → `SS`
                // does not).
                if mapped.to_lowercase() == c.to_lowercase().collect::<String>() {
                    mapped
                } else {
                    c.to_string()
                }
            })
            .collect();
        if name_contains(&self.name, &changed) {
            changed
        } else {
            // Context-dependent folding (final sigma) can undo a change.
            slice.to_owned()
        }
    }

    /// The substring with one character replaced by `%` or `_`, if it has
    /// at least three characters.
    pub fn wildcarded(&self) -> Option<String> {
        let substring = self.substring();
        let chars: Vec<char> = substring.chars().collect();
        if chars.len() < 3 {
            return None;
        }
        let at = 1 + self.wildcard.0.index(chars.len() - 2);
        let wildcard = if self.wildcard.1 { '%' } else { '_' };
        Some(
            chars
                .iter()
                .enumerate()
                .map(|(i, c)| if i == at { wildcard } else { *c })
                .collect(),
        )
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// A short piece of name-safe text (no control characters).
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(TRICKY).prop_map(str::to_owned),
        3 => "[a-zA-Z0-9 ]{1,8}",
        2 => any::<char>()
            .prop_filter("names hold no control characters", |c| !c.is_control())
            .prop_map(String::from),
    ]
}

/// A short piece of anything: name-safe text, control characters or NUL.
fn any_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => piece(),
        2 => select(CONTROL).prop_map(str::to_owned),
        1 => Just("\0".to_owned()),
        1 => any::<char>().prop_map(String::from),
    ]
}

/// A piece of a metadata value: anything but NUL.
fn value_piece() -> impl Strategy<Value = String> {
    any_piece().prop_map(|p| p.replace('\0', "\u{1}"))
}

/// Short text from `pieces`, or a long (up to `max` bytes) repetition.
fn text<S: Strategy<Value = String>>(
    pieces: fn() -> S,
    max: usize,
) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => vec(pieces(), 1..24).prop_map(|p| p.concat()),
        1 => (vec(pieces(), 1..6), 1..=max).prop_map(move |(p, len)| {
            let unit = p.concat();
            truncate(unit.repeat(len / unit.len().max(1) + 1), len)
        }),
    ]
    .prop_map(move |t| truncate(t, max))
}

/// A valid key name: not blank, no control characters, up to 10 kB.
fn name() -> impl Strategy<Value = String> {
    text(piece, LONG).prop_map(|mut name| {
        if name.trim().is_empty() {
            name.push('x');
        }
        name
    })
}

/// Valid metadata: keys of name-safe text (1..=128 bytes), values of
/// anything but NUL (up to 10 kB).
fn metadata() -> impl Strategy<Value = Metadata> {
    let key = vec(piece(), 1..6).prop_map(|p| truncate(p.concat(), MAX_METADATA_KEY_LEN));
    let value = prop_oneof![
        1 => Just(String::new()),
        6 => text(value_piece, LONG),
    ];
    btree_map(key, value, 0..6)
}

/// Every input a case needs.
pub fn cases() -> impl Strategy<Value = Case> {
    let case_change = prop_oneof![
        Just(CaseChange::Keep),
        Just(CaseChange::Upper),
        Just(CaseChange::Lower),
    ];
    let filter = prop_oneof![
        1 => Just(String::new()),
        8 => text(any_piece, LONG),
    ];
    (
        name(),
        metadata(),
        (any::<Index>(), any::<Index>()),
        vec(case_change, 1..8),
        (any::<Index>(), any::<bool>()),
        filter,
    )
        .prop_map(
            |(name, metadata, slice, case_changes, wildcard, filter)| Case {
                name,
                metadata,
                slice,
                case_changes,
                wildcard,
                filter,
            },
        )
}

/// The number of cases: `KEYWARD_PROPTEST_CASES`, or [`DEFAULT_CASES`].
pub fn case_count() -> u32 {
    std::env::var("KEYWARD_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Runs the property against `store` on `rt`, panicking with the shrunk
/// failing input if any case fails.
pub fn names_metadata_and_filters_round_trip(rt: &Runtime, store: &dyn KeyStore) {
    let mut config = Config::with_cases(case_count());
    // Regressions are not persisted: the inputs are printed on failure.
    config.failure_persistence = None;
    // Shrinking reruns cases against a live database: enough iterations to
    // reach a readable input, bounded in time.
    config.max_shrink_iters = 2048;
    config.max_shrink_time = 60_000;
    let mut runner = TestRunner::new(config);
    let run = Run::new();
    if let Err(failure) = runner.run(&cases(), |case| rt.block_on(run.check(store, &case))) {
        panic!("{failure}");
    }
}

/// Unique owners, ids and times for the cases of one run (shrinking reruns
/// cases against the same store, so nothing may repeat).
#[derive(Debug)]
struct Run {
    tag: String,
    next: AtomicU64,
}

impl Run {
    fn new() -> Self {
        Self {
            tag: random_base62(10),
            next: AtomicU64::new(0),
        }
    }

    async fn check(&self, store: &dyn KeyStore, case: &Case) -> TestCaseResult {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let owner = Owner::new(&format!("prop:{}:{n}", self.tag)).unwrap();
        let base = DateTime::from_timestamp(1_767_225_600, 0).unwrap()
            + TimeDelta::microseconds(i64::try_from(n).unwrap() * 10 + 7);
        let decoy = record(&owner, "plain decoy key", Metadata::new(), base);
        let key = record(
            &owner,
            &case.name,
            case.metadata.clone(),
            base + TimeDelta::microseconds(1),
        );
        for k in [&decoy, &key] {
            store
                .insert_key(k, Some(64), k.created_at, &issue_event(k))
                .await
                .map_err(|e| fail(format!("insert_key failed: {e:?}")))?;
        }

        let stored = store
            .get_key(&key.id)
            .await
            .map_err(|e| fail(format!("get_key failed: {e:?}")))?
            .ok_or_else(|| fail("get_key returned None for the inserted key"))?;
        same_text(&stored.name, &key.name, "name")?;
        prop_assert_eq!(
            stored.metadata.keys().collect::<Vec<_>>(),
            key.metadata.keys().collect::<Vec<_>>(),
            "metadata keys did not round-trip"
        );
        for (k, v) in &key.metadata {
            same_text(
                &stored.metadata[k],
                v,
                &format!("metadata[{:?}]", Abbreviated(k)),
            )?;
        }

        let mut filters = vec![("slice of the name", case.substring())];
        filters.extend(case.wildcarded().map(|w| ("slice with a wildcard", w)));
        filters.push(("arbitrary filter", case.filter.clone()));
        for (what, filter) in filters {
            let mut query = ListQuery::new(owner.clone(), base + TimeDelta::seconds(1), 10);
            query.name_contains = Some(filter.clone());
            let page = store.list_keys(&query).await.map_err(|e| {
                fail(format!(
                    "list_keys with the {what} {:?} failed: {e:?}",
                    Abbreviated(&filter)
                ))
            })?;
            let expected: Vec<&KeyId> = [&key, &decoy]
                .into_iter()
                .filter(|k| name_contains(&k.name, &filter))
                .map(|k| &k.id)
                .collect();
            let found: Vec<&KeyId> = page.items.iter().map(|k| &k.id).collect();
            prop_assert_eq!(
                found,
                expected,
                "list_keys with the {} {:?} disagrees with name_contains (key {}, decoy {})",
                what,
                Abbreviated(&filter),
                key.id,
                decoy.id
            );
        }
        Ok(())
    }
}

fn fail(message: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(message.into())
}

/// Fails unless the strings are equal, describing a difference in long ones
/// by position instead of printing them.
fn same_text(returned: &str, stored: &str, what: &str) -> TestCaseResult {
    if returned == stored {
        return Ok(());
    }
    let first_difference = returned
        .bytes()
        .zip(stored.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| returned.len().min(stored.len()));
    Err(fail(format!(
        "{what} did not round-trip: stored {:?}, returned {:?}, first difference at byte {first_difference}",
        Abbreviated(stored),
        Abbreviated(returned),
    )))
}
