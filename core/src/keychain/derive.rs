//! Derivation: HKDF-SHA256 under the keychain's derivation keys.

use super::Keychain;
use crate::derive;
use crate::error::Result;
use crate::key::Purpose;
use crate::metrics::Op;
use crate::secret::SecretBytes;

impl Keychain {
    /// A stable 32-byte key for `(origin, instance, epoch)`, by HKDF-SHA256
    /// under the derivation primary:
    ///
    /// `info = "keystrata/derive/v1" ‖ u32be(len) ‖ origin ‖ u32be(len) ‖
    /// instance ‖ u64be(epoch)`.
    ///
    /// The same keychain gives the same bytes in every language. Rotating
    /// the encryption primary does not change it; bump `epoch` to rotate a
    /// derived key.
    pub fn derive_origin_key(
        &self,
        origin: impl AsRef<[u8]>,
        instance: impl AsRef<[u8]>,
        epoch: u64,
    ) -> Result<SecretBytes> {
        let started = self.start(Op::Derive);
        let origin = origin.as_ref();
        let r = self.derive_origin_key_inner(None, origin, instance.as_ref(), epoch);
        self.done_derive(r, Some(origin), started)
    }

    /// [`derive_origin_key`](Keychain::derive_origin_key) under the
    /// derivation key `key_id` rather than the primary (for example an older
    /// derivation key after [`rotate_derivation`](Keychain::rotate_derivation)).
    pub fn derive_origin_key_with(
        &self,
        key_id: u32,
        origin: impl AsRef<[u8]>,
        instance: impl AsRef<[u8]>,
        epoch: u64,
    ) -> Result<SecretBytes> {
        let started = self.start(Op::Derive);
        let origin = origin.as_ref();
        let r = self.derive_origin_key_inner(Some(key_id), origin, instance.as_ref(), epoch);
        self.done_derive(r, Some(origin), started)
    }

    fn derive_origin_key_inner(
        &self,
        key_id: Option<u32>,
        origin: &[u8],
        instance: &[u8],
        epoch: u64,
    ) -> Result<(SecretBytes, u32, u32)> {
        self.derive_under(key_id, |prk| {
            derive::origin_key(prk, origin, instance, epoch)
        })
    }

    /// `length` bytes (1 to 8160) of HKDF-SHA256 under the derivation
    /// primary, with `info` exactly as given and no salt.
    pub fn derive(&self, info: &[u8], length: usize) -> Result<SecretBytes> {
        let started = self.start(Op::Derive);
        let r = self.derive_inner(None, info, length);
        self.done_derive(r, None, started)
    }

    /// [`derive`](Keychain::derive) under the derivation key `key_id`.
    pub fn derive_with(&self, key_id: u32, info: &[u8], length: usize) -> Result<SecretBytes> {
        let started = self.start(Op::Derive);
        let r = self.derive_inner(Some(key_id), info, length);
        self.done_derive(r, None, started)
    }

    fn derive_inner(
        &self,
        key_id: Option<u32>,
        info: &[u8],
        length: usize,
    ) -> Result<(SecretBytes, u32, u32)> {
        self.derive_under(key_id, |prk| derive::expand(prk, &[info], length))
    }

    /// Runs `f` on the HKDF PRK of derivation key `key_id` (default: the
    /// derivation primary); returns its output with the key's ID and
    /// version.
    fn derive_under(
        &self,
        key_id: Option<u32>,
        f: impl FnOnce(&[u8; 32]) -> Result<SecretBytes>,
    ) -> Result<(SecretBytes, u32, u32)> {
        let set = match key_id {
            Some(id) => self.set_with_key(id)?,
            None => self.live()?,
        };
        let id = key_id.unwrap_or_else(|| set.primary_id(Purpose::Derive));
        let (key, secret) = set.usable(id, Purpose::Derive)?;
        Ok((f(secret.prk())?, key.id, key.version))
    }
}
