//! minisign's formats: public keys, signatures and secret-key files.
//!
//! [minisign](https://jedisct1.github.io/minisign/) signs files with
//! Ed25519. This module reads and writes its three text formats, so that
//! keystrata signs what `minisign -V` verifies, verifies what `minisign -S`
//! signs, and imports keys `minisign -G` made. It follows minisign 0.11's C
//! source (`src/minisign.c`, `src/minisign.h`); 0.12 uses the same formats.
//!
//! # The formats
//!
//! Every file is lines of text; the binary parts are standard base64 with
//! `=` padding. Each file starts with an *untrusted comment* line,
//! `untrusted comment: <text>`, which nothing signs: keystrata requires the
//! prefix and otherwise ignores the line.
//!
//! **Public key** (`minisign.pub`): the comment line
//! (`untrusted comment: minisign public key <KEY ID>`), then base64 of
//! 42 bytes: `"Ed"` ‖ key ID (8 bytes) ‖ Ed25519 public key (32 bytes).
//! `minisign -P` takes that base64 line alone; [`PublicKey::from_text`]
//! accepts either. minisign never reads the comment (0.11 writes the key ID
//! there without zero padding, 0.12 and keystrata with 16 digits).
//!
//! **Key ID**: 8 random bytes chosen at key generation. minisign *prints*
//! it as the 16 upper-case hex digits of the bytes read as a
//! **little-endian** 64-bit number, so the printed ID is the bytes in
//! reverse order: bytes `40 d5 a2 7e e2 5c fd 6d` print as
//! `6DFD5CE27EA2D540`. [`key_id_hex`] does the same.
//!
//! **Signature** (`file.minisig`), four lines:
//!
//! ```text
//! untrusted comment: <anything>
//! base64("ED" ‖ key ID ‖ signature)          (74 bytes)
//! trusted comment: <trusted comment>
//! base64(global signature)                    (64 bytes)
//! ```
//!
//! - `"ED"` (prehashed, minisign's default since 0.10): `signature` is
//!   Ed25519 over the 64-byte unkeyed BLAKE2b-512 of the file.
//!   `"Ed"` (legacy, `minisign -S -l`): Ed25519 over the file itself.
//! - The *global signature* is Ed25519, by the same key, over
//!   `signature ‖ trusted comment` (the comment's bytes without the prefix
//!   and without the line end). It is what makes the trusted comment
//!   trusted: changing it fails verification.
//! - A trusted comment is one line of printable UTF-8: no control
//!   characters but tab, no DEL, no C1 controls (U+0080–U+009F), as
//!   minisign 0.12's `is_printable` demands, and at most
//!   [`MAX_TRUSTED_COMMENT_LEN`] bytes, the most minisign's reader
//!   (an 8192-byte `fgets` buffer holding the whole line) takes. minisign's
//!   own `-S` writes at most 4077 bytes (a 4096-byte `printf` buffer).
//!
//! **Secret key** (`minisign.key`): the comment line, then base64 of
//! 158 bytes:
//!
//! ```text
//! "Ed" ‖ kdf_alg (2) ‖ "B2" ‖ kdf_salt (32) ‖ opslimit (u64 LE) ‖ memlimit (u64 LE)
//!      ‖ [ key ID (8) ‖ seed (32) ‖ public key (32) ‖ checksum (32) ]
//! ```
//!
//! - `kdf_alg` is `"Sc"` when the key is encrypted with a password: the
//!   bracketed 104 bytes are XORed with 104 bytes of
//!   scrypt(password, kdf_salt) (libsodium's
//!   `crypto_pwhash_scryptsalsa208sha256`, which turns opslimit and
//!   memlimit into scrypt's N, r = 8 and p; see [`MAX_KDF_OPSLIMIT`]).
//!   minisign asks for libsodium's "sensitive" limits (1 GiB, N = 2²⁰) and
//!   halves both while the machine lacks the memory.
//! - `kdf_alg` is two zero bytes for a key made with `minisign -G -W`
//!   (nothing is XORed, the salt and limits are zero).
//! - The checksum is BLAKE2b-256 over `"Ed"` ‖ key ID ‖ seed ‖ public key.
//!   With a password, a wrong one shows as a checksum mismatch
//!   ([`ErrorKind::Authentication`]). minisign only checks it when it
//!   decrypts, and `minisign -G -W` leaves it all zero; keystrata accepts
//!   an unencrypted key whose checksum is zero or right, and in every case
//!   also checks that the public key is the seed's.
//!
//! # Errors
//!
//! - [`ErrorKind::Format`]: the text is not a minisign file (wrong line
//!   count, bad base64, wrong length, oversized, damaged checksum of an
//!   unencrypted key, public key not the seed's).
//! - [`ErrorKind::Unsupported`]: an algorithm tag keystrata does not know
//!   (signature other than `Ed`/`ED`, KDF other than `Sc`/none, checksum
//!   other than `B2`).
//! - [`ErrorKind::Authentication`]: a signature, the global signature, or
//!   an encrypted key's checksum (wrong password) does not check out. One
//!   opaque message for all three.
//! - [`ErrorKind::UnknownKey`]: the signature names another key ID than
//!   the public key's (the message gives both IDs as minisign prints them).
//! - [`ErrorKind::InvalidInput`]: a comment minisign cannot carry, or an
//!   encrypted key given without a password.
//! - [`ErrorKind::Policy`]: an encrypted key asks for more scrypt work than
//!   [`MAX_KDF_OPSLIMIT`] / [`MAX_KDF_MEMLIMIT`]; refused before any work.
//!
//! Error messages never contain key material, passwords or comments.
//!
//! # Example
//!
//! ```
//! use keystrata::sign::minisign::{self, SecretKey};
//!
//! # fn main() -> keystrata::Result<()> {
//! // A key made by `minisign -G -W` (unencrypted).
//! let key = SecretKey::from_text(
//!     "untrusted comment: minisign encrypted secret key\n\
//!      RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\
//!      QNWifuJc/W1+EBjvgWPPVYCnwVImLfNc9MkFXHFWGDhXTMxKwAjLJiaLlB3PTX/yArRcW3qk\
//!      fGo0UVxZKbXNTU18g9aj80bUAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
//!     None,
//! )?;
//! assert_eq!(key.public_key().key_id_hex(), "6DFD5CE27EA2D540");
//!
//! let sig = key.sign(b"release.tar.gz bytes", "file:release.tar.gz", None)?;
//! let verified = minisign::verify(key.public_key(), b"release.tar.gz bytes", &sig)?;
//! assert_eq!(verified.trusted_comment, "file:release.tar.gz");
//! assert!(verified.prehashed);
//! # Ok(())
//! # }
//! ```
//!
//! [`ErrorKind::Format`]: crate::ErrorKind::Format
//! [`ErrorKind::Unsupported`]: crate::ErrorKind::Unsupported
//! [`ErrorKind::Authentication`]: crate::ErrorKind::Authentication
//! [`ErrorKind::UnknownKey`]: crate::ErrorKind::UnknownKey
//! [`ErrorKind::InvalidInput`]: crate::ErrorKind::InvalidInput
//! [`ErrorKind::Policy`]: crate::ErrorKind::Policy

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Blake2b512, Digest};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// The largest trusted comment, in bytes, that [`sign`] writes and
/// [`verify`] accepts: 8173, the most `minisign -V` (0.11 and 0.12) reads.
pub const MAX_TRUSTED_COMMENT_LEN: usize = 8192 - 1 - TRUSTED_PREFIX.len() - 1;

