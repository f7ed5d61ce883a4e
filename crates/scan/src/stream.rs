//! Scanning one stream (a file or standard input) in bounded memory.
//!
//! The stream is read in chunks into one buffer that is allocated once per
//! thread and reused for every file: each round searches the chunk, then
//! keeps only its last [`LOOKAHEAD`] + 1 bytes (a token that a chunk
//! boundary cuts is searched again, whole, in the next round) and reads on
//! behind them. So a huge file, a minified JSON file that is one line, or
//! an endless pipe on standard input never takes more than the buffer.
//! (Memory maps would need `unsafe`, which the workspace forbids, and gain
//! little over reads that fit in the page cache.)
//!
//! The first block decides what the stream is:
//!
//! - a UTF-16 byte-order mark (`FF FE` little endian, `FE FF` big endian):
//!   UTF-16 text, decoded to UTF-8 chunk by chunk, then searched; lines
//!   and columns are those of the decoded text;
//! - a UTF-8 byte-order mark: dropped, so columns on the first line count
//!   from the first character;
//! - otherwise, a NUL byte in the first block marks a binary file, which is
//!   skipped (ripgrep's rule; a NUL further on is searched past);
//! - anything else is searched as it is (UTF-8, ASCII, or bytes of another
//!   encoding: tokens are ASCII, so they are found in any ASCII-compatible
//!   encoding).
//!
//! Line and column are computed only for what is found: newlines are
//! counted up to each hit, and through each chunk that is dropped.

use crate::finder::{Finder, Hit, LOOKAHEAD};
use crate::finding::Finding;
use std::io::{self, Read};
use zeroize::Zeroizing;

/// The smallest chunk [`crate::ScanOptions::chunk_size`] accepts: several
/// times the overlap, so each round makes progress.
pub const MIN_CHUNK_SIZE: usize = 1024;

/// The default chunk: most source files are read in one round.
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// The largest chunk accepted (the buffer is about twice the chunk).
pub const MAX_CHUNK_SIZE: usize = 64 * 1024 * 1024;

/// What became of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Searched to its end; the bytes read.
    Searched { bytes: u64 },
    /// A NUL byte in its first block: not searched.
    Binary { bytes: u64 },
}

/// The text a stream holds, as told by its first block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Searched as bytes.
    Bytes,
    /// UTF-16, decoded to UTF-8 before searching.
    Utf16 { big_endian: bool },
}

/// One thread's buffers, reused from stream to stream.
#[derive(Debug)]
pub(crate) struct StreamScanner {
    chunk: usize,
    /// The text searched: a chunk and the overlap kept from the last one,
    /// with room for a chunk of UTF-16 decoded (up to 3/2 of its size).
    text: Vec<u8>,
    /// Raw bytes of a UTF-16 stream, before decoding.
    raw: Vec<u8>,
}

impl StreamScanner {
    /// Buffers for chunks of `chunk` bytes (already validated by the options).
    pub(crate) fn new(chunk: usize) -> Self {
        Self {
            chunk,
            text: vec![0; chunk * 2 + LOOKAHEAD + 16],
            raw: Vec::new(),
        }
    }

    /// Searches `reader` to its end, handing every token found to `found`
    /// in stream order.
    pub(crate) fn scan(
        &mut self,
        finder: &Finder,
        reader: &mut dyn Read,
        path: &str,
        found: &mut dyn FnMut(Finding),
    ) -> io::Result<Outcome> {
        let mut read_bytes = 0u64;
        let mut len = 0usize;
        let (first, mut eof) = fill_raw(reader, &mut self.text, 0, self.chunk)?;
        read_bytes += first as u64;
        len += first;
        let block = self.text.get(..len).unwrap_or_default();
        let mut encoding = Encoding::Bytes;
        let mut decoder = Utf16Decoder::default();
        if let Some(rest) = block.strip_prefix(&[0xFF, 0xFE]) {
            encoding = Encoding::Utf16 { big_endian: false };
            self.raw.clear();
            self.raw.extend_from_slice(rest);
        } else if let Some(rest) = block.strip_prefix(&[0xFE, 0xFF]) {
            encoding = Encoding::Utf16 { big_endian: true };
            self.raw.clear();
            self.raw.extend_from_slice(rest);
        } else if block.starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.text.copy_within(3..len, 0);
            len -= 3;
        } else if memchr::memchr(0, block).is_some() {
            return Ok(Outcome::Binary { bytes: read_bytes });
        }
        if let Encoding::Utf16 { big_endian } = encoding {
            decoder.big_endian = big_endian;
            len = 0;
            len += decoder.decode(&self.raw, &mut self.text, len);
            if eof {
                len += decoder.finish(&mut self.text, len);
            }
        }

