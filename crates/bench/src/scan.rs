//! The scan figure's pieces: the kinds searched for, a planted tree,
//! running `keyward scan` and `rg` with keyward's exported regex, reading
//! back what each found (rg's matches confirmed by checksum, as a secret
//! scanner would), the paired loop and the table for docs/performance.md.
//!
//! Both tools are timed as whole processes (start to exit, output read
//! through a pipe), alternately on the same tree, so each pair of runs sees
//! the same page cache and the same load; the ratio is taken pair by pair.

use crate::paired::{median, pair_ratios, percentile};
use keyward_core::TokenKind;
use keyward_core::token::TokenFormat;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The configuration `keyward scan` reads: the products' kinds.
pub const KINDS_TOML: &str = "[kinds.mt]\n\n[kinds.tak]\n\n[kinds.mm_pat]\nkey_id_len = 4\nsecret_len = 22\n\n[kinds.mgmt]\n";

/// The same kinds as a format, for the regex and for confirming rg's
/// matches.
pub fn format() -> TokenFormat {
    TokenFormat::new([
        TokenKind::new("mt").unwrap(),
        TokenKind::new("tak").unwrap(),
        TokenKind::new("mm_pat")
            .unwrap()
            .with_lengths(4, 22)
            .unwrap(),
        TokenKind::new("mgmt").unwrap(),
    ])
    .unwrap()
}

/// A place a token was found: path, line, column (bytes, from 1).
pub type Place = (String, u64, u64);

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A deterministic generator (xorshift), for a tree that is the same on
/// every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn base62(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(BASE62[self.below(62) as usize]))
            .collect()
    }
}

/// A token with a valid checksum.
fn mint(g: &mut Gen, prefix: &str, body_len: usize) -> String {
    let signed = format!("{prefix}_{}", g.base62(body_len));
    let mut crc = crc32fast::hash(signed.as_bytes());
    let mut checksum = [b'0'; 6];
    for slot in checksum.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    format!("{signed}{}", String::from_utf8_lossy(&checksum))
}

fn token(g: &mut Gen) -> String {
    match g.below(4) {
        0 => mint(g, "mt", 37),
        1 => mint(g, "tak", 37),
        2 => mint(g, "mm_pat", 26),
        _ => mint(g, "mgmt", 37),
    }
}

/// Text written line by line, recording where planted tokens land.
struct File {
    path: String,
    text: String,
    eol: &'static str,
    line: u64,
}

impl File {
    fn new(path: String, eol: &'static str) -> Self {
        Self {
            path,
            text: String::new(),
            eol,
            line: 1,
        }
    }
    fn line(&mut self, text: &str) {
        self.text.push_str(text);
        self.text.push_str(self.eol);
        self.line += 1;
    }
    /// A line `before` + token + `after`; returns the token's place.
    fn plant(&mut self, before: &str, token: &str, after: &str) -> Place {
        let place = (self.path.clone(), self.line, before.len() as u64 + 1);
        self.line(&format!("{before}{token}{after}"));
        place
    }
}

const CODE: [&str; 8] = [
    "    let value = config.get(\"name\").unwrap_or_default();",
    "    for (i, item) in items.iter().enumerate() {",
    "        total += item.weight * factors[i % factors.len()];",
    "    }",
    "    // Keep the cache warm: the next request reads it first.",
    "    if total > limit { return Err(Error::TooLarge { total, limit }); }",
    "fn compute(items: &[Item], factors: &[u64], limit: u64) -> Result<u64, Error> {",
    "    Ok(total)",
];

fn write(root: &Path, path: &str, bytes: &[u8]) {
    let full = root.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, bytes).unwrap();
}

