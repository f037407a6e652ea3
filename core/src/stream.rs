//! Streaming encryption: Tink's AES-GCM-HKDF streaming AEAD, byte for byte
//! (`AES256_GCM_HKDF_4KB` and `AES256_GCM_HKDF_1MB`), so Tink reads our
//! streams and we read Tink's. docs/FORMAT.md §13 has the layout:
//!
//! ```text
//! stream  = header ‖ segment_0 ‖ segment_1 ‖ … ‖ segment_last
//! header  = 0x28 ‖ salt (32) ‖ nonce_prefix (7)                       (40 bytes)
//! key     = HKDF-SHA256(ikm = the stream key, salt = salt, info = aad, 32 bytes)
//! nonce_i = nonce_prefix ‖ BE32(i) ‖ (0x01 for the last segment, else 0x00)
//! seg_i   = AES-256-GCM(key, nonce_i, plaintext_i, no aad) ‖ tag (16)
//! ```
//!
//! Every ciphertext segment is `segment_size` bytes (4096 or 1 MiB) but the
//! first, which is `segment_size − 40`, and the last, which is shorter or
//! equal and never empty (an empty stream is one empty last segment). The
//! last-segment flag in the nonce makes truncation detectable: a stream cut
//! at a segment boundary fails; segments reordered or repeated fail; no
//! plaintext of a segment is returned before its tag checks.
//!
//! Memory stays O(segment) whatever the stream's size.

use std::io::{self, Read, Seek, SeekFrom, Write};

use zeroize::Zeroizing;

use crate::aead::{fill_random, AeadEngine, Aes256Gcm, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::error::{Error, ErrorKind, Result};

/// The header's length: 1 + salt (32) + nonce prefix (7).
pub const HEADER_LEN: usize = 1 + KEY_LEN + NONCE_PREFIX_LEN;
const NONCE_PREFIX_LEN: usize = 7;

/// A streaming format: Tink's AES-GCM-HKDF with a 32-byte derived key and
/// HKDF-SHA256, and one ciphertext segment size.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamFormat {
    /// Tink's `AES256_GCM_HKDF_4KB`: 4096-byte ciphertext segments.
    AesGcmHkdf4Kb,
    /// Tink's `AES256_GCM_HKDF_1MB`: 1 MiB ciphertext segments (the
    /// default; the better choice for anything but small records).
    AesGcmHkdf1Mb,
}

impl StreamFormat {
    /// Every format, in numeric order.
    pub const ALL: [StreamFormat; 2] = [StreamFormat::AesGcmHkdf4Kb, StreamFormat::AesGcmHkdf1Mb];

    /// The ciphertext segment size, in bytes.
    pub const fn segment_size(self) -> usize {
        match self {
            StreamFormat::AesGcmHkdf4Kb => 4096,
            StreamFormat::AesGcmHkdf1Mb => 1 << 20,
        }
    }

    /// The format of a Tink key with this ciphertext segment size.
    pub fn from_segment_size(n: u64) -> Option<StreamFormat> {
        StreamFormat::ALL
            .into_iter()
            .find(|f| f.segment_size() as u64 == n)
    }

    /// The name in the keychain JSON and every binding:
    /// `"aes256-gcm-hkdf-4kb"`, `"aes256-gcm-hkdf-1mb"`.
    pub const fn name(self) -> &'static str {
        match self {
            StreamFormat::AesGcmHkdf4Kb => "aes256-gcm-hkdf-4kb",
            StreamFormat::AesGcmHkdf1Mb => "aes256-gcm-hkdf-1mb",
        }
    }

    /// The format named `name`.
    pub fn from_name(name: &str) -> Option<StreamFormat> {
        StreamFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The stable number (1: 4 KB, 2: 1 MB), shared by every binding.
    pub const fn code(self) -> u32 {
        match self {
            StreamFormat::AesGcmHkdf4Kb => 1,
            StreamFormat::AesGcmHkdf1Mb => 2,
        }
    }

    /// The format with the given stable number.
    pub const fn from_code(code: u32) -> Option<StreamFormat> {
        match code {
            1 => Some(StreamFormat::AesGcmHkdf4Kb),
            2 => Some(StreamFormat::AesGcmHkdf1Mb),
            _ => None,
        }
    }

    /// Plaintext bytes segment `i` carries when full.
    fn plaintext_len(self, i: u64) -> usize {
        let full = self.segment_size() - TAG_LEN;
        if i == 0 {
            full - HEADER_LEN
        } else {
            full
        }
    }

    /// The plaintext length of a stream of `ciphertext_len` bytes, and its
    /// number of segments; `Format` if no stream has that length.
    pub fn plaintext_len_of(self, ciphertext_len: u64) -> Result<u64> {
        Ok(self.layout(ciphertext_len)?.1)
    }

    fn layout(self, ct_len: u64) -> Result<(u64, u64)> {
        let seg = self.segment_size() as u64;
        if ct_len < (HEADER_LEN + TAG_LEN) as u64 {
            return Err(Error::format(
                "a stream is at least 56 bytes (header and one tag)",
            ));
        }
        let segments = ct_len.div_ceil(seg);
        let last_len =
            ct_len - (segments - 1) * seg - if segments == 1 { HEADER_LEN as u64 } else { 0 };
        if last_len < TAG_LEN as u64 || segments > u64::from(u32::MAX) {
            return Err(Error::format("the stream's length is not a stream's"));
        }
        Ok((
            segments,
            ct_len - HEADER_LEN as u64 - segments * TAG_LEN as u64,
        ))
    }
}

/// The per-stream cipher: the segment key and nonce prefix from a header.
struct Segments {
    cipher: Aes256Gcm,
    prefix: [u8; NONCE_PREFIX_LEN],
    format: StreamFormat,
}