/// The largest untrusted comment, in bytes, that [`sign`] writes: 1003, the
/// most `minisign -V` reads (a 1024-byte buffer for the whole line).
pub const MAX_UNTRUSTED_COMMENT_LEN: usize = 1024 - 1 - UNTRUSTED_PREFIX.len() - 1;

/// The largest signature text [`verify`] looks at: 64 KiB. Larger input is
/// refused with `Format` before parsing (a real one is under 10 KiB).
pub const MAX_SIGNATURE_TEXT_LEN: usize = 64 * 1024;

/// The largest public- or secret-key text keystrata parses: 4 KiB (a real
/// one is under 1.3 KiB, its comment line included).
pub const MAX_KEY_TEXT_LEN: usize = 4 * 1024;

/// The largest scrypt `opslimit` an encrypted secret key may ask for:
/// 33554432 (2²⁵), libsodium's `OPSLIMIT_SENSITIVE`, which is what
/// `minisign -G` writes. A key asking for more is refused with `Policy`
/// before any scrypt work.
///
/// With both limits at most these, libsodium's mapping (r = 8, then N and
/// p from the two limits) gives N ≤ 2²⁰ and p·N ≤ 2²⁰, so one import costs
/// at most about 1 GiB of memory and as much time as minisign's own
/// default (a few seconds in a release build).
pub const MAX_KDF_OPSLIMIT: u64 = 33_554_432;

/// The largest scrypt `memlimit` an encrypted secret key may ask for:
/// 1073741824 bytes (1 GiB), libsodium's `MEMLIMIT_SENSITIVE`, which is
/// what `minisign -G` writes. A key asking for more is refused with
/// `Policy` before any scrypt work.
pub const MAX_KDF_MEMLIMIT: u64 = 1_073_741_824;

/// The untrusted comment [`sign`] writes when given none (minisign's).
pub const DEFAULT_UNTRUSTED_COMMENT: &str = "signature from minisign secret key";

const UNTRUSTED_PREFIX: &str = "untrusted comment: ";
const TRUSTED_PREFIX: &str = "trusted comment: ";

const SIGALG: [u8; 2] = *b"Ed";
const SIGALG_HASHED: [u8; 2] = *b"ED";
const KDFALG: [u8; 2] = *b"Sc";
const KDFNONE: [u8; 2] = [0, 0];
const CHKALG: [u8; 2] = *b"B2";

const PUBLIC_KEY_LEN: usize = 2 + 8 + 32;
const SIG_STRUCT_LEN: usize = 2 + 8 + 64;
const SECRET_KEY_LEN: usize = 2 + 2 + 2 + 32 + 8 + 8 + KEYNUM_SK_LEN;
/// Key ID (8) ‖ seed (32) ‖ public key (32) ‖ checksum (32): the part
/// encrypted with the scrypt stream.
const KEYNUM_SK_LEN: usize = 8 + 64 + 32;

/// A key ID as minisign prints it: the 8 bytes read as a little-endian
/// number, in 16 upper-case hex digits (so the bytes in reverse order).
pub fn key_id_hex(key_id: [u8; 8]) -> String {
    format!("{:016X}", u64::from_le_bytes(key_id))
}

/// A minisign public key: an Ed25519 public key and its 8-byte key ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey {
    /// The key ID, as stored (see [`key_id_hex`] for how minisign prints
    /// it).
    pub key_id: [u8; 8],
    /// The Ed25519 public key.
    pub key: [u8; 32],
}

impl PublicKey {
    /// Parses a minisign public key: the text of a `.pub` file (the
    /// `untrusted comment:` line, then the base64 line), or the base64 line
    /// alone (as `minisign -P` takes it). Surrounding white space and
    /// `\r\n` line ends are accepted.
    ///
    /// Errors: `Format` if the text is not a public key, `Unsupported` if
    /// its algorithm is not `Ed`.
    pub fn from_text(text: &str) -> Result<PublicKey> {
        if text.len() > MAX_KEY_TEXT_LEN {
            return Err(Error::format(format!(
                "minisign public key text is over {MAX_KEY_TEXT_LEN} bytes"
            )));
        }
        let trimmed = text.trim();
        if !trimmed.contains('\n') {
            return PublicKey::from_base64(trimmed);
        }
        let [comment, line] = take_lines::<2>(text, "minisign public key")?;
        check_untrusted_prefix(comment, "minisign public key")?;
        PublicKey::from_base64(line)
    }

    fn from_base64(line: &str) -> Result<PublicKey> {
        let raw = decode_exact(line, PUBLIC_KEY_LEN, "minisign public key")?;
        if raw[..2] != SIGALG {
            return Err(unsupported_alg("public key signature", &raw[..2]));
        }
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&raw[2..10]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&raw[10..42]);
        Ok(PublicKey { key_id, key })
    }

    /// The key ID as minisign prints it (for example in
    /// `untrusted comment: minisign public key 6DFD5CE27EA2D540`).
    pub fn key_id_hex(&self) -> String {
        key_id_hex(self.key_id)
    }

    /// The base64 line of the key: what `minisign -P` takes.
    pub fn to_base64(&self) -> String {
        let mut raw = [0u8; PUBLIC_KEY_LEN];
        raw[..2].copy_from_slice(&SIGALG);
        raw[2..10].copy_from_slice(&self.key_id);
        raw[10..].copy_from_slice(&self.key);
        STANDARD.encode(raw)
    }

    /// The text of a `.pub` file, as `minisign -G` writes it:
    /// `untrusted comment: minisign public key <KEY ID>`, then the base64
    /// line, each ending with `\n`.
    pub fn to_text(&self) -> String {
        format!(
            "{UNTRUSTED_PREFIX}minisign public key {}\n{}\n",
            self.key_id_hex(),
            self.to_base64()
        )
    }
}

impl fmt::Display for PublicKey {
    /// The base64 line (as [`PublicKey::to_base64`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    /// As [`PublicKey::from_text`].
    fn from_str(s: &str) -> Result<PublicKey> {
        PublicKey::from_text(s)
    }
}

/// What a successful [`verify`] learned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The trusted comment (authenticated by the global signature), without
    /// its `trusted comment: ` prefix.
    pub trusted_comment: String,
    /// `true` for a prehashed (`ED`, minisign's default) signature, `false`
    /// for a legacy (`Ed`, `minisign -S -l`) one. A caller that wants
    /// `minisign -V -H`'s rule refuses `false`.
    pub prehashed: bool,
    /// The key ID the signature names (the public key's).
    pub key_id: [u8; 8],
}

/// Signs `data` as `minisign -S` does and returns the text of the
/// `.minisig` file: a prehashed (`ED`) signature, Ed25519 over the
/// BLAKE2b-512 of `data`, by the key whose Ed25519 seed is `seed`, named
/// `key_id`; and the global signature over that signature ‖
/// `trusted_comment`.
///
/// `untrusted_comment` defaults to [`DEFAULT_UNTRUSTED_COMMENT`]. Unlike
/// minisign's CLI, an empty `trusted_comment` stays empty (minisign puts a
/// timestamp and the file name there); pass what you want signed.
///
/// Errors: `InvalidInput` if a comment is too long
/// ([`MAX_TRUSTED_COMMENT_LEN`], [`MAX_UNTRUSTED_COMMENT_LEN`]) or has a
/// character minisign cannot carry (a line end, another control
/// character but tab, DEL or a C1 control).
pub fn sign(
    seed: &[u8; 32],
    key_id: [u8; 8],
    data: &[u8],
    trusted_comment: &str,
    untrusted_comment: Option<&str>,
) -> Result<String> {
    let pair = key_pair(seed)?;
    sign_with(
        &|m: &[u8]| Ok(pair.sign(m).as_ref().to_vec()),
        key_id,
        data,
        trusted_comment,
        untrusted_comment,
    )
}

