//! The peers keyward's verify is measured against (docs/performance.md,
//! "Peers").
//!
//! - [`PrefixedTable`]: prefixed-api-key 0.3 in this process, as its README
//!   has an application use it: its own parse of the token, a std `HashMap`
//!   from its short token to the stored hash, its controller's digest check
//!   of the long token.
//! - [`Worker`]: the client of `keyward-peer-worker` (crates/bench/peers, a
//!   workspace of its own), which runs modo-rs 0.11 (API keys in SQLite
//!   through libsql) and api-keys-simplified 0.5 (Argon2id) in a process of
//!   their own: modo-rs cannot share a binary with keyward's SQLite store
//!   (docs/adapters.md). One request a line on its stdin, one answer a line
//!   on its stdout, `ok VALUE` or `err MESSAGE`; the worker's source
//!   documents every request.

use crate::fixture::Tokens;
use prefixed_api_key::{PakControllerOsSha256, PrefixedApiKey};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The prefix of the peer's tokens: keyward's benchmark prefix.
const PREFIX: &str = crate::fixture::KIND;

/// The longest base58 text of `bytes` random bytes (prefixed-api-key
/// encodes its tokens in base58, so their lengths vary by a character).
fn base58_len(bytes: usize) -> usize {
    (bytes as f64 * 256_f64.ln() / 58_f64.ln()).ceil() as usize
}

/// prefixed-api-key's keys in a std `HashMap` from short token to the hex
/// SHA-256 of the long token (what the crate has an application store),
/// and their tokens.
pub struct PrefixedTable {
    controller: PakControllerOsSha256,
    map: HashMap<String, String>,
    tokens: Tokens,
}

impl std::fmt::Debug for PrefixedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixedTable")
            .field("keys", &self.map.len())
            .finish_non_exhaustive()
    }
}

impl PrefixedTable {
    /// `keys` keys from the crate's controller with its default lengths
    /// (8 random bytes of short token, 24 of long token, SHA-256, the OS
    /// RNG). Only keys of the full encoded length are kept (about 19 in
    /// 20), so that tokens pack end to end as keyward's do ([`Tokens`]):
    /// picking one costs the two sides the same.
    pub fn new(keys: usize) -> Self {
        let controller = PakControllerOsSha256::configure()
            .prefix(PREFIX.to_owned())
            .seam_defaults()
            .finalize()
            .expect("a valid prefixed-api-key configuration");
        let (short, long) = (base58_len(8), base58_len(24));
        let mut map = HashMap::with_capacity(keys);
        let mut tokens = Vec::with_capacity(keys);
        while tokens.len() < keys {
            let (key, hash) = controller.generate_key_and_hash();
            if key.short_token().len() != short || key.long_token().len() != long {
                continue;
            }
            if map.insert(key.short_token().to_owned(), hash).is_some() {
                panic!("two prefixed-api-key keys with one short token");
            }
            tokens.push(key.to_string());
        }
        Self {
            controller,
            map,
            tokens: Tokens::new(&tokens),
        }
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The peer's verify: its parse of the token, the lookup of its short
    /// token, its controller's constant-time check of the long token's
    /// digest. No state, expiry or scope: the crate has none.
    #[inline]
    pub fn check(&self, token: &str) -> bool {
        let Ok(key) = PrefixedApiKey::from_string(token) else {
            return false;
        };
        match self.map.get(key.short_token()) {
            Some(hash) => self.controller.check_hash(&key, hash),
            None => false,
        }
    }
}

// ---------------------------------------------------------------- worker

/// The worker's directory in this repository.
pub fn worker_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/Cargo.toml")
}

