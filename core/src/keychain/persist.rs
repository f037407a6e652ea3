//! Saving and loading a keychain under a root, and opening one bound to a
//! store (the binding itself lives in `bound.rs`).

use std::path::Path;

use super::{Keychain, OpenOptions};
use crate::at_rest;
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::root::Root;

impl Keychain {
    /// Loads a keychain from bytes made by [`save`](Keychain::save), opening
    /// them with `root`. The result is unbound: it never rotates on its own.
    ///
    /// Errors: wrong identity or passphrase, tampered bytes, or a payload cut
    /// short (age cannot tell a cut from tampering): `Authentication`; not a
    /// saved keychain, or a header cut short: `Format`; a newer format
    /// version: `Unsupported`.
    pub fn load(saved: &[u8], root: &dyn Root) -> Result<Keychain> {
        let json = root.unprotect(saved)?;
        let set = at_rest::from_json(&json)?;
        Ok(Keychain::from_set(set, None))
    }

    /// Saves the keychain: its plaintext JSON (see docs/FORMAT.md)
    /// protected by `root`. Under an age root the result is an age file.
    pub fn save(&self, root: &dyn Root) -> Result<Vec<u8>> {
        let set = self.live()?;
        let json = at_rest::to_json(&set)?;
        self.track(root.protect(&json))
    }

    /// Saves to `path` atomically (temporary file, fsync, rename, fsync of
    /// the directory): after a crash the file holds the old keychain or the
    /// new one, never a mix. The keychain stays unbound.
    pub fn save_file(&self, path: impl AsRef<Path>, root: &dyn Root) -> Result<()> {
        let bytes = self.save(root)?;
        self.track(crate::store::write_atomic(path.as_ref(), &bytes))
    }

    /// Loads from a file written by [`save_file`](Keychain::save_file) or
    /// [`open`](Keychain::open). The result is unbound.
    pub fn load_file(path: impl AsRef<Path>, root: &dyn Root) -> Result<Keychain> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Keychain::load(&bytes, root)
    }

    /// Opens the keychain stored at `location`, creating it (as
    /// [`generate`](Keychain::generate) would) if the store is empty, and
    /// binds it to that store. `location` is a file path (or `file://`
    /// URL), or `etcd://[user@]host:port[,host:port…]/key/path` (`etcds://`
    /// for TLS) with the `etcd` feature; see `docs/STORES.md`.
    ///
    /// A bound keychain is safe to share: any number of handles, processes
    /// (and, with etcd, machines) may open one location at once, and none
    /// ever loses what another wrote. Every change of state (rotate, an
    /// automatic rotation, a block of usage counts) is applied to the
    /// latest stored state and written by compare-and-swap before the first
    /// ciphertext under it is returned. Usage counts are reserved in the
    /// store in blocks, so the policy's limit holds for all writers
    /// together; when it is reached, exactly one writer rotates (emitting
    /// `KeyRotated` with `automatic` set) and the others adopt its key. A
    /// ciphertext under a key another writer made decrypts at once; a new
    /// primary is adopted within [`DEFAULT_REFRESH`](super::DEFAULT_REFRESH)
    /// ([`OpenOptions::refresh`] to change it).
    ///
    /// After `fork()` the child may keep using the handle: it never uses
    /// the parent's reserved counts (it reserves its own block first). Fork
    /// only while no other thread is inside a keystrata call.
    ///
    /// A store whose contents do not open with `root` is an error and is
    /// left untouched.
    pub fn open<R: Root + Clone + 'static>(
        location: impl AsRef<Path>,
        root: &R,
    ) -> Result<Keychain> {
        OpenOptions::new().open(location, root)
    }

    /// Like [`open`](Keychain::open); when the store is empty, the new
    /// keychain gets `policy` (or the default); an existing keychain keeps
    /// the policy it holds unless `policy` is given, in which case it is
    /// replaced and written back.
    pub fn open_with_policy<R: Root + Clone + 'static>(
        location: impl AsRef<Path>,
        root: &R,
        policy: Option<Policy>,
    ) -> Result<Keychain> {
        OpenOptions::new().policy_opt(policy).open(location, root)
    }

    /// Whether this keychain is bound to a store (made by
    /// [`open`](Keychain::open)). A fact about the handle: it answers after
    /// [`close`](crate::KeyManager::close) too, as `location` does.
    pub fn is_bound(&self) -> bool {
        self.bound.is_some()
    }

    /// The location of the store this keychain is bound to (never with a
    /// password), or `None` if unbound.
    pub fn location(&self) -> Option<&str> {
        self.bound.as_ref().map(|b| b.store.location())
    }

    /// Adopts the latest stored state now, rather than within the refresh
    /// interval. Does nothing for an unbound keychain. Errors: the store is
    /// unreachable (`Unavailable`, `Io`) or its contents do not open.
    pub fn refresh(&self) -> Result<()> {
        let r = self.live().map(|_| ()).and_then(|()| match &self.bound {
            None => Ok(()),
            Some(b) => {
                let _w = self.lock_writer();
                self.reload_latest(b)
            }
        });
        self.track(r)
    }
}