/// [`sign`] with the Ed25519 signing done by `ed25519` (pure Ed25519 of
/// the bytes it is given): for a key that never leaves a token or the
/// keychain, e.g. `|m| signer.sign(m)` over an Ed25519
/// [`Signer`](super::Signer). `ed25519` is called twice: for the
/// BLAKE2b-512 of `data`, then for the signature ‖ trusted comment.
/// Errors: as [`sign`], those of `ed25519`, and `Backend` if it returns
/// something other than 64 bytes.
pub fn sign_with(
    ed25519: &dyn Fn(&[u8]) -> Result<Vec<u8>>,
    key_id: [u8; 8],
    data: &[u8],
    trusted_comment: &str,
    untrusted_comment: Option<&str>,
) -> Result<String> {
    check_comment(trusted_comment, MAX_TRUSTED_COMMENT_LEN, "trusted comment")?;
    let untrusted_comment = untrusted_comment.unwrap_or(DEFAULT_UNTRUSTED_COMMENT);
    check_comment(
        untrusted_comment,
        MAX_UNTRUSTED_COMMENT_LEN,
        "untrusted comment",
    )?;
    let sixty_four = |sig: Vec<u8>| -> Result<[u8; 64]> {
        <[u8; 64]>::try_from(sig.as_slice()).map_err(|_| {
            Error::new(
                ErrorKind::Backend,
                format!("an Ed25519 signer returned {} bytes, not 64", sig.len()),
            )
        })
    };
    let signature = sixty_four(ed25519(&Blake2b512::digest(data))?)?;
    let mut sig_struct = [0u8; SIG_STRUCT_LEN];
    sig_struct[..2].copy_from_slice(&SIGALG_HASHED);
    sig_struct[2..10].copy_from_slice(&key_id);
    sig_struct[10..].copy_from_slice(&signature);

    let global = sixty_four(ed25519(&global_message(
        &sig_struct[10..],
        trusted_comment,
    ))?)?;
    Ok(format!(
        "{UNTRUSTED_PREFIX}{untrusted_comment}\n{}\n{TRUSTED_PREFIX}{trusted_comment}\n{}\n",
        STANDARD.encode(sig_struct),
        STANDARD.encode(global),
    ))
}

/// Verifies a minisign signature (the text of a `.minisig` file) of `data`
/// by `pk`, as `minisign -V` does: prehashed (`ED`) and legacy (`Ed`)
/// signatures, then the global signature over the trusted comment.
///
/// Errors: `Format` if `sig_text` is not a minisign signature (or is over
/// [`MAX_SIGNATURE_TEXT_LEN`]), `Unsupported` for an unknown signature
/// algorithm, **`UnknownKey`** if the signature names another key ID than
/// `pk`'s (the message gives both, as minisign prints them), and
/// `Authentication` if the signature or the global signature (so the
/// trusted comment) does not verify.
pub fn verify(pk: &PublicKey, data: &[u8], sig_text: &str) -> Result<Verified> {
    let sig = ParsedSignature::parse(sig_text)?;
    if sig.key_id != pk.key_id {
        return Err(Error::new(
            ErrorKind::UnknownKey,
            format!(
                "the signature was made by key ID {}, not by this public key ({})",
                key_id_hex(sig.key_id),
                pk.key_id_hex()
            ),
        ));
    }
    let public = UnparsedPublicKey::new(&ED25519, &pk.key);
    let checked = if sig.prehashed {
        public.verify(&Blake2b512::digest(data), &sig.signature)
    } else {
        public.verify(data, &sig.signature)
    };
    checked.map_err(|_| Error::bad_signature())?;
    public
        .verify(
            &global_message(&sig.signature, sig.trusted_comment),
            &sig.global_signature,
        )
        .map_err(|_| Error::bad_signature())?;
    Ok(Verified {
        trusted_comment: sig.trusted_comment.to_owned(),
        prehashed: sig.prehashed,
        key_id: sig.key_id,
    })
}

/// The key ID a minisign signature names, without verifying anything: to
/// pick the public key to [`verify`] with among several.
///
/// Errors: as [`verify`]'s parsing (`Format`, `Unsupported`).
pub fn signature_key_id(sig_text: &str) -> Result<[u8; 8]> {
    Ok(ParsedSignature::parse(sig_text)?.key_id)
}

/// A minisign secret key: an Ed25519 seed, its public key and key ID.
///
/// The seed is wiped when the key is dropped; `Debug` prints only the key
/// ID.
pub struct SecretKey {
    key_id: [u8; 8],
    seed: Zeroizing<[u8; 32]>,
    public_key: PublicKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("key_id", &self.public_key.key_id_hex())
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// Imports a minisign secret key file (the text `minisign -G` writes).
    ///
    /// An encrypted key (the default of `minisign -G`) needs its
    /// `password`; an unencrypted one (`minisign -G -W`) ignores it.
    /// Before any scrypt work, the key's KDF limits are checked against
    /// [`MAX_KDF_OPSLIMIT`] and [`MAX_KDF_MEMLIMIT`]; at those limits
    /// (`minisign -G`'s own) the import takes 1 GiB of memory and about as
    /// long as minisign's (seconds in a release build; debug builds of
    /// scrypt are some 30 times slower).
    ///
    /// Errors: `Authentication` for a wrong password (or a damaged
    /// encrypted key), `InvalidInput` for an encrypted key without a
    /// password, `Policy` for KDF limits over the maxima, `Unsupported`
    /// for unknown algorithm tags, `Format` for anything else that is not
    /// a well-formed, self-consistent key.
    pub fn from_text(text: &str, password: Option<&[u8]>) -> Result<SecretKey> {
        const WHAT: &str = "minisign secret key";
        if text.len() > MAX_KEY_TEXT_LEN {
            return Err(Error::format(format!(
                "{WHAT} text is over {MAX_KEY_TEXT_LEN} bytes"
            )));
        }
        let [comment, line] = take_lines::<2>(text, WHAT)?;
        check_untrusted_prefix(comment, WHAT)?;
        let raw = decode_exact(line, SECRET_KEY_LEN, WHAT)?;
        let (sig_alg, rest) = raw.split_at(2);
        let (kdf_alg, rest) = rest.split_at(2);
        let (chk_alg, rest) = rest.split_at(2);
        let (salt, rest) = rest.split_at(32);
        let (opslimit, rest) = rest.split_at(8);
        let (memlimit, keynum_sk) = rest.split_at(8);
        if sig_alg != SIGALG {
            return Err(unsupported_alg("secret key signature", sig_alg));
        }
        if chk_alg != CHKALG {
            return Err(unsupported_alg("secret key checksum", chk_alg));
        }
        let mut sk = Zeroizing::new([0u8; KEYNUM_SK_LEN]);
        sk.copy_from_slice(keynum_sk);

        let encrypted = if kdf_alg == KDFALG {
            // The limits first: a hostile file is refused as such.
            let params = scrypt_params(le64(opslimit), le64(memlimit))?;
            let password = password.ok_or_else(|| {
                Error::invalid("the minisign secret key is encrypted: a password is needed")
            })?;
            let mut stream = Zeroizing::new([0u8; KEYNUM_SK_LEN]);
            scrypt::scrypt(password, salt, &params, &mut stream[..])
                .map_err(|_| Error::internal("scrypt refused its output length"))?;
            for (b, s) in sk.iter_mut().zip(stream.iter()) {
                *b ^= s;
            }
            true
        } else if kdf_alg == KDFNONE {
            false
        } else {
            return Err(unsupported_alg("secret key KDF", kdf_alg));
        };

        let (key_id_bytes, rest) = sk.split_at(8);
        let (seed_bytes, rest) = rest.split_at(32);
        let (pk_bytes, stored_chk) = rest.split_at(32);
        let computed = checksum(key_id_bytes, seed_bytes, pk_bytes);
        if !ct_eq(&computed[..], stored_chk) {
            if encrypted {
                return Err(Error::new(
                    ErrorKind::Authentication,
                    "wrong password for the minisign secret key (its checksum does not match)",
                ));
            }
            // `minisign -G -W` writes an all-zero checksum; `minisign -C -W`
            // (removing a password) keeps the right one.
            if stored_chk.iter().any(|&b| b != 0) {
                return Err(Error::format(
                    "the minisign secret key's checksum does not match: the file is damaged",
                ));
            }
        }

        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(key_id_bytes);
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(seed_bytes);
        let pair = key_pair(&seed)?;
        if !ct_eq(pair.public_key().as_ref(), pk_bytes) {
            return Err(Error::format(
                "the minisign secret key is inconsistent: its public key is not its seed's",
            ));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(pk_bytes);
        Ok(SecretKey {
            key_id,
            seed,
            public_key: PublicKey { key_id, key },
        })
    }

    /// A secret key from an Ed25519 seed and a key ID (for keys that
    /// keystrata holds itself).
    pub fn from_seed(seed: &[u8; 32], key_id: [u8; 8]) -> Result<SecretKey> {
        let pair = key_pair(seed)?;
        let mut key = [0u8; 32];
        key.copy_from_slice(pair.public_key().as_ref());
        Ok(SecretKey {
            key_id,
            seed: Zeroizing::new(*seed),
            public_key: PublicKey { key_id, key },
        })
    }

    /// The key ID (see [`key_id_hex`] for how minisign prints it).
    pub fn key_id(&self) -> [u8; 8] {
        self.key_id
    }

    /// The public key (with the same key ID).
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The raw 32-byte Ed25519 seed: the whole secret. Handle with care;
    /// it is wiped when the `SecretKey` is dropped, not any copy of it.
    pub fn insecure_seed(&self) -> &Zeroizing<[u8; 32]> {
        &self.seed
    }

    /// Signs `data` with this key: [`sign`] with its seed and key ID.
    pub fn sign(
        &self,
        data: &[u8],
        trusted_comment: &str,
        untrusted_comment: Option<&str>,
    ) -> Result<String> {
        sign(
            &self.seed,
            self.key_id,
            data,
            trusted_comment,
            untrusted_comment,
        )
    }
}

/// A parsed `.minisig` text, borrowing the trusted comment.
struct ParsedSignature<'a> {
    prehashed: bool,
    key_id: [u8; 8],
    signature: [u8; 64],
    trusted_comment: &'a str,
    global_signature: [u8; 64],
}

