//! keyward's verify bench measures two peers in this process of their own:
//! modo-rs 0.11 (API keys in SQLite through libsql) and api-keys-simplified
//! 0.5 (Argon2id). modo-rs cannot share a binary with keyward: both bundle
//! a SQLite, only one copy's symbols survive the link, and libsql panics
//! when it finds the library already initialised by keyward's rusqlite
//! store (docs/adapters.md).
//!
//! The bench spawns this worker and speaks one line per request on stdin,
//! one line per answer on stdout (`ok VALUE` or `err MESSAGE`):
//!
//! | request | does | answers |
//! |---|---|---|
//! | `modo-setup KEYS DIR` | a modo store of KEYS keys in `DIR/modo-KEYS.db`, every key used once (its `last_used_at` written), tokens to `DIR/modo-KEYS.tokens`, one a line | `ok KEYS` |
//! | `modo-verify KEYS I I …` | verifies token I of that store, for each I in turn, each asserted to succeed | `ok NANOS`: the verify loop only |
//! | `modo-writes KEYS` | counts the keys whose `last_used_at` was written after the setup | `ok ROWS` |
//! | `argon-setup` | one api-keys-simplified key, default (balanced) configuration | `ok 1` |
//! | `argon-verify COUNT` | verifies that key COUNT times, each asserted valid | `ok NANOS` |
//! | `quit` | exits | nothing |
//!
//! modo's verify writes `last_used_at` in a spawned task when it is unset
//! or older than the store's touch threshold. The setup uses every key once
//! and waits until each has its timestamp, and the store's threshold is a
//! year, so measured verifies only read; `modo-writes` lets the bench check
//! that.

use api_keys_simplified::{ApiKeyManagerV0, Environment, ExposeSecret, KeyStatus, SecureString};
use modo::auth::apikey::{ApiKeyConfig, ApiKeyStore, CreateKeyRequest};
use modo::db::{self, libsql};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The table modo's README asks the application to create.
const SCHEMA: &str = "CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    key_hash     TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL DEFAULT '[]',
    expires_at   TEXT,
    last_used_at TEXT,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
)";

/// Keys per tenant, as keyward's bench has keys per owner.
const KEYS_PER_TENANT: usize = 50;

/// The touch threshold of the measured store: a year, so that a key used
/// during the setup is not written again by any verify of the run.
const TOUCH_THRESHOLD_SECS: u64 = 365 * 86_400;

/// Now, as modo writes its timestamps (`now_utc` in its store), so the
/// strings compare in time order.
fn now_utc() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A modo store of its own file, and its tokens in order.
struct ModoFixture {
    db: db::Database,
    store: ApiKeyStore,
    tokens: Vec<String>,
    /// When the setup's writes had all landed.
    setup_done: String,
}

type Answer = Result<String, String>;

fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

async fn count(
    db: &db::Database,
    sql: &str,
    params: impl libsql::params::IntoParams,
) -> Result<i64, String> {
    let mut rows = db.conn().query(sql, params).await.map_err(text)?;
    let row = rows.next().await.map_err(text)?.ok_or("no row")?;
    row.get::<i64>(0).map_err(text)
}