/// Builds `keyward-peer-worker` (release, locked to its own Cargo.lock) in
/// `<target_dir>/peers` and returns the binary's path. Panics, with
/// cargo's output on stderr, if the build fails: a run never leaves the
/// peers out silently.
pub fn build_worker(target_dir: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let peers_target = target_dir.join("peers");
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(worker_manifest())
        .arg("--target-dir")
        .arg(&peers_target);
    // What the outer `cargo bench` set for this process (its package's
    // `CARGO_PKG_*`, `CARGO_MANIFEST_DIR`, a library path, flags) must not
    // reach the worker's build: cargo would take the worker for changed
    // and rebuild it (minutes), and again after a build from a shell.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let outer = (name.starts_with("CARGO_") && !keeps_cargo_setting(name))
            || matches!(
                name,
                "OUT_DIR" | "LD_LIBRARY_PATH" | "DYLD_FALLBACK_LIBRARY_PATH" | "RUSTFLAGS"
            );
        if outer {
            command.env_remove(name);
        }
    }
    let status = command
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .expect("cannot run cargo to build keyward-peer-worker");
    assert!(
        status.success(),
        "building keyward-peer-worker (crates/bench/peers) failed: {status}; \
         the peer figures need it"
    );
    let binary = peers_target.join("release").join(format!(
        "keyward-peer-worker{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(binary.is_file(), "no worker binary at {}", binary.display());
    binary
}

/// Whether `name`, a `CARGO_…` variable, is a setting of the user's cargo
/// (home, network, registries) rather than one cargo sets for what it runs.
fn keeps_cargo_setting(name: &str) -> bool {
    name == "CARGO_HOME"
        || [
            "CARGO_NET_",
            "CARGO_HTTP_",
            "CARGO_REGISTRIES_",
            "CARGO_REGISTRY_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// What a worker answered, read from one line: `ok VALUE` gives the
/// number, `err MESSAGE` the message.
pub fn parse_reply(line: &str) -> Result<u64, String> {
    let line = line.trim_end_matches(['\n', '\r']);
    if let Some(value) = line.strip_prefix("ok ") {
        return value
            .parse()
            .map_err(|_| format!("the worker answered {line:?}, not a number"));
    }
    if let Some(message) = line.strip_prefix("err ") {
        return Err(format!("the worker refused: {message}"));
    }
    if line.is_empty() {
        return Err("the worker closed its output (did it crash?)".to_owned());
    }
    Err(format!("the worker answered {line:?}"))
}

/// The request verifying tokens `indices` of the modo store of `keys` keys.
pub fn modo_verify_request(keys: usize, indices: &[usize]) -> String {
    let mut line = format!("modo-verify {keys}");
    for i in indices {
        line.push(' ');
        line.push_str(&i.to_string());
    }
    line
}

/// The request setting up a modo store of `keys` keys in `dir`.
pub fn modo_setup_request(keys: usize, dir: &Path) -> String {
    format!("modo-setup {keys} {}", dir.display())
}

/// A running `keyward-peer-worker`. Dropping it asks it to quit and waits.
pub struct Worker {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    line: String,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts the worker at `binary`.
    pub fn spawn(binary: &Path) -> Self {
        let mut child = Command::new(binary)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let input = child.stdin.take().expect("the worker's stdin");
        let output = BufReader::new(child.stdout.take().expect("the worker's stdout"));
        Self {
            child,
            input,
            output,
            line: String::new(),
        }
    }

    /// Sends `request` and returns the number answered; panics on an error.
    fn request(&mut self, request: &str) -> u64 {
        writeln!(self.input, "{request}")
            .and_then(|()| self.input.flush())
            .expect("writing to the worker");
        self.line.clear();
        self.output
            .read_line(&mut self.line)
            .expect("reading from the worker");
        let what = request.split(' ').next().unwrap_or(request);
        parse_reply(&self.line).unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// A modo store of `keys` keys in `dir`, every key used once (so that
    /// no measured verify writes `last_used_at`); returns its tokens.
    pub fn modo_setup(&mut self, keys: usize, dir: &Path) -> Vec<String> {
        let made = self.request(&modo_setup_request(keys, dir));
        assert_eq!(made, keys as u64, "modo-setup made every key");
        let listing = dir.join(format!("modo-{keys}.tokens"));
        let text = std::fs::read_to_string(&listing)
            .unwrap_or_else(|e| panic!("{}: {e}", listing.display()));
        let tokens: Vec<String> = text.lines().map(str::to_owned).collect();
        assert_eq!(tokens.len(), keys, "one modo token per key");
        assert!(tokens.iter().all(|t| t.starts_with("modo_")));
        tokens
    }

    /// Verifies tokens `indices` of the modo store of `keys` keys; the time
    /// the worker's verify loop took.
    pub fn modo_verify(&mut self, keys: usize, indices: &[usize]) -> Duration {
        Duration::from_nanos(self.request(&modo_verify_request(keys, indices)))
    }

    /// Keys of that store whose `last_used_at` was written after its setup.
    pub fn modo_writes(&mut self, keys: usize) -> u64 {
        self.request(&format!("modo-writes {keys}"))
    }

    /// One api-keys-simplified key (default configuration).
    pub fn argon_setup(&mut self) {
        assert_eq!(self.request("argon-setup"), 1);
    }

    /// Verifies that key `count` times; the time the loop took.
    pub fn argon_verify(&mut self, count: u64) -> Duration {
        Duration::from_nanos(self.request(&format!("argon-verify {count}")))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(writeln!(self.input, "quit").and_then(|()| self.input.flush()));
        drop(self.child.wait());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_as_numbers_or_refusals() {
        assert_eq!(parse_reply("ok 12345\n"), Ok(12345));
        assert_eq!(parse_reply("ok 0"), Ok(0));
        assert_eq!(
            parse_reply("err 3 of 40 verifies failed\n"),
            Err("the worker refused: 3 of 40 verifies failed".to_owned())
        );
        assert!(
            parse_reply("ok twelve")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(parse_reply("ok -1").is_err());
        assert!(parse_reply("").unwrap_err().contains("closed"));
        assert!(parse_reply("hello").is_err());
    }

    #[test]
    fn the_worker_build_keeps_only_the_users_cargo_settings() {
        assert!(keeps_cargo_setting("CARGO_HOME"));
        assert!(keeps_cargo_setting("CARGO_NET_OFFLINE"));
        assert!(keeps_cargo_setting("CARGO_HTTP_CAINFO"));
        assert!(!keeps_cargo_setting("CARGO_PKG_NAME"));
        assert!(!keeps_cargo_setting("CARGO_MANIFEST_DIR"));
        assert!(!keeps_cargo_setting("CARGO_TARGET_DIR"));
        assert!(!keeps_cargo_setting("CARGO_ENCODED_RUSTFLAGS"));
    }

    #[test]
    fn requests_are_one_line() {
        assert_eq!(
            modo_verify_request(10_000, &[3, 0, 9999]),
            "modo-verify 10000 3 0 9999"
        );
        assert_eq!(modo_verify_request(5, &[]), "modo-verify 5");
        assert_eq!(
            modo_setup_request(100, Path::new("/tmp/a dir")),
            "modo-setup 100 /tmp/a dir"
        );
    }

    #[test]
    fn the_prefixed_table_knows_its_keys_and_nothing_else() {
        assert_eq!((base58_len(8), base58_len(24)), (11, 33));
        let table = PrefixedTable::new(40);
        let tokens = table.tokens();
        assert_eq!(tokens.count(), 40);
        assert!(
            tokens
                .iter()
                .all(|t| t.starts_with("bk_") && table.check(t))
        );
        let token = tokens.get(7);
        // A changed long token fails the digest check; a changed short
        // token is not in the table; a token of other parts does not parse.
        let mut long = token.to_owned();
        let last = long.pop().unwrap();
        long.push(if last == 'z' { 'y' } else { 'z' });
        assert!(!table.check(&long));
        let short = token.replacen("bk_", "bk_1", 1);
        assert!(!table.check(&short));
        assert!(!table.check("bk_only"));
    }
}
