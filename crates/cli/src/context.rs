//! What every store command starts from: the configuration, the service
//! over the configured store, and the operator the CLI acts as.

use crate::failure::Failure;
use crate::output::Output;
use keyward::config::Config;
use keyward::{Actor, KeyId, Keyward};
use std::path::Path;

/// A loaded deployment.
#[derive(Debug)]
pub(crate) struct Context {
    /// The store, described for people (no secret).
    pub(crate) store: String,
    /// `sqlite` or `postgres`.
    pub(crate) backend: &'static str,
    pub(crate) keyward: Keyward,
    pub(crate) actor: Actor,
    pub(crate) output: Output,
}

impl Context {
    /// Loads the file and opens its store (without migrating it).
    pub(crate) async fn open(path: &Path, output: Output) -> Result<Self, Failure> {
        Self::open_with(path, output, false).await
    }

    /// Loads the file, opens its store and applies keyward's migrations.
    pub(crate) async fn open_migrated(path: &Path, output: Output) -> Result<Self, Failure> {
        Self::open_with(path, output, true).await
    }

    /// Every command, `migrate` too, checks the whole configuration the way
    /// the host's `build()` does.
    async fn open_with(path: &Path, output: Output, migrate: bool) -> Result<Self, Failure> {
        let config = load(path)?;
        let configured = store(&config, path)?;
        let store = if migrate {
            configured.open_migrated().await?
        } else {
            configured.open().await?
        };
        let keyward = config.builder_arc(store).build().map_err(|e| {
            Failure::usage(format!("{}: {}", path.display(), crate::failure::chain(&e)))
        })?;
        Ok(Self {
            store: configured.describe(),
            backend: configured.backend(),
            keyward,
            actor: operator(),
            output,
        })
    }
}

impl Context {
    /// The key an argument names: its id, or a whole token of a configured
    /// kind (whose id is used). A bad argument is refused without being
    /// echoed, since it may be a mistyped token.
    pub(crate) fn key_id(&self, text: &str) -> Result<KeyId, Failure> {
        let text = text.trim();
        let id = match self.keyward.format().parse(text) {
            Ok(token) => KeyId::parse(token.key_id()),
            Err(_) => KeyId::parse(text),
        };
        Ok(id?)
    }
}

/// Reads and checks the configuration file.
pub(crate) fn load(path: &Path) -> Result<Config, Failure> {
    Ok(Config::from_path(path)?)
}

/// The configured store, or a usage error naming the file.
pub(crate) fn store<'a>(
    config: &'a Config,
    path: &Path,
) -> Result<&'a keyward::config::StoreConfig, Failure> {
    config.store().ok_or_else(|| {
        Failure::usage(format!(
            "{}: store: missing: add a [store] table with `url` or `url_env`",
            path.display()
        ))
    })
}

/// The operator every change is made and audited as: `cli:` and the OS
/// user (`USER`, else `LOGNAME`, else `uid<N>`).
pub(crate) fn operator() -> Actor {
    Actor::operator(&operator_name(
        std::env::var("USER").ok(),
        std::env::var("LOGNAME").ok(),
        process_uid(),
    ))
}

fn operator_name(user: Option<String>, logname: Option<String>, uid: Option<u32>) -> String {
    let user = [user, logname]
        .into_iter()
        .flatten()
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty() && !name.chars().any(char::is_control));
    match (user, uid) {
        (Some(user), _) => format!("cli:{user}"),
        (None, Some(uid)) => format!("cli:uid{uid}"),
        (None, None) => "cli:unknown".to_owned(),
    }
}

/// The process's user id, read without `unsafe`: the owner of `/proc/self`.
#[cfg(unix)]
fn process_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(not(unix))]
fn process_uid() -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_is_named_after_the_os_user() {
        let name = |u: Option<&str>, l: Option<&str>, uid| {
            operator_name(u.map(str::to_owned), l.map(str::to_owned), uid)
        };
        assert_eq!(name(Some("alice"), Some("bob"), Some(1000)), "cli:alice");
        assert_eq!(name(None, Some("bob"), Some(1000)), "cli:bob");
        assert_eq!(
            name(Some(" "), Some("bob"), None),
            "cli:bob",
            "blank is unset"
        );
        assert_eq!(
            name(Some("a\u{1b}[31m"), None, Some(7)),
            "cli:uid7",
            "no escapes"
        );
        assert_eq!(name(None, None, Some(1000)), "cli:uid1000");
        assert_eq!(name(None, None, None), "cli:unknown");
        let long = "x".repeat(500);
        let actor = Actor::operator(&name(Some(&long), None, None));
        assert!(
            actor.label().len() <= "operator:".len() + 128,
            "cut by OperatorName"
        );
    }
}
