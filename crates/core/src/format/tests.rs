//! Tests of the token format.

use super::*;
use crate::secret::OsRandom;
use proptest::prelude::*;

fn format() -> TokenFormat {
    TokenFormat::new([
        TokenKind::new("tak").unwrap(),
        TokenKind::new("mm_pat")
            .unwrap()
            .with_lengths(4, 22)
            .unwrap(),
        TokenKind::new("pat").unwrap(),
    ])
    .unwrap()
}

fn token(format: &TokenFormat, prefix: &str) -> String {
    let kind = format.kind(prefix).unwrap();
    TokenFormat::generate(kind, &OsRandom)
        .unwrap()
        .token
        .expose_secret()
        .to_owned()
}

#[test]
fn generated_tokens_parse_back() {
    let f = format();
    for prefix in ["tak", "mm_pat", "pat"] {
        let t = token(&f, prefix);
        let parsed = f.parse(&t).unwrap();
        assert_eq!(parsed.kind().prefix(), prefix);
        assert_eq!(t.len(), parsed.kind().token_len());
        assert!(t.starts_with(&format!("{prefix}_{}", parsed.key_id())));
    }
    assert_eq!(token(&f, "mm_pat").len(), "mm_pat_".len() + 32);
}

#[test]
fn each_defect_has_its_own_error() {
    let f = format();
    let t = token(&f, "tak");
    assert_eq!(f.parse("").unwrap_err(), ParseError::Empty);
    assert_eq!(f.parse(&"a".repeat(129)).unwrap_err(), ParseError::TooLong);
    assert_eq!(
        f.parse("nounderscore").unwrap_err(),
        ParseError::MissingPrefix
    );
    assert_eq!(
        f.parse(&t.replacen("tak", "tok", 1)).unwrap_err(),
        ParseError::UnknownKind
    );
    assert_eq!(
        f.parse(&t[..t.len() - 1]).unwrap_err(),
        ParseError::BadLength {
            expected: 43,
            found: 42
        }
    );
    let mut bad_char = t.clone();
    bad_char.replace_range(10..11, "-");
    assert_eq!(
        f.parse(&bad_char).unwrap_err(),
        ParseError::BadCharacter { position: 10 }
    );
    let mut typo = t.into_bytes();
    typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(f.parse(&typo).unwrap_err(), ParseError::BadChecksum);
}

#[test]
fn a_multibyte_character_is_a_bad_character_not_a_panic() {
    let f = format();
    let t = token(&f, "tak");
    let body = "é".repeat(21) + "a";
    assert_eq!(body.len(), 43);
    assert!(matches!(
        f.parse(&format!("tak_{body}")),
        Err(ParseError::BadCharacter { .. })
    ));
    assert!(f.parse(&format!("{t}é")).is_err());
}

#[test]
fn regex_matches_generated_tokens_and_scan_confirms_them() {
    let f = format();
    let re = regex::Regex::new(&f.regex()).unwrap();
    let good = token(&f, "mm_pat");
    let other = token(&f, "tak");
    let mut look_alike = other.clone().into_bytes();
    look_alike[5] = if look_alike[5] == b'Z' { b'Y' } else { b'Z' };
    let look_alike = String::from_utf8(look_alike).unwrap();
    let text = format!(
        "export TOKEN={good}\nold: {look_alike}; x{other}; \"{other}\" and xyz_{}",
        &other[4..]
    );
    assert!(re.is_match(&good));
    let found = f.scan(&text);
    let spans: Vec<&str> = found.iter().map(|t| &text[t.span.clone()]).collect();
    assert_eq!(spans, vec![good.as_str(), other.as_str()]);
    assert_eq!(found[0].kind, "mm_pat");
    assert_eq!(found[1].key_id.as_str(), f.parse(&other).unwrap().key_id());
    // Every regex match that scan confirms is a real token; the look-alike matched the regex but not scan.
    assert_eq!(re.find_iter(&text).count(), 3);
}

#[test]
fn checksum_encoding_is_fixed_width() {
    assert_eq!(&encode_checksum(0), b"000000");
    assert_eq!(encode_checksum(u32::MAX).len(), 6);
}

