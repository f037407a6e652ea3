//! Tink keysets: importing a cleartext keyset, and exporting the
//! encryption keys as one (insecurely: the result holds key material).

use std::sync::Arc;

use zeroize::Zeroizing;

use super::Keychain;
use crate::error::{Error, Result};
use crate::key::{now_unix, Key, KeyStatus, Purpose, Secret, Usage};
use crate::keyset::KeySet;
use crate::secret::KeyMaterial;
use crate::tink;

impl Keychain {
    /// A keychain from a Tink cleartext JSON keyset of 32-byte `AesGcmKey`
    /// keys with `TINK` output prefix. The keys keep their Tink key IDs and
    /// statuses, so Tink's ciphertexts keep decrypting; Tink's primary
    /// becomes the encryption primary; versions follow the keyset's order.
    /// A fresh derivation key is added (Tink keysets have none).
    ///
    /// Any other key type, key size or prefix gives `Unsupported`.
    pub fn import_tink_cleartext(json: &str) -> Result<Keychain> {
        let ks = tink::parse_keyset(json)?;
        let streaming = ks.keys.iter().any(|k| k.stream.is_some());
        let now = now_unix();
        let mut set = KeySet::empty();
        for (i, k) in ks.keys.iter().enumerate() {
            let secret = match (&k.material, k.status) {
                (Some(m), KeyStatus::Enabled | KeyStatus::Disabled) => {
                    Some(Arc::new(Secret::new(KeyMaterial(**m))))
                }
                _ => None,
            };
            set.keys.push(Key {
                algorithm: None,
                minisign_key_id: None,
                stream_format: k.stream,
                id: k.key_id,
                version: u32::try_from(i + 1).map_err(|_| Error::invalid("too many keys"))?,
                purpose: if streaming {
                    Purpose::Stream
                } else {
                    Purpose::Encrypt
                },
                status: k.status,
                created_at: now,
                secret,
                usage: Arc::new(Usage::unbound(0)),
                stored_usage: 0,
            });
        }
        set.rebuild_index()?;
        if streaming {
            // A streaming keyset: its keys are the stream keys; the
            // keychain gets fresh encryption and derivation primaries.
            set.primary_stream = Some(set.primary_position(ks.primary_key_id, Purpose::Stream)?);
            set.primary_encrypt = set.push_new(Purpose::Encrypt, Usage::unbound(0), 0)?;
        } else {
            set.primary_encrypt = set.primary_position(ks.primary_key_id, Purpose::Encrypt)?;
        }
        set.primary_derive = set.push_new(Purpose::Derive, Usage::unbound(0), 0)?;
        Ok(Keychain::from_set(set, None))
    }

    /// The encryption keys as a Tink cleartext JSON keyset (AES-256-GCM,
    /// TINK prefix), for Tink to decrypt keystrata's seal output and to act
    /// as the remote AEAD of its KmsEnvelopeAead. Destroyed keys are left
    /// out; derivation keys are not exported.
    ///
    /// The result holds key material in the clear: treat it as a secret.
    /// The name says so, as tink-go's `insecurecleartextkeyset` does.
    pub fn insecure_export_tink_cleartext(&self) -> Result<Zeroizing<String>> {
        let set = self.live()?;
        let n = set.keys.len();
        let mut out = Zeroizing::new(String::with_capacity(64 + n * 256));
        out.push_str("{\"primaryKeyId\":");
        out.push_str(&set.primary_id(Purpose::Encrypt).to_string());
        out.push_str(",\"key\":[");
        let mut first = true;
        for k in set.keys.iter().filter(|k| k.purpose == Purpose::Encrypt) {
            let Some(secret) = &k.secret else { continue };
            if !first {
                out.push(',');
            }
            first = false;
            tink::write_key_json(&mut out, k.id, k.status, &secret.material.0);
        }
        out.push_str("]}");
        Ok(out)
    }

    /// The keys of one purpose as a Tink cleartext JSON keyset:
    /// `Purpose::Encrypt` as [`insecure_export_tink_cleartext`] does,
    /// `Purpose::Stream` as `AesGcmHkdfStreamingKey` keys (RAW prefix) that
    /// Tink's streaming AEAD reads. Destroyed keys are left out. Other
    /// purposes have no Tink form: `Unsupported`; no key of the purpose:
    /// `UnknownKey`. The result holds key material in the clear.
    ///
    /// [`insecure_export_tink_cleartext`]: Keychain::insecure_export_tink_cleartext
    pub fn insecure_export_tink_cleartext_for(
        &self,
        purpose: Purpose,
    ) -> Result<Zeroizing<String>> {
        match purpose {
            Purpose::Encrypt => self.insecure_export_tink_cleartext(),
            Purpose::Stream => {
                let set = self.live()?;
                let primary = set.primary_stream_pos()?;
                let mut out = Zeroizing::new(String::with_capacity(64 + set.keys.len() * 320));
                out.push_str("{\"primaryKeyId\":");
                out.push_str(&set.keys[primary].id.to_string());
                out.push_str(",\"key\":[");
                let mut first = true;
                for k in set.keys.iter().filter(|k| k.purpose == Purpose::Stream) {
                    let (Some(secret), Some(format)) = (&k.secret, k.stream_format) else {
                        continue;
                    };
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    tink::write_stream_key_json(
                        &mut out,
                        k.id,
                        k.status,
                        &secret.material.0,
                        format,
                    );
                }
                out.push_str("]}");
                Ok(out)
            }
            other => Err(Error::unsupported(format!(
                "{other} keys have no Tink keyset form"
            ))),
        }
    }

    /// The old name of
    /// [`insecure_export_tink_cleartext`](Keychain::insecure_export_tink_cleartext).
    #[deprecated(
        note = "renamed to `insecure_export_tink_cleartext`: the result holds key material in the clear"
    )]
    pub fn export_tink_cleartext(&self) -> Result<Zeroizing<String>> {
        self.insecure_export_tink_cleartext()
    }
}