/// Writes the planted tree under `root` (an absolute path) and returns
/// where a scan must find tokens: source files (some CRLF), minified JSON
/// (megabyte lines), UTF-16 text; not in a `.gitignore`d directory, a
/// hidden file or binary files; never a look-alike (a wrong checksum,
/// another prefix, a token glued in a longer word).
pub fn plant(root: &Path) -> BTreeSet<Place> {
    let mut g = Gen(0x5EED_CAFE_F00D_BEEF);
    let mut expected = BTreeSet::new();
    let at = |p: &str| format!("{}/{p}", root.display());
    std::fs::create_dir_all(root.join(".git")).unwrap();
    write(root, ".gitignore", b"secrets/\n");

    for i in 0..1500 {
        let path = format!("src/m{}/file{i}.rs", i % 40);
        let eol = if i % 7 == 0 { "\r\n" } else { "\n" };
        let mut file = File::new(at(&path), eol);
        for n in 0..160 {
            file.line(CODE[(n + i) % CODE.len()]);
            if n == 80 && i % 10 == 3 {
                expected.insert(file.plant("    const KEY: &str = \"", &token(&mut g), "\";"));
            }
            if n == 100 && i % 10 == 5 {
                // Look-alikes: wrong checksum, another prefix, glued.
                let mut wrong = token(&mut g).into_bytes();
                let last = wrong.len() - 1;
                wrong[last] = if wrong[last] == b'a' { b'b' } else { b'a' };
                let wrong = String::from_utf8(wrong).unwrap();
                file.line(&format!(
                    "    // {wrong} {} x{}",
                    mint(&mut g, "zz", 37),
                    token(&mut g)
                ));
                file.line(&format!("    let s = \"prod_{}\";", token(&mut g)));
            }
        }
        write(root, &path, file.text.as_bytes());
    }

    for k in 0..3 {
        let path = format!("web/bundle{k}.min.json");
        let mut text = String::from("{\"v\":[");
        let mut places = Vec::new();
        for n in 0..40_000 {
            if n % 8_000 == 4_000 {
                places.push(text.len() as u64 + 2);
                text.push_str(&format!("\"{}\",", token(&mut g)));
            }
            text.push_str("{\"id\":12345,\"name\":\"item\"},");
        }
        text.push_str("0]}");
        for column in places {
            expected.insert((at(&path), 1, column));
        }
        write(root, &path, text.as_bytes());
    }

    for k in 0..20 {
        let path = format!("notes/note{k}.txt");
        let mut file = File::new(at(&path), "\r\n");
        file.line("Keys for the staging environment, do not share");
        expected.insert(file.plant("  key: ", &token(&mut g), ""));
        file.line("end");
        let mut bytes = vec![0xFF, 0xFE];
        for unit in file.text.encode_utf16() {
            bytes.extend(unit.to_le_bytes());
        }
        write(root, &path, &bytes);
    }

    for k in 0..10 {
        write(
            root,
            &format!("secrets/s{k}.env"),
            format!("KEY={}\n", token(&mut g)).as_bytes(),
        );
        write(
            root,
            &format!(".hidden{k}"),
            format!("KEY={}\n", token(&mut g)).as_bytes(),
        );
        write(
            root,
            &format!("bin/blob{k}.bin"),
            format!("\0\u{1}\u{2} {} ", token(&mut g)).as_bytes(),
        );
    }
    expected
}

/// What one run of a tool found, and how long it took.
#[derive(Debug)]
pub struct Run {
    /// Start to exit.
    pub elapsed: Duration,
    /// The places found (for rg: matches confirmed by checksum).
    pub found: BTreeSet<Place>,
    /// For rg: every match of the regex, confirmed or not.
    pub candidates: usize,
    /// For keyward scan: its summary line.
    pub summary: String,
}

fn timed(command: &mut Command) -> (Duration, std::process::Output) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let output = command.output().unwrap();
    (start.elapsed(), output)
}

