#![doc = include_str!("../../../README.md")]
//!
//! # Design notes
//!
//! - [Token format](docs::token_format)
//! - [Security model](docs::security)
//! - [Storage adapters](docs::adapters)
//! - [Verification cache](docs::caching)
//! - [Performance](docs::performance)
//! - [API naming](docs::api_naming)
//! - [The configuration file and the CLI](docs::cli)

// The host's vocabulary, at the root.
pub use keyward_core::{
    Actor, Error, ExpiryPolicy, IssueRequest, IssuedKey, KeyDetails, KeyId, Keyward,
    KeywardBuilder, Lifetime, ListRequest, Manages, OperatorName, Owner, Permission, PermissionSet,
    PublicAnswer, Rejection, Requirement, Role, RoleName, Session, Status, TokenKind, UsageFlusher,
    Verification, VerifiedKey, chrono, require,
};

// Everything else by what it is for: a host reaches into `audit`, `cache`,
// `hooks`, `limits` and `token`; an adapter author into `store` and `feed`.
#[doc(inline)]
pub use keyward_core::{audit, cache, dangerous, feed, hooks, leak, limits, store, token};

#[cfg(feature = "testkit")]
#[doc(inline)]
pub use keyward_core::testkit;

pub mod config;

/// Storage adapters, each behind its crate feature: `sqlite` (default),
/// `postgres`, `memory`. Each adapter crate is re-exported whole (with its
/// driver: `stores::sqlite::rusqlite`, `stores::postgres::sqlx`).
///
/// `PgStore` is also a [`ChangeFeed`](feed::ChangeFeed): pass a clone to
/// [`KeywardBuilder::change_feed`](crate::KeywardBuilder::change_feed) so
/// every process's verification cache hears every other's changes.
pub mod stores {
    #[cfg(feature = "memory")]
    pub use keyward_memory::{self as memory, MemoryStore};
    #[cfg(feature = "postgres")]
    pub use keyward_postgres::{self as postgres, PgStore};
    #[cfg(feature = "sqlite")]
    pub use keyward_sqlite::{self as sqlite, SqliteOptions, SqliteStore};
}

/// Long-form design notes, checked as part of the docs.
///
/// Every note is documented whatever the features, so the links to them
/// always resolve. The examples of two notes need stores behind features
/// and are collected as doctests only when those are on: `adapters` needs
/// `sqlite`, `postgres`, `memory` and `testkit`, `caching` needs `memory`.
/// `cargo test --workspace` turns them all on (the `keyward-tests` crate
/// depends on the facade with every feature), and so does
/// `cargo test -p keyward --all-features`.
pub mod docs {
    #[doc = include_str!("../../../docs/token-format.md")]
    pub mod token_format {}
    #[doc = include_str!("../../../docs/security.md")]
    pub mod security {}
    #[cfg_attr(
        any(
            not(doctest),
            all(
                feature = "sqlite",
                feature = "postgres",
                feature = "memory",
                feature = "testkit"
            )
        ),
        doc = include_str!("../../../docs/adapters.md")
    )]
    #[cfg_attr(
        all(
            doctest,
            not(all(
                feature = "sqlite",
                feature = "postgres",
                feature = "memory",
                feature = "testkit"
            ))
        ),
        doc = "Storage adapters. Its examples need the features `sqlite`, `postgres`, `memory` and `testkit`."
    )]
    pub mod adapters {}
    #[cfg_attr(
        any(not(doctest), feature = "memory"),
        doc = include_str!("../../../docs/caching.md")
    )]
    #[cfg_attr(
        all(doctest, not(feature = "memory")),
        doc = "The verification cache. Its examples need the feature `memory`."
    )]
    pub mod caching {}
    #[doc = include_str!("../../../docs/performance.md")]
    pub mod performance {}
    #[doc = include_str!("../../../docs/api-naming.md")]
    pub mod api_naming {}
    #[doc = include_str!("../../../docs/cli.md")]
    pub mod cli {}
}
