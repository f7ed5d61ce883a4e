//! A SQLite [`KeyStore`](keyward_core::store::KeyStore) for keyward, on [`rusqlite`].
//!
//! ```
//! use keyward_core::{Actor, IssueRequest, Keyward, Owner, Requirement, TokenKind};
//! use keyward_sqlite::SqliteStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let store = SqliteStore::connect("sqlite::memory:")?; // or a file path
//! let keyward = Keyward::builder(store).kind(TokenKind::new("mt")?).build()?;
//! let issued = keyward
//!     .issue(&Actor::operator("docs"), IssueRequest::new("mt", Owner::new("account:1")?, "CI"))
//!     .await?;
//! keyward.verify(issued.token.expose_secret(), &Requirement::nothing()).await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why rusqlite
//!
//! A prepared point lookup costs about 2 µs through rusqlite and 16–110 µs
//! through sqlx's SQLite driver, which hands every query to a worker thread.
//! Verification is a point lookup, so the driver is rusqlite. Its
//! `libsqlite3-sys` is the version sqlx 0.9 links, so a host can use both.
//!
//! # Connections and the async runtime
//!
//! - **Reads** (the verify lookup, lists) run inline on one of several
//!   read-only connections. In WAL mode a reader never waits for a writer, so
//!   a read never blocks on a lock. A store with a single connection
//!   (in-memory, or [`SqliteStore::from_connection`]) reads on that
//!   connection, so a read may wait for a write in progress.
//! - **Writes** run on one writer connection inside
//!   `tokio::task::spawn_blocking`, so waiting for the file lock (the busy
//!   timeout, 5 s by default) never blocks the async runtime. Writes need a
//!   Tokio runtime.
//! - Every connection the store opens (writer, readers, in-memory, the
//!   host's in [`SqliteStore::from_connection`]) runs `synchronous = FULL`,
//!   `foreign_keys = ON` and the busy timeout, and a file store runs WAL;
//!   [`SqliteStore::connection_settings`] reads them back from each one.
//! - The live-key limit holds because the count and the insert run in one
//!   `BEGIN IMMEDIATE` transaction, which takes the database's write lock
//!   first: concurrent issues, even from other processes, serialize.
//!
//! One database file serves one host: SQLite's locking assumes a local
//! filesystem, so do not share the file over NFS or between machines. For
//! several hosts use Postgres.

mod codec;
mod schema;
mod store;

pub use rusqlite;
pub use schema::{Migration, migrate, migrations};

use keyward_core::{Error, store::sql::TablePrefix};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    table_prefix: TablePrefix,
    readers: usize,
    busy_timeout: Duration,
    migrate: bool,
    mmap_size: i64,
}

/// The default memory map per connection, 256 MiB ([`SqliteOptions::mmap_size`]).
pub const DEFAULT_MMAP_SIZE: u64 = 256 << 20;

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            table_prefix: TablePrefix::default(),
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            migrate: true,
            mmap_size: DEFAULT_MMAP_SIZE.cast_signed(),
        }
    }
}

impl SqliteOptions {
    fn into_prefix(self) -> TablePrefix {
        self.table_prefix
    }

    /// Prefix for keyward's tables (default `keyward_`).
    pub fn table_prefix(mut self, prefix: TablePrefix) -> Self {
        self.table_prefix = prefix;
        self
    }
    /// Read connections for a file database (default 4, at least 1).
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers.max(1);
        self
    }
    /// How long a write waits for the file lock (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
    /// How much of the database file each connection reads through a
    /// memory map rather than with a system call per page (default
    /// [`DEFAULT_MMAP_SIZE`]; 0 turns it off). Measured on the verify read
    /// (docs/performance.md): it takes the `pread` calls off a lookup whose
    /// pages the OS already caches. SQLite writes through normal calls
    /// either way, and caps the value at its compile-time maximum.
    pub fn mmap_size(mut self, bytes: u64) -> Self {
        self.mmap_size = i64::try_from(bytes).unwrap_or(i64::MAX);
        self
    }
    /// Whether opening runs [`migrate`] (default yes). Turn it off when the
    /// host applies [`migrations`] in its own migration run.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }
}

/// keyward's SQLite store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    sql: store::Statements,
}

