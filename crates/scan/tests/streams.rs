//! One stream at a time: chunk boundaries, agreement with the core's
//! `TokenFormat::scan`, long words, UTF-16 across chunks, large streams.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: a failed setup should stop it loudly"
)]

mod common;

use common::{Rng, Text, bad_checksum, found, token};
use keyward_scan::{MIN_CHUNK_SIZE, ScanOptions, Scanner};
use std::io::Read;

fn scanner(chunk: usize) -> Scanner {
    Scanner::new(common::format(), ScanOptions::new().chunk_size(chunk)).unwrap()
}

#[test]
fn a_token_is_found_wherever_a_chunk_boundary_cuts_it() {
    let mut rng = Rng::new(1);
    let chunk = MIN_CHUNK_SIZE;
    // Every start from well before the first boundary to past the second
    // round's (each round keeps 130 bytes, so later boundaries move).
    for start in (chunk - 200)..(2 * chunk + 50) {
        let mut text = Text::new("-");
        let filler: String = (0..start)
            .map(|i| if i % 61 == 60 { '\n' } else { ' ' })
            .collect();
        text.push(&filler)
            .plant(&token(&mut rng, "mt"))
            .push(" tail\n");
        let report = scanner(chunk).scan_reader("-", text.text.as_bytes());
        assert_eq!(found(&report), text.planted, "token at byte {start}");
    }
}

#[test]
fn the_result_is_the_cores_scan_for_any_text_and_chunk_size() {
    let mut rng = Rng::new(2);
    let format = common::format();
    let pieces = ["mt", "tak", "mm_pat", "sk", "sk_live"];
    for round in 0..40 {
        // Random text of tokens, broken tokens, glued tokens, separators
        // and words, on one line so that column - 1 is the byte offset.
        let mut text = String::new();
        while text.len() < 6000 {
            let kind = pieces[rng.below(pieces.len() as u64) as usize];
            match rng.below(9) {
                0 | 1 => text.push_str(&token(&mut rng, kind)),
                2 => text.push_str(&bad_checksum(&token(&mut rng, kind))),
                3 => text.push_str(&format!("x{}", token(&mut rng, kind))),
                4 => text.push_str(&format!("{}_", token(&mut rng, kind))),
                5 => {
                    let n = rng.below(90) as usize;
                    text.push_str(&rng.base62(n));
                }
                6 => text.push_str(&format!("{kind}_")),
                7 => text.push_str("é\t\"'=:,"),
                _ => text.push(' '),
            }
            if rng.below(3) == 0 {
                text.push(' ');
            }
        }
        let expected: Vec<(u64, String)> = format
            .scan(&text)
            .into_iter()
            .map(|t| (t.span.start as u64 + 1, t.key_id.as_str().to_owned()))
            .collect();
        assert!(!expected.is_empty());
        for chunk in [MIN_CHUNK_SIZE, 1500, 4096, 1 << 20] {
            let report = scanner(chunk).scan_reader("-", text.as_bytes());
            let got: Vec<(u64, String)> = report
                .findings
                .iter()
                .map(|f| (f.column(), f.key_id().as_str().to_owned()))
                .collect();
            assert_eq!(got, expected, "round {round}, chunk {chunk}");
        }
    }
}

#[test]
fn a_token_after_a_huge_word_is_found_and_one_ending_a_huge_word_is_not() {
    let mut rng = Rng::new(3);
    let real = token(&mut rng, "mt");
    let huge = "A".repeat(3 * 1024 * 1024);
    let mut text = Text::new("-");
    text.push(&huge).push(&real).push(" ").push(&huge).push(" ");
    text.plant(&token(&mut rng, "tak"));
    let report = scanner(MIN_CHUNK_SIZE).scan_reader("-", text.text.as_bytes());
    assert_eq!(found(&report), text.planted);
}

/// A reader of `len` bytes of generated text, never all in memory, with
/// a newline every 100 bytes and tokens at chosen offsets.
struct Generated {
    len: u64,
    at: u64,
    tokens: Vec<(u64, String)>,
    /// The largest read asked for.
    largest: usize,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.largest = self.largest.max(buf.len());
        let n = buf.len().min((self.len - self.at) as usize).min(7919);
        for slot in buf.iter_mut().take(n) {
            *slot = if self.at % 100 == 99 { b'\n' } else { b'.' };
            self.at += 1;
        }
        let start = self.at - n as u64;
        for (offset, token) in &self.tokens {
            for (i, byte) in token.bytes().enumerate() {
                let pos = offset + i as u64;
                if (start..self.at).contains(&pos) {
                    buf[(pos - start) as usize] = byte;
                }
            }
        }
        Ok(n)
    }
}

