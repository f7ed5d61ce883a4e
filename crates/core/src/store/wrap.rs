//! One forwarding mechanism for stores that wrap a store: [`Wrapped`] runs
//! a [`StoreWrapper`]'s hook around every [`KeyStore`] method, and each hook
//! defaults to calling the inner store. `Arc<T>` forwards the same way.
//!
//! The method list lives once, in the `wrapping!` invocation below: a new
//! [`KeyStore`] method is added there (and to real stores), never to a
//! wrapper that does not care about it.

use super::{KeyRecord, KeyState, KeyStore, ListQuery, Page, PruneKeys, UsageRecord, VerifyRecord};
use crate::audit::{AuditEvent, AuditQuery};
use crate::error::Error;
use crate::key::{KeyId, Owner, Role, RoleName};
use crate::permission::PermissionSet;
use chrono::{DateTime, Utc};
use std::fmt::Debug;
use std::ops::Deref;
use std::sync::Arc;

/// A store wrapped by `W`: every [`KeyStore`] call goes to `W`'s hook of the
/// same name with the inner store, and `W` decides what happens around it.
/// Derefs to `W`, so the wrapper's own methods (counters, switches) are at
/// hand on the wrapped store.
///
/// ```
/// use keyward_core::store::{KeyRecord, KeyStore, StoreWrapper, Wrapped, async_trait};
/// use keyward_core::{Error, KeyId};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// /// Counts key reads; every other method is forwarded untouched.
/// #[derive(Debug, Default)]
/// struct CountReads(AtomicUsize);
///
/// #[async_trait]
/// impl StoreWrapper for CountReads {
///     async fn get_key(&self, inner: &dyn KeyStore, id: &KeyId) -> Result<Option<KeyRecord>, Error> {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         inner.get_key(id).await
///     }
/// }
///
/// fn counted(store: Arc<dyn KeyStore>) -> Arc<Wrapped<CountReads>> {
///     Arc::new(Wrapped::new(store, CountReads::default()))
/// }
/// ```
#[derive(Debug)]
pub struct Wrapped<W> {
    inner: Arc<dyn KeyStore>,
    wrapper: W,
}

impl<W: StoreWrapper> Wrapped<W> {
    /// `inner` wrapped by `wrapper`.
    pub fn new(inner: Arc<dyn KeyStore>, wrapper: W) -> Self {
        Self { inner, wrapper }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn KeyStore> {
        &self.inner
    }

    /// The wrapper.
    pub fn wrapper(&self) -> &W {
        &self.wrapper
    }
}

impl<W> Deref for Wrapped<W> {
    type Target = W;

    fn deref(&self) -> &W {
        &self.wrapper
    }
}

/// Generates, from one list of the [`KeyStore`] methods, the
/// [`StoreWrapper`] hooks (each forwarding by default), the [`KeyStore`]
/// impl of [`Wrapped`] that calls them, and the one of `Arc<T>`.
macro_rules! wrapping {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        /// What a wrapping store does around each [`KeyStore`] method; used
        /// through [`Wrapped`].
        ///
        /// Every hook receives the inner store and the call's arguments, and
        /// by default forwards the call unchanged: a wrapper overrides only
        /// the methods it cares about (counting, failing, pausing,
        /// invalidating a cache), and a method added to [`KeyStore`] is
        /// forwarded by every wrapper without touching it. A hook that does
        /// not call `inner` replaces the store's answer, so keep each
        /// method's contract (see [`KeyStore`]).
        #[async_trait::async_trait]
        pub trait StoreWrapper: Debug + Send + Sync + 'static {
            /// Around [`KeyStore::verify_key_now`]; by default `None`, so a
            /// verify goes to the [`verify_key`](StoreWrapper::verify_key)
            /// hook and a wrapper that overrides it (to count, fail or pause
            /// verify reads) sees every one. A wrapper that leaves verify
            /// reads alone may forward: `inner.verify_key_now(id)`.
            fn verify_key_now(
                &self,
                inner: &dyn KeyStore,
                id: &KeyId,
            ) -> Option<Result<Option<VerifyRecord>, Error>> {
                let _ = (inner, id);
                None
            }
            $(
                #[doc = concat!("Around [`KeyStore::", stringify!($method), "`]; by default, calls it on `inner`.")]
                async fn $method(&self, inner: &dyn KeyStore, $($arg: $ty),*) -> $ret {
                    inner.$method($($arg),*).await
                }
            )*
        }

        #[async_trait::async_trait]
        impl<W: StoreWrapper> KeyStore for Wrapped<W> {
            fn verify_key_now(&self, id: &KeyId) -> Option<Result<Option<VerifyRecord>, Error>> {
                self.wrapper.verify_key_now(&*self.inner, id)
            }
            $(async fn $method(&self, $($arg: $ty),*) -> $ret {
                self.wrapper.$method(&*self.inner, $($arg),*).await
            })*
        }

        #[async_trait::async_trait]
        impl<T: KeyStore + ?Sized> KeyStore for Arc<T> {
            fn verify_key_now(&self, id: &KeyId) -> Option<Result<Option<VerifyRecord>, Error>> {
                (**self).verify_key_now(id)
            }
            $(async fn $method(&self, $($arg: $ty),*) -> $ret {
                (**self).$method($($arg),*).await
            })*
        }
    };
}

wrapping! {
    insert_key(key: &KeyRecord, limit: Option<u32>, now: DateTime<Utc>, event: &AuditEvent) -> Result<(), Error>;
    get_key(id: &KeyId) -> Result<Option<KeyRecord>, Error>;
    verify_key(id: &KeyId) -> Result<Option<VerifyRecord>, Error>;
    set_state(id: &KeyId, from: KeyState, to: KeyState, at: DateTime<Utc>, event: &AuditEvent) -> Result<(), Error>;
    revoke_key(id: &KeyId, at: DateTime<Utc>, event: &AuditEvent) -> Result<bool, Error>;
    rotate_key(predecessor: &KeyId, expected: KeyState, predecessor_expires_at: DateTime<Utc>, successor: &KeyRecord, event: &AuditEvent) -> Result<(), Error>;
    record_usage(batch: &[UsageRecord]) -> Result<(), Error>;
    list_keys(query: &ListQuery) -> Result<Page<KeyRecord>, Error>;
    keys_expiring(after: DateTime<Utc>, before: DateTime<Utc>, limit: usize) -> Result<Vec<KeyRecord>, Error>;
    put_role(role: &Role, replaces: Option<&PermissionSet>, event: &AuditEvent) -> Result<(), Error>;
    get_roles(owner: &Owner, names: &[RoleName]) -> Result<Vec<Role>, Error>;
    list_roles(owner: &Owner, after: Option<&RoleName>, limit: usize) -> Result<Vec<Role>, Error>;
    delete_role(owner: &Owner, name: &RoleName, expected: &PermissionSet, event: &AuditEvent) -> Result<(), Error>;
    append_audit(event: &AuditEvent) -> Result<(), Error>;
    list_audit(query: &AuditQuery) -> Result<Vec<AuditEvent>, Error>;
    prune_keys(selection: PruneKeys, now: DateTime<Utc>, limit: usize) -> Result<Vec<KeyId>, Error>;
    prune_audit(before: DateTime<Utc>, limit: usize) -> Result<usize, Error>;
}
