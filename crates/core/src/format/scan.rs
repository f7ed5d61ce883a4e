//! Finding tokens in text: [`TokenFormat::scan`] (every token, confirmed
//! by its checksum) and [`TokenFormat::contains_token`] (a loose search
//! that also sees tokens split by invisible characters).

use super::base62::{checksum_matches, is_base62};
use super::{FoundToken, MAX_TOKEN_LEN, TokenFormat};
use crate::key::KeyId;
use crate::kind::{CHECKSUM_LEN, TokenKind};

impl TokenFormat {
    /// Finds the tokens of this format in arbitrary text, confirmed by checksum,
    /// so look-alikes (a wrong checksum, a longer word, an unknown prefix) are
    /// not reported.
    ///
    /// A token is a whole run of `[A-Za-z0-9_]`, as the regex's `\b` demands.
    pub fn scan(&self, text: &str) -> Vec<FoundToken> {
        let mut found = Vec::new();
        let bytes = text.as_bytes();
        let mut start = None;
        for i in 0..=bytes.len() {
            let word = bytes
                .get(i)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
            match (word, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    start = None;
                    if let Ok(parsed) = self.parse(&text[s..i]) {
                        found.push(FoundToken {
                            kind: parsed.kind().prefix().to_owned(),
                            key_id: KeyId::from_parsed(parsed.key_id()),
                            span: s..i,
                        });
                    }
                }
                _ => {}
            }
        }
        found
    }

    /// Whether `text` hides a token of this format anywhere: a deliberately
    /// loose search, for refusing text (a key's name, metadata) that would
    /// show a token to everyone who reads lists and audit events.
    ///
    /// Where [`TokenFormat::scan`] reports whole words only, this also finds
    /// a token glued to other text (`prod_<token>`, `<token>_old`,
    /// `<token>s`, `2<token>`), with invisible characters inside it (format
    /// and default-ignorable code points such as U+00AD, U+200B–U+200F,
    /// U+2060–U+2064, U+FEFF, variation selectors, tag characters, and C1
    /// controls are skipped), with its prefix in any letter case (`MT_…`),
    /// or in fullwidth forms (`ｍｔ＿…`, folded to ASCII). A candidate is a
    /// configured prefix, matched case-insensitively at any position,
    /// followed by `_` and a body of the kind's length in base62; it counts
    /// only if its checksum matches when computed with the canonical
    /// (lowercase) prefix, so ordinary text is not refused by accident.
    ///
    /// Runs in time linear in the length of `text` times the number of
    /// kinds, allocates nothing, and never panics.
    ///
    /// ```
    /// use keyward_core::{token::TokenFormat, TokenKind};
    /// let format = TokenFormat::new([TokenKind::new("mt")?])?;
    /// let token = "mt_AbCdEf1234xxxxxxxxxxxxxxxxxxxxxxxxxxx47RLeo";
    /// assert!(format.parse(token).is_ok());
    /// assert!(format.scan(&format!("prod_{token}")).is_empty()); // not a whole word
    /// assert!(format.contains_token(&format!("prod_{token}")));
    /// assert!(format.contains_token(&token.replacen("mt_", "MT_", 1)));
    /// assert!(format.contains_token(&token.replacen("_", "_\u{200B}", 1)));
    /// assert!(!format.contains_token("mt_ plus ordinary words"));
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains_token(&self, text: &str) -> bool {
        let mut window = Window::default();
        for c in text.chars() {
            let Some(byte) = visible_byte(c) else {
                continue;
            };
            window.push(byte);
            if self
                .kinds
                .iter()
                .any(|kind| window.ends_with_token_of(kind))
            {
                return true;
            }
        }
        false
    }
}

/// The last [`WINDOW`] visible bytes [`TokenFormat::contains_token`] has
/// read, and how many base62 bytes end it.
struct Window {
    bytes: [u8; WINDOW],
    /// Bytes pushed so far.
    pushed: usize,
    /// How many of the newest bytes are base62.
    run: usize,
}

/// At least the longest token (a 16-byte prefix, `_`, 24 + 55 + 6 body
/// bytes), and a power of two.
const WINDOW: usize = 128;
const _: () = assert!(WINDOW >= MAX_TOKEN_LEN && WINDOW.is_power_of_two());

impl Default for Window {
    fn default() -> Self {
        Self {
            bytes: [0; WINDOW],
            pushed: 0,
            run: 0,
        }
    }
}

impl Window {
    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.pushed % WINDOW) {
            *slot = byte;
        }
        self.pushed = self.pushed.wrapping_add(1);
        self.run = if is_base62(byte) {
            self.run.saturating_add(1)
        } else {
            0
        };
    }

    /// The byte `back` places before the newest (0: the newest), if the
    /// window still holds it.
    fn back(&self, back: usize) -> Option<u8> {
        if back >= self.pushed.min(WINDOW) {
            return None;
        }
        let at = self.pushed.wrapping_sub(1).wrapping_sub(back) % WINDOW;
        self.bytes.get(at).copied()
    }

    /// Whether the newest bytes are `<prefix>_<body>` of `kind` (the prefix
    /// in any letter case) with a checksum that matches the canonical
    /// prefix. Cheap unless the separator and prefix are there.
    fn ends_with_token_of(&self, kind: &TokenKind) -> bool {
        let body_len = kind.body_len();
        let prefix = kind.prefix().as_bytes();
        if self.run < body_len || self.back(body_len) != Some(b'_') {
            return false;
        }
        let prefix_matches = prefix.iter().rev().enumerate().all(|(i, &expected)| {
            self.back(body_len + 1 + i)
                .is_some_and(|b| b.to_ascii_lowercase() == expected)
        });
        if !prefix_matches {
            return false;
        }
        // The body, oldest byte first (at most 85 bytes).
        let mut body = [0u8; WINDOW];
        for (i, slot) in body.iter_mut().take(body_len).enumerate() {
            match self.back(body_len - 1 - i) {
                Some(b) => *slot = b,
                None => return false,
            }
        }
        let Some((unsigned, checksum)) = body
            .get(..body_len)
            .and_then(|body| body.split_at_checked(body_len.saturating_sub(CHECKSUM_LEN)))
        else {
            return false;
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(prefix);
        crc.update(b"_");
        crc.update(unsigned);
        checksum_matches(crc.finalize(), checksum)
    }
}

/// What [`TokenFormat::contains_token`] reads for `c`: `None` for a
/// character that shows nothing (skipped, so it cannot hide a token), the
/// ASCII byte for ASCII and for fullwidth ASCII forms (U+FF01–U+FF5E), and a
/// space for anything else (no token holds it).
fn visible_byte(c: char) -> Option<u8> {
    if is_invisible(c) {
        return None;
    }
    let folded = match u32::from(c) {
        code @ 0xFF01..=0xFF5E => code - 0xFEE0,
        code => code,
    };
    Some(
        u8::try_from(folded)
            .ok()
            .filter(u8::is_ascii)
            .unwrap_or(b' '),
    )
}

/// Characters that render as nothing: Unicode's format characters (Cf) and
/// default-ignorable code points, DEL and the C1 controls.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{7F}'..='\u{9F}'
            | '\u{AD}'
            | '\u{34F}'
            | '\u{600}'..='\u{605}'
            | '\u{61C}'
            | '\u{6DD}'
            | '\u{70F}'
            | '\u{890}'..='\u{891}'
            | '\u{8E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}