        let mut position = Position::default();
        let mut from = 0usize;
        loop {
            if !eof {
                let (more, at_eof) = match encoding {
                    Encoding::Bytes => fill_raw(reader, &mut self.text, len, self.chunk)?,
                    Encoding::Utf16 { .. } => self.fill_utf16(reader, &mut decoder, len)?,
                };
                // `more` counts text bytes; raw bytes are what was read.
                len += more;
                eof = at_eof;
                if matches!(encoding, Encoding::Bytes) {
                    read_bytes += more as u64;
                }
            }
            let limit = if eof {
                len
            } else {
                len.saturating_sub(LOOKAHEAD)
            };
            let text = self.text.get(..len).unwrap_or_default();
            finder.find(text, from..limit, eof, |hit| {
                found(position.finding(text, path, hit));
            });
            if eof {
                break;
            }
            // Keep the byte before the next start and the lookahead.
            let keep = limit.saturating_sub(1);
            position.advance(text, keep);
            position.rebase(keep);
            self.text.copy_within(keep..len, 0);
            len -= keep;
            from = 1;
        }
        if let Encoding::Utf16 { .. } = encoding {
            // The mark and everything decoded after it.
            read_bytes = decoder.raw_bytes + 2;
        }
        Ok(Outcome::Searched { bytes: read_bytes })
    }

    /// Reads and decodes UTF-16 until the text holds a chunk or the stream
    /// ends. Returns the text bytes added and whether the stream ended.
    fn fill_utf16(
        &mut self,
        reader: &mut dyn Read,
        decoder: &mut Utf16Decoder,
        mut len: usize,
    ) -> io::Result<(usize, bool)> {
        let start = len;
        while len < self.chunk {
            // Two raw bytes decode to at most three UTF-8 bytes.
            let room = self.text.len().saturating_sub(len + 8) / 3 * 2;
            let want = room.min(self.chunk).max(2);
            self.raw.resize(want, 0);
            let n = read_some(reader, &mut self.raw)?;
            if n == 0 {
                len += decoder.finish(&mut self.text, len);
                return Ok((len - start, true));
            }
            let raw = self.raw.get(..n).unwrap_or_default();
            len += decoder.decode(raw, &mut self.text, len);
        }
        Ok((len - start, false))
    }
}

/// Reads into `buf[len..target]` until it is full or the stream ends.
/// Returns the bytes read and whether the stream ended.
fn fill_raw(
    reader: &mut dyn Read,
    buf: &mut [u8],
    mut len: usize,
    target: usize,
) -> io::Result<(usize, bool)> {
    let start = len;
    while len < target {
        let Some(space) = buf.get_mut(len..target) else {
            break;
        };
        let n = read_some(reader, space)?;
        if n == 0 {
            return Ok((len - start, true));
        }
        len += n;
    }
    Ok((len - start, false))
}

