#![doc = include_str!("../../../README.md")]
//!
//! # Design notes
//!
//! - [Token format](docs::token_format)
//! - [Security model](docs::security)

pub use keyward_core::*;

/// Storage adapters, each behind its crate feature.
pub mod stores {
    #[cfg(feature = "memory")]
    pub use keyward_memory::MemoryStore;
}

/// Long-form design notes, checked as part of the docs.
pub mod docs {
    #[doc = include_str!("../../../docs/token-format.md")]
    pub mod token_format {}
    #[doc = include_str!("../../../docs/security.md")]
    pub mod security {}
}
