//! The at-rest format of roots whose key never leaves a device or a server
//! (PKCS#11, KMIP): the keychain's JSON is encrypted locally under a fresh
//! 32-byte data key, and only that data key is wrapped by the root's
//! [`KeyManager`]. One round trip to the device per save or load, whatever
//! the keychain's size.
//!
//! ```text
//! "KSWR" ‖ 0x01
//! ‖ u16be(len) ‖ provider ‖ u16be(len) ‖ key_id ‖ u32be(key_version)
//! ‖ u32be(len) ‖ wrapped_dek                       -- everything so far is the header
//! ‖ nonce(12) ‖ AES-256-GCM(dek, nonce, json, aad = header) ‖ tag(16)
//! ```
//!
//! The data key is wrapped with context [`KEYCHAIN_WRAP_CONTEXT`], so an
//! envelope made by `wrap_key` for some other purpose cannot be passed off
//! as a keychain's. Spelled out with an example in `docs/FORMAT.md`.

use zeroize::Zeroizing;

use crate::aead::{fill_random, AeadEngine, Aes256Gcm, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::key_manager::KeyManager;
use crate::wrapped_key::Envelope;

/// The first bytes of a keychain saved under a device root.
pub const MAGIC: &[u8; 4] = b"KSWR";
/// The format version byte after [`MAGIC`].
pub const VERSION: u8 = 1;
/// The `wrap_key` context the data key is wrapped with.
pub const KEYCHAIN_WRAP_CONTEXT: &[u8] = b"keystrata/keychain/v1";

/// Encrypts `json` under a fresh data key wrapped by `km`.
///
/// The default of [`Root::protect`](super::Root::protect): how the device
/// roots, and any [`KeyManager`] of your own, keep a keychain.
pub fn protect<K: KeyManager + ?Sized>(km: &K, json: &[u8]) -> Result<Vec<u8>> {
    let mut dek = Zeroizing::new([0u8; KEY_LEN]);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut dek[..])?;
    fill_random(&mut nonce)?;
    let env = km.wrap_key(&dek[..], KEYCHAIN_WRAP_CONTEXT)?;
    let mut out = header(&env)?;
    let aad_len = out.len();
    out.extend_from_slice(&nonce);
    let body_start = out.len();
    out.resize(body_start + json.len() + TAG_LEN, 0);
    let (aad, rest) = out.split_at_mut(aad_len);
    Aes256Gcm::new(&dek).seal_into(&nonce, aad, json, &mut rest[NONCE_LEN..])?;
    Ok(out)
}

/// Reverses [`protect`]: unwraps the data key with `km` and decrypts.
///
/// Not this format, or a header cut short: `Format`. An envelope of another
/// provider: `InvalidInput` (from `km`). A changed body: `Authentication`.
pub fn unprotect<K: KeyManager + ?Sized>(km: &K, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let (env, header_len) = parse_header(stored)?;
    let body = &stored[header_len..];
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::authentication());
    }
    let dek = km.unwrap_key(&env, KEYCHAIN_WRAP_CONTEXT)?;
    let dek: &[u8; KEY_LEN] = dek
        .expose_secret()
        .try_into()
        .map_err(|_| Error::authentication())?;
    let (nonce, ct_tag) = body.split_at(NONCE_LEN);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    let mut out = Zeroizing::new(vec![0u8; ct_tag.len() - TAG_LEN]);
    Aes256Gcm::new(dek).open_into(&n, &stored[..header_len], ct_tag, &mut out)?;
    Ok(out)
}

/// Whether `stored` starts like a keychain saved under a device root.
pub fn is_wrapped(stored: &[u8]) -> bool {
    stored.len() > MAGIC.len() && &stored[..MAGIC.len()] == MAGIC
}

fn header(env: &Envelope) -> Result<Vec<u8>> {
    let short = |what: &str, s: &str| -> Result<u16> {
        u16::try_from(s.len()).map_err(|_| Error::internal(format!("{what} is too long")))
    };
    let mut out = Vec::with_capacity(64 + env.ciphertext.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&short("provider", &env.provider)?.to_be_bytes());
    out.extend_from_slice(env.provider.as_bytes());
    out.extend_from_slice(&short("key id", &env.key_id)?.to_be_bytes());
    out.extend_from_slice(env.key_id.as_bytes());
    out.extend_from_slice(&env.key_version.to_be_bytes());
    let n = u32::try_from(env.ciphertext.len())
        .map_err(|_| Error::internal("wrapped data key is too long"))?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&env.ciphertext);
    Ok(out)
}

/// Reads the header: the envelope and the header's length.
fn parse_header(stored: &[u8]) -> Result<(Envelope, usize)> {
    let mut r = Reader {
        buf: stored,
        pos: 0,
    };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(Error::format(
            "not a keychain saved under a PKCS#11 or KMIP root (bad magic)",
        ));
    }
    let version = r.take(1)?[0];
    if version != VERSION {
        return Err(Error::format(format!(
            "unsupported device-root keychain version {version}"
        )));
    }
    let provider = r.string16()?;
    let key_id = r.string16()?;
    let key_version = u32::from_be_bytes(r.array()?);
    let n = u32::from_be_bytes(r.array()?) as usize;
    let ciphertext = r.take(n)?.to_vec();
    Ok((
        Envelope {
            key_id,
            key_version,
            provider,
            ciphertext,
        },
        r.pos,
    ))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| Error::format("device-root keychain header is cut short"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn string16(&mut self) -> Result<String> {
        let n = u16::from_be_bytes(self.array()?) as usize;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| Error::format("device-root keychain header holds invalid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, Keychain};

    // The keychain is itself a KeyManager: enough to test the framing.
    #[test]
    fn round_trip_and_every_cut_and_flip_fails() {
        let km = Keychain::generate().unwrap();
        let json = br#"{"format":"keystrata.keychain","keys":[]}"#;
        let stored = protect(&km, json).unwrap();
        assert!(is_wrapped(&stored));
        assert_eq!(&unprotect(&km, &stored).unwrap()[..], json);
        for cut in 0..stored.len() {
            let kind = unprotect(&km, &stored[..cut]).unwrap_err().kind();
            assert!(
                matches!(kind, ErrorKind::Format | ErrorKind::Authentication),
                "cut {cut}: {kind:?}"
            );
        }
        for i in 0..stored.len() {
            let mut t = stored.clone();
            t[i] ^= 0x01;
            assert!(unprotect(&km, &t).is_err(), "flip at {i} went unnoticed");
        }
        let other = Keychain::generate().unwrap();
        assert!(unprotect(&other, &stored).is_err());
    }

    #[test]
    fn a_plain_wrap_is_not_a_keychain_key() {
        let km = Keychain::generate().unwrap();
        let stored = protect(&km, b"{}").unwrap();
        let (env, _) = parse_header(&stored).unwrap();
        // The data key was wrapped for keychains only.
        assert_eq!(
            km.unwrap_key(&env, b"").unwrap_err().kind(),
            ErrorKind::Authentication
        );
    }
}