impl<'a> ParsedSignature<'a> {
    fn parse(text: &'a str) -> Result<ParsedSignature<'a>> {
        const WHAT: &str = "minisign signature";
        if text.len() > MAX_SIGNATURE_TEXT_LEN {
            return Err(Error::format(format!(
                "{WHAT} text is over {MAX_SIGNATURE_TEXT_LEN} bytes"
            )));
        }
        let [comment, sig_line, trusted_line, global_line] = take_lines::<4>(text, WHAT)?;
        check_untrusted_prefix(comment, WHAT)?;
        if comment.len() > UNTRUSTED_PREFIX.len() + MAX_UNTRUSTED_COMMENT_LEN {
            return Err(Error::format(format!(
                "{WHAT}: the untrusted comment is over {MAX_UNTRUSTED_COMMENT_LEN} bytes"
            )));
        }
        let sig_struct = decode_exact(sig_line, SIG_STRUCT_LEN, WHAT)?;
        let prehashed = match [sig_struct[0], sig_struct[1]] {
            SIGALG_HASHED => true,
            SIGALG => false,
            other => return Err(unsupported_alg("signature", &other)),
        };
        let trusted_comment = trusted_line.strip_prefix(TRUSTED_PREFIX).ok_or_else(|| {
            Error::format(format!(
                "{WHAT}: the third line does not start with \"{TRUSTED_PREFIX}\""
            ))
        })?;
        check_comment(trusted_comment, MAX_TRUSTED_COMMENT_LEN, "trusted comment")
            .map_err(|e| Error::format(format!("{WHAT}: {}", e.message())))?;
        let global = decode_exact(global_line, 64, WHAT)?;

        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&sig_struct[2..10]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&sig_struct[10..]);
        let mut global_signature = [0u8; 64];
        global_signature.copy_from_slice(&global);
        Ok(ParsedSignature {
            prehashed,
            key_id,
            signature,
            trusted_comment,
            global_signature,
        })
    }
}

/// What the global signature covers: signature ‖ trusted comment.
fn global_message(signature: &[u8], trusted_comment: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(signature.len() + trusted_comment.len());
    m.extend_from_slice(signature);
    m.extend_from_slice(trusted_comment.as_bytes());
    m
}

fn key_pair(seed: &[u8; 32]) -> Result<Ed25519KeyPair> {
    Ed25519KeyPair::from_seed_unchecked(seed)
        .map_err(|_| Error::internal("AWS-LC refused a 32-byte Ed25519 seed"))
}

/// BLAKE2b-256 over `"Ed"` ‖ key ID ‖ seed ‖ public key (minisign's
/// `seckey_compute_chk`).
fn checksum(key_id: &[u8], seed: &[u8], pk: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut h = Blake2b::<U32>::new();
    h.update(SIGALG);
    h.update(key_id);
    h.update(seed);
    h.update(pk);
    Zeroizing::new(h.finalize().into())
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn le64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    u64::from_le_bytes(b)
}

/// scrypt's (log2 N, r, p) from libsodium's opslimit and memlimit, as
/// `crypto_pwhash_scryptsalsa208sha256`'s `pickparams` computes them.
fn pick_params(opslimit: u64, memlimit: u64) -> (u8, u32, u64) {
    let opslimit = opslimit.max(32_768);
    let r: u64 = 8;
    let log2_at_most = |max_n: u64| {
        let mut n_log2: u8 = 1;
        while n_log2 < 63 && (1u64 << n_log2) <= max_n / 2 {
            n_log2 += 1;
        }
        n_log2
    };
    if opslimit < memlimit / 32 {
        (log2_at_most(opslimit / (r * 4)), 8, 1)
    } else {
        let n_log2 = log2_at_most(memlimit / (r * 128));
        let max_rp = ((opslimit / 4) >> n_log2).min(0x3fff_ffff);
        (n_log2, 8, max_rp / r)
    }
}