/// One `read`, retried when interrupted.
fn read_some(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Where the search is in the stream's text, for the line and column of
/// what it finds: counted lazily, up to each hit and through each chunk
/// dropped, never ahead.
#[derive(Debug, Default)]
struct Position {
    /// Offset in the stream's text of the buffer's first byte.
    base: u64,
    /// How far into the buffer lines are counted.
    at: usize,
    /// Newlines before `at`.
    newlines: u64,
    /// Offset in the stream's text where `at`'s line starts.
    line_start: u64,
    /// Characters of `at`'s line before `at`.
    line_chars: u64,
}

impl Position {
    fn advance(&mut self, text: &[u8], to: usize) {
        let Some(seg) = text.get(self.at..to) else {
            return;
        };
        let newlines = seg.iter().filter(|&&b| b == b'\n').count();
        match memchr::memrchr(b'\n', seg) {
            Some(last) if newlines > 0 => {
                self.newlines += newlines as u64;
                self.line_start = self.base + (self.at + last + 1) as u64;
                self.line_chars = count_chars(seg.get(last + 1..).unwrap_or_default());
            }
            _ => self.line_chars += count_chars(seg),
        }
        self.at = to;
    }

    /// The buffer's first `by` bytes are dropped.
    fn rebase(&mut self, by: usize) {
        self.base += by as u64;
        self.at = self.at.saturating_sub(by);
    }

    fn finding(&mut self, text: &[u8], path: &str, hit: Hit) -> Finding {
        self.advance(text, hit.span.start);
        let token: String = text
            .get(hit.span)
            .unwrap_or_default()
            .iter()
            .map(|&b| char::from(b))
            .collect();
        Finding {
            path: path.to_owned(),
            line: self.newlines + 1,
            column: (self.base + self.at as u64).saturating_sub(self.line_start) + 1,
            char_column: self.line_chars + 1,
            kind: hit.kind,
            key_id: hit.key_id,
            token: Zeroizing::new(token),
        }
    }
}

/// UTF-8 characters in `bytes`: every byte but continuation bytes.
fn count_chars(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count() as u64
}

/// A streaming UTF-16 to UTF-8 decoder: a byte or a high surrogate that a
/// read cuts off waits for the next. Unpaired surrogates become U+FFFD.
#[derive(Debug, Default)]
struct Utf16Decoder {
    big_endian: bool,
    odd: Option<u8>,
    high: Option<u16>,
    raw_bytes: u64,
}

impl Utf16Decoder {
    /// Decodes `raw` into `out` from `at`; returns the bytes written.
    /// `out` must have room for 3/2 of `raw`'s length plus 8.
    fn decode(&mut self, raw: &[u8], out: &mut [u8], at: usize) -> usize {
        self.raw_bytes += raw.len() as u64;
        let mut written = 0;
        let mut bytes = raw.iter().copied();
        loop {
            let first = match self.odd.take() {
                Some(b) => b,
                None => match bytes.next() {
                    Some(b) => b,
                    None => break,
                },
            };
            let Some(second) = bytes.next() else {
                self.odd = Some(first);
                break;
            };
            let unit = if self.big_endian {
                u16::from_be_bytes([first, second])
            } else {
                u16::from_le_bytes([first, second])
            };
            written += self.unit(unit, out, at + written);
        }
        written
    }

    fn unit(&mut self, unit: u16, out: &mut [u8], at: usize) -> usize {
        let mut written = 0;
        match (self.high.take(), unit) {
            (Some(high), 0xDC00..=0xDFFF) => {
                let code =
                    0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
                written += put(char::from_u32(code).unwrap_or('\u{FFFD}'), out, at);
            }
            (high, _) => {
                if high.is_some() {
                    written += put('\u{FFFD}', out, at);
                }
                match unit {
                    0xD800..=0xDBFF => self.high = Some(unit),
                    0xDC00..=0xDFFF => written += put('\u{FFFD}', out, at + written),
                    _ => {
                        let c = char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}');
                        written += put(c, out, at + written);
                    }
                }
            }
        }
        written
    }

    /// The end of the stream: a dangling surrogate or odd byte is U+FFFD.
    fn finish(&mut self, out: &mut [u8], at: usize) -> usize {
        let mut written = 0;
        if self.high.take().is_some() {
            written += put('\u{FFFD}', out, at);
        }
        if self.odd.take().is_some() {
            written += put('\u{FFFD}', out, at + written);
        }
        written
    }
}

/// Writes `c` as UTF-8 at `out[at..]`; returns its length (0 if no room,
/// which the buffer's size rules out).
fn put(c: char, out: &mut [u8], at: usize) -> usize {
    match out.get_mut(at..at + c.len_utf8()) {
        Some(slot) => c.encode_utf8(slot).len(),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(raw: &[u8], big_endian: bool, split: usize) -> String {
        let mut decoder = Utf16Decoder {
            big_endian,
            ..Utf16Decoder::default()
        };
        let mut out = vec![0u8; raw.len() * 2 + 16];
        let (a, b) = raw.split_at(split.min(raw.len()));
        let mut len = decoder.decode(a, &mut out, 0);
        len += decoder.decode(b, &mut out, len);
        len += decoder.finish(&mut out, len);
        out.truncate(len);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn utf16_decodes_the_same_wherever_a_read_cuts_it() {
        let text = "a€𝄞 mt_x\r\n";
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for split in 0..=le.len() {
            assert_eq!(decode_all(&le, false, split), text, "LE split at {split}");
            assert_eq!(decode_all(&be, true, split), text, "BE split at {split}");
        }
    }

    #[test]
    fn unpaired_surrogates_and_an_odd_byte_become_replacement_characters() {
        // A lone high surrogate before 'a', a lone low one, a dangling high
        // surrogate and an odd byte at the end.
        let units = [0xD800u16, 0x61, 0xDC00, 0x62, 0xD834];
        let mut raw: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
        raw.push(0x41);
        assert_eq!(
            decode_all(&raw, false, 3),
            "\u{FFFD}a\u{FFFD}b\u{FFFD}\u{FFFD}"
        );
    }

    #[test]
    fn characters_are_counted_not_bytes() {
        assert_eq!(count_chars("é€𝄞a".as_bytes()), 4);
    }
}