impl Segments {
    fn new(
        key: &[u8; KEY_LEN],
        format: StreamFormat,
        header: &[u8; HEADER_LEN],
        aad: &[u8],
    ) -> Result<Segments> {
        if usize::from(header[0]) != HEADER_LEN {
            return Err(Error::format(format!(
                "a stream header's first byte is its length, {HEADER_LEN}, got {}",
                header[0]
            )));
        }
        let salt = &header[1..1 + KEY_LEN];
        let derived = crate::derive::hkdf_sha256(Some(salt), key, aad, KEY_LEN)?;
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        k.copy_from_slice(derived.expose_secret());
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        prefix.copy_from_slice(&header[1 + KEY_LEN..]);
        Ok(Segments {
            cipher: Aes256Gcm::new(&k),
            prefix,
            format,
        })
    }

    fn nonce(&self, i: u64, last: bool) -> Result<[u8; NONCE_LEN]> {
        let i = u32::try_from(i)
            .map_err(|_| Error::policy("a stream has at most 2^32 - 1 segments"))?;
        let mut n = [0u8; NONCE_LEN];
        n[..NONCE_PREFIX_LEN].copy_from_slice(&self.prefix);
        n[NONCE_PREFIX_LEN..NONCE_PREFIX_LEN + 4].copy_from_slice(&i.to_be_bytes());
        n[NONCE_LEN - 1] = u8::from(last);
        Ok(n)
    }

    fn open(&self, i: u64, last: bool, ct: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if ct.len() < TAG_LEN {
            return Err(Error::authentication());
        }
        out.resize(ct.len() - TAG_LEN, 0);
        let r = self.cipher.open_into(&self.nonce(i, last)?, b"", ct, out);
        if r.is_err() {
            out.clear();
        }
        r
    }
}

/// A fresh header: the salt and nonce prefix are random.
fn new_header() -> Result<[u8; HEADER_LEN]> {
    let mut h = [0u8; HEADER_LEN];
    h[0] = HEADER_LEN as u8;
    fill_random(&mut h[1..])?;
    Ok(h)
}

