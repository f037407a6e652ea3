//! The rotation policy a keychain carries.

use crate::error::{Error, Result};

/// When a key has done enough work and must be replaced.
///
/// An unbound keychain refuses to encrypt past a limit (Policy error: rotate
/// and save); a keychain bound to a store rotates by itself, writing the new
/// key to the store before using it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Maximum encryptions (seal, encrypt, wrap_key) under one key. Default
    /// 2^32, the NIST SP 800-38D bound for random 96-bit nonces.
    pub max_encryptions_per_key: u64,
    /// Maximum age of the encryption primary, in seconds; `None` for no
    /// limit (the default).
    pub max_key_age_secs: Option<u64>,
    /// How many usage counts a bound keychain reserves in its store at a
    /// time, at least. A handle that uses up its blocks faster than one a
    /// second reserves bigger ones (doubling, up to 1024 times this; back
    /// down when blocks last over ten seconds), so a busy handle writes
    /// about once a second and cannot starve other writers of the store. A
    /// crash skips the rest of the handle's block: at most this many counts,
    /// or about a second's worth of its encryptions if that is more. A
    /// smaller block means more writes. Default 65536.
    pub usage_block: u64,
}

/// 2^32 encryptions: the NIST SP 800-38D limit for random 96-bit nonces.
pub const DEFAULT_MAX_ENCRYPTIONS: u64 = 1 << 32;
/// Default size of a usage reservation block.
pub const DEFAULT_USAGE_BLOCK: u64 = 1 << 16;

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            max_encryptions_per_key: DEFAULT_MAX_ENCRYPTIONS,
            max_key_age_secs: None,
            usage_block: DEFAULT_USAGE_BLOCK,
        }
    }
}

impl Policy {
    /// Checks the values make sense: limits and block at least 1, and the
    /// encryption limit at most 2^32.
    pub fn validate(&self) -> Result<()> {
        if self.max_encryptions_per_key == 0
            || self.max_encryptions_per_key > DEFAULT_MAX_ENCRYPTIONS
        {
            return Err(Error::invalid(
                "max_encryptions_per_key must be between 1 and 2^32",
            ));
        }
        if self.max_key_age_secs == Some(0) {
            return Err(Error::invalid("max_key_age_secs must be at least 1"));
        }
        if self.usage_block == 0 {
            return Err(Error::invalid("usage_block must be at least 1"));
        }
        Ok(())
    }
}
