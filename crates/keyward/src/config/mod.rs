//! One configuration file for a deployment: its token kinds and their
//! policies, the store, and where the pepper comes from. The host and the
//! `keyward` CLI load the same file, so they never disagree on the format.
//!
//! ```
//! use keyward::config::Config;
//!
//! let config = Config::from_toml(r#"
//!     [store]
//!     url = "sqlite::memory:"
//!
//!     [kinds.mt]
//!     live_limit = 3
//!     catalog = ["reports.read", "billing.*"]
//!
//!     [kinds.mt.expiry]
//!     choices = ["1 month", "3 months", "6 months"]
//!     default = "3 months"
//! "#)?;
//! assert_eq!(config.kinds()[0].live_limit(), Some(3));
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let store = config.store().expect("a [store] table").open().await?;
//! let keyward = config.builder_arc(store).build()?;
//! # let _ = keyward; Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The whole reference, with every field and what it allows, is in
//! docs/cli.md ([`crate::docs::cli`]).

mod error;
mod file;
mod store;

pub use error::ConfigError;
pub use store::StoreConfig;

use file::{ExpiryFile, File, KindFile, ManagesFile};
use keyward_core::store::KeyStore;
use keyward_core::store::sql::TablePrefix;
use keyward_core::token::TokenHasher;
use keyward_core::{
    Error, ExpiryPolicy, Keyward, KeywardBuilder, Lifetime, Manages, Permission, PermissionSet,
    TokenKind, chrono::TimeDelta,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

/// Largest configuration file read (1 MiB).
pub const MAX_CONFIG_LEN: usize = 1024 * 1024;
/// Most token kinds one file declares.
const MAX_KINDS: usize = 64;
/// Longest wait for a Postgres connection `connect_timeout_secs` allows.
const MAX_CONNECT_TIMEOUT_SECS: u64 = 300;

/// A loaded, checked configuration file. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Config {
    kinds: Vec<TokenKind>,
    store: Option<StoreConfig>,
    hasher: TokenHasher,
    pepper_env: Option<String>,
}