/// Switches a file database to WAL. The switch needs an exclusive lock, and
/// SQLite answers "busy" at once there rather than calling the busy handler
/// (several processes opening a new file race for it), so it is retried
/// until the busy timeout has passed.
fn switch_to_wal(connection: &Connection, busy_timeout: Duration) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match connection.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => return Ok(()),
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                ) && started.elapsed() < busy_timeout =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(sqlite_error(e)),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) a database file with the default options:
    /// WAL, a 5 s busy timeout, 4 readers, migrations applied.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens a database file with `options`.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, Error> {
        let path = path.as_ref();
        let mut writer = Connection::open(path).map_err(sqlite_error)?;
        configure(&writer, &options)?;
        switch_to_wal(&writer, options.busy_timeout)?;
        if options.migrate {
            migrate(&mut writer, &options.table_prefix)?;
        }
        let readers = (0..options.readers)
            .map(|_| {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let reader = Connection::open_with_flags(path, flags).map_err(sqlite_error)?;
                configure(&reader, &options)?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self::assemble(writer, readers, options))
    }

    /// A private in-memory database (one connection), migrated. Gone when
    /// the store is dropped.
    pub fn open_in_memory() -> Result<Self, Error> {
        let connection = Connection::open_in_memory().map_err(sqlite_error)?;
        Self::from_connection(connection, SqliteOptions::default())
    }

    /// Opens from a URL: `sqlite::memory:`, `sqlite://path/to/file.db`,
    /// `sqlite:file.db`, or a plain path.
    pub fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, SqliteOptions::default())
    }

    /// [`SqliteStore::connect`] with options.
    pub fn connect_with(url: &str, options: SqliteOptions) -> Result<Self, Error> {
        if url.is_empty() {
            return Err(Error::invalid("url", "empty SQLite URL"));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        if path == ":memory:" {
            let connection = Connection::open_in_memory().map_err(sqlite_error)?;
            return Self::from_connection(connection, options);
        }
        Self::open_with(PathBuf::from(path), options)
    }

    /// Uses the host's own connection for everything (reads too). Runs
    /// migrations unless `options` turned them off.
    pub fn from_connection(
        mut connection: Connection,
        options: SqliteOptions,
    ) -> Result<Self, Error> {
        configure(&connection, &options)?;
        if options.migrate {
            migrate(&mut connection, &options.table_prefix)?;
        }
        Ok(Self::assemble(connection, Vec::new(), options))
    }

    fn assemble(
        writer: Connection,
        readers: Vec<Mutex<Connection>>,
        options: SqliteOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                sql: store::Statements::new(&options.into_prefix()),
            }),
        }
    }

    /// The settings every connection of this store runs with, as SQLite
    /// reports them: the writer first, then each read connection (none for
    /// an in-memory store or [`SqliteStore::from_connection`]).
    ///
    /// Each connection answers the read-only queries `PRAGMA journal_mode`,
    /// `PRAGMA synchronous`, `PRAGMA foreign_keys`, `PRAGMA busy_timeout`
    /// and `PRAGMA mmap_size`;
    /// nothing is changed. Use it to check the durability and locking
    /// settings the store promises (WAL for a file, `synchronous = FULL`,
    /// foreign keys on, the busy timeout), in a health check or a test. It
    /// waits for a write in progress, since the writer is busy until then.
    pub fn connection_settings(&self) -> Result<Vec<ConnectionSettings>, Error> {
        let inner = &self.inner;
        let mut settings = Vec::with_capacity(1 + inner.readers.len());
        settings.push(ConnectionSettings::read(&lock(&inner.writer))?);
        for reader in &inner.readers {
            settings.push(ConnectionSettings::read(&lock(reader))?);
        }
        Ok(settings)
    }

    /// Runs a read on a read connection (the writer, when there are none):
    /// the first one free, so under light load reads keep to the first
    /// connection and its warm page cache (each connection has its own;
    /// spreading one caller's reads over all of them made each read miss
    /// more, about a quarter slower measured); only concurrent reads spread
    /// out. When every reader is busy, one is waited for in turn.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection, &store::Statements) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let inner = &self.inner;
        if inner.readers.is_empty() {
            return f(&lock(&inner.writer), &inner.sql);
        }
        let free = inner
            .readers
            .iter()
            .find_map(|reader| match reader.try_lock() {
                Ok(conn) => Some(conn),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            });
        let conn = free.unwrap_or_else(|| {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            inner
                .readers
                .get(i)
                .map_or_else(|| lock(&inner.writer), lock)
        });
        f(&conn, &inner.sql)
    }

    /// Runs a write on the writer connection, off the async runtime.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &store::Statements) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = lock(&inner.writer);
            f(&mut conn, &inner.sql)
        })
        .await
        .map_err(|e| Error::backend("sqlite", e))?
    }
}