/// The scrypt parameters of an encrypted key, refused with `Policy` when
/// its limits are over [`MAX_KDF_OPSLIMIT`] / [`MAX_KDF_MEMLIMIT`].
fn scrypt_params(opslimit: u64, memlimit: u64) -> Result<scrypt::Params> {
    if opslimit > MAX_KDF_OPSLIMIT || memlimit > MAX_KDF_MEMLIMIT {
        return Err(Error::policy(format!(
            "the minisign secret key asks for scrypt opslimit {opslimit} and memlimit \
             {memlimit}; the limits are {MAX_KDF_OPSLIMIT} and {MAX_KDF_MEMLIMIT}"
        )));
    }
    let (log_n, r, p) = pick_params(opslimit, memlimit);
    // Follows from the limits above; checked again so that a change to them
    // cannot unbound the memory scrypt allocates (128·r·N and 128·r·p).
    let block = 128 * u64::from(r);
    if (1u64 << log_n).saturating_mul(block) > MAX_KDF_MEMLIMIT
        || p.saturating_mul(block) > MAX_KDF_MEMLIMIT
    {
        return Err(Error::policy(
            "the minisign secret key's scrypt parameters need too much memory",
        ));
    }
    let p = u32::try_from(p).map_err(|_| Error::policy("scrypt p is out of range"))?;
    // The `len` argument only matters for scrypt's password-hash strings;
    // the output length is that of the buffer given to `scrypt::scrypt`.
    scrypt::Params::new(log_n, r, p, 64).map_err(|_| {
        Error::format(format!(
            "the minisign secret key's scrypt limits ({opslimit}, {memlimit}) are unusable"
        ))
    })
}

/// The first `N` lines of `text` (without `\n` or `\r\n`); anything after
/// them but blank lines is an error.
fn take_lines<'a, const N: usize>(text: &'a str, what: &str) -> Result<[&'a str; N]> {
    let mut out = [""; N];
    let mut rest = text;
    for (i, slot) in out.iter_mut().enumerate() {
        if rest.is_empty() {
            return Err(Error::format(format!(
                "{what} is truncated: {i} of its {N} lines"
            )));
        }
        let (line, after) = match rest.find('\n') {
            Some(j) => (&rest[..j], &rest[j + 1..]),
            None => (rest, ""),
        };
        *slot = line.strip_suffix('\r').unwrap_or(line);
        rest = after;
    }
    if !rest.trim_matches(['\r', '\n']).is_empty() {
        return Err(Error::format(format!("{what} has more than its {N} lines")));
    }
    Ok(out)
}

fn check_untrusted_prefix(line: &str, what: &str) -> Result<()> {
    if line.starts_with(UNTRUSTED_PREFIX) {
        Ok(())
    } else {
        Err(Error::format(format!(
            "{what}: the first line does not start with \"{UNTRUSTED_PREFIX}\""
        )))
    }
}

/// Decodes one base64 line that must hold exactly `len` bytes.
fn decode_exact(line: &str, len: usize, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let bad = || Error::format(format!("{what}: not the base64 of {len} bytes"));
    if line.len() != len.div_ceil(3) * 4 {
        return Err(bad());
    }
    let raw = Zeroizing::new(STANDARD.decode(line).map_err(|_| bad())?);
    if raw.len() != len {
        return Err(bad());
    }
    Ok(raw)
}

/// A comment must fit minisign's buffers and be one printable line
/// (minisign 0.12's `is_printable`: tab, or no C0/C1 control and no DEL).
fn check_comment(comment: &str, max: usize, what: &str) -> Result<()> {
    if comment.len() > max {
        return Err(Error::invalid(format!(
            "the {what} is {} bytes; minisign carries at most {max}",
            comment.len()
        )));
    }
    if let Some((at, _)) = comment
        .char_indices()
        .find(|&(_, c)| c != '\t' && (c.is_ascii_control() || ('\u{80}'..='\u{9f}').contains(&c)))
    {
        return Err(Error::invalid(format!(
            "the {what} has a control character (at byte {at}): minisign carries one line of \
             printable text"
        )));
    }
    Ok(())
}