fn io_err(e: Error) -> io::Error {
    let kind = match e.kind() {
        ErrorKind::Io => io::ErrorKind::Other,
        ErrorKind::Authentication | ErrorKind::Format => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// The keystrata error inside an `io::Error` from a stream adapter, or an
/// `Io` error for one from the underlying reader or writer.
pub fn error_of(e: io::Error) -> Error {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(k) => Error::new(k.kind(), k.message().to_owned()),
        None => Error::io("stream", e),
    }
}

/// Encrypts what is written to it into `W` as one stream. Call
/// [`finish`](EncryptingWriter::finish) at the end: it writes the last
/// segment, without which the stream does not decrypt (a stream dropped
/// unfinished reads as truncated, never as complete).
pub struct EncryptingWriter<W: Write> {
    w: W,
    seg: Segments,
    index: u64,
    buf: Zeroizing<Vec<u8>>,
    out: Vec<u8>,
    header_written: bool,
    header: [u8; HEADER_LEN],
}

impl<W: Write> EncryptingWriter<W> {
    /// A writer over `w` with the stream key `key` (32 bytes) and `aad`.
    pub(crate) fn new(
        w: W,
        key: &[u8; KEY_LEN],
        format: StreamFormat,
        aad: &[u8],
    ) -> Result<EncryptingWriter<W>> {
        let header = new_header()?;
        let seg = Segments::new(key, format, &header, aad)?;
        Ok(EncryptingWriter {
            w,
            seg,
            index: 0,
            buf: Zeroizing::new(Vec::with_capacity(format.plaintext_len(1))),
            out: Vec::with_capacity(format.segment_size()),
            header_written: false,
            header,
        })
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.w.write_all(&self.header)?;
            self.header_written = true;
        }
        Ok(())
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        self.write_header()?;
        let nonce = self.seg.nonce(self.index, last).map_err(io_err)?;
        self.out.resize(self.buf.len() + TAG_LEN, 0);
        self.seg
            .cipher
            .seal_into(&nonce, b"", &self.buf, &mut self.out)
            .map_err(io_err)?;
        self.w.write_all(&self.out)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// The number of bytes a `write` of `n` bytes passes to the inner
    /// writer: the segments it completes (a full segment is held back until
    /// more data shows it is not the last), and the header with the first.
    /// `None` if that number does not fit in a `usize`.
    pub fn pending_output_len(&self, n: usize) -> Option<usize> {
        let limit = self.seg.format.plaintext_len(self.index);
        let total = self.buf.len().checked_add(n)?;
        if n == 0 || total <= limit {
            return Some(0);
        }
        // The current segment is sealed, then every full one after it that
        // more data follows.
        let full = self.seg.format.plaintext_len(1);
        let more = (total - limit - 1) / full;
        let header = if self.header_written { 0 } else { HEADER_LEN };
        (limit + TAG_LEN + header).checked_add(more.checked_mul(full + TAG_LEN)?)
    }

    /// The number of bytes [`finish`](EncryptingWriter::finish) passes to
    /// the inner writer: the last segment, and the header if no segment
    /// was written yet.
    pub fn finish_output_len(&self) -> usize {
        let header = if self.header_written { 0 } else { HEADER_LEN };
        header + self.buf.len() + TAG_LEN
    }

    /// The inner writer (to drain what was written so far, as the C ABI
    /// does with a `Vec<u8>`).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    /// Writes the last segment and returns the inner writer (flushed).
    pub fn finish(mut self) -> Result<W> {
        self.seal(true).map_err(error_of)?;
        self.w.flush().map_err(|e| Error::io("stream", e))?;
        Ok(self.w)
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let limit = self.seg.format.plaintext_len(self.index);
            if self.buf.len() == limit {
                // More data after a full segment: it was not the last.
                self.seal(false)?;
                continue;
            }
            let n = rest.len().min(limit - self.buf.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// A candidate key for a stream being read: the keychain's enabled stream
/// keys, tried in order on the first segment (as Tink does: the stream
/// does not name its key).
pub(crate) struct Candidate {
    pub(crate) key: Zeroizing<[u8; KEY_LEN]>,
    pub(crate) format: StreamFormat,
    pub(crate) key_id: u32,
}

/// Reads `buf.len()` more bytes into `buf` from `r` unless it ends first;
/// returns whether it ended.
fn fill(r: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let start = buf.len();
    if want <= start {
        return Ok(false);
    }
    buf.resize(want, 0);
    let mut got = start;
    while got < want {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                buf.truncate(got);
                return Ok(true);
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(got);
                return Err(e);
            }
        }
    }
    Ok(false)
}

/// Decrypts a stream read from `R`. Reading returns plaintext only after
/// its segment's tag checked; a truncated, reordered or tampered stream, a
/// wrong key or wrong aad gives an `io::Error` of kind `InvalidData`
/// holding a keystrata `Authentication` (or `Format`) error
/// ([`error_of`] gets it back).
pub struct DecryptingReader<R: Read> {
    r: R,
    aad: Vec<u8>,
    candidates: Vec<Candidate>,
    seg: Option<Segments>,
    key_id: Option<u32>,
    index: u64,
    pending: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    done: bool,
    failed: Option<(ErrorKind, String)>,
}

impl<R: Read> DecryptingReader<R> {
    pub(crate) fn new(r: R, candidates: Vec<Candidate>, aad: &[u8]) -> DecryptingReader<R> {
        DecryptingReader {
            r,
            aad: aad.to_vec(),
            candidates,
            seg: None,
            key_id: None,
            index: 0,
            pending: Vec::new(),
            plain: Zeroizing::new(Vec::new()),
            pos: 0,
            done: false,
            failed: None,
        }
    }

    /// The key the stream was found to be under, once the first segment
    /// was read.
    pub fn key_id(&self) -> Option<u32> {
        self.key_id
    }

    /// Returns the inner reader.
    pub fn into_inner(self) -> R {
        self.r
    }

    fn fail(&mut self, e: Error) -> io::Error {
        self.failed = Some((e.kind(), e.message().to_owned()));
        self.plain.clear();
        io_err(e)
    }

    /// Reads the header and finds the key whose first segment opens.
    fn start(&mut self) -> Result<()> {
        let ended =
            fill(&mut self.r, &mut self.pending, HEADER_LEN).map_err(|e| Error::io("stream", e))?;
        if ended {
            return Err(Error::format("the stream is shorter than its header"));
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&self.pending[..HEADER_LEN]);
        self.pending.drain(..HEADER_LEN);
        if usize::from(header[0]) != HEADER_LEN {
            return Err(Error::format(
                "not a keystrata/Tink AES-GCM-HKDF stream (header length byte)",
            ));
        }
        let candidates = std::mem::take(&mut self.candidates);
        if candidates.is_empty() {
            return Err(Error::new(
                ErrorKind::UnknownKey,
                "this keychain has no enabled stream key",
            ));
        }
        for c in &candidates {
            let seg = Segments::new(&c.key, c.format, &header, &self.aad)?;
            let want = c.format.plaintext_len(0) + TAG_LEN;
            let ended = fill(&mut self.r, &mut self.pending, want + 1)
                .map_err(|e| Error::io("stream", e))?;
            let last = ended && self.pending.len() <= want;
            let len = self.pending.len().min(want);
            let mut plain = Zeroizing::new(Vec::new());
            if seg.open(0, last, &self.pending[..len], &mut plain).is_ok() {
                self.pending.drain(..len);
                self.plain = plain;
                self.pos = 0;
                self.index = 1;
                self.done = last;
                self.key_id = Some(c.key_id);
                self.seg = Some(seg);
                return Ok(());
            }
        }
        Err(Error::authentication())
    }

    fn next_segment(&mut self) -> Result<()> {
        let Some(seg) = &self.seg else {
            return self.start();
        };
        let want = seg.format.segment_size();
        let ended =
            fill(&mut self.r, &mut self.pending, want + 1).map_err(|e| Error::io("stream", e))?;
        let last = ended && self.pending.len() <= want;
        let len = self.pending.len().min(want);
        let mut plain = std::mem::take(&mut self.plain);
        seg.open(self.index, last, &self.pending[..len], &mut plain)?;
        self.pending.drain(..len);
        self.plain = plain;
        self.pos = 0;
        self.index += 1;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, msg)) = &self.failed {
            return Err(io_err(Error::new(*kind, msg.clone())));
        }
        loop {
            if self.pos < self.plain.len() {
                let n = out.len().min(self.plain.len() - self.pos);
                out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            if let Err(e) = self.next_segment() {
                return Err(self.fail(e));
            }
        }
    }
}

/// Decrypts a stream pushed to it a piece at a time, for callers that are
/// handed bytes rather than a reader (the C ABI, event loops).
/// [`update`](Decryptor::update) returns the plaintext of every segment
/// that is complete and known not to be the last (more bytes follow it);
/// [`finish`](Decryptor::finish) the last segment. The rules are
/// [`DecryptingReader`]'s: the first segment tries every candidate key,
/// no plaintext of a segment is returned before its tag checks, a stream
/// cut short (even at a segment boundary) fails with `Authentication`, one
/// shorter than its header with `Format`. After an error every later call
/// returns the same error; after `finish`, every call fails with
/// `Unavailable`.
pub struct Decryptor {
    aad: Vec<u8>,
    candidates: Vec<Candidate>,
    header: Option<[u8; HEADER_LEN]>,
    seg: Option<Segments>,
    key_id: Option<u32>,
    index: u64,
    /// Bytes received and not yet decrypted: the header until it is
    /// complete, then ciphertext.
    pending: Vec<u8>,
    failed: Option<(ErrorKind, String)>,
    finished: bool,
}

impl Decryptor {
    pub(crate) fn new(candidates: Vec<Candidate>, aad: &[u8]) -> Result<Decryptor> {
        if candidates.is_empty() {
            return Err(Error::new(
                ErrorKind::UnknownKey,
                "this keychain has no enabled stream key",
            ));
        }
        Ok(Decryptor {
            aad: aad.to_vec(),
            candidates,
            header: None,
            seg: None,
            key_id: None,
            index: 0,
            pending: Vec::new(),
            failed: None,
            finished: false,
        })
    }

    /// The key the stream was found to be under, once its first segment
    /// opened.
    pub fn key_id(&self) -> Option<u32> {
        self.key_id
    }

    /// The bytes received and not yet decrypted.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// The format of the segments to come, if known: the key was found, or
    /// every key still tried has the same format.
    fn format(&self) -> Option<StreamFormat> {
        if let Some(seg) = &self.seg {
            return Some(seg.format);
        }
        let f = self.candidates.first()?.format;
        self.candidates.iter().all(|c| c.format == f).then_some(f)
    }

    /// Ciphertext bytes of segment `i` under `format`.
    fn segment_len(format: StreamFormat, i: u64) -> usize {
        format.plaintext_len(i) + TAG_LEN
    }

    /// The plaintext length an [`update`](Decryptor::update) with `n` more
    /// bytes returns if it succeeds, when that is known (see
    /// [`update`](Decryptor::update)): `None` while the key is not found and
    /// the keys still tried differ in format, or if the number does not
    /// fit in a `usize`.
    pub fn update_output_len(&self, n: usize) -> Option<usize> {
        let format = self.format()?;
        let mut avail = if self.header.is_some() {
            self.pending.len().checked_add(n)?
        } else {
            (self.pending.len().checked_add(n)?).saturating_sub(HEADER_LEN)
        };
        let mut total = 0;
        let mut i = self.index;
        if i == 0 {
            let want = Self::segment_len(format, 0);
            if avail <= want {
                return Some(0);
            }
            total += want - TAG_LEN;
            avail -= want;
            i = 1;
        }
        let want = Self::segment_len(format, i);
        if avail > want {
            // Every segment that more bytes follow.
            let k = (avail - 1) / want;
            total = total.checked_add(k.checked_mul(want - TAG_LEN)?)?;
        }
        Some(total)
    }

    /// The plaintext length [`finish`](Decryptor::finish) returns if it
    /// succeeds.
    pub fn finish_output_len(&self) -> usize {
        if self.header.is_none() {
            return 0;
        }
        self.pending.len().saturating_sub(TAG_LEN)
    }

    /// The most any update with `n` more bytes can return:
    /// [`update_output_len`](Decryptor::update_output_len) when known, else
    /// `n` plus what is buffered.
    pub fn update_output_bound(&self, n: usize) -> usize {
        self.update_output_len(n)
            .unwrap_or_else(|| n.saturating_add(self.pending.len()))
    }

    /// `Ok` while the decryptor takes more calls; otherwise the error every
    /// call returns (the first failure's, or `Unavailable` after `finish`).
    pub fn check(&self) -> Result<()> {
        if let Some((kind, msg)) = &self.failed {
            return Err(Error::new(*kind, msg.clone()));
        }
        if self.finished {
            return Err(Error::unavailable("the stream decryptor has finished"));
        }
        Ok(())
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some((e.kind(), e.message().to_owned()));
        self.pending = Vec::new();
        self.candidates.clear();
        e
    }

    /// Pushes `input`; writes the plaintext of every segment now complete
    /// and known not to be the last to the start of `out`, and returns its
    /// length. `out` must hold
    /// [`update_output_bound`](Decryptor::update_output_bound)`(input.len())`
    /// bytes (`InvalidInput` otherwise, and nothing is consumed). On
    /// failure nothing is returned: the bytes of `out` this call wrote are
    /// wiped.
    pub fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        self.check()?;
        let need = self.update_output_bound(input.len());
        if out.len() < need {
            return Err(Error::invalid(format!(
                "the output holds {}; {need} bytes are needed",
                out.len()
            )));
        }
        let mut written = 0;
        match self.push(input, out, &mut written) {
            Ok(()) => Ok(written),
            Err(e) => {
                zeroize::Zeroize::zeroize(&mut out[..written]);
                Err(self.fail(e))
            }
        }
    }

    /// Moves up to `want - pending.len()` bytes of `input` into `pending`.
    fn top_up(&mut self, input: &mut &[u8], want: usize) {
        let n = want.saturating_sub(self.pending.len()).min(input.len());
        self.pending.extend_from_slice(&input[..n]);
        *input = &input[n..];
    }

    fn push(&mut self, mut input: &[u8], out: &mut [u8], written: &mut usize) -> Result<()> {
        if self.header.is_none() {
            self.top_up(&mut input, HEADER_LEN);
            if self.pending.len() < HEADER_LEN {
                return Ok(());
            }
            let mut header = [0u8; HEADER_LEN];
            header.copy_from_slice(&self.pending);
            if usize::from(header[0]) != HEADER_LEN {
                return Err(Error::format(
                    "not a keystrata/Tink AES-GCM-HKDF stream (header length byte)",
                ));
            }
            self.pending.clear();
            self.header = Some(header);
        }
        if self.seg.is_none() && !self.find_key(&mut input, out, written)? {
            return Ok(());
        }
        loop {
            let Some(seg) = &self.seg else {
                return Err(Error::internal("no stream key after the first segment"));
            };
            let want = Self::segment_len(seg.format, self.index);
            // A segment is known not to be the last once a byte follows it.
            if self.pending.is_empty() {
                if input.len() <= want {
                    self.pending.extend_from_slice(input);
                    return Ok(());
                }
                let (ct, rest) = input.split_at(want);
                open_at(seg, self.index, false, ct, out, written)?;
                input = rest;
            } else {
                self.top_up(&mut input, want);
                if self.pending.len() < want || (self.pending.len() == want && input.is_empty()) {
                    return Ok(());
                }
                let Some(seg) = &self.seg else {
                    return Err(Error::internal("no stream key"));
                };
                open_at(seg, self.index, false, &self.pending[..want], out, written)?;
                self.pending.drain(..want);
            }
            self.index += 1;
        }
    }

    /// Decrypts segment `self.index` from `ct` into `out` at `*written`.
    fn open_segment(
        &mut self,
        ct: &[u8],
        last: bool,
        out: &mut [u8],
        written: &mut usize,
    ) -> Result<()> {
        let seg = self
            .seg
            .as_ref()
            .ok_or_else(|| Error::internal("no stream key"))?;
        open_at(seg, self.index, last, ct, out, written)?;
        self.index += 1;
        Ok(())
    }

    /// Tries the candidate keys on the first segment, for each key as soon
    /// as its whole first segment and one more byte are here. True once a
    /// key opened it (its plaintext written).
    fn find_key(&mut self, input: &mut &[u8], out: &mut [u8], written: &mut usize) -> Result<bool> {
        let header = self
            .header
            .ok_or_else(|| Error::internal("no stream header"))?;
        let most = self
            .candidates
            .iter()
            .map(|c| Self::segment_len(c.format, 0))
            .max()
            .unwrap_or(0);
        self.top_up(input, most);
        let mut i = 0;
        while i < self.candidates.len() {
            let c = &self.candidates[i];
            let want = Self::segment_len(c.format, 0);
            let avail = self.pending.len();
            if avail < want || (avail == want && input.is_empty()) {
                i += 1;
                continue;
            }
            let seg = Segments::new(&c.key, c.format, &header, &self.aad)?;
            if open_at(&seg, 0, false, &self.pending[..want], out, written).is_ok() {
                self.key_id = Some(c.key_id);
                self.seg = Some(seg);
                self.index = 1;
                self.candidates.clear();
                self.pending.drain(..want);
                return Ok(true);
            }
            // Its first segment is complete and does not open: not the key.
            self.candidates.remove(i);
        }
        if self.candidates.is_empty() {
            return Err(Error::authentication());
        }
        Ok(false)
    }

    /// Ends the stream: writes the last segment's plaintext to the start
    /// of `out`, which must hold
    /// [`finish_output_len`](Decryptor::finish_output_len) bytes, and
    /// returns its length. `Authentication` for a stream cut short,
    /// `Format` for one shorter than its header.
    pub fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        self.check()?;
        let need = self.finish_output_len();
        if out.len() < need {
            return Err(Error::invalid(format!(
                "the output holds {}; {need} bytes are needed",
                out.len()
            )));
        }
        let mut written = 0;
        match self.finish_inner(out, &mut written) {
            Ok(()) => {
                self.finished = true;
                self.pending = Vec::new();
                Ok(written)
            }
            Err(e) => {
                zeroize::Zeroize::zeroize(&mut out[..written]);
                Err(self.fail(e))
            }
        }
    }

    fn finish_inner(&mut self, out: &mut [u8], written: &mut usize) -> Result<()> {
        let Some(header) = self.header else {
            return Err(Error::format("the stream is shorter than its header"));
        };
        if self.seg.is_some() {
            let ct = std::mem::take(&mut self.pending);
            return self.open_segment(&ct, true, out, written);
        }
        for c in &self.candidates {
            if self.pending.len() > Self::segment_len(c.format, 0) {
                continue;
            }
            let seg = Segments::new(&c.key, c.format, &header, &self.aad)?;
            if open_at(&seg, 0, true, &self.pending, out, written).is_ok() {
                self.key_id = Some(c.key_id);
                self.seg = Some(seg);
                self.index = 1;
                return Ok(());
            }
        }
        Err(Error::authentication())
    }
}