/// `sk` (10 + 27) and `sk_live` (10 + 22): both tokens are 46 characters.
fn nested() -> TokenFormat {
    TokenFormat::new([
        TokenKind::new("sk").unwrap(),
        TokenKind::new("sk_live")
            .unwrap()
            .with_lengths(10, 22)
            .unwrap(),
    ])
    .unwrap()
}

/// Parse, scan, the regex and `contains_token` all see `token` as a
/// token of `prefix` in `format`.
fn assert_found_everywhere(format: &TokenFormat, token: &str, prefix: &str) {
    let parsed = format.parse(token).unwrap();
    assert_eq!(parsed.kind().prefix(), prefix, "{token}");
    assert_eq!(parsed.kind_index(), format.kind_index(prefix).unwrap());
    let text = format!("key: {token}, done");
    let found = format.scan(&text);
    assert_eq!(found.len(), 1, "{text}");
    assert_eq!(&text[found[0].span.clone()], token);
    assert_eq!(found[0].kind, prefix);
    assert_eq!(found[0].key_id.as_str(), parsed.key_id());
    let re = regex::Regex::new(&format.regex()).unwrap();
    assert_eq!(re.find(&text).map(|m| m.as_str()), Some(token), "{text}");
    assert!(format.contains_token(&text));
    assert!(format.contains_token(token));
}

#[test]
fn nested_prefixes_of_equal_token_length_each_parse_as_their_own_kind() {
    let f = nested();
    let short = token(&f, "sk");
    let long = token(&f, "sk_live");
    assert_eq!(short.len(), 46);
    assert_eq!(long.len(), 46);
    assert_found_everywhere(&f, &short, "sk");
    assert_found_everywhere(&f, &long, "sk_live");
    // Declared the other way round, the same.
    let reversed = TokenFormat::new(f.kinds().iter().rev().cloned()).unwrap();
    assert_found_everywhere(&reversed, &short, "sk");
    assert_found_everywhere(&reversed, &long, "sk_live");

    // Each defect of the longer kind still gets its own error.
    let mut typo = long.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(f.parse(&typo).unwrap_err(), ParseError::BadChecksum);
    let mut bad_char = long.clone();
    bad_char.replace_range(20..21, "-");
    assert_eq!(
        f.parse(&bad_char).unwrap_err(),
        ParseError::BadCharacter { position: 20 }
    );
    assert_eq!(
        f.parse(&long[..45]).unwrap_err(),
        ParseError::BadLength {
            expected: 38,
            found: 37
        }
    );
}

#[test]
fn nested_prefixes_issue_tokens_that_verify_end_to_end_in_the_slow_path_too() {
    // The slow path decides by the last `_`: a kind whose body is all
    // base62 is the only candidate, so it agrees with the fast path.
    let f = nested();
    for prefix in ["sk", "sk_live"] {
        let t = token(&f, prefix);
        let fast = f.parse_well_formed(&t).unwrap().unwrap();
        let slow = f.classify(&t).unwrap();
        assert_eq!(fast.kind().prefix(), prefix);
        assert_eq!(slow.kind().prefix(), prefix);
        assert_eq!(fast.key_id(), slow.key_id());
        assert_eq!(fast.secret(), slow.secret());
    }
}

/// Tokens of `format`'s kinds, from a fixed source so a failure repeats.
fn tokens(format: &TokenFormat) -> Vec<String> {
    format
        .kinds()
        .iter()
        .map(|k| token(format, k.prefix()))
        .collect()
}

#[test]
fn contains_token_finds_tokens_glued_to_other_text() {
    let f = format();
    for t in tokens(&f) {
        for text in [
            t.clone(),
            format!("prod_{t}"),
            format!("{t}_old"),
            format!("{t}s"),
            format!("2{t}"),
            format!("x{t}y"),
            format!("name: prod_{t}_old (copy)"),
            format!("{t}{t}"),
        ] {
            assert!(f.contains_token(&text), "{text}");
        }
        // What scan sees, contains_token sees too.
        assert!(!f.scan(&format!("see {t}.")).is_empty());
        assert!(f.contains_token(&format!("see {t}.")));
    }
}

