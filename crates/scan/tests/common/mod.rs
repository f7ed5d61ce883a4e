//! Tokens minted for tests, and text built with the place of each planted
//! token recorded as it is written.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: each test binary uses part of them, and a failed setup should stop it loudly"
)]

use keyward_core::TokenKind;
use keyward_core::token::TokenFormat;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The kinds every scan test searches for: the products' prefixes, one
/// with an underscore in it, and two that nest (`sk`, `sk_live`).
pub(crate) fn format() -> TokenFormat {
    TokenFormat::new([
        TokenKind::new("mt").unwrap(),
        TokenKind::new("tak").unwrap(),
        TokenKind::new("mm_pat")
            .unwrap()
            .with_lengths(4, 22)
            .unwrap(),
        TokenKind::new("sk").unwrap(),
        TokenKind::new("sk_live").unwrap(),
    ])
    .unwrap()
}

/// A deterministic stream of base62 characters.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn base62(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(BASE62[self.below(62) as usize]))
            .collect()
    }
}

/// The six base62 digits of `crc`, most significant first.
fn checksum(mut crc: u32) -> String {
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    String::from_utf8(out.to_vec()).unwrap()
}

/// A token with a valid checksum: `prefix`, a key id and secret of the
/// given lengths. Checked against the core's parser of `format()` when the
/// prefix is one of its kinds.
pub(crate) fn mint(rng: &mut Rng, prefix: &str, key_id_len: usize, secret_len: usize) -> String {
    let signed = format!("{prefix}_{}", rng.base62(key_id_len + secret_len));
    let token = format!("{signed}{}", checksum(crc32fast::hash(signed.as_bytes())));
    if format().kind(prefix).is_some() {
        assert!(
            format().parse(&token).is_ok(),
            "minted {prefix} token must parse"
        );
    }
    token
}

/// A token of a kind of `format()`, with that kind's lengths.
pub(crate) fn token(rng: &mut Rng, prefix: &str) -> String {
    let kind = format().kind(prefix).cloned().unwrap();
    mint(rng, prefix, kind.key_id_len(), kind.secret_len())
}

/// The same token with its last checksum character changed.
pub(crate) fn bad_checksum(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let last = bytes.last_mut().unwrap();
    *last = if *last == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// Where a token was planted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Planted {
    pub(crate) path: String,
    pub(crate) line: u64,
    pub(crate) column: u64,
    pub(crate) char_column: u64,
    pub(crate) kind: String,
    pub(crate) key_id: String,
}

/// Text being written, recording where each planted token lands.
pub(crate) struct Text {
    pub(crate) path: String,
    pub(crate) text: String,
    pub(crate) planted: Vec<Planted>,
}

impl Text {
    pub(crate) fn new(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            text: String::new(),
            planted: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Writes `token` and records its place: line and column computed by
    /// counting what was written before it.
    pub(crate) fn plant(&mut self, token: &str) -> &mut Self {
        let line_start = self.text.rfind('\n').map_or(0, |i| i + 1);
        let line = self.text.matches('\n').count() as u64 + 1;
        let column = (self.text.len() - line_start) as u64 + 1;
        let char_column = self.text[line_start..].chars().count() as u64 + 1;
        let parsed = format();
        let parsed = parsed.parse(token).unwrap();
        self.planted.push(Planted {
            path: self.path.clone(),
            line,
            column,
            char_column,
            kind: parsed.kind().prefix().to_owned(),
            key_id: parsed.key_id().to_owned(),
        });
        self.text.push_str(token);
        self
    }
}

/// What a report found, in the shape of [`Planted`].
pub(crate) fn found(report: &keyward_scan::ScanReport) -> Vec<Planted> {
    report
        .findings
        .iter()
        .map(|f| Planted {
            path: f.path().to_owned(),
            line: f.line(),
            column: f.column(),
            char_column: f.char_column(),
            kind: f.kind().to_owned(),
            key_id: f.key_id().as_str().to_owned(),
        })
        .collect()
}