impl Config {
    /// Reads and checks the file at `path`, taking `pepper_env` and
    /// `url_env` from the process environment. A relative SQLite path in it
    /// is taken from the file's directory.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::from_path_with_env(path, |name| std::env::var(name).ok())
    }

    /// [`Config::from_path`], reading variables through `env`.
    pub fn from_path_with_env(
        path: impl AsRef<Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = read_capped(path).map_err(|e| ConfigError::io(path, e))?;
        let text = String::from_utf8(text)
            .map_err(|_| ConfigError::new("the file is not UTF-8 text").in_file(path))?;
        // `keyward.toml` has the parent "": the current directory.
        let base = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .canonicalize()
            .ok();
        Self::load(&text, base.as_deref(), &env).map_err(|e| e.in_file(path))
    }

    /// Checks a configuration given as TOML text, taking `pepper_env` and
    /// `url_env` from the process environment. A relative SQLite path is
    /// taken from the current directory.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_with_env(text, |name| std::env::var(name).ok())
    }

    /// [`Config::from_toml`], reading variables through `env`.
    ///
    /// ```
    /// use keyward::config::Config;
    /// let text = "[hashing]\npepper_env = \"KEYWARD_PEPPER\"\n[kinds.mt]\n";
    /// let err = Config::from_toml_with_env(text, |_| None).unwrap_err();
    /// assert_eq!(err.line(), Some(2));
    /// assert_eq!(err.field_path(), Some("hashing.pepper_env"));
    /// let pepper = "p".repeat(32);
    /// let config = Config::from_toml_with_env(text, |_| Some(pepper.clone()))?;
    /// assert_eq!(config.pepper_env(), Some("KEYWARD_PEPPER"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_toml_with_env(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if text.len() > MAX_CONFIG_LEN {
            return Err(ConfigError::new("the configuration is larger than 1 MiB"));
        }
        Self::load(text, None, &env)
    }

    /// The token kinds, in prefix order.
    pub fn kinds(&self) -> &[TokenKind] {
        &self.kinds
    }

    /// The kind with this prefix.
    pub fn kind(&self, prefix: &str) -> Option<&TokenKind> {
        self.kinds.iter().find(|k| k.prefix() == prefix)
    }

    /// The store (`[store]`), if the file names one.
    pub fn store(&self) -> Option<&StoreConfig> {
        self.store.as_ref()
    }

    /// The hasher: HMAC-SHA-256 with the pepper when `pepper_env` is set,
    /// else SHA-256.
    pub fn hasher(&self) -> &TokenHasher {
        &self.hasher
    }

    /// The variable the pepper is read from, if any.
    pub fn pepper_env(&self) -> Option<&str> {
        self.pepper_env.as_deref()
    }

    /// A builder over `store` with every configured kind and the hasher;
    /// add hooks, a cache or a clock, then build.
    pub fn builder(&self, store: impl KeyStore) -> KeywardBuilder {
        self.builder_arc(Arc::new(store))
    }

    /// [`Config::builder`] for a store already behind an `Arc` (what
    /// [`StoreConfig::open`] returns).
    pub fn builder_arc(&self, store: Arc<dyn KeyStore>) -> KeywardBuilder {
        self.kinds.iter().fold(
            Keyward::builder_arc(store).hasher(self.hasher.clone()),
            |builder, kind| builder.kind(kind.clone()),
        )
    }

    /// Opens the configured store (without migrating it) and builds the
    /// service with the configured kinds and hasher.
    pub async fn open(&self) -> Result<Keyward, Error> {
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| Error::invalid("store", "the configuration has no [store] table"))?
            .open()
            .await?;
        self.builder_arc(store).build()
    }

    fn load(
        text: &str,
        base: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file: File = parse(text)?;
        let at = |span: std::ops::Range<usize>, field: &str, message: String| {
            ConfigError::new(message).at(text, span.start).field(field)
        };
        if file.kinds.is_empty() {
            return Err(ConfigError::new(
                "declare at least one token kind (a [kinds.<prefix>] table)",
            )
            .field("kinds"));
        }
        if file.kinds.len() > MAX_KINDS {
            return Err(ConfigError::new(format!("at most {MAX_KINDS} kinds")).field("kinds"));
        }
        let prefixes: Vec<&str> = file.kinds.keys().map(String::as_str).collect();
        let mut kinds = Vec::with_capacity(file.kinds.len());
        for (prefix, kind) in &file.kinds {
            kinds.push(kind_from(text, prefix, kind, &prefixes)?);
        }

        let (hasher, pepper_env) = match file.hashing.and_then(|h| h.pepper_env) {
            None => (TokenHasher::sha256(), None),
            Some(var) => {
                let field = "hashing.pepper_env";
                let name = env_name(text, &var, field)?;
                let pepper = env(&name).filter(|v| !v.is_empty()).ok_or_else(|| {
                    at(
                        var.span(),
                        field,
                        format!(
                            "the variable {name} is not set (the pepper comes only from the environment)"
                        ),
                    )
                })?;
                let hasher = TokenHasher::hmac_sha256(pepper.as_bytes()).map_err(|_| {
                    at(
                        var.span(),
                        field,
                        format!("the pepper in {name} is too short: at least 32 bytes"),
                    )
                })?;
                (hasher, Some(name))
            }
        };

        let store = match &file.store {
            None => None,
            Some(store) => Some(store_from(text, store, base, env)?),
        };
        Ok(Self {
            kinds,
            store,
            hasher,
            pepper_env,
        })
    }
}

/// Deserializes the file, naming the field of a type error.
fn parse(text: &str) -> Result<File, ConfigError> {
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| toml_error(text, &e, String::new()))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        // `Spanned` values show up in the path as a private field.
        let path = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        toml_error(text, e.inner(), path)
    })
}

fn toml_error(text: &str, error: &toml::de::Error, path: String) -> ConfigError {
    let error_message = error.message().trim().to_owned();
    let mut config_error = ConfigError::new(error_message).field(path);
    if let Some(span) = error.span() {
        config_error = config_error.at(text, span.start);
    }
    config_error
}

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_LEN as u64 + 1)
        .read_to_end(&mut text)?;
    if text.len() > MAX_CONFIG_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "larger than 1 MiB",
        ));
    }
    Ok(text)
}

