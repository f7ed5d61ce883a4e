//! Small helpers shared by the scenarios and behaviour tests.

use keyward_core::chrono::{DateTime, TimeZone, Utc};
use keyward_core::testkit::ManualClock;
use keyward_core::testkit::records::base62;
use keyward_core::{
    Actor, Error, IssueRequest, Keyward, Owner, PermissionSet, Requirement, RoleName, TokenKind,
    limits::CHECKSUM_LEN, token::OsRandom, token::SecretSource,
};
use keyward_core::{KeywardBuilder, cache::CacheConfig, store::KeyStore};
use keyward_core::{hooks::OwnerPermissions, store::async_trait};
use keyward_memory::MemoryStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The permission set of `names`.
pub(crate) fn perms(names: &[&str]) -> PermissionSet {
    PermissionSet::parse(names).unwrap()
}

/// A requirement of the one permission `name`.
pub(crate) fn need(name: &str) -> Requirement {
    Requirement::permission(name.parse().unwrap())
}

/// Fails unless `result` is [`Error::NotAuthorized`]; `what` names the attempt.
pub(crate) fn assert_not_authorized(result: Result<impl std::fmt::Debug, Error>, what: &str) {
    match result {
        Err(Error::NotAuthorized { .. }) => {}
        other => panic!("{what}: expected NotAuthorized, got {other:?}"),
    }
}

/// A random hex suffix, so owners and role names never collide when many
/// tests share one database.
pub(crate) fn suffix() -> String {
    let mut bytes = [0u8; 8];
    OsRandom
        .fill(&mut bytes)
        .expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh owner such as `account:3f9c…`.
pub(crate) fn owner(kind: &str) -> Owner {
    Owner::new(&format!("{kind}:{}", suffix())).unwrap()
}

/// A fresh role name such as `reader-3f9c…`.
pub(crate) fn role(name: &str) -> RoleName {
    RoleName::new(&format!("{name}-{}", suffix())).unwrap()
}

/// A manual clock at a fixed, whole-second instant.
pub(crate) fn clock_at(y: i32, m: u32, d: u32, h: u32) -> ManualClock {
    ManualClock::new(at(y, m, d, h))
}

/// An instant on the hour.
pub(crate) fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

/// The secret part of a token (between the key id and the checksum): what
/// must never be stored, logged or returned again.
pub(crate) fn secret_part<'a>(keyward: &Keyward, token: &'a str) -> &'a str {
    let parsed = keyward
        .format()
        .parse(token)
        .expect("a token keyward issued");
    let start = parsed.kind().prefix().len() + 1 + parsed.key_id().len();
    &token[start..token.len() - CHECKSUM_LEN]
}

/// `signed` (a prefix, `_`, a key id and a secret) with its checksum: a
/// well-formed token anyone can compute, since the checksum is a public CRC.
pub(crate) fn checksummed(signed: &str) -> String {
    let crc = crc32fast::hash(signed.as_bytes());
    format!("{signed}{}", base62(u64::from(crc), CHECKSUM_LEN))
}

/// `token` with the same key id and another secret, correctly checksummed:
/// what an attacker who saw a key id (they are public) can present.
pub(crate) fn with_wrong_secret(token: &str) -> String {
    let signed = &token[..token.len() - CHECKSUM_LEN];
    let (rest, last) = signed.split_at(signed.len() - 1);
    let other = if last == "a" { "b" } else { "a" };
    checksummed(&format!("{rest}{other}"))
}

/// A well-formed token of `kind` (valid checksum) that no store under test
/// has ever seen: minted by a throwaway keyward over its own memory store.
pub(crate) async fn foreign_token(kind: TokenKind) -> String {
    let prefix = kind.prefix().to_owned();
    let mint = Keyward::builder(MemoryStore::new())
        .kind(kind)
        .build()
        .unwrap();
    let issued = mint
        .issue(
            &Actor::operator("mint"),
            IssueRequest::new(&prefix, owner("nobody"), "foreign"),
        )
        .await
        .unwrap();
    issued.token.expose_secret().to_owned()
}

/// The host's user directory: what each user holds right now. Shared, so a
/// test can change a user's permissions while keyward is running (and, in
/// the change-feed tests, by two services at once, as a host's user
/// database would be).
#[derive(Debug, Clone, Default)]
pub(crate) struct Directory(Arc<Mutex<HashMap<Owner, PermissionSet>>>);

impl Directory {
    pub(crate) fn set(&self, user: &Owner, permissions: &[&str]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user.clone(), perms(permissions));
    }

    pub(crate) fn of(&self, user: &Owner) -> PermissionSet {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
            .cloned()
            .unwrap_or_default()
    }
}

#[async_trait]
impl OwnerPermissions for Directory {
    async fn permissions_of(&self, owner: &Owner) -> Result<PermissionSet, Error> {
        Ok(self.of(owner))
    }
}

/// The store a scenario runs on, and whether its service verifies through
/// a cache: every scenario runs both ways, and must read the same.
#[derive(Debug, Clone)]
pub struct Backend {
    store: Arc<dyn KeyStore>,
    cache: Option<CacheConfig>,
}

impl Backend {
    /// Services over `store` verify straight from the store.
    pub fn uncached(store: Arc<dyn KeyStore>) -> Self {
        Self { store, cache: None }
    }

    /// Services over `store` verify through a cache whose entries live for
    /// an hour: only invalidation can keep them right.
    pub fn cached(store: Arc<dyn KeyStore>) -> Self {
        let hour = Duration::from_secs(3600);
        let config = CacheConfig::new()
            .ttl(hour)
            .ttl_with_feed(hour)
            .negative_ttl(hour);
        Self {
            store,
            cache: Some(config),
        }
    }

    /// Whether services over this backend verify through a cache.
    pub fn is_cached(&self) -> bool {
        self.cache.is_some()
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn KeyStore> {
        Arc::clone(&self.store)
    }

    /// A service builder over the store, with the cache if any.
    pub fn builder(&self) -> KeywardBuilder {
        self.builder_over(self.store())
    }

    /// A service builder over `store` (a wrapper of this backend's store),
    /// with the cache if any.
    pub fn builder_over(&self, store: Arc<dyn KeyStore>) -> KeywardBuilder {
        let builder = Keyward::builder_arc(store);
        match &self.cache {
            Some(config) => builder.verify_cache(config.clone()),
            None => builder,
        }
    }
}
