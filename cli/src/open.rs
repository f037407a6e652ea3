//! Roots and keychains from the global options.
//!
//! Every command opens the keychain **bound** to its store (as
//! `Keychain::open` does), so each change is written to the store by
//! compare-and-swap, applied to the latest state (a running service's
//! rotation is never lost), and every encryption uses usage counts
//! reserved in the store. Unlike `Keychain::open`, a command never creates
//! a keychain by accident: only `keychain new` does.

use std::path::Path;
use std::sync::Arc;

use keystrata::store::{open_location, Revision, Store, Swap, UpdateGuard, Versioned};
use keystrata::{ErrorKind, Keychain, OpenOptions, Result, Root};

use crate::cli::Global;
use crate::fail::{err, usage, Failure};

/// The root `--root` names.
pub fn root(g: &Global) -> Result<Arc<dyn Root>, Failure> {
    let uri = g
        .root
        .as_deref()
        .ok_or_else(|| usage("this command needs --root ROOT-URI (or KEYSTRATA_ROOT)"))?;
    root_from(uri)
}

/// The root a URI names.
pub fn root_from(uri: &str) -> Result<Arc<dyn Root>, Failure> {
    Ok(Arc::from(keystrata::root::from_uri(uri)?))
}

/// The location `--keychain` names.
pub fn location(g: &Global) -> Result<&str, Failure> {
    g.keychain
        .as_deref()
        .ok_or_else(|| usage("this command needs --keychain LOCATION (or KEYSTRATA_KEYCHAIN)"))
}

/// The store at `location`.
pub fn store(location: &str) -> Result<Arc<dyn Store>, Failure> {
    Ok(open_location(Path::new(location))?)
}

/// The message for a location that holds no keychain.
pub fn missing(location: &str) -> Failure {
    err(
        ErrorKind::Io,
        format!("no keychain at {location} (create one with `keystrata keychain new`)"),
    )
}

/// The keychain at `--keychain`, opened with `--root` and bound to its
/// store. A location that holds no keychain is an `Io` error.
pub fn keychain(g: &Global) -> Result<Keychain, Failure> {
    let location = location(g)?;
    let root = root(g)?;
    let store = store(location)?;
    if store.load()?.is_none() {
        return Err(missing(location));
    }
    Ok(OpenOptions::new().open_store(Arc::new(Existing(store)), root)?)
}

/// A store that refuses to be created: an open that finds it empty (the
/// keychain removed since it was checked) fails instead of making a new
/// keychain.
struct Existing(Arc<dyn Store>);

impl Store for Existing {
    fn location(&self) -> &str {
        self.0.location()
    }

    fn load(&self) -> Result<Option<Versioned>> {
        self.0.load()
    }

    fn compare_and_swap(&self, expected: Option<Revision>, bytes: &[u8]) -> Result<Swap> {
        if expected.is_none() {
            return Err(keystrata::Error::new(
                ErrorKind::Io,
                format!(
                    "the keychain at {} was removed; not creating a new one",
                    self.0.location()
                ),
            ));
        }
        self.0.compare_and_swap(expected, bytes)
    }

    fn changed(&self, since: Revision) -> Result<bool> {
        self.0.changed(since)
    }

    fn changed_now(&self, since: Revision) -> Option<bool> {
        self.0.changed_now(since)
    }

    fn changed_fresh(&self, since: Revision) -> Result<bool> {
        self.0.changed_fresh(since)
    }

    fn lock_for_update(&self) -> Result<Option<UpdateGuard<'_>>> {
        self.0.lock_for_update()
    }

    fn close(&self) {
        self.0.close()
    }
}
