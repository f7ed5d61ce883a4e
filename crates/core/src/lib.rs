#![doc = include_str!("../README.md")]

mod actor;
mod answer;
pub mod audit;
mod authorization;
mod bearer;
pub mod cache;
mod clock;
pub mod dangerous;
mod error;
mod expiry;
pub mod feed;
mod format;
pub mod hooks;
mod invalidating;
mod key;
mod kind;
pub mod leak;
mod lifecycle;
mod outcome;
mod permission;
mod secret;
mod service;
mod snapshot;
pub mod store;
mod usage;

#[cfg(feature = "testkit")]
pub mod testkit;

// The host's vocabulary: the service, kinds and policies, actors, requests
// and views, permissions and requirements, verify outcomes, the error.
pub use actor::{Actor, OperatorName, Session};
pub use answer::PublicAnswer;
pub use error::Error;
pub use expiry::{ExpiryPolicy, Lifetime};
pub use key::{KeyId, Owner, Role, RoleName};
pub use kind::{Manages, TokenKind};
pub use lifecycle::Status;
pub use outcome::{Rejection, VerifiedKey};
pub use permission::{Permission, PermissionSet, Requirement};
pub use service::{
    IssueRequest, IssuedKey, KeyDetails, Keyward, KeywardBuilder, ListRequest, UsageFlusher,
    Verification,
};

/// Re-exported so hosts and adapters use the same version.
pub use chrono;

/// The token itself: its format (parse, generate, scan, the regex for secret
/// scanners), the plaintext shown once, digests at rest and the random
/// source, and reading a Bearer header.
pub mod token {
    pub use crate::bearer::{BearerError, bearer_from_headers, bearer_token};
    pub use crate::format::{FoundToken, ParseError, ParsedToken, TokenFormat};
    pub use crate::secret::{
        HashAlgorithm, OsRandom, PlaintextToken, SecretSource, TokenDigest, TokenHasher,
    };
    pub use crate::service::ShownOnce;
}

/// Every size keyward caps, in one place (docs/security.md lists them).
pub mod limits {
    pub use crate::format::{MAX_KINDS, MAX_TOKEN_LEN};
    pub use crate::key::{
        MAX_KEY_ID_LEN, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_LEN, MAX_METADATA_VALUE_LEN,
        MAX_NAME_LEN, MAX_OWNER_LEN, MIN_KEY_ID_LEN,
    };
    pub use crate::kind::{
        CHECKSUM_LEN, DEFAULT_KEY_ID_LEN, DEFAULT_SECRET_LEN, MAX_SECRET_LEN, MIN_SECRET_LEN,
    };
    pub use crate::permission::{
        MAX_GRANTS, MAX_PERMISSION_LEN, MAX_REQUIREMENT_DEPTH, MAX_REQUIREMENT_KINDS,
        MAX_REQUIREMENT_PERMISSIONS,
    };
    pub use crate::service::MAX_REVOKE_REASON_LEN;
    pub use crate::service::MAX_ROLES_PER_KEY;
    pub use crate::store::DEFAULT_PRUNE_BATCH;
    pub use crate::store::{MAX_PAGE_SIZE, MAX_PRUNE_BATCH};
}