#[test]
fn contains_token_ignores_invisible_characters_inside_a_token() {
    let f = format();
    let invisible = [
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{200E}',
        '\u{200F}',
        '\u{2060}',
        '\u{2061}',
        '\u{2062}',
        '\u{2063}',
        '\u{2064}',
        '\u{FEFF}',
        '\u{00AD}',
        '\u{034F}',
        '\u{061C}',
        '\u{180E}',
        '\u{202A}',
        '\u{202E}',
        '\u{2066}',
        '\u{2069}',
        '\u{FE0F}',
        '\u{E0041}',
        '\u{E0100}',
        '\u{0085}',
        '\u{007F}',
    ];
    for t in tokens(&f) {
        for c in invisible {
            for at in [
                1,
                t.find('_').unwrap(),
                t.find('_').unwrap() + 1,
                20,
                t.len() - 1,
            ] {
                let mut hidden = t.clone();
                hidden.insert(at, c);
                assert!(f.scan(&hidden).is_empty(), "scan sees whole words only");
                assert!(f.contains_token(&hidden), "U+{:04X} at {at}", u32::from(c));
            }
        }
        // Many at once, between every character.
        let spread: String = t
            .chars()
            .flat_map(|c| [c, '\u{200B}', '\u{FEFF}'])
            .collect();
        assert!(f.contains_token(&spread));
    }
}

#[test]
fn contains_token_finds_a_prefix_in_any_case_and_fullwidth_forms() {
    let f = format();
    for t in tokens(&f) {
        let separator = t.rfind('_').unwrap();
        let (prefix, rest) = t.split_at(separator);
        assert!(f.contains_token(&format!("{}{rest}", prefix.to_uppercase())));
        let mixed: String = prefix
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        assert!(f.contains_token(&format!("key {mixed}{rest}")));
        // Fullwidth: U+FF01..=U+FF5E mirror ASCII 0x21..=0x7E.
        let fullwidth: String = t
            .chars()
            .map(|c| char::from_u32(u32::from(c) + 0xFEE0).unwrap())
            .collect();
        assert!(f.contains_token(&fullwidth));
        // The body is case-sensitive: changing its case breaks the checksum.
        let upper_body = format!("{prefix}{}", rest.to_uppercase());
        if upper_body != t {
            assert!(!f.contains_token(&upper_body));
        }
    }
}

#[test]
fn contains_token_refuses_nothing_without_a_valid_checksum() {
    let f = format();
    let t = token(&f, "tak");
    let mut typo = t.clone().into_bytes();
    typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    for text in [
        "",
        "_",
        "tak_",
        "Production deploy key",
        "tak_0000000000000000000000000000000000000000000",
        typo.as_str(),
        &format!("prod_{typo}_old"),
        // A visible break inside the token is not ignored.
        &format!("{} {}", &t[..20], &t[20..]),
        &format!("{}-{}", &t[..20], &t[20..]),
        &format!("{}é{}", &t[..20], &t[20..]),
        // An unconfigured prefix with a checksum of its own.
        &format!("tok{}", &t[3..]),
    ] {
        assert!(!f.contains_token(text), "{text}");
    }
    assert!(!TokenFormat::default().contains_token(&t));
}

#[test]
fn contains_token_reads_the_largest_inputs_whole() {
    let f = format();
    let t = token(&f, "mm_pat");
    // A 16 KiB name with the token at the very end, after long runs of
    // token characters and separators that come close.
    let filler = "mm_pat_".repeat(1200) + &"A".repeat(8000);
    let text = format!("{}{t}", &filler[..16 * 1024 - t.len()]);
    assert_eq!(text.len(), 16 * 1024);
    assert!(f.contains_token(&text));
    assert!(!f.contains_token(&text[..text.len() - 1]));
    assert!(!f.contains_token(&"\u{200B}".repeat(5000)));
}

