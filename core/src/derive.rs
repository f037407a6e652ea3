//! Key derivation: HKDF-SHA256 under the keychain's derivation key.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::SecretBytes;
use crate::wrapped_key::len32;

/// Domain label of `derive_origin_key`'s info.
pub const ORIGIN_INFO_LABEL: &[u8] = b"keystrata/derive/v1";
/// Length of a key from `derive_origin_key`.
pub const ORIGIN_KEY_LEN: usize = 32;
/// The most bytes one `derive` call can produce (255 × 32, HKDF's limit).
pub const MAX_DERIVE_LEN: usize = 255 * 32;

/// The HKDF info of `derive_origin_key`:
///
/// ```text
/// "keystrata/derive/v1" ‖ u32be(len) ‖ origin ‖ u32be(len) ‖ instance ‖ u64be(epoch)
/// ```
pub fn origin_info(origin: &[u8], instance: &[u8], epoch: u64) -> Result<Vec<u8>> {
    with_origin_info(origin, instance, epoch, |parts| Ok(parts.concat()))
}

/// Calls `f` with the parts of [`origin_info`], in order, without joining
/// them: the one place that layout is written.
fn with_origin_info<T>(
    origin: &[u8],
    instance: &[u8],
    epoch: u64,
    f: impl FnOnce(&[&[u8]]) -> Result<T>,
) -> Result<T> {
    let origin_len = len32(origin.len())?.to_be_bytes();
    let instance_len = len32(instance.len())?.to_be_bytes();
    let epoch = epoch.to_be_bytes();
    f(&[
        ORIGIN_INFO_LABEL,
        &origin_len,
        origin,
        &instance_len,
        instance,
        &epoch,
    ])
}

/// HKDF-Extract with no salt (HashLen zero bytes): the pseudorandom key a
/// derivation key's expansions start from. Cached per key.
pub(crate) fn extract(ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    let (prk, _) = Hkdf::<Sha256>::extract(None, ikm);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&prk);
    out
}

/// HKDF-Expand of `prk` over the concatenation of `info` parts (no
/// allocation for the info), into a fresh secret of `length` bytes.
pub(crate) fn expand(prk: &[u8; 32], info: &[&[u8]], length: usize) -> Result<SecretBytes> {
    check_length(length)?;
    let mut okm = Zeroizing::new(vec![0u8; length]);
    Hkdf::<Sha256>::from_prk(prk)
        .map_err(|_| Error::internal("HKDF refused a 32-byte PRK"))?
        .expand_multi_info(info, &mut okm)
        .map_err(|_| Error::internal("HKDF expand refused a valid length"))?;
    Ok(SecretBytes::from_zeroizing(okm))
}

/// `derive_origin_key` from a derivation key's PRK: HKDF-Expand with the
/// info of [`origin_info`], assembled in place.
pub(crate) fn origin_key(
    prk: &[u8; 32],
    origin: &[u8],
    instance: &[u8],
    epoch: u64,
) -> Result<SecretBytes> {
    with_origin_info(origin, instance, epoch, |info| {
        expand(prk, info, ORIGIN_KEY_LEN)
    })
}

fn check_length(length: usize) -> Result<()> {
    if length == 0 || length > MAX_DERIVE_LEN {
        return Err(Error::invalid(format!(
            "derive length must be between 1 and {MAX_DERIVE_LEN} bytes, got {length}"
        )));
    }
    Ok(())
}

/// HKDF-SHA256 (RFC 5869): `length` bytes (1 to 8160) from `salt` (none
/// means HashLen zero bytes), `ikm` and `info`.
///
/// The keychain's derivations use this with no salt and the key's material
/// as `ikm`; it is public so the shared test vectors (Wycheproof) can check
/// it directly.
pub fn hkdf_sha256(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[u8],
    length: usize,
) -> Result<SecretBytes> {
    check_length(length)?;
    let mut okm = Zeroizing::new(vec![0u8; length]);
    Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, &mut okm)
        .map_err(|_| Error::internal("HKDF expand refused a valid length"))?;
    Ok(SecretBytes::from_zeroizing(okm))
}
