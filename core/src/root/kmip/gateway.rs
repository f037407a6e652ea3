//! Envelopes written by the S3 encryption gateway's own Cosmian KMS key
//! manager (kenchrcum/s3-encryption-gateway,
//! `internal/crypto/keymanager_cosmian_json.go`), read by [`KmipRoot`]
//! so that a gateway moving to keystrata keeps reading the objects it
//! wrote before.
//!
//! That key manager names itself `cosmian-kmip` (the provider hint the
//! gateway stores in `x-amz-meta-encryption-kms-provider`), sends the data
//! key to Cosmian's Encrypt with Block Cipher Mode `NISTKeyWrap` and
//! algorithm AES under the key of its configuration, and stores the
//! server's Data (an AES key wrap: 8 bytes longer than the key) as the
//! wrapped key, the key's Unique Identifier as the key ID. Reading one is
//! the same Decrypt: the key never leaves the server here either. Such an
//! envelope is bound to nothing but its key (the gateway sends no context),
//! which is why keystrata reads this form and never writes it: an
//! envelope it wraps is always its own, bound to its context.
//!
//! [`KmipRoot`]: super::KmipRoot

use super::client::Client;
use super::tags::{self, operation};
use super::ttlv::Item;
use crate::error::{Error, ErrorKind, Result};
use crate::key_manager::MAX_WRAPPED_KEY_LEN;
use crate::secret::SecretBytes;
use crate::wrapped_key::Envelope;

/// The provider hint of the gateway's Cosmian key manager.
pub const GATEWAY_COSMIAN_PROVIDER: &str = "cosmian-kmip";

/// The IV the gateway sends with every wrap and unwrap (RFC 3394's
/// default initial value).
const KEY_WRAP_IV: [u8; 8] = [0xA6; 8];

/// The longest key ID taken from such an envelope.
const MAX_KEY_ID_LEN: usize = 256;

/// Unwraps a `cosmian-kmip` envelope with the server's Decrypt, under the
/// key the envelope names. A wrapped key that is not an AES key wrap
/// (fewer than 24 bytes, or not a multiple of 8): `Format`; a key the
/// server does not have: `UnknownKey`; a wrap that does not check:
/// `Authentication`.
pub(super) fn unwrap(client: &Client, env: &Envelope) -> Result<SecretBytes> {
    if env.key_id.is_empty() || env.key_id.len() > MAX_KEY_ID_LEN {
        return Err(Error::invalid(format!(
            "a {GATEWAY_COSMIAN_PROVIDER} envelope names its key by a Unique Identifier of \
             1 to {MAX_KEY_ID_LEN} bytes, got {}",
            env.key_id.len()
        )));
    }
    let n = env.ciphertext.len();
    if n < 24 || !n.is_multiple_of(8) || n > MAX_WRAPPED_KEY_LEN + 8 {
        return Err(Error::format(format!(
            "a {GATEWAY_COSMIAN_PROVIDER} wrapped key is an AES key wrap (a multiple of 8 \
             bytes, 24 to {}), got {n} bytes",
            MAX_WRAPPED_KEY_LEN + 8
        )));
    }
    let req = vec![
        Item::text(tags::UNIQUE_IDENTIFIER, &env.key_id),
        Item::structure(
            tags::CRYPTOGRAPHIC_PARAMETERS,
            vec![
                Item::enumeration(tags::BLOCK_CIPHER_MODE, tags::MODE_COSMIAN_NIST_KEY_WRAP),
                Item::enumeration(tags::CRYPTOGRAPHIC_ALGORITHM, tags::ALGORITHM_AES),
            ],
        ),
        Item::bytes(tags::DATA, env.ciphertext.as_slice()),
        Item::bytes(tags::IV_COUNTER_NONCE, KEY_WRAP_IV.as_slice()),
    ];
    let mut payload = client.call(operation::DECRYPT, req)?;
    let pt = payload
        .child(tags::DATA)
        .and_then(Item::as_bytes)
        .map(|b| SecretBytes::new(b.to_vec()));
    zeroize::Zeroize::zeroize(&mut payload);
    let pt = pt.ok_or_else(|| Error::new(ErrorKind::Backend, "KMIP Decrypt returned no Data"))?;
    if pt.len() + 8 != n {
        return Err(Error::new(
            ErrorKind::Backend,
            format!(
                "KMIP Decrypt returned {} bytes for a {n}-byte key wrap; expected {}",
                pt.len(),
                n - 8
            ),
        ));
    }
    Ok(pt)
}