proptest! {
    #[test]
    fn parse_never_panics(s in ".{0,200}") {
        let _ = format().parse(&s);
    }

    #[test]
    fn scan_never_panics_and_finds_only_valid_tokens(s in ".{0,300}") {
        let f = format();
        for found in f.scan(&s) {
            prop_assert!(f.parse(&s[found.span]).is_ok());
        }
    }

    #[test]
    fn contains_token_never_panics(s in any::<String>(), t in "\\PC{0,400}") {
        let f = format();
        let _ = f.contains_token(&s);
        let _ = f.contains_token(&t);
        // Anything scan finds, contains_token finds.
        if !f.scan(&t).is_empty() {
            prop_assert!(f.contains_token(&t));
        }
    }

    #[test]
    fn contains_token_finds_every_embedded_token(
        kind in 0usize..3,
        before in ".{0,40}",
        after in ".{0,40}",
        hidden in proptest::collection::vec(
            (any::<prop::sample::Index>(), prop::sample::select(vec![
                '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{2063}', '\u{FEFF}',
                '\u{00AD}', '\u{180E}', '\u{202E}', '\u{FE0F}', '\u{E0020}',
            ])),
            0..6,
        ),
        upper in proptest::collection::vec(any::<bool>(), 6),
    ) {
        let f = format();
        let prefix = f.kinds()[kind].prefix().to_owned();
        let t = token(&f, &prefix);
        let mut disguised: Vec<char> = t
            .chars()
            .enumerate()
            .map(|(i, c)| if i < prefix.len() && upper[i % 6] { c.to_ascii_uppercase() } else { c })
            .collect();
        for (at, c) in hidden {
            let at = at.index(disguised.len() + 1);
            disguised.insert(at, c);
        }
        let disguised: String = disguised.into_iter().collect();
        let text = format!("{before}{disguised}{after}");
        prop_assert!(f.contains_token(&text), "{:?}", text);
    }

    #[test]
    fn nested_prefix_pairs_parse_as_their_own_kinds(
        outer in "[a-z][a-z0-9]{0,4}",
        inner in "[a-z][a-z0-9]{0,4}",
        nest in any::<bool>(),
        key_id_len in 4usize..=24,
        secret_len in 22usize..=45,
        longer_first in any::<bool>(),
    ) {
        // With `nest`, the second prefix extends the first; either way
        // the lengths make both tokens equally long where they can.
        let second = if nest { format!("{outer}_{inner}") } else { inner };
        prop_assume!(second != outer);
        let longer_by = second.len() as isize - outer.len() as isize;
        let first_secret = secret_len as isize + longer_by;
        prop_assume!((22..=55).contains(&first_secret));
        let first = TokenKind::new(&outer).unwrap()
            .with_lengths(key_id_len, first_secret as usize).unwrap();
        let second_kind = TokenKind::new(&second).unwrap()
            .with_lengths(key_id_len, secret_len).unwrap();
        prop_assert_eq!(first.token_len(), second_kind.token_len());
        let kinds = if longer_first { vec![second_kind, first] } else { vec![first, second_kind] };
        let f = TokenFormat::new(kinds).unwrap();
        for prefix in [outer.as_str(), second.as_str()] {
            let t = token(&f, prefix);
            let parsed = f.parse(&t);
            prop_assert!(parsed.is_ok(), "{} in {:?}: {:?}", t, prefix, parsed);
            prop_assert_eq!(parsed.unwrap().kind().prefix(), prefix);
            let found = f.scan(&format!("({t})"));
            prop_assert_eq!(found.len(), 1);
            prop_assert_eq!(found[0].kind.as_str(), prefix);
            let re = regex::Regex::new(&f.regex()).unwrap();
            prop_assert_eq!(re.find(&format!("({t})")).map(|m| m.as_str().to_owned()), Some(t.clone()));
            let glued = format!("x{t}x");
            prop_assert!(f.contains_token(&glued));
        }
    }

    #[test]
    fn any_single_substitution_is_detected(pos in 4usize..43, c in "[0-9A-Za-z]") {
        let f = format();
        let t = token(&f, "tak");
        let mut changed = t.clone();
        changed.replace_range(pos..pos + 1, &c);
        prop_assume!(changed != t);
        prop_assert!(f.parse(&changed).is_err());
    }
}

#[test]
fn a_format_holds_at_most_max_kinds() {
    let kinds = |n: usize| (0..n).map(|i| TokenKind::new(&format!("k{i}")).unwrap());
    assert_eq!(
        TokenFormat::new(kinds(MAX_KINDS)).unwrap().kinds().len(),
        MAX_KINDS
    );
    let too_many = TokenFormat::new(kinds(MAX_KINDS + 1)).unwrap_err();
    assert!(too_many.to_string().contains("1024"), "{too_many}");
}