/// `keyward --config CONFIG scan ROOT`, text output.
pub fn keyward_scan(binary: &Path, config: &Path, root: &Path) -> Run {
    let (elapsed, output) = timed(
        Command::new(binary)
            .arg("--config")
            .arg(config)
            .arg("scan")
            .arg(root),
    );
    let code = output.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "keyward scan failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut found = BTreeSet::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // path:line:column: kind preview
        // (the kind and preview hold no ": ").
        let place = line.rsplit_once(": ").map_or(line, |(place, _)| place);
        let mut parts = place.rsplitn(3, ':');
        let (Some(column), Some(line_no), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            panic!("unreadable keyward scan line: {line}");
        };
        found.insert((
            path.to_owned(),
            line_no.parse().unwrap(),
            column.parse().unwrap(),
        ));
    }
    Run {
        elapsed,
        found,
        candidates: 0,
        summary: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    }
}

/// `rg` with `regex`, each match with its line and column, confirmed by
/// checksum afterwards (outside the timing).
pub fn ripgrep(regex: &str, root: &Path, format: &TokenFormat) -> Run {
    let (elapsed, output) = timed(
        Command::new("rg")
            .args([
                "--no-config",
                "--no-heading",
                "--with-filename",
                "--line-number",
            ])
            .args([
                "--column",
                "--only-matching",
                "--color",
                "never",
                "--regexp",
            ])
            .arg(regex)
            .arg(root),
    );
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "rg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut found = BTreeSet::new();
    let mut candidates = 0;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // path:line:column:match
        let mut parts = line.rsplitn(4, ':');
        let (Some(token), Some(column), Some(line_no), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("unreadable rg line: {line}");
        };
        candidates += 1;
        if format.parse(token).is_ok() {
            found.insert((
                path.to_owned(),
                line_no.parse().unwrap(),
                column.parse().unwrap(),
            ));
        }
    }
    Run {
        elapsed,
        found,
        candidates,
        summary: String::new(),
    }
}

/// One tree's figure: pairs of runs, the ratio of throughputs pair by pair.
#[derive(Debug)]
pub struct TreeFigure {
    /// What the tree is.
    pub name: String,
    /// keyward scan's summary of the tree (files, size).
    pub summary: String,
    /// Seconds per run, pair by pair: keyward scan, rg with the exported
    /// regex, rg with the regex's word boundaries made ASCII.
    pub keyward_s: Vec<f64>,
    /// See `keyward_s`.
    pub rg_s: Vec<f64>,
    /// See `keyward_s`.
    pub rg_ascii_s: Vec<f64>,
    /// Places keyward scan found (the last run's; every run is checked equal).
    pub keyward_found: BTreeSet<Place>,
    /// Places rg's matches confirmed (the last run's).
    pub rg_found: BTreeSet<Place>,
    /// Places rg's ASCII-boundary matches confirmed (the last run's).
    pub rg_ascii_found: BTreeSet<Place>,
    /// rg's matches before confirmation.
    pub rg_candidates: usize,
    /// For the planted tree: where the tokens were planted.
    pub expected: Option<BTreeSet<Place>>,
}

impl TreeFigure {
    /// A figure with no runs yet.
    pub fn new(name: &str, expected: Option<BTreeSet<Place>>) -> Self {
        Self {
            name: name.to_owned(),
            summary: String::new(),
            keyward_s: Vec::new(),
            rg_s: Vec::new(),
            rg_ascii_s: Vec::new(),
            keyward_found: BTreeSet::new(),
            rg_found: BTreeSet::new(),
            rg_ascii_found: BTreeSet::new(),
            rg_candidates: 0,
            expected,
        }
    }

    /// One round: the three runs, in an order that turns with `round`, so
    /// none always runs first after the others filled the caches.
    pub fn round(
        &mut self,
        round: usize,
        binary: &Path,
        config: &Path,
        root: &Path,
        format: &TokenFormat,
    ) {
        let regex = format.regex();
        let ascii = format!("(?-u){regex}");
        let mut times = [0.0; 3];
        for step in 0..3 {
            let which = (step + round) % 3;
            match which {
                0 => {
                    let run = keyward_scan(binary, config, root);
                    times[0] = run.elapsed.as_secs_f64();
                    if !self.keyward_s.is_empty() {
                        assert_eq!(
                            run.found, self.keyward_found,
                            "keyward scan found something else this run"
                        );
                    }
                    self.keyward_found = run.found;
                    self.summary = run.summary;
                }
                1 => {
                    let run = ripgrep(&regex, root, format);
                    times[1] = run.elapsed.as_secs_f64();
                    self.rg_found = run.found;
                    self.rg_candidates = run.candidates;
                }
                _ => {
                    let run = ripgrep(&ascii, root, format);
                    times[2] = run.elapsed.as_secs_f64();
                    self.rg_ascii_found = run.found;
                }
            }
        }
        self.keyward_s.push(times[0]);
        self.rg_s.push(times[1]);
        self.rg_ascii_s.push(times[2]);
    }

