//! Finding candidate tokens in a buffer fast, and confirming them.
//!
//! The search never steps through the input byte by byte: a SIMD
//! multi-substring search ([`aho_corasick`], which hands a single pattern
//! to `memchr::memmem` and a few to its packed "Teddy" searcher) jumps to
//! each occurrence of a kind's `<prefix>_`. Only there does the finder look
//! at bytes one at a time: the byte before (a token starts a word), then
//! the word's length (at most [`MAX_TOKEN_LEN`] + 1 bytes), and only a word
//! of a configured token length goes to [`TokenFormat::parse`], which
//! checks the checksum.
//!
//! The answer is the same as [`TokenFormat::scan`]'s (every whole word of
//! `[A-Za-z0-9_]` that parses): a word that parses starts with its kind's
//! `<prefix>_`, so its first byte is a candidate. A candidate inside an
//! earlier match is never a word start (every byte of `<prefix>_` is a
//! word byte), so non-overlapping matches lose nothing.

use crate::error::ScanError;
use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use keyward_core::KeyId;
use keyward_core::limits::MAX_TOKEN_LEN;
use keyward_core::token::TokenFormat;
use std::ops::Range;

/// Bytes a candidate needs after its start to be decided: the longest
/// token and the byte that must end its word.
pub(crate) const LOOKAHEAD: usize = MAX_TOKEN_LEN + 1;

/// The prefix search and the confirmation for one [`TokenFormat`].
#[derive(Debug, Clone)]
pub(crate) struct Finder {
    format: TokenFormat,
    prefixes: AhoCorasick,
    /// `lengths[n]`: whether some kind's tokens are `n` bytes long.
    lengths: [bool; MAX_TOKEN_LEN + 1],
}

/// A confirmed token in a buffer.
#[derive(Debug)]
pub(crate) struct Hit {
    /// Where the token is in the buffer.
    pub(crate) span: Range<usize>,
    /// The kind's prefix.
    pub(crate) kind: String,
    /// The key the token names.
    pub(crate) key_id: KeyId,
}

/// Whether `byte` can be part of a token's word, as the regex's `\b` and
/// [`TokenFormat::scan`] see it.
pub(crate) fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

impl Finder {
    /// A finder for the kinds of `format`.
    pub(crate) fn new(format: TokenFormat) -> Result<Self, ScanError> {
        if format.kinds().is_empty() {
            return Err(ScanError::NoKinds);
        }
        let patterns: Vec<String> = format
            .kinds()
            .iter()
            .map(|kind| format!("{}_", kind.prefix()))
            .collect();
        let prefixes = AhoCorasick::builder()
            // Leftmost-first is what the packed SIMD searcher implements;
            // which of two nested prefixes matched does not matter, only
            // where (the word is parsed as a whole).
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .map_err(|source| ScanError::Prefixes {
                source: Box::new(source),
            })?;
        let mut lengths = [false; MAX_TOKEN_LEN + 1];
        for kind in format.kinds() {
            if let Some(slot) = lengths.get_mut(kind.token_len()) {
                *slot = true;
            }
        }
        Ok(Self {
            format,
            prefixes,
            lengths,
        })
    }

    /// The format searched for.
    pub(crate) fn format(&self) -> &TokenFormat {
        &self.format
    }

    /// Confirms every candidate that starts in `starts` of `text` and
    /// hands each token found to `found`, in order.
    ///
    /// `text[..starts.start]` must hold the byte before `starts.start`
    /// unless that is the start of the stream. Unless `at_end` (the text
    /// ends where the stream does), `text` must extend at least
    /// [`LOOKAHEAD`] bytes past `starts.end`.
    pub(crate) fn find(
        &self,
        text: &[u8],
        starts: Range<usize>,
        at_end: bool,
        mut found: impl FnMut(Hit),
    ) {
        let Some(searched) = text.get(..starts.end.saturating_add(LOOKAHEAD).min(text.len()))
        else {
            return;
        };
        // An empty or inverted range finds nothing (and must not reach
        // `Input::range`, which would panic on it).
        if starts.start >= starts.end || starts.start > searched.len() {
            return;
        }
        let input = Input::new(searched).range(starts.start..searched.len());
        for candidate in self.prefixes.find_iter(input) {
            let start = candidate.start();
            if start >= starts.end {
                break;
            }
            if let Some(hit) = self.confirm(text, start, at_end) {
                found(hit);
            }
        }
    }

    /// The token starting at `start`, if the word there is one.
    fn confirm(&self, text: &[u8], start: usize, at_end: bool) -> Option<Hit> {
        let before = start.checked_sub(1).and_then(|i| text.get(i)).copied();
        if before.is_some_and(is_word_byte) {
            return None;
        }
        let rest = text.get(start..)?;
        let window = rest.get(..LOOKAHEAD).unwrap_or(rest);
        let len = match window.iter().position(|&b| !is_word_byte(b)) {
            Some(len) => len,
            // The word runs to the end of the text: it ends there only if
            // the stream does (and no token is longer than the window).
            None if at_end && window.len() < LOOKAHEAD => window.len(),
            None => return None,
        };
        if !self.lengths.get(len).copied().unwrap_or(false) {
            return None;
        }
        let word = std::str::from_utf8(window.get(..len)?).ok()?;
        let parsed = self.format.parse(word).ok()?;
        Some(Hit {
            span: start..start + len,
            kind: parsed.kind().prefix().to_owned(),
            key_id: KeyId::parse(parsed.key_id()).ok()?,
        })
    }
}
