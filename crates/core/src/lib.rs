#![doc = include_str!("../README.md")]

mod actor;
mod audit;
mod authorization;
mod bearer;
mod cache;
mod clock;
pub mod dangerous;
mod error;
mod expiry;
mod feed;
mod format;
mod hooks;
mod invalidating;
mod key;
mod kind;
mod lifecycle;
mod outcome;
mod permission;
mod secret;
mod service;
mod snapshot;
mod sql;
mod store;
mod usage;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use actor::{Actor, OperatorName, Session};
pub use audit::{AuditAction, AuditEvent, AuditOutcome, AuditQuery};
pub use bearer::{BearerError, bearer_token};
pub use cache::{CacheConfig, CacheStatus};
pub use clock::{Clock, SystemClock};
pub use error::Error;
pub use expiry::{ExpiryPolicy, Lifetime};
pub use feed::{Change, ChangeFeed, FeedSink};
pub use format::{FoundToken, MAX_TOKEN_LEN, ParseError, ParsedToken, TokenFormat};
pub use hooks::{Decision, IssueContext, IssueHook, OwnerPermissions};
pub use key::{
    KeyId, KeyRecord, MAX_KEY_ID_LEN, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_LEN,
    MAX_METADATA_VALUE_LEN, MAX_NAME_LEN, MAX_OWNER_LEN, MIN_KEY_ID_LEN, Metadata, Owner, Role,
    RoleName, UsageRecord, time_ago,
};
pub use kind::{
    CHECKSUM_LEN, DEFAULT_KEY_ID_LEN, DEFAULT_SECRET_LEN, MAX_SECRET_LEN, MIN_SECRET_LEN, Manages,
    TokenKind,
};
pub use lifecycle::{KeyState, Status, Transition};
pub use outcome::{PublicAnswer, Rejection, VerifiedKey};
pub use permission::{
    MAX_GRANTS, MAX_PERMISSION_LEN, MAX_REQUIREMENT_DEPTH, MAX_REQUIREMENT_KINDS,
    MAX_REQUIREMENT_PERMISSIONS, Permission, PermissionSet, Requirement,
};
pub use secret::{HashAlgorithm, OsRandom, PlaintextToken, SecretSource, TokenDigest, TokenHasher};
pub use service::{
    IssueRequest, IssuedKey, KeyDetails, Keyward, KeywardBuilder, ListRequest, MAX_ROLES_PER_KEY,
    UsageFlusher,
};
pub use sql::{TablePrefix, status_condition};
pub use store::{Cursor, KeyStore, ListQuery, MAX_PAGE_SIZE, Page, fold_name, name_contains};

/// Re-exported so adapters and hosts use the same versions.
pub use async_trait::async_trait;
pub use chrono;