/// What one connection of a [`SqliteStore`] runs with, read back from
/// SQLite by [`SqliteStore::connection_settings`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionSettings {
    /// `PRAGMA journal_mode`, lowercase: `wal` for a file database opened by
    /// the store, `memory` for an in-memory one; whatever the host chose for
    /// [`SqliteStore::from_connection`].
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 0 `OFF`, 1 `NORMAL`, 2 `FULL`, 3 `EXTRA`. The
    /// store sets 2 (`FULL`) on every connection.
    pub synchronous: i64,
    /// `PRAGMA foreign_keys`: on for every connection of the store.
    pub foreign_keys: bool,
    /// `PRAGMA busy_timeout`: how long a connection waits for a lock
    /// ([`SqliteOptions::busy_timeout`], 5 s by default).
    pub busy_timeout: Duration,
    /// `PRAGMA mmap_size` in bytes: [`SqliteOptions::mmap_size`] for a file
    /// database ([`DEFAULT_MMAP_SIZE`] by default), 0 for an in-memory one.
    pub mmap_size: u64,
}

impl ConnectionSettings {
    fn read(conn: &Connection) -> Result<Self, Error> {
        let pragma = |name: &str| -> Result<rusqlite::types::Value, Error> {
            conn.pragma_query_value(None, name, |row| row.get(0))
                .map_err(sqlite_error)
        };
        let integer = |name: &str| match pragma(name)? {
            rusqlite::types::Value::Integer(value) => Ok(value),
            other => Err(Error::backend(
                "sqlite",
                format!("PRAGMA {name} answered {other:?}, not an integer"),
            )),
        };
        let journal_mode = match pragma("journal_mode")? {
            rusqlite::types::Value::Text(mode) => mode.to_ascii_lowercase(),
            other => {
                return Err(Error::backend(
                    "sqlite",
                    format!("PRAGMA journal_mode answered {other:?}, not text"),
                ));
            }
        };
        let busy_ms = integer("busy_timeout")?;
        Ok(Self {
            // An in-memory database answers no row: nothing is mapped.
            mmap_size: match conn.pragma_query_value(None, "mmap_size", |row| row.get::<_, i64>(0))
            {
                Ok(bytes) => u64::try_from(bytes).unwrap_or(0),
                Err(rusqlite::Error::QueryReturnedNoRows) => 0,
                Err(e) => return Err(sqlite_error(e)),
            },
            journal_mode,
            synchronous: integer("synchronous")?,
            foreign_keys: integer("foreign_keys")? != 0,
            busy_timeout: Duration::from_millis(u64::try_from(busy_ms).unwrap_or(0)),
        })
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // Every write is a transaction, so a panic mid-write rolled back: the
    // connection is still consistent.
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

fn configure(conn: &Connection, options: &SqliteOptions) -> Result<(), Error> {
    conn.busy_timeout(options.busy_timeout)
        .map_err(sqlite_error)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sqlite_error)?;
    // FULL, not WAL's usual NORMAL: NORMAL may lose the last commits on a
    // power loss or OS crash, and a lost revoke would bring a revoked key
    // back. Every connection the store holds gets it, readers included.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite_error)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Pages read through the map, not copied in by a system call each
    // (an in-memory database ignores it and reports 0).
    conn.pragma_update(None, "mmap_size", options.mmap_size)
        .map_err(sqlite_error)?;
    Ok(())
}

pub(crate) fn sqlite_error(e: rusqlite::Error) -> Error {
    use rusqlite::ffi;
    if let rusqlite::Error::SqliteFailure(code, _) = &e
        && matches!(
            code.extended_code,
            ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE
        )
    {
        return Error::AlreadyExists;
    }
    Error::backend("sqlite", e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tags each read connection with its position (through a
    /// per-connection setting), so a read can tell which one served it.
    fn tagged(store: &SqliteStore) {
        for (i, reader) in store.inner.readers.iter().enumerate() {
            let tag = -1000 - i64::try_from(i).unwrap_or(0);
            lock(reader)
                .pragma_update(None, "cache_size", tag)
                .expect("tag a reader");
        }
    }

    fn served_by(store: &SqliteStore) -> i64 {
        let cache_size = store
            .read(|conn, _| {
                conn.pragma_query_value(None, "cache_size", |row| row.get::<_, i64>(0))
                    .map_err(sqlite_error)
            })
            .expect("a read");
        -1000 - cache_size
    }

    #[test]
    fn reads_keep_to_the_first_free_connection() {
        let dir = std::env::temp_dir().join(format!("keyward-readers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let store = SqliteStore::open(dir.join("keys.db")).expect("open");
        assert_eq!(store.inner.readers.len(), 4);
        tagged(&store);
        // One caller at a time: always the first connection (warm cache).
        assert!((0..8).all(|_| served_by(&store) == 0));
        // The first is busy: the next free one serves.
        let first = lock(&store.inner.readers[0]);
        assert_eq!(served_by(&store), 1);
        let second = lock(&store.inner.readers[1]);
        assert_eq!(served_by(&store), 2);
        drop((first, second));
        assert_eq!(served_by(&store), 0);
        drop(store);
        drop(std::fs::remove_dir_all(&dir));
    }
}
