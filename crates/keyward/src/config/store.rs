//! The configured store: where it is, and opening it.

use keyward_core::Error;
use keyward_core::store::KeyStore;
use keyward_core::store::sql::TablePrefix;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The store a configuration file names (`[store]`): SQLite or Postgres,
/// the table prefix, and how long to wait for a Postgres connection.
///
/// Its `Debug` never shows a URL read from the environment (it may hold a
/// password).
#[derive(Clone)]
pub struct StoreConfig {
    pub(super) backend: Backend,
    pub(super) table_prefix: TablePrefix,
    pub(super) connect_timeout: Duration,
    /// The variable the URL came from, if it came from the environment.
    pub(super) url_env: Option<String>,
}

#[derive(Clone)]
pub(super) enum Backend {
    SqliteFile(PathBuf),
    SqliteMemory,
    Postgres(String),
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("store", &self.describe())
            .field("table_prefix", &self.table_prefix.as_str())
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl StoreConfig {
    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::SqliteFile(_) | Backend::SqliteMemory => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The table prefix (default `keyward_`).
    pub fn table_prefix(&self) -> &TablePrefix {
        &self.table_prefix
    }

    /// How long opening a Postgres store waits for a connection (default 5 s).
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The SQLite database file (absolute when the configuration was read
    /// from a file: a relative path is taken from the file's directory).
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match &self.backend {
            Backend::SqliteFile(path) => Some(path),
            _ => None,
        }
    }

    /// A description for people, without secrets: `sqlite /srv/keys.db`,
    /// `postgres (URL from DATABASE_URL)`, or a Postgres URL written in the
    /// file (which cannot hold a password).
    pub fn describe(&self) -> String {
        match (&self.backend, &self.url_env) {
            (Backend::SqliteFile(path), _) => format!("sqlite {}", path.display()),
            (Backend::SqliteMemory, _) => "sqlite in memory".to_owned(),
            (Backend::Postgres(_), Some(var)) => format!("postgres (URL from {var})"),
            (Backend::Postgres(url), None) => format!("postgres {url}"),
        }
    }

    /// Opens the store without changing its schema: run
    /// [`StoreConfig::open_migrated`] (the CLI's `keyward migrate`) once
    /// first. A SQLite file that does not exist is an error here, not a new
    /// empty database; `sqlite::memory:` is a new private database, always
    /// migrated.
    pub async fn open(&self) -> Result<Arc<dyn KeyStore>, Error> {
        self.open_with(false).await
    }

    /// Opens the store and applies keyward's migrations (idempotent; creates
    /// a SQLite file that does not exist).
    pub async fn open_migrated(&self) -> Result<Arc<dyn KeyStore>, Error> {
        self.open_with(true).await
    }

    async fn open_with(&self, migrate: bool) -> Result<Arc<dyn KeyStore>, Error> {
        match &self.backend {
            Backend::SqliteFile(path) => {
                if !migrate && !path.exists() {
                    return Err(Error::invalid(
                        "store",
                        "no SQLite database at the configured path (`keyward migrate` creates it)",
                    ));
                }
                self.open_sqlite(Some(path), migrate)
            }
            Backend::SqliteMemory => self.open_sqlite(None, true),
            Backend::Postgres(url) => self.open_postgres(url, migrate).await,
        }
    }

    #[cfg(feature = "sqlite")]
    fn open_sqlite(
        &self,
        path: Option<&std::path::Path>,
        migrate: bool,
    ) -> Result<Arc<dyn KeyStore>, Error> {
        use keyward_sqlite::{SqliteOptions, SqliteStore};
        let options = SqliteOptions::default()
            .table_prefix(self.table_prefix.clone())
            .migrate(migrate);
        let store = match path {
            Some(path) => SqliteStore::open_with(path, options)?,
            None => SqliteStore::connect_with("sqlite::memory:", options)?,
        };
        Ok(Arc::new(store))
    }

    #[cfg(not(feature = "sqlite"))]
    fn open_sqlite(
        &self,
        _path: Option<&std::path::Path>,
        _migrate: bool,
    ) -> Result<Arc<dyn KeyStore>, Error> {
        Err(Error::invalid(
            "store",
            "this build has no SQLite store (enable the keyward feature `sqlite`)",
        ))
    }

    #[cfg(feature = "postgres")]
    async fn open_postgres(&self, url: &str, migrate: bool) -> Result<Arc<dyn KeyStore>, Error> {
        use keyward_postgres::PgStore;
        use keyward_postgres::sqlx::postgres::PgPoolOptions;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(self.connect_timeout)
            // One round trip per query, not two (see keyward-postgres).
            .test_before_acquire(false)
            .connect(url)
            .await
            .map_err(|e| Error::backend("postgres", e))?;
        let store = PgStore::with_table_prefix(pool, self.table_prefix.clone());
        if migrate {
            store.migrate().await?;
        }
        Ok(Arc::new(store))
    }

    #[cfg(not(feature = "postgres"))]
    async fn open_postgres(&self, _url: &str, _migrate: bool) -> Result<Arc<dyn KeyStore>, Error> {
        Err(Error::invalid(
            "store",
            "this build has no Postgres store (enable the keyward feature `postgres`)",
        ))
    }
}

/// Whether a Postgres URL carries a password (in its user info, or as a
/// `password` parameter): those belong in the environment, not the file.
pub(super) fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, query) = match rest.split_once('?') {
        Some((before, query)) => (before, query),
        None => (rest, ""),
    };
    let authority = authority.split('/').next().unwrap_or_default();
    let in_user_info = authority
        .rsplit_once('@')
        .is_some_and(|(user_info, _)| user_info.contains(':'));
    let in_query = query.split('&').any(|pair| {
        pair.split('=')
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("password"))
    });
    in_user_info || in_query
}

#[cfg(test)]
mod tests {
    use super::has_password;

    #[test]
    fn passwords_are_found_wherever_a_url_can_hold_one() {
        for url in [
            "postgres://app:secret@db/keys",
            "postgresql://app:@db/keys",
            "postgres://db/keys?password=secret",
            "postgres://db/keys?sslmode=require&PASSWORD=x",
        ] {
            assert!(has_password(url), "{url}");
        }
        for url in [
            "postgres://app@db/keys",
            "postgres://db:5432/keys",
            "postgres://app@db:5432/keys?sslmode=require",
            "postgres://db/a:b@c",
        ] {
            assert!(!has_password(url), "{url}");
        }
    }
}