    /// keyward scan's throughput over rg's, pair by pair: rg's time over
    /// keyward's (the same bytes), median and 5th–95th percentile.
    pub fn ratio(&self, reference: &[f64]) -> (f64, f64, f64) {
        let ratios = pair_ratios(&self.keyward_s, reference);
        (
            median(&ratios),
            percentile(&ratios, 5.0),
            percentile(&ratios, 95.0),
        )
    }

    /// Whether the counts hold: keyward scan and rg (confirmed, with
    /// either regex) found the same places, and on the planted tree exactly
    /// the planted ones.
    pub fn counts_hold(&self) -> bool {
        self.keyward_found == self.rg_found
            && self.rg_found == self.rg_ascii_found
            && self
                .expected
                .as_ref()
                .is_none_or(|e| *e == self.keyward_found)
    }
}

fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// The table and the notes under it, for docs/performance.md.
pub fn table(figures: &[TreeFigure], header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}\n");
    let _ = writeln!(
        out,
        "| Tree | What keyward scan read | keyward scan | rg, exported regex | Throughput ratio (p5–p95) | Target ≥ 0.8× | rg, ASCII `\\b` | Ratio to it (p5–p95) | Found: keyward scan / rg confirmed (rg matches) | Counts identical? |"
    );
    let _ = writeln!(
        out,
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"
    );
    for f in figures {
        let (r, r5, r95) = f.ratio(&f.rg_s);
        let (a, a5, a95) = f.ratio(&f.rg_ascii_s);
        let met = if r >= 0.8 {
            "yes".to_owned()
        } else {
            format!("**no** ({r:.2}×)")
        };
        let planted = f
            .expected
            .as_ref()
            .map_or(String::new(), |e| format!(", {} planted", e.len()));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {r:.2}× ({r5:.2}–{r95:.2}) | {met} | {} | {a:.2}× ({a5:.2}–{a95:.2}) | {} / {} ({}{planted}) | {} |",
            f.name,
            f.summary
                .trim_start_matches("0 tokens found in ")
                .replace(" tokens found in ", " found in "),
            seconds(median(&f.keyward_s)),
            seconds(median(&f.rg_s)),
            seconds(median(&f.rg_ascii_s)),
            f.keyward_found.len(),
            f.rg_found.len(),
            f.rg_candidates,
            if f.counts_hold() { "yes" } else { "**no**" },
        );
    }
    out
}

/// Where the cargo registry's sources are: `$CARGO_HOME/registry/src`,
/// else `~/.cargo/registry/src`.
pub fn registry_sources() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let dir = home.join("registry").join("src");
    dir.is_dir().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planted_tree_holds_what_it_says_and_keyward_s_format_parses_it() {
        let dir = tempfile::tempdir().unwrap();
        let expected = plant(dir.path());
        // 150 source files with a token, 15 in JSON, 20 in UTF-16.
        assert_eq!(expected.len(), 150 + 15 + 20);
        let first = expected.iter().find(|p| p.0.ends_with("file3.rs")).unwrap();
        let text = std::fs::read_to_string(&first.0).unwrap();
        let line = text.lines().nth(first.1 as usize - 1).unwrap();
        let token = &line[first.2 as usize - 1..line.len() - 2];
        assert!(format().parse(token).is_ok(), "{token}");
    }
}
