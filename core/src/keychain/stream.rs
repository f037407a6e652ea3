//! Streaming encryption with the keychain's keys of purpose `stream`
//! (Tink's AES-GCM-HKDF streaming AEAD; the format is crate::stream's).

use std::io::{BufRead, Read, Seek, Write};

use zeroize::Zeroizing;

use super::Keychain;
use crate::error::{Error, Result};
use crate::events::{Counter, Event, EventKind};
use crate::key::{KeyInfo, KeyStatus, Purpose, Usage};
use crate::stream::{
    Candidate, DecryptingBufReader, DecryptingReader, Decryptor, EncryptingWriter, Encryptor,
    SeekableDecryptor, StreamFormat,
};

impl Keychain {
    /// Makes a new streaming key of `format` the streaming primary: what
    /// [`encrypting_writer`](Keychain::encrypting_writer) uses from now on.
    /// Older streaming keys stay enabled, so their streams keep decrypting.
    pub fn rotate_streaming(&self, format: StreamFormat) -> Result<KeyInfo> {
        let r = self.new_stream_key(format, true);
        self.track(r)
    }

    /// Adds an enabled streaming key that is not primary (roll it out to
    /// every reader, then [`promote`](Keychain::promote) it).
    pub fn add_stream_key(&self, format: StreamFormat) -> Result<KeyInfo> {
        let r = self.new_stream_key(format, false);
        self.track(r)
    }

    fn new_stream_key(&self, format: StreamFormat, primary: bool) -> Result<KeyInfo> {
        let (info, changed) = self.mutate(|set, bound| {
            let usage = if bound {
                Usage::bound()
            } else {
                Usage::unbound(0)
            };
            let pos = set.push_new_stream(format, usage)?;
            if primary {
                set.set_primary(Purpose::Stream, pos);
            }
            let k = &set.keys[pos];
            let mut events = vec![Event::key(
                EventKind::KeyCreated,
                k.id,
                k.version,
                Purpose::Stream,
            )];
            if primary {
                events.push(Event::key(
                    EventKind::KeyRotated,
                    k.id,
                    k.version,
                    Purpose::Stream,
                ));
            }
            Ok((Some(set.info(pos)), events))
        })?;
        if changed && primary {
            self.telemetry.count(Counter::RotationsStream);
        }
        info.ok_or_else(|| Error::internal("rotate_streaming produced no key"))
    }

    /// Encrypts what is written into `w` as one stream under the streaming
    /// primary, bound to `aad` (docs/STREAMING.md, FORMAT.md §13). Call
    /// `finish()` at the end; memory stays O(segment) for any size.
    /// `UnknownKey` if the keychain has no streaming key yet.
    pub fn encrypting_writer<W: Write>(&self, w: W, aad: &[u8]) -> Result<EncryptingWriter<W>> {
        let r = self.with_stream_primary(|key, format| EncryptingWriter::new(w, key, format, aad));
        self.track(r)
    }

    /// A push-style encryptor of one stream under the streaming primary,
    /// bound to `aad`, for callers that hand over bytes and take ciphertext
    /// into buffers they size (the C ABI): the stream of
    /// [`encrypting_writer`](Keychain::encrypting_writer), through
    /// [`Encryptor::update`] and [`Encryptor::finish`]. `UnknownKey` if the
    /// keychain has no streaming key yet.
    pub fn stream_encryptor(&self, aad: &[u8]) -> Result<Encryptor> {
        let r = self.with_stream_primary(|key, format| Encryptor::new(key, format, aad));
        self.track(r)
    }

    /// Runs `f` with the streaming primary's material and format.
    fn with_stream_primary<T>(
        &self,
        f: impl FnOnce(&[u8; crate::aead::KEY_LEN], StreamFormat) -> Result<T>,
    ) -> Result<T> {
        let set = self.live()?;
        let pos = set.primary_stream_pos()?;
        let (key, secret) = set.usable(set.keys[pos].id, Purpose::Stream)?;
        let format = key
            .stream_format
            .ok_or_else(|| Error::internal("a streaming key has no format"))?;
        f(&secret.material.0, format)
    }

    /// Decrypts a stream read from `r`, made under one of this keychain's
    /// enabled streaming keys with `aad`. The stream does not name its key:
    /// each enabled streaming key is tried on the first segment, primary
    /// first (as Tink does). Errors come from reading, as an `io::Error`
    /// holding the keystrata error ([`crate::stream::error_of`]).
    pub fn decrypting_reader<R: Read>(&self, r: R, aad: &[u8]) -> Result<DecryptingReader<R>> {
        let c = self.stream_candidates();
        let r = c.map(|c| DecryptingReader::new(r, c, aad));
        self.track(r)
    }

    /// [`decrypting_reader`](Keychain::decrypting_reader) for a source
    /// that holds its bytes in a buffer (`&[u8]`, `io::Cursor`, a
    /// `BufReader` of at least a segment and a byte): each segment the
    /// source's buffer holds whole is decrypted straight from it into the
    /// caller's buffer, without the copy a plain `Read` needs. The same
    /// rules and errors.
    pub fn decrypting_buf_reader<R: BufRead>(
        &self,
        r: R,
        aad: &[u8],
    ) -> Result<DecryptingBufReader<R>> {
        let c = self.stream_candidates();
        let r = c.map(|c| DecryptingBufReader::new(r, c, aad));
        self.track(r)
    }

    /// A push-style decryptor for a stream made under one of this
    /// keychain's enabled streaming keys with `aad`, for callers handed
    /// bytes rather than a reader (the C ABI): the rules of
    /// [`decrypting_reader`](Keychain::decrypting_reader), through
    /// [`Decryptor::update`] and [`Decryptor::finish`]. `UnknownKey` if the
    /// keychain has no enabled streaming key.
    pub fn stream_decryptor(&self, aad: &[u8]) -> Result<Decryptor> {
        let r = self
            .stream_candidates()
            .and_then(|c| Decryptor::new(c, aad));
        self.track(r)
    }

    /// Random access to a stream in a seekable source: any range of the
    /// plaintext, decrypting only the segments it touches. Finds the key
    /// now, on the first segment: `Authentication` if none opens it.
    pub fn seekable_decryptor<R: Read + Seek>(
        &self,
        r: R,
        aad: &[u8],
    ) -> Result<SeekableDecryptor<R>> {
        let r = self
            .stream_candidates()
            .and_then(|c| SeekableDecryptor::new(r, c, aad));
        self.track(r)
    }

    /// The enabled streaming keys, primary first, then newest first.
    fn stream_candidates(&self) -> Result<Vec<Candidate>> {
        let set = self.live()?;
        let mut order: Vec<usize> = set.primary_stream.into_iter().collect();
        order.extend(
            (0..set.keys.len())
                .rev()
                .filter(|p| Some(*p) != set.primary_stream),
        );
        let mut out = Vec::new();
        for pos in order {
            let k = &set.keys[pos];
            let (Purpose::Stream, KeyStatus::Enabled, Some(format), Some(secret)) =
                (k.purpose, k.status, k.stream_format, &k.secret)
            else {
                continue;
            };
            out.push(Candidate {
                key: Zeroizing::new(secret.material.0),
                format,
                key_id: k.id,
            });
        }
        Ok(out)
    }
}