async fn modo_setup(keys: usize, dir: &Path) -> Result<ModoFixture, String> {
    let path = dir.join(format!("modo-{keys}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        drop(std::fs::remove_file(file));
    }
    // modo's defaults (WAL, synchronous NORMAL, 16 MB page cache, 256 MB
    // mmap), on a file in the directory keyward's store is in.
    let config = db::Config {
        path: path.to_str().ok_or("a path that is not UTF-8")?.to_owned(),
        ..db::Config::default()
    };
    let database = db::connect(&config).await.map_err(text)?;
    database.conn().execute(SCHEMA, ()).await.map_err(text)?;
    let mut apikeys = ApiKeyConfig::default();
    apikeys.touch_threshold_secs = TOUCH_THRESHOLD_SECS;
    let store = ApiKeyStore::new(database.clone(), apikeys).map_err(text)?;

    // modo's own create, one key at a time (each its own statement, as an
    // application would issue them).
    let mut tokens = Vec::with_capacity(keys);
    for n in 0..keys {
        let created = store
            .create(&CreateKeyRequest {
                tenant_id: format!("account:{:08}", n / KEYS_PER_TENANT),
                name: format!("CI deploy key {n:07}"),
                scopes: vec!["billing.read".to_owned(), "billing.write".to_owned()],
                expires_at: None,
            })
            .await
            .map_err(text)?;
        tokens.push(created.raw_token);
    }

    // Every key used once: each verify spawns its `last_used_at` write;
    // wait until all have landed.
    for token in &tokens {
        store.verify(token).await.map_err(text)?;
    }
    let started = Instant::now();
    loop {
        let unset = count(
            &database,
            "SELECT count(*) FROM api_keys WHERE last_used_at IS NULL",
            (),
        )
        .await?;
        if unset == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!("{unset} keys still without last_used_at"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The next millisecond: any write from now on is a verify's.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let setup_done = now_utc();

    let listing = dir.join(format!("modo-{keys}.tokens"));
    let mut text_out = tokens.join("\n");
    text_out.push('\n');
    std::fs::write(&listing, text_out).map_err(|e| format!("{}: {e}", listing.display()))?;
    Ok(ModoFixture {
        db: database,
        store,
        tokens,
        setup_done,
    })
}

async fn modo_verify(fx: &ModoFixture, indices: &[usize]) -> Answer {
    let mut ok = 0_usize;
    let start = Instant::now();
    for &i in indices {
        ok += usize::from(fx.store.verify(&fx.tokens[i]).await.is_ok());
    }
    let nanos = start.elapsed().as_nanos();
    if ok != indices.len() {
        return Err(format!(
            "{} of {} verifies failed",
            indices.len() - ok,
            indices.len()
        ));
    }
    Ok(nanos.to_string())
}

/// api-keys-simplified's manager and one key with its stored hash.
struct ArgonFixture {
    manager: ApiKeyManagerV0,
    key: SecureString,
    hash: String,
}

fn argon_setup() -> Result<ArgonFixture, String> {
    let manager = ApiKeyManagerV0::init_default_config("kwbench_sk").map_err(text)?;
    let generated = manager.generate(Environment::production()).map_err(text)?;
    let hash = generated.expose_hash().hash().clone();
    let key = SecureString::from(generated.key().expose_secret().to_owned());
    Ok(ArgonFixture { manager, key, hash })
}

fn argon_verify(fx: &ArgonFixture, count: u64) -> Answer {
    let mut ok = 0_u64;
    let start = Instant::now();
    for _ in 0..count {
        let status = fx.manager.verify(&fx.key, &fx.hash).map_err(text)?;
        ok += u64::from(status == KeyStatus::Valid);
    }
    let nanos = start.elapsed().as_nanos();
    if ok != count {
        return Err(format!("{} of {count} verifies failed", count - ok));
    }
    Ok(nanos.to_string())
}

#[derive(Default)]
struct Worker {
    modo: HashMap<usize, ModoFixture>,
    argon: Option<ArgonFixture>,
}

fn number<T: std::str::FromStr>(word: Option<&str>, what: &str) -> Result<T, String> {
    word.and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("expected {what}"))
}

impl Worker {
    fn modo(&self, keys: usize) -> Result<&ModoFixture, String> {
        self.modo
            .get(&keys)
            .ok_or_else(|| format!("no modo store of {keys} keys: send modo-setup first"))
    }

    async fn answer(&mut self, line: &str) -> Answer {
        let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
        match command {
            "modo-setup" => {
                let (keys, dir) = rest.split_once(' ').ok_or("expected KEYS DIR")?;
                let keys: usize = number(Some(keys), "a key count")?;
                let fixture = modo_setup(keys, &PathBuf::from(dir)).await?;
                self.modo.insert(keys, fixture);
                Ok(keys.to_string())
            }
            "modo-verify" => {
                let mut words = rest.split(' ').filter(|w| !w.is_empty());
                let fx = self.modo(number(words.next(), "a key count")?)?;
                let indices = words
                    .map(|w| match w.parse::<usize>() {
                        Ok(i) if i < fx.tokens.len() => Ok(i),
                        _ => Err(format!("not a token index: {w}")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                modo_verify(fx, &indices).await
            }
            "modo-writes" => {
                let fx = self.modo(number(Some(rest), "a key count")?)?;
                let rows = count(
                    &fx.db,
                    "SELECT count(*) FROM api_keys WHERE last_used_at > ?1",
                    [fx.setup_done.as_str()],
                )
                .await?;
                Ok(rows.to_string())
            }
            "argon-setup" => {
                self.argon = Some(argon_setup()?);
                Ok("1".to_owned())
            }
            "argon-verify" => {
                let fx = self.argon.as_ref().ok_or("send argon-setup first")?;
                argon_verify(fx, number(Some(rest), "a count")?)
            }
            other => Err(format!("unknown request {other:?}")),
        }
    }
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("keyward-peer-worker: no runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut worker = Worker::default();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim_end();
        if line == "quit" {
            break;
        }
        let reply = match runtime.block_on(worker.answer(line)) {
            Ok(value) => format!("ok {value}"),
            Err(message) => format!("err {}", message.replace('\n', " ")),
        };
        if writeln!(stdout, "{reply}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}