/// Keeps only the reason of a core error: the field is named by the path.
fn reason(error: &Error) -> String {
    match error {
        Error::InvalidInput { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

fn kind_from(
    text: &str,
    prefix: &str,
    kind: &Spanned<KindFile>,
    prefixes: &[&str],
) -> Result<TokenKind, ConfigError> {
    let name = prefix;
    let path = format!("kinds.{name}");
    let fail = |span: std::ops::Range<usize>, field: &str, message: String| {
        let field = if field.is_empty() {
            path.clone()
        } else {
            format!("{path}.{field}")
        };
        ConfigError::new(message).at(text, span.start).field(field)
    };
    let mut built = TokenKind::new(name).map_err(|e| {
        fail(
            kind.span(),
            "",
            format!("invalid prefix `{name}`: {}", reason(&e)),
        )
    })?;
    let body = kind.get_ref();
    if body.key_id_len.is_some() || body.secret_len.is_some() {
        let key_id_len = body
            .key_id_len
            .as_ref()
            .map_or(built.key_id_len(), |l| *l.get_ref());
        let secret_len = body
            .secret_len
            .as_ref()
            .map_or(built.secret_len(), |l| *l.get_ref());
        built = built.with_lengths(key_id_len, secret_len).map_err(|e| {
            match (&e, &body.key_id_len, &body.secret_len) {
                (
                    Error::InvalidInput {
                        field: "key_id_len",
                        ..
                    },
                    Some(l),
                    _,
                ) => fail(l.span(), "key_id_len", reason(&e)),
                (_, _, Some(l)) => fail(l.span(), "secret_len", reason(&e)),
                (_, Some(l), None) => fail(l.span(), "key_id_len", reason(&e)),
                (_, None, None) => fail(kind.span(), "", reason(&e)),
            }
        })?;
    }
    if let Some(limit) = body.live_limit {
        built = built.with_live_limit(limit);
    }
    if let Some(expiry) = &body.expiry {
        built = built.with_expiry(expiry_from(expiry.get_ref(), &fail)?);
    }
    if let Some(catalog) = &body.catalog {
        let mut set = PermissionSet::new();
        for entry in catalog.get_ref() {
            set.insert(permission(entry, "catalog", &fail)?);
        }
        built = built
            .with_catalog(set)
            .map_err(|e| fail(catalog.span(), "catalog", reason(&e)))?;
    }
    for manages in &body.manages {
        built = built.with_manages(manages_from(manages, prefixes, &fail)?);
    }
    Ok(built)
}

type Fail<'a> = dyn Fn(std::ops::Range<usize>, &str, String) -> ConfigError + 'a;

fn permission(
    entry: &Spanned<String>,
    field: &str,
    fail: &Fail<'_>,
) -> Result<Permission, ConfigError> {
    Permission::new(entry.get_ref()).map_err(|e| {
        fail(
            entry.span(),
            field,
            format!("invalid permission `{}`: {}", entry.get_ref(), reason(&e)),
        )
    })
}

fn expiry_from(expiry: &ExpiryFile, fail: &Fail<'_>) -> Result<ExpiryPolicy, ConfigError> {
    let choices: Vec<Lifetime> = expiry
        .choices
        .get_ref()
        .iter()
        .map(|c| *c.get_ref())
        .collect();
    if choices.is_empty() {
        return Err(fail(
            expiry.choices.span(),
            "expiry.choices",
            "list at least one lifetime (`never`, `30 days`, `6 months`, `1 year` …)".to_owned(),
        ));
    }
    if let Some(fixed) = expiry
        .choices
        .get_ref()
        .iter()
        .find(|c| matches!(c.get_ref(), Lifetime::Until(_)))
    {
        return Err(fail(
            fixed.span(),
            "expiry.choices",
            "a fixed date is not a choice; allow fixed dates with `max_until_days`".to_owned(),
        ));
    }
    let listed = choices
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let default = match (&expiry.default, choices.as_slice()) {
        (Some(default), _) => {
            if !choices.contains(default.get_ref()) {
                return Err(fail(
                    default.span(),
                    "expiry.default",
                    format!(
                        "`{}` is not one of the choices (allowed: {listed})",
                        default.get_ref()
                    ),
                ));
            }
            *default.get_ref()
        }
        (None, [only]) => *only,
        (None, _) => {
            return Err(fail(
                expiry.choices.span(),
                "expiry.default",
                format!("required when there are several choices (one of: {listed})"),
            ));
        }
    };
    let mut policy = ExpiryPolicy::from_choices(choices, default)
        .map_err(|e| fail(expiry.choices.span(), "expiry", reason(&e)))?;
    if let Some(days) = &expiry.max_until_days {
        if !(1..=36_600).contains(days.get_ref()) {
            return Err(fail(
                days.span(),
                "expiry.max_until_days",
                "must be 1..=36600 days".to_owned(),
            ));
        }
        policy = policy.with_max_until(TimeDelta::days(i64::from(*days.get_ref())));
    }
    Ok(policy)
}

fn manages_from(
    manages: &Spanned<ManagesFile>,
    prefixes: &[&str],
    fail: &Fail<'_>,
) -> Result<Manages, ConfigError> {
    let m = manages.get_ref();
    if !prefixes.contains(&m.kind.get_ref().as_str()) {
        return Err(fail(
            m.kind.span(),
            "manages.kind",
            format!(
                "no kind `{}` is declared (declared: {})",
                m.kind.get_ref(),
                prefixes.join(", ")
            ),
        ));
    }
    Ok(Manages {
        kind: m.kind.get_ref().clone(),
        create: permission(&m.create, "manages.create", fail)?,
        view: permission(&m.view, "manages.view", fail)?,
        revoke: permission(&m.revoke, "manages.revoke", fail)?,
        enable: permission(&m.enable, "manages.enable", fail)?,
    })
}

/// An environment variable's name as the file gives it.
fn env_name(text: &str, var: &Spanned<String>, field: &str) -> Result<String, ConfigError> {
    let name = var.get_ref();
    let mut bytes = name.bytes();
    let valid = name.len() <= 128
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(name.clone())
    } else {
        Err(ConfigError::new(
            "the name of an environment variable: [A-Za-z_][A-Za-z0-9_]*, at most 128 bytes",
        )
        .at(text, var.span().start)
        .field(field))
    }
}

fn store_from(
    text: &str,
    store: &Spanned<file::StoreFile>,
    base: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StoreConfig, ConfigError> {
    let fail = |span: std::ops::Range<usize>, field: &str, message: String| {
        ConfigError::new(message)
            .at(text, span.start)
            .field(format!("store.{field}"))
    };
    let s = store.get_ref();
    let (url, url_env, url_span) = match (&s.url, &s.url_env) {
        (Some(url), None) => {
            if store::has_password(url.get_ref()) {
                return Err(fail(
                    url.span(),
                    "url",
                    "a password does not belong in the file: put the URL in the environment and name the variable with `url_env`".to_owned(),
                ));
            }
            (url.get_ref().clone(), None, url.span())
        }
        (None, Some(var)) => {
            let name = env_name(text, var, "store.url_env")?;
            let url = env(&name).filter(|v| !v.is_empty()).ok_or_else(|| {
                fail(
                    var.span(),
                    "url_env",
                    format!("the variable {name} is not set"),
                )
            })?;
            (url, Some(name), var.span())
        }
        (Some(url), Some(_)) => {
            return Err(fail(
                url.span(),
                "url",
                "give `url` or `url_env`, not both".to_owned(),
            ));
        }
        (None, None) => {
            return Err(fail(
                store.span(),
                "url",
                "missing: give `url` (sqlite://PATH, sqlite::memory:, postgres://HOST/DB) or `url_env`".to_owned(),
            ));
        }
    };
    let url_field = if url_env.is_some() { "url_env" } else { "url" };
    let backend = backend_from(&url, base).ok_or_else(|| {
        fail(
            url_span.clone(),
            url_field,
            "not a store URL: allowed are sqlite://PATH, sqlite:PATH, sqlite::memory:, postgres://… and postgresql://…".to_owned(),
        )
    })?;
    let table_prefix = match &s.table_prefix {
        None => TablePrefix::default(),
        Some(prefix) => TablePrefix::new(prefix.get_ref())
            .map_err(|e| fail(prefix.span(), "table_prefix", reason(&e)))?,
    };
    let connect_timeout = match &s.connect_timeout_secs {
        None => Duration::from_secs(5),
        Some(secs) if (1..=MAX_CONNECT_TIMEOUT_SECS).contains(secs.get_ref()) => {
            Duration::from_secs(*secs.get_ref())
        }
        Some(secs) => {
            return Err(fail(
                secs.span(),
                "connect_timeout_secs",
                format!("must be 1..={MAX_CONNECT_TIMEOUT_SECS} seconds"),
            ));
        }
    };
    Ok(StoreConfig {
        backend,
        table_prefix,
        connect_timeout,
        url_env,
    })
}

fn backend_from(url: &str, base: Option<&Path>) -> Option<store::Backend> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Some(store::Backend::Postgres(url.to_owned()));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    if path == ":memory:" {
        return Some(store::Backend::SqliteMemory);
    }
    if path.is_empty() || path.contains('?') || path.contains('\0') {
        return None;
    }
    let path = PathBuf::from(path);
    let path = match base {
        Some(base) if path.is_relative() => base.join(path),
        _ => path,
    };
    Some(store::Backend::SqliteFile(path))
}

#[cfg(test)]
mod tests;