#[test]
fn a_long_stream_is_read_in_chunks_with_every_line_counted() {
    let mut rng = Rng::new(4);
    // Offsets within lines (a line is 99 bytes and its newline), the last
    // near the end of 40 MB.
    let offsets = [5u64, 1_000_010, 17_777_701, 39_999_800];
    let tokens: Vec<(u64, String)> = offsets
        .iter()
        .map(|&o| (o, token(&mut rng, "mm_pat")))
        .collect();
    let mut reader = Generated {
        len: 40_000_000,
        at: 0,
        tokens,
        largest: 0,
    };
    let report = scanner(64 * 1024).scan_reader("-", &mut reader);
    // Read a chunk at a time, never the whole stream.
    assert!(
        reader.largest <= 64 * 1024,
        "asked for {} bytes at once",
        reader.largest
    );
    let got: Vec<(u64, u64)> = report
        .findings
        .iter()
        .map(|f| (f.line(), f.column()))
        .collect();
    let expected: Vec<(u64, u64)> = offsets.iter().map(|o| (o / 100 + 1, o % 100 + 1)).collect();
    assert_eq!(got, expected);
    assert_eq!(report.bytes_searched, 40_000_000);
}

#[test]
fn utf16_tokens_are_found_across_chunk_boundaries() {
    let mut rng = Rng::new(5);
    for (start, big_endian) in [(400usize, false), (505, true), (511, false), (700, true)] {
        let mut text = Text::new("-");
        // Two-byte characters before the token: decoded columns in bytes
        // and in characters differ.
        text.push(&"ü".repeat(start))
            .push("\n")
            .push(&"ß".repeat(start));
        text.plant(&token(&mut rng, "tak")).push("\n");
        let mut raw = if big_endian {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for unit in text.text.encode_utf16() {
            raw.extend(if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        let report = scanner(MIN_CHUNK_SIZE).scan_reader("-", raw.as_slice());
        assert_eq!(found(&report), text.planted, "start {start}");
        assert_eq!(report.binary_files_skipped, 0);
    }
}

#[test]
fn a_utf8_byte_order_mark_does_not_shift_columns() {
    let mut rng = Rng::new(6);
    let mut text = Text::new("-");
    text.push("key = ").plant(&token(&mut rng, "mt"));
    let mut raw = vec![0xEF, 0xBB, 0xBF];
    raw.extend_from_slice(text.text.as_bytes());
    let report = scanner(MIN_CHUNK_SIZE).scan_reader("-", raw.as_slice());
    assert_eq!(found(&report), text.planted);
}

#[test]
fn a_nul_in_the_first_block_skips_the_stream_and_one_later_does_not() {
    let mut rng = Rng::new(7);
    let real = token(&mut rng, "mt");
    let binary = format!("\0{real}\n");
    let report = scanner(MIN_CHUNK_SIZE).scan_reader("-", binary.as_bytes());
    assert!(report.findings.is_empty());
    assert_eq!((report.binary_files_skipped, report.files_searched), (1, 0));

    let late = format!("{}\0 {real}\n", " ".repeat(MIN_CHUNK_SIZE + 10));
    let report = scanner(MIN_CHUNK_SIZE).scan_reader("-", late.as_bytes());
    assert_eq!(report.findings.len(), 1);
}

#[test]
fn empty_and_tiny_streams_find_nothing_and_do_not_fail() {
    for input in [
        &b""[..],
        b"m",
        b"mt_",
        b"\xFF\xFE",
        b"\xFE\xFF\x00",
        b"\xEF\xBB\xBF",
        b"\xFF",
    ] {
        let report = scanner(MIN_CHUNK_SIZE).scan_reader("-", input);
        assert!(report.findings.is_empty(), "{input:?}");
        assert!(report.problems.is_empty(), "{input:?}");
    }
}

#[test]
fn findings_past_the_limit_are_counted_not_kept() {
    let mut rng = Rng::new(8);
    let text: String = (0..50)
        .map(|_| format!("{} ", token(&mut rng, "mt")))
        .collect();
    let scanner = Scanner::new(common::format(), ScanOptions::new().max_findings(20)).unwrap();
    let report = scanner.scan_reader("-", text.as_bytes());
    assert_eq!((report.findings.len(), report.findings_dropped), (20, 30));
    assert!(report.found_any());
}

#[test]
fn a_read_error_is_a_problem_and_what_came_before_it_is_kept() {
    struct Failing(Option<Vec<u8>>);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.take() {
                Some(bytes) => {
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    Ok(bytes.len())
                }
                None => Err(std::io::Error::other("disk on fire")),
            }
        }
    }
    let report = scanner(MIN_CHUNK_SIZE).scan_reader("x", Failing(Some(b"abc".to_vec())));
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].message, "disk on fire");
}

#[test]
fn out_of_range_options_are_refused() {
    for options in [
        ScanOptions::new().chunk_size(MIN_CHUNK_SIZE - 1),
        ScanOptions::new().chunk_size(keyward_scan::MAX_CHUNK_SIZE + 1),
        ScanOptions::new().max_findings(0),
    ] {
        let err = Scanner::new(common::format(), options).unwrap_err();
        assert!(
            matches!(err, keyward_scan::ScanError::InvalidOption { .. }),
            "{err}"
        );
    }
    let empty = keyward_core::token::TokenFormat::new([]).unwrap();
    assert!(matches!(
        Scanner::new(empty, ScanOptions::new()).unwrap_err(),
        keyward_scan::ScanError::NoKinds
    ));
}
