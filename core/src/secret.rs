//! Types that hold secret bytes: zeroized on drop, never printed.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::aead::KEY_LEN;

/// Secret bytes handed to the caller: a derived key, an unwrapped DEK.
///
/// The bytes are wiped when this value is dropped and its `Debug` output
/// shows only the length. Read them with [`SecretBytes::expose_secret`];
/// once copied out, keystrata can no longer wipe the copy.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub(crate) fn new(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(bytes)
    }

    pub(crate) fn from_zeroizing(mut bytes: Zeroizing<Vec<u8>>) -> SecretBytes {
        SecretBytes(std::mem::take(&mut *bytes))
    }

    /// The secret bytes. The name is a warning: anything copied from here
    /// is outside keystrata's zeroization.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Takes ownership of `bytes` (no copy) and wipes them on drop: for a key
/// manager of your own that returns an unwrapped key.
impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(bytes)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBytes")
            .field("len", &self.0.len())
            .finish_non_exhaustive()
    }
}

/// The 32 bytes of one keychain key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct KeyMaterial(pub(crate) [u8; KEY_LEN]);

impl KeyMaterial {
    pub(crate) fn random() -> crate::Result<KeyMaterial> {
        let mut m = KeyMaterial([0u8; KEY_LEN]);
        crate::aead::fill_random(&mut m.0)?;
        Ok(m)
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_material() {
        let s = SecretBytes::new(vec![0x41; 8]);
        let d = format!("{s:?}");
        assert!(!d.contains("65") && !d.contains("AAAA"), "{d}");
        let m = KeyMaterial([0x42; KEY_LEN]);
        assert!(!format!("{m:?}").contains("66"));
    }
}