fn unsupported_alg(what: &str, tag: &[u8]) -> Error {
    Error::unsupported(format!(
        "unsupported minisign {what} algorithm \"{}\"",
        String::from_utf8_lossy(tag).escape_debug()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by minisign 0.11: `minisign -G -W -p k.pub -s k.key`, then
    // `echo hello > f`, `minisign -S -l -m f -s k.key -x f.legacy` and
    // `minisign -Sm f -s k.key -t 'keystrata known answer' -x kat.minisig`.
    const K_KEY: &str = "untrusted comment: minisign encrypted secret key
RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQNWifuJc/W1+EBjvgWPPVYCnwVImLfNc9MkFXHFWGDhXTMxKwAjLJiaLlB3PTX/yArRcW3qkfGo0UVxZKbXNTU18g9aj80bUAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
";
    const K_PUB: &str = "untrusted comment: minisign public key 6DFD5CE27EA2D540
RWRA1aJ+4lz9bSaLlB3PTX/yArRcW3qkfGo0UVxZKbXNTU18g9aj80bU
";
    const K_PUB_LINE: &str = "RWRA1aJ+4lz9bSaLlB3PTX/yArRcW3qkfGo0UVxZKbXNTU18g9aj80bU";
    const K_LEGACY_SIG: &str = "untrusted comment: signature from minisign secret key
RWRA1aJ+4lz9bWg0aMrTWdz+Npps437UcobqiRuu/z2doSu/CLfBecvsB3IqpkPpYx6yUv8e6jXZ5ik7iblAFnoxhP9zbQumgAY=
trusted comment: timestamp:1796137914\tfile:f
oUh+4x9fSPlCO/XiBPtlMONPvec7515Ak1bRxu8wyUKoVDi+vhVwF2MpuJBHIhquCmhAHO0KJgVh6trj2+FABw==
";
    const K_KAT_SIG: &str = "untrusted comment: signature from minisign secret key
RURA1aJ+4lz9bb6+ppucjdmendE9ZlgszmC4YL9bejHvStzhBEfdnpO9g0ab4lWVLg+moC5Z0CRWgCkWXhOb96aH79f0avJLeA4=
trusted comment: keystrata known answer
0tqpUYtq5lmTQpQo8nhY9xg93LJQMBxQH1tQKTUhBuppF3Dag3g6FS6wW5RounZ+oKDKinHrE+D6dFmvGK1fCw==
";
    const DATA: &[u8] = b"hello\n";

    // Made by minisign 0.11 with password "correct horse", under
    // `ulimit -v 49152` so that minisign halved its KDF limits down to
    // opslimit 2^20, memlimit 32 MiB (N = 2^15: cheap enough for a test).
    const S_KEY: &str = "untrusted comment: keystrata test key
RWRTY0IyQ22yO9Mg9NBsStErf9xtbezVrjv+v1s4MbDHAmw81G8AABAAAAAAAAAAAAIAAAAAoE666rbU0NL7Fo5fMEh56ytKoPGdayoT2Ntmu3kEDDPQiSz/KJtDgFLe1XNjYlJDtCh+by7HjEJvqsmxGnEke4pR9cig1nFpiWxedQB41dv0GvaiLLPuBZlrQgJUEYusBa2U8fIahog=
";
    const S_PUB: &str = "untrusted comment: minisign public key F07E998596B6D160
RWRg0baWhZl+8I3xbcg9nCT15hl0VumBVOwLkHSyTAOXl/XWoytCweof
";
    const S_PASSWORD: &[u8] = b"correct horse";

    fn kind<T: fmt::Debug>(r: Result<T>) -> ErrorKind {
        r.expect_err("expected an error").kind()
    }

    fn k_key() -> SecretKey {
        SecretKey::from_text(K_KEY, None).unwrap()
    }

    /// A secret-key file built the way minisign builds one, with chosen
    /// KDF limits (and checksum / public key, to build damaged ones).
    fn secret_key_text(
        seed: &[u8; 32],
        key_id: [u8; 8],
        password: Option<&[u8]>,
        opslimit: u64,
        memlimit: u64,
    ) -> String {
        let pk = SecretKey::from_seed(seed, key_id).unwrap().public_key;
        let mut raw = Vec::new();
        raw.extend_from_slice(b"Ed");
        raw.extend_from_slice(if password.is_some() { b"Sc" } else { &[0, 0] });
        raw.extend_from_slice(b"B2");
        raw.extend_from_slice(&[7u8; 32]);
        raw.extend_from_slice(&opslimit.to_le_bytes());
        raw.extend_from_slice(&memlimit.to_le_bytes());
        let mut sk = Vec::new();
        sk.extend_from_slice(&key_id);
        sk.extend_from_slice(seed);
        sk.extend_from_slice(&pk.key);
        let chk = checksum(&key_id, seed, &pk.key);
        sk.extend_from_slice(&chk[..]);
        if let Some(pw) = password {
            let (log_n, r, p) = pick_params(opslimit, memlimit);
            let params = scrypt::Params::new(log_n, r, p as u32, 64).unwrap();
            let mut stream = [0u8; KEYNUM_SK_LEN];
            scrypt::scrypt(pw, &[7u8; 32], &params, &mut stream).unwrap();
            for (b, s) in sk.iter_mut().zip(stream) {
                *b ^= s;
            }
        }
        raw.extend_from_slice(&sk);
        format!("untrusted comment: test\n{}\n", STANDARD.encode(raw))
    }

    /// The secret-key text with its decoded bytes changed by `f`.
    fn edit_secret_key(text: &str, f: impl FnOnce(&mut Vec<u8>)) -> String {
        let [comment, line] = take_lines::<2>(text, "t").unwrap();
        let mut raw = STANDARD.decode(line).unwrap();
        f(&mut raw);
        format!("{comment}\n{}\n", STANDARD.encode(raw))
    }

    /// The signature text with its decoded signature line (1) or global
    /// signature line (3) changed by `f`.
    fn edit_sig_line(text: &str, line_no: usize, f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut raw = STANDARD.decode(&lines[line_no]).unwrap();
        f(&mut raw);
        lines[line_no] = STANDARD.encode(raw);
        lines.join("\n") + "\n"
    }

    #[test]
    fn blake2b_256_is_the_unkeyed_32_byte_variant() {
        // RFC 7693 parameters with digest length 32 (not BLAKE2b-512 cut).
        let h = Blake2b::<U32>::digest(b"abc");
        assert_eq!(
            h[..],
            [
                0xbd, 0xdd, 0x81, 0x3c, 0x63, 0x42, 0x39, 0x72, 0x31, 0x71, 0xef, 0x3f, 0xee, 0x98,
                0x57, 0x9b, 0x94, 0x96, 0x4e, 0x3b, 0xb1, 0xcb, 0x3e, 0x42, 0x72, 0x62, 0xc8, 0xc0,
                0x68, 0xd5, 0x23, 0x19
            ]
        );
    }

    #[test]
    fn public_key_known_answer_and_key_id_byte_order() {
        let pk = PublicKey::from_text(K_PUB).unwrap();
        assert_eq!(pk.key_id, [0x40, 0xd5, 0xa2, 0x7e, 0xe2, 0x5c, 0xfd, 0x6d]);
        assert_eq!(pk.key_id_hex(), "6DFD5CE27EA2D540");
        assert_eq!(pk.to_text(), K_PUB);
        assert_eq!(pk.to_base64(), K_PUB_LINE);
        assert_eq!(pk.to_string(), K_PUB_LINE);
        assert_eq!(PublicKey::from_text(K_PUB_LINE).unwrap(), pk);
        assert_eq!(
            PublicKey::from_text(&format!("  {K_PUB_LINE}\n")).unwrap(),
            pk
        );
        assert_eq!(K_PUB_LINE.parse::<PublicKey>().unwrap(), pk);
        assert_eq!(
            PublicKey::from_text(&K_PUB.replace('\n', "\r\n")).unwrap(),
            pk
        );
        assert_eq!(key_id_hex([1, 0, 0, 0, 0, 0, 0, 0]), "0000000000000001");
    }

    #[test]
    fn public_key_round_trips() {
        for id in [[0u8; 8], [0xff; 8], [1, 2, 3, 4, 5, 6, 7, 8]] {
            let pk = PublicKey {
                key_id: id,
                key: [0x5a; 32],
            };
            assert_eq!(PublicKey::from_text(&pk.to_text()).unwrap(), pk);
            assert_eq!(PublicKey::from_text(&pk.to_base64()).unwrap(), pk);
        }
    }

    #[test]
    fn public_key_refuses_malformed_text() {
        // Every truncation of the file: Format.
        for n in 0..K_PUB.len() - 1 {
            assert_eq!(
                kind(PublicKey::from_text(&K_PUB[..n])),
                ErrorKind::Format,
                "prefix {n}"
            );
        }
        assert_eq!(
            kind(PublicKey::from_text(&K_PUB.replace("untrusted", "trusted"))),
            ErrorKind::Format
        );
        assert_eq!(
            kind(PublicKey::from_text(&format!("{K_PUB}extra\n"))),
            ErrorKind::Format
        );
        // Not the base64 of 42 bytes, or not standard base64.
        assert_eq!(kind(PublicKey::from_text("RWRA")), ErrorKind::Format);
        let last = &K_PUB_LINE[..K_PUB_LINE.len() - 1];
        for c in ["-", "_", "*", "="] {
            let bad = format!("{last}{c}");
            assert_eq!(kind(PublicKey::from_text(&bad)), ErrorKind::Format, "{c}");
        }
        // Another algorithm tag.
        let mut raw = STANDARD.decode(K_PUB_LINE).unwrap();
        raw[1] = b'D';
        assert_eq!(
            kind(PublicKey::from_text(&STANDARD.encode(&raw))),
            ErrorKind::Unsupported
        );
        // Oversized.
        let big = format!("untrusted comment: {}\n{K_PUB_LINE}\n", "x".repeat(5000));
        assert_eq!(kind(PublicKey::from_text(&big)), ErrorKind::Format);
    }

    #[test]
    fn unencrypted_secret_key_from_minisign() {
        let key = k_key();
        assert_eq!(*key.public_key(), PublicKey::from_text(K_PUB).unwrap());
        assert_eq!(key.key_id(), key.public_key().key_id);
        // A password is ignored for an unencrypted key.
        let again = SecretKey::from_text(K_KEY, Some(b"anything")).unwrap();
        assert_eq!(again.insecure_seed(), key.insecure_seed());
        // Debug shows the key ID and nothing of the seed.
        let debug = format!("{key:?}");
        assert!(debug.contains("6DFD5CE27EA2D540"), "{debug}");
        assert!(!debug.contains("seed"), "{debug}");
    }

    #[test]
    fn encrypted_secret_key_from_minisign() {
        let key = SecretKey::from_text(S_KEY, Some(S_PASSWORD)).unwrap();
        assert_eq!(*key.public_key(), PublicKey::from_text(S_PUB).unwrap());
        assert_eq!(key.public_key().key_id_hex(), "F07E998596B6D160");

        let wrong = SecretKey::from_text(S_KEY, Some(b"correct horse "));
        let err = wrong.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication);
        assert!(!err.to_string().contains("correct horse"));
        assert_eq!(
            kind(SecretKey::from_text(S_KEY, None)),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn secret_key_round_trip_with_chosen_kdf_limits() {
        let seed = [42u8; 32];
        let id = [9, 8, 7, 6, 5, 4, 3, 2];
        // Minimum limits (N = 2^10), and limits that pick p > 1.
        for (ops, mem) in [(32_768, 16 << 20), (1 << 17, 1 << 14)] {
            let text = secret_key_text(&seed, id, Some(b"pw"), ops, mem);
            let key = SecretKey::from_text(&text, Some(b"pw")).unwrap();
            assert_eq!(**key.insecure_seed(), seed);
            assert_eq!(key.key_id(), id);
            assert_eq!(
                kind(SecretKey::from_text(&text, Some(b"pW"))),
                ErrorKind::Authentication
            );
        }
        let plain = secret_key_text(&seed, id, None, 0, 0);
        let key = SecretKey::from_text(&plain, None).unwrap();
        assert_eq!(**key.insecure_seed(), seed);
    }

    #[test]
    fn pick_params_matches_libsodium() {
        // OPSLIMIT/MEMLIMIT_SENSITIVE: N = 2^20, r = 8, p = 1 (1 GiB).
        assert_eq!(pick_params(MAX_KDF_OPSLIMIT, MAX_KDF_MEMLIMIT), (20, 8, 1));
        // OPSLIMIT/MEMLIMIT_INTERACTIVE: N = 2^14.
        assert_eq!(pick_params(524_288, 16 << 20), (14, 8, 1));
        // What minisign writes after halving three times: N = 2^17.
        assert_eq!(pick_params(1 << 22, 1 << 27), (17, 8, 1));
        // opslimit is raised to 32768; the ops-bound branch.
        assert_eq!(pick_params(0, 1 << 30), (10, 8, 1));
        // The memory-bound branch with little memory: small N, larger p.
        assert_eq!(pick_params(1 << 20, 1 << 16), (6, 8, 512));
        assert_eq!(pick_params(1 << 17, 1 << 14), (4, 8, 256));
        assert_eq!(pick_params(MAX_KDF_OPSLIMIT, 0), (1, 8, 524_288));
    }

    #[test]
    fn hostile_kdf_limits_are_refused_before_any_work() {
        let seed = [1u8; 32];
        let id = [1; 8];
        let base = secret_key_text(&seed, id, None, 0, 0);
        for (ops, mem) in [
            (u64::MAX, u64::MAX),
            (MAX_KDF_OPSLIMIT, u64::MAX),
            (u64::MAX, MAX_KDF_MEMLIMIT),
            (MAX_KDF_OPSLIMIT + 1, MAX_KDF_MEMLIMIT),
            (MAX_KDF_OPSLIMIT, MAX_KDF_MEMLIMIT + 1),
            // The check is on the stored limits, not on a password being right.
            (1 << 62, 1 << 62),
        ] {
            let text = edit_secret_key(&base, |raw| {
                raw[2..4].copy_from_slice(b"Sc");
                raw[38..46].copy_from_slice(&u64::to_le_bytes(ops));
                raw[46..54].copy_from_slice(&u64::to_le_bytes(mem));
            });
            // Were scrypt run with these, it would allocate at least 1 GiB
            // (and abort for the larger ones) instead of returning.
            assert_eq!(
                kind(SecretKey::from_text(&text, Some(b"pw"))),
                ErrorKind::Policy,
                "ops {ops} mem {mem}"
            );
        }
    }

    #[test]
    fn damaged_secret_keys_are_refused() {
        let seed = [3u8; 32];
        let id = [4; 8];
        let plain = secret_key_text(&seed, id, None, 0, 0);
        // Unknown tags.
        for (at, kind_expected) in [
            (0, ErrorKind::Unsupported),
            (2, ErrorKind::Unsupported),
            (4, ErrorKind::Unsupported),
        ] {
            let text = edit_secret_key(&plain, |raw| raw[at] ^= 0x20);
            assert_eq!(kind(SecretKey::from_text(&text, None)), kind_expected);
        }
        // A non-zero wrong checksum of an unencrypted key: damaged.
        let text = edit_secret_key(&plain, |raw| raw[SECRET_KEY_LEN - 1] ^= 1);
        assert_eq!(kind(SecretKey::from_text(&text, None)), ErrorKind::Format);
        // A zero checksum (as `minisign -G -W` writes) is accepted...
        let zero = edit_secret_key(&plain, |raw| raw[SECRET_KEY_LEN - 32..].fill(0));
        assert!(SecretKey::from_text(&zero, None).is_ok());
        // ...but not with a public key that is not the seed's.
        let text = edit_secret_key(&zero, |raw| raw[54 + 8 + 32] ^= 1);
        assert_eq!(kind(SecretKey::from_text(&text, None)), ErrorKind::Format);
        // Every flipped byte of an unencrypted key's key material fails.
        for at in 54..SECRET_KEY_LEN {
            let text = edit_secret_key(&plain, |raw| raw[at] ^= 0x01);
            assert!(SecretKey::from_text(&text, None).is_err(), "byte {at}");
        }
        // Every truncation: Format.
        for n in 0..K_KEY.len() - 1 {
            assert_eq!(
                kind(SecretKey::from_text(&K_KEY[..n], None)),
                ErrorKind::Format,
                "prefix {n}"
            );
        }
        let big = format!("untrusted comment: {}\n", "x".repeat(MAX_KEY_TEXT_LEN));
        assert_eq!(kind(SecretKey::from_text(&big, None)), ErrorKind::Format);
        // An encrypted key whose ciphertext was changed: Authentication.
        let enc = edit_secret_key(S_KEY, |raw| raw[60] ^= 1);
        assert_eq!(
            kind(SecretKey::from_text(&enc, Some(S_PASSWORD))),
            ErrorKind::Authentication
        );
    }

    #[test]
    fn verifies_minisign_signatures() {
        let pk = PublicKey::from_text(K_PUB).unwrap();
        let v = verify(&pk, DATA, K_LEGACY_SIG).unwrap();
        assert!(!v.prehashed);
        assert_eq!(v.trusted_comment, "timestamp:1796137914\tfile:f");
        assert_eq!(v.key_id, pk.key_id);
        let v = verify(&pk, DATA, K_KAT_SIG).unwrap();
        assert!(v.prehashed);
        assert_eq!(v.trusted_comment, "keystrata known answer");
        assert_eq!(signature_key_id(K_KAT_SIG).unwrap(), pk.key_id);
        // CRLF line ends and no final line end.
        assert!(verify(&pk, DATA, &K_KAT_SIG.replace('\n', "\r\n")).is_ok());
        assert!(verify(&pk, DATA, K_KAT_SIG.trim_end()).is_ok());
        // Other data.
        for sig in [K_LEGACY_SIG, K_KAT_SIG] {
            assert_eq!(kind(verify(&pk, b"hello", sig)), ErrorKind::Authentication);
        }
    }

    #[test]
    fn signs_byte_for_byte_as_minisign() {
        let key = k_key();
        let ours = key.sign(DATA, "keystrata known answer", None).unwrap();
        assert_eq!(ours, K_KAT_SIG);
    }

    #[test]
    fn sign_verify_round_trip() {
        let key = SecretKey::from_seed(&[0x11; 32], [0xaa; 8]).unwrap();
        for (data, comment) in [
            (&b""[..], ""),
            (&b"x"[..], "tab\tand unicode é ✓"),
            (&[0u8; 100_000][..], "big file"),
        ] {
            let sig = sign(key.insecure_seed(), key.key_id(), data, comment, Some("u")).unwrap();
            assert!(sig.starts_with("untrusted comment: u\n"));
            let v = verify(key.public_key(), data, &sig).unwrap();
            assert_eq!(v.trusted_comment, comment);
            assert!(v.prehashed);
        }
        let max = "c".repeat(MAX_TRUSTED_COMMENT_LEN);
        let umax = "u".repeat(MAX_UNTRUSTED_COMMENT_LEN);
        let sig = key.sign(b"d", &max, Some(&umax)).unwrap();
        assert_eq!(
            verify(key.public_key(), b"d", &sig)
                .unwrap()
                .trusted_comment,
            max
        );
    }

    #[test]
    fn comments_minisign_cannot_carry_are_refused() {
        let key = k_key();
        for bad in [
            "a\nb", "a\rb", "nul\0", "bell\x07", "del\x7f", "c1\u{85}", "c1\u{9f}",
        ] {
            assert_eq!(
                kind(key.sign(DATA, bad, None)),
                ErrorKind::InvalidInput,
                "{bad:?}"
            );
            assert_eq!(
                kind(key.sign(DATA, "ok", Some(bad))),
                ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
        let long = "c".repeat(MAX_TRUSTED_COMMENT_LEN + 1);
        let err = key.sign(DATA, &long, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().len() < 100, "{err}");
        let ulong = "u".repeat(MAX_UNTRUSTED_COMMENT_LEN + 1);
        assert_eq!(
            kind(key.sign(DATA, "ok", Some(&ulong))),
            ErrorKind::InvalidInput
        );
        assert_eq!(MAX_TRUSTED_COMMENT_LEN, 8173);
        assert_eq!(MAX_UNTRUSTED_COMMENT_LEN, 1003);
    }

    #[test]
    fn every_flipped_signature_byte_fails() {
        let pk = PublicKey::from_text(K_PUB).unwrap();
        for sig in [K_KAT_SIG, K_LEGACY_SIG] {
            for line_no in [1, 3] {
                let len = if line_no == 1 { SIG_STRUCT_LEN } else { 64 };
                for at in 0..len {
                    for bit in [0x01u8, 0x20, 0x80] {
                        let bad = edit_sig_line(sig, line_no, |raw| raw[at] ^= bit);
                        let expected = match (line_no, at) {
                            // ED <-> Ed: read in the other mode, the
                            // signature does not verify.
                            (1, 1) if bit == 0x20 => ErrorKind::Authentication,
                            (1, 0..=1) => ErrorKind::Unsupported,
                            (1, 2..=9) => ErrorKind::UnknownKey,
                            _ => ErrorKind::Authentication,
                        };
                        assert_eq!(
                            kind(verify(&pk, DATA, &bad)),
                            expected,
                            "line {line_no} byte {at} bit {bit:#x}"
                        );
                    }
                }
            }
            // Every change to the text outside the untrusted comment fails.
            let start = sig.find('\n').unwrap() + 1;
            for at in start..sig.len() - 1 {
                let mut bytes = sig.as_bytes().to_vec();
                bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
                let bad = String::from_utf8(bytes).unwrap();
                assert!(verify(&pk, DATA, &bad).is_err(), "text byte {at}");
            }
            // The untrusted comment is not signed.
            let relabeled = sig.replacen("from minisign", "from someone", 1);
            assert!(verify(&pk, DATA, &relabeled).is_ok());
        }
    }

    #[test]
    fn every_flipped_public_key_byte_fails() {
        let raw = STANDARD.decode(K_PUB_LINE).unwrap();
        for at in 0..raw.len() {
            let mut bad = raw.clone();
            bad[at] ^= 0x04;
            let res = PublicKey::from_text(&STANDARD.encode(&bad))
                .and_then(|pk| verify(&pk, DATA, K_KAT_SIG));
            assert!(res.is_err(), "byte {at}");
        }
    }

    #[test]
    fn tampered_trusted_comment_fails() {
        let pk = PublicKey::from_text(K_PUB).unwrap();
        for forged in [
            "keystrata known answeR",
            "keystrata known answer ",
            "keystrata known",
            "",
            "timestamp:1796137914\tfile:f",
        ] {
            let bad = K_KAT_SIG.replace(
                "trusted comment: keystrata known answer",
                &format!("trusted comment: {forged}"),
            );
            assert_eq!(
                kind(verify(&pk, DATA, &bad)),
                ErrorKind::Authentication,
                "{forged:?}"
            );
        }
        // The global signature of another signature does not carry over.
        let legacy_global = K_LEGACY_SIG.lines().nth(3).unwrap();
        let mut lines: Vec<&str> = K_KAT_SIG.lines().collect();
        lines[2] = "trusted comment: timestamp:1796137914\tfile:f";
        lines[3] = legacy_global;
        assert_eq!(
            kind(verify(&pk, DATA, &lines.join("\n"))),
            ErrorKind::Authentication
        );
    }

    #[test]
    fn wrong_key_is_named() {
        let other = SecretKey::from_seed(&[5; 32], [0x10, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        let err = verify(other.public_key(), DATA, K_KAT_SIG).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownKey);
        assert!(err.message().contains("6DFD5CE27EA2D540"), "{err}");
        assert!(err.message().contains("0000000000000010"), "{err}");
        // Same key ID, another key: the signature does not verify.
        let imposter = PublicKey {
            key_id: PublicKey::from_text(K_PUB).unwrap().key_id,
            key: other.public_key().key,
        };
        assert_eq!(
            kind(verify(&imposter, DATA, K_KAT_SIG)),
            ErrorKind::Authentication
        );
    }

    #[test]
    fn malformed_signatures_are_format_errors() {
        let pk = PublicKey::from_text(K_PUB).unwrap();
        // Every truncation short of dropping the final line end: Format.
        for n in 0..K_KAT_SIG.len() - 1 {
            assert_eq!(
                kind(verify(&pk, DATA, &K_KAT_SIG[..n])),
                ErrorKind::Format,
                "prefix {n}"
            );
        }
        // Oversized, before parsing.
        let big = format!("{K_KAT_SIG}{}", "\n".repeat(MAX_SIGNATURE_TEXT_LEN));
        assert_eq!(kind(verify(&pk, DATA, &big)), ErrorKind::Format);
        // Extra lines.
        assert_eq!(
            kind(verify(&pk, DATA, &format!("{K_KAT_SIG}more\n"))),
            ErrorKind::Format
        );
        // Blank lines after the signature are fine.
        assert!(verify(&pk, DATA, &format!("{K_KAT_SIG}\n\n")).is_ok());
        // Missing prefixes.
        for (from, to) in [
            ("untrusted comment: ", "untrusted comment:"),
            ("trusted comment: ", "trusted comment:"),
        ] {
            let idx = if from.starts_with("trusted") {
                K_KAT_SIG.rfind(from).unwrap()
            } else {
                0
            };
            let bad = format!(
                "{}{}{}",
                &K_KAT_SIG[..idx],
                to,
                &K_KAT_SIG[idx + from.len()..]
            );
            assert_eq!(kind(verify(&pk, DATA, &bad)), ErrorKind::Format);
        }
        // A trusted comment over minisign's limit, or unprintable.
        for comment in [
            "c".repeat(MAX_TRUSTED_COMMENT_LEN + 1),
            "a\u{7f}b".to_owned(),
            "a\rb".to_owned(),
        ] {
            let bad = K_KAT_SIG.replace("keystrata known answer", &comment);
            let err = verify(&pk, DATA, &bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Format, "{comment:?}");
            assert!(err.message().len() < 200, "{err}");
        }
        // An untrusted comment over minisign's limit.
        let bad = K_KAT_SIG.replace(
            "signature from minisign secret key",
            &"u".repeat(MAX_UNTRUSTED_COMMENT_LEN + 1),
        );
        assert_eq!(kind(verify(&pk, DATA, &bad)), ErrorKind::Format);
        assert_eq!(kind(signature_key_id("")), ErrorKind::Format);
    }
}
