//! Stores: where a bound keychain lives, shared by every process (and
//! every handle) that opens the same location.
//!
//! A [`Store`] holds one opaque byte string (the keychain as its root
//! protected it) and a [`Revision`] that changes with every write. The
//! keychain never overwrites what it did not read: every change is applied
//! to the latest stored state and written with
//! [`compare_and_swap`](Store::compare_and_swap); when another writer got
//! there first, the keychain reloads and applies its change again. The
//! consistency model is described in `docs/STORES.md`.
//!
//! Locations name stores in every language:
//!
//! | location | store |
//! |---|---|
//! | `path/to/keychain.age`, `file:///abs/path` | [`FileStore`]: a file, an OS lock around each write |
//! | `etcd://[user@]host:port[,host:port…]/key/path` | `EtcdStore` (feature `etcd`): a key in etcd, written in a transaction on `mod_revision` |
//! | `etcds://…?ca=…&cert=…&key=…` | the same over TLS |

#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub mod etcd;
mod file;
pub(crate) mod ticker;

use std::path::Path;
use std::sync::Arc;

pub use self::file::{write_atomic, FileStore};

use crate::error::{Error, Result};

/// An opaque version of a store's contents. Equal revisions of one store
/// mean equal contents; a write always produces a new revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Revision(pub u128);

/// Stored bytes with the revision they were read at.
#[derive(Debug)]
pub struct Versioned {
    /// The stored bytes (a keychain protected by its root).
    pub bytes: Vec<u8>,
    /// The revision those bytes are.
    pub revision: Revision,
}

/// What a [`Store::compare_and_swap`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Swap {
    /// The bytes were written; this is their revision.
    Written(Revision),
    /// The store was not at the expected revision: nothing was written.
    Conflict,
}

/// Where a bound keychain lives: one value, read whole, replaced by
/// compare-and-swap.
///
/// Implementations must make `compare_and_swap` atomic against every other
/// writer of the same location (other handles, processes and machines),
/// and must return within bounded time: an unreachable backend is an
/// `Unavailable` error, never a hang.
pub trait Store: Send + Sync {
    /// The location, for messages (never with a password).
    fn location(&self) -> &str;

    /// The current contents, or `None` if nothing is stored yet.
    fn load(&self) -> Result<Option<Versioned>>;

    /// Writes `bytes` if the store is at `expected` (`None`: only if it is
    /// empty). Never writes otherwise.
    fn compare_and_swap(&self, expected: Option<Revision>, bytes: &[u8]) -> Result<Swap>;

    /// Whether the contents may differ from `since`. Cheap (a `stat`, or a
    /// value a watch keeps current); a `true` that turns out wrong costs
    /// only a reload.
    fn changed(&self, since: Revision) -> Result<bool>;

    /// Like [`changed`](Store::changed), but never waits on a network:
    /// `None` when the answer is not at hand (a watch not established yet,
    /// an outage). The hot path asks this once per refresh interval, so an
    /// unreachable backend never stalls an encryption. The default asks
    /// `changed` (right for stores whose check is local, like a `stat`).
    fn changed_now(&self, since: Revision) -> Option<bool> {
        self.changed(since).ok()
    }

    /// Like [`changed`](Store::changed), but asks the backend itself, never
    /// a value a watch keeps, which can lag a write another writer made a
    /// moment ago. Asked when a ciphertext names a key_id the keychain does
    /// not have (most likely a key just made elsewhere), so that such a key
    /// is found at once on a loaded machine too. The default asks
    /// `changed` (right for stores whose check is the backend itself, like
    /// a `stat`); a store that wraps another forwards it.
    fn changed_fresh(&self, since: Revision) -> Result<bool> {
        self.changed(since)
    }

    /// Takes the store's writers' lock, if it has one, for a whole
    /// read-modify-write: while the returned guard lives, no other writer
    /// can change the store, so a `load`, a change and a
    /// `compare_and_swap` made under it cannot conflict. `None` for stores
    /// that have no such lock (etcd: compare-and-swap alone). The default
    /// has none.
    fn lock_for_update(&self) -> Result<Option<UpdateGuard<'_>>> {
        Ok(None)
    }

    /// Releases background resources (connections, watch threads). Later
    /// calls may fail with `Unavailable`. Idempotent.
    fn close(&self) {}
}

/// Holds a store's writers' lock (see [`Store::lock_for_update`]); the
/// lock is released when this is dropped.
pub struct UpdateGuard<'a>(#[allow(dead_code)] Box<dyn HeldLock + 'a>);

/// Anything whose drop releases a lock.
trait HeldLock {}
impl<T> HeldLock for T {}

impl<'a> UpdateGuard<'a> {
    /// A guard that releases the lock when `held` is dropped.
    pub fn new<T: 'a>(held: T) -> UpdateGuard<'a> {
        UpdateGuard(Box::new(held))
    }
}

impl std::fmt::Debug for UpdateGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpdateGuard")
    }
}

/// Opens the store a location names (see the module docs).
///
/// Errors: an unknown scheme, or a malformed URL: `InvalidInput`; `etcd://`
/// in a build without the `etcd` feature: `Unsupported`.
pub fn open_location(location: &Path) -> Result<Arc<dyn Store>> {
    let Some(text) = location.to_str() else {
        return Ok(Arc::new(FileStore::new(location.to_path_buf())));
    };
    let Some((scheme, rest)) = text.split_once("://") else {
        return Ok(Arc::new(FileStore::new(location.to_path_buf())));
    };
    match scheme {
        "file" => {
            if !rest.starts_with('/') {
                return Err(Error::invalid(
                    "a file:// location needs an absolute path (file:///dir/keychain.age)",
                ));
            }
            Ok(Arc::new(FileStore::new(rest.into())))
        }
        #[cfg(feature = "etcd")]
        "etcd" | "etcds" => Ok(Arc::new(etcd::EtcdStore::open(text)?)),
        #[cfg(not(feature = "etcd"))]
        "etcd" | "etcds" => Err(Error::unsupported(
            "this build of keystrata has no etcd support (cargo feature `etcd`)",
        )),
        other => Err(Error::invalid(format!(
            "unknown location scheme {:?}: use a file path, file://, etcd:// or etcds://",
            crate::error::truncate_for_message(other, 32)
        ))),
    }
}