/// Opens segment `i` from `ct` into `out` at `*written`, and advances
/// `*written`; `out` holds no plaintext of it on failure.
fn open_at(
    seg: &Segments,
    i: u64,
    last: bool,
    ct: &[u8],
    out: &mut [u8],
    written: &mut usize,
) -> Result<()> {
    if ct.len() < TAG_LEN {
        return Err(Error::authentication());
    }
    let n = ct.len() - TAG_LEN;
    let dst = out
        .get_mut(*written..*written + n)
        .ok_or_else(|| Error::internal("stream output too small"))?;
    seg.cipher.open_into(&seg.nonce(i, last)?, b"", ct, dst)?;
    *written += n;
    Ok(())
}

/// Random access to a stream in a seekable source: reads any range of the
/// plaintext, decrypting only the segments it touches (each checked).
/// Implements `Read` and `Seek` over plaintext positions.
pub struct SeekableDecryptor<R: Read + Seek> {
    r: R,
    seg: Segments,
    key_id: u32,
    ct_len: u64,
    segments: u64,
    pt_len: u64,
    pos: u64,
    cached: Option<(u64, Zeroizing<Vec<u8>>)>,
    ct: Vec<u8>,
}

impl<R: Read + Seek> SeekableDecryptor<R> {
    pub(crate) fn new(
        mut r: R,
        candidates: Vec<Candidate>,
        aad: &[u8],
    ) -> Result<SeekableDecryptor<R>> {
        let io = |e| Error::io("stream", e);
        let ct_len = r.seek(SeekFrom::End(0)).map_err(io)?;
        r.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut header = [0u8; HEADER_LEN];
        r.read_exact(&mut header).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                Error::format("the stream is shorter than its header")
            } else {
                Error::io("stream", e)
            }
        })?;
        if usize::from(header[0]) != HEADER_LEN {
            return Err(Error::format(
                "not a keystrata/Tink AES-GCM-HKDF stream (header length byte)",
            ));
        }
        if candidates.is_empty() {
            return Err(Error::new(
                ErrorKind::UnknownKey,
                "this keychain has no enabled stream key",
            ));
        }
        let mut ct = Vec::new();
        for c in &candidates {
            let Ok((segments, pt_len)) = c.format.layout(ct_len) else {
                continue;
            };
            let seg = Segments::new(&c.key, c.format, &header, aad)?;
            let mut me = SeekableDecryptor {
                r,
                seg,
                key_id: c.key_id,
                ct_len,
                segments,
                pt_len,
                pos: 0,
                cached: None,
                ct: std::mem::take(&mut ct),
            };
            match me.load(0) {
                Ok(()) => return Ok(me),
                Err(_) => {
                    r = me.r;
                    ct = me.ct;
                }
            }
        }
        Err(Error::authentication())
    }

    /// The plaintext's length.
    pub fn plaintext_len(&self) -> u64 {
        self.pt_len
    }

    /// The key the stream is under.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Decrypts segment `i` into the cache.
    fn load(&mut self, i: u64) -> Result<()> {
        if self.cached.as_ref().is_some_and(|(c, _)| *c == i) {
            return Ok(());
        }
        let size = self.seg.format.segment_size() as u64;
        let start = if i == 0 { HEADER_LEN as u64 } else { i * size };
        let end = ((i + 1) * size).min(self.ct_len);
        let io = |e| Error::io("stream", e);
        self.r.seek(SeekFrom::Start(start)).map_err(io)?;
        self.ct.resize((end - start) as usize, 0);
        self.r.read_exact(&mut self.ct).map_err(io)?;
        let mut plain = self.cached.take().map(|(_, p)| p).unwrap_or_default();
        self.seg
            .open(i, i + 1 == self.segments, &self.ct, &mut plain)?;
        self.cached = Some((i, plain));
        Ok(())
    }

    /// Reads plaintext at `offset` into `out`; returns how many bytes (0 at
    /// the end).
    pub fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<usize> {
        if offset >= self.pt_len || out.is_empty() {
            return Ok(0);
        }
        let first = self.seg.format.plaintext_len(0) as u64;
        let full = self.seg.format.plaintext_len(1) as u64;
        let (i, within) = if offset < first {
            (0, offset)
        } else {
            (1 + (offset - first) / full, (offset - first) % full)
        };
        self.load(i)?;
        let plain = &self
            .cached
            .as_ref()
            .map(|(_, p)| p)
            .ok_or_else(|| Error::internal("no segment"))?;
        let within = within as usize;
        let n = out.len().min(plain.len().saturating_sub(within));
        out[..n].copy_from_slice(&plain[within..within + n]);
        Ok(n)
    }
}

impl<R: Read + Seek> Read for SeekableDecryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(self.pos, out).map_err(io_err)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SeekableDecryptor<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.pt_len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = base
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(key: [u8; 32], format: StreamFormat) -> Vec<Candidate> {
        vec![Candidate {
            key: Zeroizing::new(key),
            format,
            key_id: 7,
        }]
    }

    fn encrypt(
        key: [u8; 32],
        format: StreamFormat,
        aad: &[u8],
        pt: &[u8],
        chunk: usize,
    ) -> Vec<u8> {
        let mut w = EncryptingWriter::new(Vec::new(), &key, format, aad).unwrap();
        for c in pt.chunks(chunk.max(1)) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap()
    }

    fn decrypt(key: [u8; 32], format: StreamFormat, aad: &[u8], ct: &[u8]) -> Result<Vec<u8>> {
        let mut r = DecryptingReader::new(ct, cand(key, format), aad);
        let mut out = Vec::new();
        r.read_to_end(&mut out).map_err(error_of)?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_boundary() {
        let f = StreamFormat::AesGcmHkdf4Kb;
        let first = f.plaintext_len(0);
        let full = f.plaintext_len(1);
        for n in [
            0,
            1,
            first - 1,
            first,
            first + 1,
            first + full,
            first + full + 1,
            5 * full + 3,
        ] {
            let pt: Vec<u8> = (0..n).map(|i| i as u8).collect();
            for chunk in [1, 7, 4096, n + 1] {
                let ct = encrypt([1; 32], f, b"aad", &pt, chunk);
                assert_eq!(
                    f.plaintext_len_of(ct.len() as u64).unwrap(),
                    n as u64,
                    "n {n}"
                );
                assert_eq!(
                    decrypt([1; 32], f, b"aad", &ct).unwrap(),
                    pt,
                    "n {n} chunk {chunk}"
                );
                // Random access agrees everywhere.
                let mut s =
                    SeekableDecryptor::new(std::io::Cursor::new(&ct), cand([1; 32], f), b"aad")
                        .unwrap();
                assert_eq!(s.plaintext_len(), n as u64);
                for off in [0, 1, first.saturating_sub(1), first, n.saturating_sub(1)] {
                    let mut buf = vec![0u8; 9];
                    let got = s.read_at(off as u64, &mut buf).unwrap();
                    let want = &pt[off.min(n)..(off + 9).min(n)];
                    assert_eq!(&buf[..got], &want[..got.min(want.len())], "n {n} off {off}");
                }
            }
        }
    }

    #[test]
    fn truncation_reordering_tampering_wrong_key_and_aad_fail() {
        let f = StreamFormat::AesGcmHkdf4Kb;
        let pt = vec![5u8; 3 * 4096];
        let ct = encrypt([1; 32], f, b"aad", &pt, 1000);
        let auth =
            |ct: &[u8], key: [u8; 32], aad: &[u8]| decrypt(key, f, aad, ct).unwrap_err().kind();
        assert_eq!(auth(&ct, [2; 32], b"aad"), ErrorKind::Authentication);
        assert_eq!(auth(&ct, [1; 32], b"aaD"), ErrorKind::Authentication);
        // Cut at a segment boundary: the last segment is missing.
        assert_eq!(
            auth(&ct[..4096], [1; 32], b"aad"),
            ErrorKind::Authentication
        );
        assert_eq!(
            auth(&ct[..2 * 4096], [1; 32], b"aad"),
            ErrorKind::Authentication
        );
        assert_eq!(
            auth(&ct[..ct.len() - 1], [1; 32], b"aad"),
            ErrorKind::Authentication
        );
        // Segments 1 and 2 swapped; segment 1 repeated.
        let mut swapped = ct[..4096].to_vec();
        swapped.extend_from_slice(&ct[2 * 4096..3 * 4096]);
        swapped.extend_from_slice(&ct[4096..2 * 4096]);
        swapped.extend_from_slice(&ct[3 * 4096..]);
        assert_eq!(auth(&swapped, [1; 32], b"aad"), ErrorKind::Authentication);
        let mut dup = ct[..2 * 4096].to_vec();
        dup.extend_from_slice(&ct[4096..]);
        assert_eq!(auth(&dup, [1; 32], b"aad"), ErrorKind::Authentication);
        for i in [0, 1, 40, 4095, 4096, ct.len() - 1] {
            let mut bad = ct.clone();
            bad[i] ^= 1;
            let k = decrypt([1; 32], f, b"aad", &bad).unwrap_err().kind();
            assert!(
                matches!(k, ErrorKind::Authentication | ErrorKind::Format),
                "byte {i}: {k:?}"
            );
        }
        assert_eq!(auth(&ct[..30], [1; 32], b"aad"), ErrorKind::Format);
        // No plaintext of a failing segment is returned: reading a stream
        // whose second segment is tampered yields exactly the first
        // segment, then the error.
        let mut bad = ct.clone();
        bad[5000] ^= 1;
        let mut r = DecryptingReader::new(&bad[..], cand([1; 32], f), b"aad");
        let mut got = vec![0u8; 100_000];
        let mut n = 0;
        let err = loop {
            match r.read(&mut got[n..]) {
                Ok(0) => panic!("a tampered stream read to the end"),
                Ok(k) => n += k,
                Err(e) => break e,
            }
        };
        assert_eq!(n, f.plaintext_len(0));
        assert_eq!(error_of(err).kind(), ErrorKind::Authentication);
    }

    /// Feeds `ct` to a Decryptor in pieces of `chunk` bytes, checking each
    /// call's length against what the decryptor said it would be.
    fn push_decrypt(cands: Vec<Candidate>, aad: &[u8], ct: &[u8], chunk: usize) -> Result<Vec<u8>> {
        let mut d = Decryptor::new(cands, aad)?;
        let mut pt = Vec::new();
        for c in ct.chunks(chunk.max(1)) {
            let exact = d.update_output_len(c.len());
            let bound = d.update_output_bound(c.len());
            assert!(bound <= c.len() + d.buffered());
            let mut out = vec![0xAA; bound];
            let n = d.update(c, &mut out)?;
            if let Some(e) = exact {
                assert_eq!(n, e, "update of {} bytes", c.len());
            }
            assert!(n <= bound);
            pt.extend_from_slice(&out[..n]);
        }
        let want = d.finish_output_len();
        let mut out = vec![0xAA; want];
        let n = d.finish(&mut out)?;
        assert_eq!(n, want);
        pt.extend_from_slice(&out[..n]);
        Ok(pt)
    }

    #[test]
    fn decryptor_round_trips_at_every_boundary_in_any_pieces() {
        for f in StreamFormat::ALL {
            let first = f.plaintext_len(0);
            let full = f.plaintext_len(1);
            let seg = f.segment_size();
            let sizes = [
                0,
                1,
                first - 1,
                first,
                first + 1,
                first + full - 1,
                first + full,
                first + full + 1,
                first + 2 * full,
                first + 2 * full + 5,
            ];
            for n in sizes {
                let pt: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
                let ct = encrypt([3; 32], f, b"a", &pt, 5000);
                let chunks: &[usize] = if f == StreamFormat::AesGcmHkdf4Kb {
                    &[
                        1,
                        2,
                        39,
                        40,
                        41,
                        4055,
                        4056,
                        4057,
                        4096,
                        4097,
                        10_000,
                        usize::MAX,
                    ]
                } else {
                    &[40, 4096, seg - 41, seg, seg + 1, 3 * seg + 17, usize::MAX]
                };
                for &chunk in chunks {
                    let got = push_decrypt(cand([3; 32], f), b"a", &ct, chunk.min(ct.len()))
                        .unwrap_or_else(|e| panic!("{f:?} n {n} chunk {chunk}: {e}"));
                    assert!(got == pt, "{f:?} n {n} chunk {chunk}");
                }
            }
        }
    }

    #[test]
    fn decryptor_tries_every_key_whatever_their_formats() {
        let (k4, k1) = (StreamFormat::AesGcmHkdf4Kb, StreamFormat::AesGcmHkdf1Mb);
        let c = |key: u8, format| Candidate {
            key: Zeroizing::new([key; 32]),
            format,
            key_id: u32::from(key),
        };
        for n in [0, 10, 4040, 4041, 20_000, (1 << 20) + 3] {
            let pt = vec![9u8; n];
            for (key, f) in [(1u8, k4), (2u8, k1)] {
                let ct = encrypt([key; 32], f, b"", &pt, 1 << 16);
                for chunk in [1000, 4057, 1 << 16, usize::MAX] {
                    let cands = vec![c(7, k1), c(2, k1), c(8, k4), c(1, k4)];
                    let mut d = Decryptor::new(cands, b"").unwrap();
                    assert_eq!(d.update_output_len(5), None, "the formats differ");
                    let got = push_decrypt(
                        vec![c(7, k1), c(2, k1), c(8, k4), c(1, k4)],
                        b"",
                        &ct,
                        chunk,
                    )
                    .unwrap();
                    assert!(got == pt, "n {n} key {key} chunk {chunk}");
                    // The key is found by the first segment.
                    let mut out = vec![0; ct.len()];
                    let _ = d.update(&ct, &mut out).unwrap();
                    let mut out = vec![0; d.finish_output_len()];
                    d.finish(&mut out).unwrap();
                    assert_eq!(d.key_id(), Some(u32::from(key)));
                }
            }
        }
    }

    #[test]
    fn decryptor_fails_on_truncation_tampering_reordering_key_and_aad() {
        let f = StreamFormat::AesGcmHkdf4Kb;
        let pt = vec![5u8; 3 * 4096];
        let ct = encrypt([1; 32], f, b"aad", &pt, 1000);
        let kind = |ct: &[u8], key: [u8; 32], aad: &[u8], chunk: usize| {
            push_decrypt(cand(key, f), aad, ct, chunk)
                .map(|_| ())
                .unwrap_err()
                .kind()
        };
        for chunk in [1, 100, 4096, usize::MAX] {
            let chunk = chunk.min(ct.len());
            assert_eq!(kind(&ct, [2; 32], b"aad", chunk), ErrorKind::Authentication);
            assert_eq!(kind(&ct, [1; 32], b"aaD", chunk), ErrorKind::Authentication);
            for cut in [4096, 2 * 4096, 3 * 4096, ct.len() - 1, 41, 55, HEADER_LEN] {
                assert_eq!(
                    kind(&ct[..cut], [1; 32], b"aad", chunk),
                    ErrorKind::Authentication,
                    "cut at {cut}"
                );
            }
            assert_eq!(kind(&ct[..30], [1; 32], b"aad", chunk), ErrorKind::Format);
            assert_eq!(kind(&[], [1; 32], b"aad", 1), ErrorKind::Format);
            let mut swapped = ct[..4096].to_vec();
            swapped.extend_from_slice(&ct[2 * 4096..3 * 4096]);
            swapped.extend_from_slice(&ct[4096..2 * 4096]);
            swapped.extend_from_slice(&ct[3 * 4096..]);
            assert_eq!(
                kind(&swapped, [1; 32], b"aad", chunk),
                ErrorKind::Authentication
            );
            let mut dup = ct[..2 * 4096].to_vec();
            dup.extend_from_slice(&ct[4096..]);
            assert_eq!(
                kind(&dup, [1; 32], b"aad", chunk),
                ErrorKind::Authentication
            );
            for i in [0, 1, 40, 4095, 4096, 9000, ct.len() - 1] {
                let mut bad = ct.clone();
                bad[i] ^= 1;
                let k = kind(&bad, [1; 32], b"aad", chunk);
                assert!(
                    matches!(k, ErrorKind::Authentication | ErrorKind::Format),
                    "byte {i}: {k:?}"
                );
            }
        }
    }

    #[test]
    fn decryptor_returns_no_plaintext_of_a_failing_segment_and_stays_failed() {
        let f = StreamFormat::AesGcmHkdf4Kb;
        let pt = vec![5u8; 3 * 4096];
        let ct = encrypt([1; 32], f, b"", &pt, 1000);
        let mut bad = ct.clone();
        bad[5000] ^= 1;
        // Segment 0 comes back once a byte of segment 1 is here.
        let mut d = Decryptor::new(cand([1; 32], f), b"").unwrap();
        let mut out = vec![0u8; 20_000];
        assert_eq!(d.update(&bad[..4096], &mut out).unwrap(), 0);
        assert_eq!(d.update(&bad[4096..4097], &mut out).unwrap(), 4040);
        // Segment 1 does not open: nothing of it, nor of the call.
        let mut out = vec![0xEEu8; 20_000];
        let e = d.update(&bad[4097..], &mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Authentication);
        assert!(out.iter().all(|&b| b == 0 || b == 0xEE));
        // Every later call fails the same way, queries included.
        for _ in 0..2 {
            assert_eq!(
                d.update(b"x", &mut out).unwrap_err().kind(),
                ErrorKind::Authentication
            );
            assert_eq!(
                d.finish(&mut out).unwrap_err().kind(),
                ErrorKind::Authentication
            );
        }
        // A whole tampered stream in one call returns nothing.
        let mut d = Decryptor::new(cand([1; 32], f), b"").unwrap();
        let mut out = vec![0xEEu8; bad.len()];
        assert!(d.update(&bad, &mut out).is_err());
        assert!(out.iter().all(|&b| b == 0 || b == 0xEE));
        // Finished: every call is Unavailable; too small an output
        // consumes nothing.
        let mut d = Decryptor::new(cand([1; 32], f), b"").unwrap();
        let mut small = vec![0u8; 10];
        assert_eq!(
            d.update(&ct, &mut small).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(d.buffered(), 0);
        let mut out = vec![0u8; ct.len()];
        let n = d.update(&ct, &mut out).unwrap();
        let mut last = vec![0u8; d.finish_output_len()];
        let m = d.finish(&mut last).unwrap();
        assert_eq!(n + m, pt.len());
        assert_eq!(
            d.update(b"", &mut out).unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            d.finish(&mut out).unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        assert!(Decryptor::new(Vec::new(), b"").is_err());
    }

    #[test]
    fn writer_says_how_much_each_write_and_finish_emit() {
        for f in StreamFormat::ALL {
            let full = f.plaintext_len(1);
            let first = f.plaintext_len(0);
            let writes = [0, 1, first - 2, 1, 1, 0, full, 1, 3 * full + 7, full - 8, 1];
            for skip in 0..3 {
                let mut w = EncryptingWriter::new(Vec::new(), &[4; 32], f, b"").unwrap();
                let mut ct = Vec::new();
                let mut pt = Vec::new();
                for (i, &n) in writes.iter().enumerate().skip(skip) {
                    let data = vec![i as u8; n];
                    let want = w.pending_output_len(n).unwrap();
                    w.write_all(&data).unwrap();
                    assert_eq!(w.get_mut().len(), want, "{f:?} write {i} of {n}");
                    ct.append(w.get_mut());
                    pt.extend_from_slice(&data);
                }
                let want = w.finish_output_len();
                let rest = w.finish().unwrap();
                assert_eq!(rest.len(), want);
                ct.extend_from_slice(&rest);
                assert_eq!(decrypt([4; 32], f, b"", &ct).unwrap(), pt);
            }
        }
        let w =
            EncryptingWriter::new(Vec::new(), &[4; 32], StreamFormat::AesGcmHkdf4Kb, b"").unwrap();
        assert_eq!(w.pending_output_len(usize::MAX), None);
        assert_eq!(w.finish_output_len(), HEADER_LEN + TAG_LEN);
    }
}
