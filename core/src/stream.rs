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
//! Errors: a stream shorter than its 40-byte header, or whose first byte is
//! not 40, is `Format`; once the header is there, anything else that is
//! wrong (the wrong key or aad, a changed byte, segments reordered or
//! repeated, the stream cut anywhere, a last segment shorter than its
//! 16-byte tag) is `Authentication`: a stream cut short and a forged one
//! look the same.
//!
//! Memory stays O(segment) whatever the stream's size, and the adapters
//! move each byte as few times as the API allows: the writer seals a
//! segment that a write holds whole straight from the caller's bytes, the
//! reader decrypts straight into the caller's buffer when a segment's
//! plaintext fits, and no buffer is zero-filled more than once.

use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

use zeroize::{Zeroize, Zeroizing};

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

    /// Ciphertext bytes of segment `i` when full (its plaintext and tag).
    fn ciphertext_len(self, i: u64) -> usize {
        self.plaintext_len(i) + TAG_LEN
    }

    /// The plaintext length of a stream of `ciphertext_len` bytes. `Format`
    /// if no stream has that length: under 56 bytes (a header and one tag),
    /// or a last segment shorter than its tag. (Decrypting bytes of such a
    /// length fails with `Format` if they hold no whole header, else with
    /// `Authentication`: a stream cut short.)
    pub fn plaintext_len_of(self, ciphertext_len: u64) -> Result<u64> {
        Ok(self.layout(ciphertext_len)?.1)
    }

    /// The number of segments and the plaintext length of a stream of
    /// `ct_len` bytes.
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
        check_header(header)?;
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

    /// Seals segment `i` from `pt` into `out` (`pt.len() + TAG_LEN` bytes).
    fn seal(&self, i: u64, last: bool, pt: &[u8], out: &mut [u8]) -> Result<()> {
        self.cipher.seal_into(&self.nonce(i, last)?, b"", pt, out)
    }

    /// Opens segment `i` from `ct` into `out` (`ct.len() - TAG_LEN` bytes);
    /// `Authentication` for a segment shorter than its tag. `out` holds no
    /// plaintext on failure.
    fn open(&self, i: u64, last: bool, ct: &[u8], out: &mut [u8]) -> Result<()> {
        if ct.len() < TAG_LEN {
            return Err(Error::authentication());
        }
        self.cipher.open_into(&self.nonce(i, last)?, b"", ct, out)
    }
}

/// `Format` unless the header's first byte is its length, 40.
fn check_header(header: &[u8; HEADER_LEN]) -> Result<()> {
    if usize::from(header[0]) != HEADER_LEN {
        return Err(Error::format(format!(
            "not a keystrata/Tink AES-GCM-HKDF stream: a stream header's first byte \
             is its length, {HEADER_LEN}, got {}",
            header[0]
        )));
    }
    Ok(())
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

/// The error a failed stream object returns from every later call.
fn failed_again(failed: &Option<(ErrorKind, String)>) -> Result<()> {
    match failed {
        Some((kind, msg)) => Err(Error::new(*kind, msg.clone())),
        None => Ok(()),
    }
}

fn too_small(have: usize, need: usize) -> Error {
    Error::invalid(format!("the output holds {have}; {need} bytes are needed"))
}

// ---------------------------------------------------------------------
// Encrypting
// ---------------------------------------------------------------------

/// Encrypts one stream pushed to it a piece at a time, into buffers the
/// caller sizes (the C ABI's encryptor; [`EncryptingWriter`] is the same
/// over a `Write`). [`update`](Encryptor::update) returns the ciphertext of
/// every segment the bytes so far complete, but a full segment is held back
/// until more data shows it is not the last;
/// [`finish`](Encryptor::finish) writes the last segment, without which the
/// stream does not decrypt. The lengths depend only on the lengths pushed:
/// [`update_output_len`](Encryptor::update_output_len) and
/// [`finish_output_len`](Encryptor::finish_output_len) give them exactly.
///
/// A segment that one input holds whole is sealed straight from it; only
/// the bytes of a segment that spans two inputs are copied (into a buffer
/// of one segment). After an error every later call returns it; after
/// `finish`, every call fails with `Unavailable`.
pub struct Encryptor {
    seg: Segments,
    /// The segment being filled.
    index: u64,
    /// Its plaintext so far (at most one segment's).
    buf: Zeroizing<Vec<u8>>,
    /// The header, until it goes out in front of the first segment.
    header: Option<[u8; HEADER_LEN]>,
    failed: Option<(ErrorKind, String)>,
    finished: bool,
}

impl Encryptor {
    /// An encryptor with the stream key `key` (32 bytes) and `aad`.
    pub(crate) fn new(key: &[u8; KEY_LEN], format: StreamFormat, aad: &[u8]) -> Result<Encryptor> {
        let header = new_header()?;
        let seg = Segments::new(key, format, &header, aad)?;
        Ok(Encryptor {
            seg,
            index: 0,
            buf: Zeroizing::new(Vec::with_capacity(format.plaintext_len(1))),
            header: Some(header),
            failed: None,
            finished: false,
        })
    }

    /// The stream's format.
    pub fn format(&self) -> StreamFormat {
        self.seg.format
    }

    /// The exact number of bytes an [`update`](Encryptor::update) with `n`
    /// bytes of input writes: the segments it completes (a full segment is
    /// held back until more data shows it is not the last), and the header
    /// with the first. `None` if that number does not fit in a `usize`.
    pub fn update_output_len(&self, n: usize) -> Option<usize> {
        let limit = self.seg.format.plaintext_len(self.index);
        let total = self.buf.len().checked_add(n)?;
        if n == 0 || total <= limit {
            return Some(0);
        }
        // The current segment is sealed, then every full one after it that
        // more data follows.
        let full = self.seg.format.plaintext_len(1);
        let more = (total - limit - 1) / full;
        let header = if self.header.is_some() { HEADER_LEN } else { 0 };
        (limit + TAG_LEN + header).checked_add(more.checked_mul(full + TAG_LEN)?)
    }

    /// The exact number of bytes [`finish`](Encryptor::finish) writes: the
    /// last segment, and the header if no segment went out yet.
    pub fn finish_output_len(&self) -> usize {
        let header = if self.header.is_some() { HEADER_LEN } else { 0 };
        header + self.buf.len() + TAG_LEN
    }

    /// `Ok` while the encryptor takes more calls; otherwise the error every
    /// call returns (the first failure's, or `Unavailable` after `finish`).
    pub fn check(&self) -> Result<()> {
        failed_again(&self.failed)?;
        if self.finished {
            return Err(Error::unavailable("the stream encryptor has finished"));
        }
        Ok(())
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some((e.kind(), e.message().to_owned()));
        self.buf.zeroize();
        e
    }

    /// Encrypts `input`: writes the ciphertext of every segment it
    /// completes to the start of `out`, which must hold
    /// [`update_output_len`](Encryptor::update_output_len)`(input.len())`
    /// bytes (`InvalidInput` otherwise, and nothing is consumed), and
    /// returns its length. An error while encrypting ends the stream.
    pub fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        self.check()?;
        let need = self
            .update_output_len(input.len())
            .ok_or_else(|| Error::invalid("the input is too long"))?;
        if out.len() < need {
            return Err(too_small(out.len(), need));
        }
        let mut rest = input;
        let mut off = 0;
        while !rest.is_empty() {
            match self.step(&mut rest, &mut out[off..]) {
                Ok(n) => off += n,
                Err(e) => return Err(self.fail(e)),
            }
        }
        if off != need {
            return Err(self.fail(Error::internal(
                "the stream output differs from its announced length",
            )));
        }
        Ok(off)
    }

    /// Ends the stream: writes its last segment (and the header, for a
    /// stream given no data) to the start of `out`, which must hold
    /// [`finish_output_len`](Encryptor::finish_output_len) bytes, and
    /// returns its length.
    pub fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        self.check()?;
        let need = self.finish_output_len();
        if out.len() < need {
            return Err(too_small(out.len(), need));
        }
        let Encryptor {
            seg,
            index,
            buf,
            header,
            ..
        } = self;
        match seal_segment(seg, index, header, buf, true, out) {
            Ok(n) => {
                self.finished = true;
                self.buf.zeroize();
                Ok(n)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Takes bytes from the front of `*input`. When they complete a segment
    /// that more bytes follow (so it is not the last), seals it to the
    /// start of `out` (after the header, for the first) and returns the
    /// bytes written; otherwise buffers them all and returns 0, `*input`
    /// then empty. `out` must hold the header and a segment. Errors leave
    /// the encryptor unusable: the caller fails it.
    fn step(&mut self, input: &mut &[u8], out: &mut [u8]) -> Result<usize> {
        let limit = self.seg.format.plaintext_len(self.index);
        let Encryptor {
            seg,
            index,
            buf,
            header,
            ..
        } = self;
        if buf.is_empty() && input.len() > limit {
            // The segment is whole in the caller's bytes, and more follows:
            // sealed straight from them.
            let (pt, rest) = input.split_at(limit);
            let n = seal_segment(seg, index, header, pt, false, out)?;
            *input = rest;
            return Ok(n);
        }
        if !buf.is_empty() && buf.len() + input.len() > limit {
            // The segment's start is buffered, its end in the caller's
            // bytes, and more follows: sealed from both pieces at once.
            let (tail, rest) = input.split_at(limit - buf.len());
            let n = seal_segment_parts(seg, index, header, buf, tail, out)?;
            buf.clear();
            *input = rest;
            return Ok(n);
        }
        let take = input.len().min(limit.saturating_sub(buf.len()));
        buf.extend_from_slice(&input[..take]);
        *input = &input[take..];
        if input.is_empty() {
            return Ok(0);
        }
        let n = seal_segment(seg, index, header, buf, false, out)?;
        buf.clear();
        Ok(n)
    }
}

/// As [`seal_segment`], the plaintext `head ‖ tail`, not the last.
fn seal_segment_parts(
    seg: &Segments,
    index: &mut u64,
    header: &mut Option<[u8; HEADER_LEN]>,
    head: &[u8],
    tail: &[u8],
    out: &mut [u8],
) -> Result<usize> {
    let h = if header.is_some() { HEADER_LEN } else { 0 };
    let end = h + head.len() + tail.len() + TAG_LEN;
    let out = out
        .get_mut(..end)
        .ok_or_else(|| Error::internal("stream output too small"))?;
    let (hd_out, body) = out.split_at_mut(h);
    if let Some(hd) = header {
        hd_out.copy_from_slice(hd);
    }
    seg.cipher
        .seal_parts_into(&seg.nonce(*index, false)?, b"", head, tail, body)?;
    *header = None;
    *index += 1;
    Ok(end)
}

/// Writes the header if it is still due, then segment `*index` sealed from
/// `pt` (flagged `last` or not), to the start of `out`; advances `*index`
/// and returns the bytes written.
fn seal_segment(
    seg: &Segments,
    index: &mut u64,
    header: &mut Option<[u8; HEADER_LEN]>,
    pt: &[u8],
    last: bool,
    out: &mut [u8],
) -> Result<usize> {
    let h = if header.is_some() { HEADER_LEN } else { 0 };
    let end = h + pt.len() + TAG_LEN;
    let out = out
        .get_mut(..end)
        .ok_or_else(|| Error::internal("stream output too small"))?;
    let (head, body) = out.split_at_mut(h);
    if let Some(hd) = header {
        head.copy_from_slice(hd);
    }
    seg.seal(*index, last, pt, body)?;
    *header = None;
    *index += 1;
    Ok(end)
}

/// Encrypts what is written to it into `W` as one stream. Call
/// [`finish`](EncryptingWriter::finish) at the end: it writes the last
/// segment, without which the stream does not decrypt (a stream dropped
/// unfinished reads as truncated, never as complete).
///
/// Each segment goes to `W` in one `write_all` (with the header, for the
/// first) as soon as more data shows it is not the last. A write that holds
/// a segment whole is sealed straight from the caller's bytes; only a
/// segment that spans writes is gathered in a buffer first. An error of
/// `W` ends the stream: every later call fails (a segment may be half
/// written).
pub struct EncryptingWriter<W: Write> {
    w: W,
    enc: Encryptor,
    /// The header and one sealed segment, on their way to `w` (allocated
    /// once).
    out: Vec<u8>,
}

impl<W: Write> EncryptingWriter<W> {
    /// A writer over `w` with the stream key `key` (32 bytes) and `aad`.
    pub(crate) fn new(
        w: W,
        key: &[u8; KEY_LEN],
        format: StreamFormat,
        aad: &[u8],
    ) -> Result<EncryptingWriter<W>> {
        Ok(EncryptingWriter {
            w,
            enc: Encryptor::new(key, format, aad)?,
            out: vec![0; HEADER_LEN + format.segment_size()],
        })
    }

    /// The number of bytes a `write` of `n` bytes passes to the inner
    /// writer: the segments it completes (a full segment is held back until
    /// more data shows it is not the last), and the header with the first.
    /// `None` if that number does not fit in a `usize`.
    pub fn pending_output_len(&self, n: usize) -> Option<usize> {
        self.enc.update_output_len(n)
    }

    /// The number of bytes [`finish`](EncryptingWriter::finish) passes to
    /// the inner writer: the last segment, and the header if no segment
    /// was written yet.
    pub fn finish_output_len(&self) -> usize {
        self.enc.finish_output_len()
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    /// Writes the last segment and returns the inner writer (flushed).
    pub fn finish(mut self) -> Result<W> {
        let n = self.enc.finish(&mut self.out)?;
        self.w
            .write_all(&self.out[..n])
            .map_err(|e| Error::io("stream", e))?;
        self.w.flush().map_err(|e| Error::io("stream", e))?;
        Ok(self.w)
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.enc.check().map_err(io_err)?;
        let mut rest = data;
        while !rest.is_empty() {
            let n = match self.enc.step(&mut rest, &mut self.out) {
                Ok(n) => n,
                Err(e) => return Err(io_err(self.enc.fail(e))),
            };
            if n > 0 {
                if let Err(e) = self.w.write_all(&self.out[..n]) {
                    self.enc.fail(Error::io(
                        "stream: an earlier write to the inner writer failed",
                        io::Error::new(e.kind(), e.to_string()),
                    ));
                    return Err(e);
                }
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

// ---------------------------------------------------------------------
// Decrypting
// ---------------------------------------------------------------------

/// A candidate key for a stream being read: the keychain's enabled stream
/// keys, tried in order on the first segment (as Tink does: the stream
/// does not name its key).
pub(crate) struct Candidate {
    pub(crate) key: Zeroizing<[u8; KEY_LEN]>,
    pub(crate) format: StreamFormat,
    pub(crate) key_id: u32,
}

/// Decrypts a stream read from `R`. Reading returns plaintext only after
/// its segment's tag checked; a truncated, reordered or tampered stream, a
/// wrong key or wrong aad gives an `io::Error` of kind `InvalidData`
/// holding a keystrata `Authentication` (or `Format`) error
/// ([`error_of`] gets it back).
///
/// Each segment's ciphertext is read (with one byte more, which shows
/// whether it is the last) into a buffer of one segment, then decrypted
/// straight into the caller's buffer when its plaintext fits there, or
/// else into a plaintext buffer that later reads drain. A `read` returns at
/// most one segment's plaintext. A source whose bytes are already in
/// memory saves the first copy with [`DecryptingBufReader`].
pub struct DecryptingReader<R: Read>(Opener<Copying<R>>);

impl<R: Read> DecryptingReader<R> {
    pub(crate) fn new(r: R, candidates: Vec<Candidate>, aad: &[u8]) -> DecryptingReader<R> {
        DecryptingReader(Opener::new(Copying(r), candidates, aad))
    }

    /// The key the stream was found to be under, once the first segment
    /// was read.
    pub fn key_id(&self) -> Option<u32> {
        self.0.key_id
    }

    /// Returns the inner reader.
    pub fn into_inner(self) -> R {
        self.0.src.0
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.0.read(out)
    }
}

/// [`DecryptingReader`] for a source that holds its bytes in a buffer
/// (`&[u8]`, `io::Cursor`, a `BufReader`): a segment that the source's
/// buffer holds whole, with one byte more, is decrypted straight from that
/// buffer into the caller's, with no copy in between. Any other segment
/// (the last one, or one that straddles the source's buffer) is read as
/// `DecryptingReader` reads it. The same rules and errors.
///
/// A `BufReader` saves the copy when its capacity holds a segment and a
/// byte more (`BufReader::with_capacity(format.segment_size() + 1, file)`)
/// and the caller's reads take a segment's plaintext whole; with the
/// default 8 KiB it saves nothing, and costs nothing either.
pub struct DecryptingBufReader<R: BufRead>(Opener<Borrowing<R>>);

impl<R: BufRead> DecryptingBufReader<R> {
    pub(crate) fn new(r: R, candidates: Vec<Candidate>, aad: &[u8]) -> DecryptingBufReader<R> {
        DecryptingBufReader(Opener::new(Borrowing(r), candidates, aad))
    }

    /// The key the stream was found to be under, once the first segment
    /// was read.
    pub fn key_id(&self) -> Option<u32> {
        self.0.key_id
    }

    /// Returns the inner reader, positioned after what was read from it.
    pub fn into_inner(self) -> R {
        self.0.src.0
    }
}

impl<R: BufRead> Read for DecryptingBufReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.0.read(out)
    }
}

/// Where the ciphertext of an [`Opener`] comes from.
trait Source {
    /// `Read::read`.
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// The source's next `want` bytes or more, in place, if it holds them
    /// in memory now; `None` otherwise (and always for a plain reader).
    fn peek(&mut self, want: usize) -> io::Result<Option<&[u8]>>;
    /// Drops `n` bytes that [`peek`](Source::peek) returned.
    fn advance(&mut self, n: usize);
}

/// A plain reader: every byte is copied out of it.
struct Copying<R>(R);

impl<R: Read> Source for Copying<R> {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
    fn peek(&mut self, _want: usize) -> io::Result<Option<&[u8]>> {
        Ok(None)
    }
    fn advance(&mut self, _n: usize) {}
}

/// A buffered reader, whose buffer segments are opened from.
struct Borrowing<R>(R);

impl<R: BufRead> Source for Borrowing<R> {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
    fn peek(&mut self, want: usize) -> io::Result<Option<&[u8]>> {
        let have = loop {
            match self.0.fill_buf() {
                Ok(b) => break b.len(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if have < want {
            return Ok(None);
        }
        // A buffer that is not empty comes back as it is, with no read
        // (checked again all the same: a reader may break the contract).
        self.0.fill_buf().map(|b| (b.len() >= want).then_some(b))
    }
    fn advance(&mut self, n: usize) {
        self.0.consume(n)
    }
}

/// The decrypting reader's state, over either source.
struct Opener<S> {
    src: S,
    aad: Vec<u8>,
    candidates: Vec<Candidate>,
    seg: Option<Segments>,
    key_id: Option<u32>,
    index: u64,
    /// Ciphertext read and not yet decrypted: `ct[..ct_len]`. Grown (and
    /// so zero-filled) once to a segment and a byte, then reused.
    ct: Vec<u8>,
    ct_len: usize,
    /// Whether `src` ended.
    eof: bool,
    /// The plaintext of a segment the caller's buffer could not take
    /// whole: `plain[pos..end]` is still to be returned.
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    end: usize,
    done: bool,
    failed: Option<(ErrorKind, String)>,
}

impl<S: Source> Opener<S> {
    fn new(src: S, candidates: Vec<Candidate>, aad: &[u8]) -> Opener<S> {
        Opener {
            src,
            aad: aad.to_vec(),
            candidates,
            seg: None,
            key_id: None,
            index: 0,
            ct: Vec::new(),
            ct_len: 0,
            eof: false,
            plain: Zeroizing::new(Vec::new()),
            pos: 0,
            end: 0,
            done: false,
            failed: None,
        }
    }

    fn fail(&mut self, e: Error) -> io::Error {
        self.failed = Some((e.kind(), e.message().to_owned()));
        self.plain.zeroize();
        self.pos = 0;
        self.end = 0;
        io_err(e)
    }

    /// Reads until `ct` holds `want` bytes or the source ends.
    fn fill(&mut self, want: usize) -> Result<()> {
        if self.ct.len() < want {
            self.ct.resize(want, 0);
        }
        while self.ct_len < want && !self.eof {
            match self.src.read_some(&mut self.ct[self.ct_len..want]) {
                Ok(0) => self.eof = true,
                Ok(n) if n <= want - self.ct_len => self.ct_len += n,
                Ok(_) => {
                    return Err(Error::io(
                        "stream",
                        io::Error::other("the reader returned more bytes than asked"),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("stream", e)),
            }
        }
        Ok(())
    }

    /// Drops the first `n` bytes of `ct`.
    fn consume(&mut self, n: usize) {
        self.ct.copy_within(n..self.ct_len, 0);
        self.ct_len -= n;
    }

    /// Reads the header and finds the key whose first segment opens; its
    /// plaintext goes to `out` as [`next_segment`](Self::next_segment)'s.
    fn start(&mut self, out: &mut [u8]) -> Result<usize> {
        self.fill(HEADER_LEN)?;
        if self.ct_len < HEADER_LEN {
            return Err(Error::format("the stream is shorter than its header"));
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&self.ct[..HEADER_LEN]);
        check_header(&header)?;
        self.consume(HEADER_LEN);
        let candidates = std::mem::take(&mut self.candidates);
        if candidates.is_empty() {
            return Err(Error::new(
                ErrorKind::UnknownKey,
                "this keychain has no enabled stream key",
            ));
        }
        for c in &candidates {
            let seg = Segments::new(&c.key, c.format, &header, &self.aad)?;
            match self.open_next(&seg, out) {
                Ok(n) => {
                    self.key_id = Some(c.key_id);
                    self.seg = Some(seg);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Authentication => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::authentication())
    }

    /// Reads and opens segment `self.index` under `seg`: into `out` when
    /// its plaintext fits, else into `plain` (and as much as fits into
    /// `out`). Returns the bytes written to `out`. Nothing is consumed
    /// from the source's buffer unless the segment opens, so the first
    /// segment can be tried under every candidate key.
    fn open_next(&mut self, seg: &Segments, out: &mut [u8]) -> Result<usize> {
        let want = seg.format.ciphertext_len(self.index);
        // Straight from the source's buffer: it holds the whole segment
        // and a byte more, so the segment is not the last.
        if self.ct_len == 0 && !self.eof {
            let peeked = self
                .src
                .peek(want + 1)
                .map_err(|e| Error::io("stream", e))?;
            if let Some(buf) = peeked {
                let given = open_to(
                    seg,
                    self.index,
                    false,
                    &buf[..want],
                    out,
                    &mut self.plain,
                    &mut self.pos,
                    &mut self.end,
                )?;
                self.src.advance(want);
                self.index += 1;
                return Ok(given);
            }
        }
        // One byte more shows whether more follows: the segment is the
        // last only if none does.
        self.fill(want + 1)?;
        let last = self.ct_len <= want;
        let len = self.ct_len.min(want);
        let given = open_to(
            seg,
            self.index,
            last,
            &self.ct[..len],
            out,
            &mut self.plain,
            &mut self.pos,
            &mut self.end,
        )?;
        self.consume(len);
        self.index += 1;
        self.done = last;
        Ok(given)
    }

    fn next_segment(&mut self, out: &mut [u8]) -> Result<usize> {
        let Some(seg) = self.seg.take() else {
            return self.start(out);
        };
        let r = self.open_next(&seg, out);
        self.seg = Some(seg);
        r
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        failed_again(&self.failed).map_err(io_err)?;
        if self.pos < self.end {
            let n = out.len().min(self.end - self.pos);
            out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        while !self.done && !out.is_empty() {
            match self.next_segment(out) {
                // Only an empty last segment gives nothing.
                Ok(0) => {}
                Ok(n) => return Ok(n),
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(0)
    }
}

/// Opens segment `i` from `ct` (its ciphertext and tag) into `out` when
/// its plaintext fits, else into `plain`, of which as much as fits goes to
/// `out` and `plain[*pos..*end]` is left for later reads. Returns the
/// bytes written to `out`; neither holds plaintext on failure.
#[allow(clippy::too_many_arguments)]
fn open_to(
    seg: &Segments,
    i: u64,
    last: bool,
    ct: &[u8],
    out: &mut [u8],
    plain: &mut Zeroizing<Vec<u8>>,
    pos: &mut usize,
    end: &mut usize,
) -> Result<usize> {
    let n = ct.len().saturating_sub(TAG_LEN);
    if out.len() >= n {
        seg.open(i, last, ct, &mut out[..n])?;
        return Ok(n);
    }
    if plain.len() < n {
        plain.resize(n, 0);
    }
    seg.open(i, last, ct, &mut plain[..n])?;
    let k = out.len();
    out.copy_from_slice(&plain[..k]);
    (*pos, *end) = (k, n);
    Ok(k)
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
            let want = format.ciphertext_len(0);
            if avail <= want {
                return Some(0);
            }
            total += want - TAG_LEN;
            avail -= want;
            i = 1;
        }
        let want = format.ciphertext_len(i);
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
        failed_again(&self.failed)?;
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
            return Err(too_small(out.len(), need));
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
            check_header(&header)?;
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
            let want = seg.format.ciphertext_len(self.index);
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
            .map(|c| c.format.ciphertext_len(0))
            .max()
            .unwrap_or(0);
        self.top_up(input, most);
        let mut i = 0;
        while i < self.candidates.len() {
            let c = &self.candidates[i];
            let want = c.format.ciphertext_len(0);
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
            return Err(too_small(out.len(), need));
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
            if self.pending.len() > c.format.ciphertext_len(0) {
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
    seg.open(i, last, ct, dst)?;
    *written += n;
    Ok(())
}

/// Random access to a stream in a seekable source: reads any range of the
/// plaintext, decrypting only the segments it touches (each checked).
/// Implements `Read` and `Seek` over plaintext positions.
///
/// A segment a read covers whole is decrypted straight into the caller's
/// buffer; one it covers in part is decrypted into a cache of one segment,
/// which later reads of the same segment reuse.
pub struct SeekableDecryptor<R: Read + Seek> {
    r: R,
    seg: Segments,
    key_id: u32,
    ct_len: u64,
    segments: u64,
    pt_len: u64,
    pos: u64,
    /// The plaintext of one segment, and which.
    cached: Option<u64>,
    plain: Zeroizing<Vec<u8>>,
    /// One segment's ciphertext (allocated once).
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
        check_header(&header)?;
        if candidates.is_empty() {
            return Err(Error::new(
                ErrorKind::UnknownKey,
                "this keychain has no enabled stream key",
            ));
        }
        let (mut ct, mut plain) = (Vec::new(), Zeroizing::new(Vec::new()));
        for c in &candidates {
            // A length no stream of this format has: a stream cut short (or
            // not of this key's format).
            let Ok((segments, pt_len)) = c.format.layout(ct_len) else {
                continue;
            };
            let seg = Segments::new(&c.key, c.format, &header, aad)?;
            if ct.len() < c.format.segment_size() {
                ct.resize(c.format.segment_size(), 0);
            }
            let mut me = SeekableDecryptor {
                r,
                seg,
                key_id: c.key_id,
                ct_len,
                segments,
                pt_len,
                pos: 0,
                cached: None,
                plain: std::mem::take(&mut plain),
                ct: std::mem::take(&mut ct),
            };
            match me.load(0) {
                Ok(()) => return Ok(me),
                Err(e) if e.kind() == ErrorKind::Authentication => {
                    r = me.r;
                    ct = me.ct;
                    plain = me.plain;
                }
                Err(e) => return Err(e),
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

    /// The plaintext offset where segment `i` starts.
    fn plaintext_start(&self, i: u64) -> u64 {
        let f = self.seg.format;
        if i == 0 {
            0
        } else {
            f.plaintext_len(0) as u64 + (i - 1) * f.plaintext_len(1) as u64
        }
    }

    /// The plaintext bytes segment `i` holds.
    fn segment_plaintext_len(&self, i: u64) -> usize {
        if i + 1 == self.segments {
            // At most one segment's: a usize.
            (self.pt_len - self.plaintext_start(i)) as usize
        } else {
            self.seg.format.plaintext_len(i)
        }
    }

    /// Reads segment `i`'s ciphertext and opens it into `out` (its
    /// plaintext length); `out` holds no plaintext on failure.
    fn open_segment(&mut self, i: u64, out: &mut [u8]) -> Result<()> {
        let size = self.seg.format.segment_size() as u64;
        let start = if i == 0 { HEADER_LEN as u64 } else { i * size };
        let end = ((i + 1) * size).min(self.ct_len);
        let len = usize::try_from(end - start)
            .map_err(|_| Error::internal("a segment longer than memory"))?;
        let io = |e| Error::io("stream", e);
        self.r.seek(SeekFrom::Start(start)).map_err(io)?;
        let ct = self
            .ct
            .get_mut(..len)
            .ok_or_else(|| Error::internal("stream segment buffer too small"))?;
        self.r.read_exact(ct).map_err(io)?;
        self.seg.open(i, i + 1 == self.segments, ct, out)
    }

    /// Decrypts segment `i` into the cache.
    fn load(&mut self, i: u64) -> Result<()> {
        if self.cached == Some(i) {
            return Ok(());
        }
        self.cached = None;
        let n = self.segment_plaintext_len(i);
        let mut plain = std::mem::take(&mut self.plain);
        if plain.len() < n {
            plain.resize(n, 0);
        }
        let r = self.open_segment(i, &mut plain[..n]);
        self.plain = plain;
        r?;
        self.cached = Some(i);
        Ok(())
    }

    /// Reads plaintext at `offset` into `out`: as much as fits, fewer only
    /// at the end of the plaintext (0 at or past it); returns how many
    /// bytes. Only the segments the range touches are read, each checked;
    /// if one does not check, the call fails with `Authentication` and
    /// `out` holds no plaintext of it (what it wrote is wiped). Other
    /// ranges stay readable.
    pub fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<usize> {
        let left = self.pt_len.saturating_sub(offset);
        let want = usize::try_from(left).map_or(out.len(), |l| l.min(out.len()));
        let mut done = 0;
        while done < want {
            let at = offset + done as u64;
            let first = self.seg.format.plaintext_len(0) as u64;
            let full = self.seg.format.plaintext_len(1) as u64;
            let i = if at < first {
                0
            } else {
                1 + (at - first) / full
            };
            let within = (at - self.plaintext_start(i)) as usize;
            let seg_len = self.segment_plaintext_len(i);
            let n = (seg_len - within).min(want - done);
            let dst = &mut out[done..done + n];
            let r = if n == seg_len && self.cached != Some(i) {
                // The whole segment: straight into the caller's buffer.
                self.open_segment(i, dst)
            } else {
                self.load(i)
                    .map(|()| dst.copy_from_slice(&self.plain[within..within + n]))
            };
            if let Err(e) = r {
                out[..done].zeroize();
                return Err(e);
            }
            done += n;
        }
        Ok(done)
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

    /// Every reader over `ct`: the plain one, and the buffered one over
    /// the bytes in memory and over `BufReader`s too small and just large
    /// enough to hold a segment and a byte.
    fn readers<'a>(
        key: [u8; 32],
        format: StreamFormat,
        aad: &[u8],
        ct: &'a [u8],
    ) -> Vec<(String, Box<dyn Read + 'a>)> {
        let c = || cand(key, format);
        let mut v: Vec<(String, Box<dyn Read + 'a>)> = vec![
            (
                "reader".into(),
                Box::new(DecryptingReader::new(ct, c(), aad)),
            ),
            (
                "buf reader over a slice".into(),
                Box::new(DecryptingBufReader::new(ct, c(), aad)),
            ),
        ];
        // A BufReader too small for a segment takes the copying path, which
        // the plain reader already runs: with 1 MiB segments (costly to
        // decrypt five times over in debug builds) only the one that opens
        // segments in its buffer.
        let caps: &[usize] = match format {
            StreamFormat::AesGcmHkdf4Kb => &[7, 4096, 4097],
            _ => &[format.segment_size() + 1],
        };
        for &cap in caps {
            let r = io::BufReader::with_capacity(cap, ct);
            v.push((
                format!("buf reader over a BufReader of {cap}"),
                Box::new(DecryptingBufReader::new(r, c(), aad)),
            ));
        }
        v
    }

    /// Decrypts `ct` with every reader; they must agree (on the plaintext,
    /// or on the error's kind and message).
    fn decrypt(key: [u8; 32], format: StreamFormat, aad: &[u8], ct: &[u8]) -> Result<Vec<u8>> {
        let mut first: Option<Result<Vec<u8>>> = None;
        for (name, mut r) in readers(key, format, aad, ct) {
            let mut out = Vec::new();
            let got = r.read_to_end(&mut out).map_err(error_of).map(|_| out);
            match &first {
                None => first = Some(got),
                Some(Ok(want)) => assert!(got.as_ref().ok() == Some(want), "{name} disagrees"),
                Some(Err(want)) => {
                    let e = got.expect_err(&name);
                    assert_eq!(
                        (e.kind(), e.message()),
                        (want.kind(), want.message()),
                        "{name}"
                    );
                }
            }
        }
        first.expect("readers")
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
            for chunk in [1, 7, 4096, 3 * full + 1, n + 1] {
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
                    for len in [9, full + 1, 3 * full] {
                        let mut buf = vec![0u8; len];
                        let got = s.read_at(off as u64, &mut buf).unwrap();
                        let want = &pt[off.min(n)..(off + len).min(n)];
                        assert_eq!(&buf[..got], want, "n {n} off {off} len {len}");
                    }
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

    /// Pushes `pt` through an Encryptor in pieces of `chunk` bytes,
    /// checking each call's length against what it said it would be.
    fn push_encrypt(
        key: [u8; 32],
        f: StreamFormat,
        aad: &[u8],
        pt: &[u8],
        chunk: usize,
    ) -> Vec<u8> {
        let mut e = Encryptor::new(&key, f, aad).unwrap();
        let mut ct = Vec::new();
        for c in pt.chunks(chunk.max(1)) {
            let want = e.update_output_len(c.len()).unwrap();
            let mut out = vec![0xAA; want + 3];
            assert_eq!(
                e.update(c, &mut out).unwrap(),
                want,
                "{f:?} piece {}",
                c.len()
            );
            ct.extend_from_slice(&out[..want]);
        }
        let want = e.finish_output_len();
        let mut out = vec![0xAA; want];
        assert_eq!(e.finish(&mut out).unwrap(), want);
        ct.extend_from_slice(&out);
        ct
    }

    #[test]
    fn encryptor_writes_streams_into_buffers_the_caller_sizes() {
        for f in StreamFormat::ALL {
            let (first, full) = (f.plaintext_len(0), f.plaintext_len(1));
            for n in [0, 1, first, first + 1, first + full, first + 3 * full + 5] {
                let pt: Vec<u8> = (0..n).map(|i| (i * 13 + 1) as u8).collect();
                for chunk in [1, 4095, first, full, full + 1, 2 * full + 3, n + 1] {
                    if f == StreamFormat::AesGcmHkdf1Mb && chunk < 4095 {
                        continue;
                    }
                    let ct = push_encrypt([6; 32], f, b"x", &pt, chunk);
                    assert_eq!(f.plaintext_len_of(ct.len() as u64).unwrap(), n as u64);
                    assert!(
                        decrypt([6; 32], f, b"x", &ct).unwrap() == pt,
                        "{f:?} n {n} chunk {chunk}"
                    );
                }
            }
        }
        // Too small an output consumes nothing; after finish, Unavailable.
        let f = StreamFormat::AesGcmHkdf4Kb;
        let mut e = Encryptor::new(&[6; 32], f, b"").unwrap();
        let pt = vec![3u8; 10_000];
        let need = e.update_output_len(pt.len()).unwrap();
        assert_eq!(need, 2 * 4096, "the header and segments 0 and 1");
        let mut small = vec![0u8; need - 1];
        assert_eq!(
            e.update(&pt, &mut small).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let mut out = vec![0u8; need];
        assert_eq!(e.update(&pt, &mut out).unwrap(), need);
        let mut last = vec![0u8; e.finish_output_len()];
        assert_eq!(
            e.finish(&mut small[..0]).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        e.finish(&mut last).unwrap();
        out.extend_from_slice(&last);
        assert_eq!(decrypt([6; 32], f, b"", &out).unwrap(), pt);
        assert_eq!(
            e.update(b"", &mut []).unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            e.finish(&mut last).unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(e.update_output_len(usize::MAX), None);
    }

    /// A writer that takes `room` bytes, then fails.
    struct Failing {
        room: usize,
        got: Vec<u8>,
    }

    impl Write for Failing {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = b.len().min(self.room);
            self.room -= n;
            self.got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writer_ends_the_stream_when_its_inner_writer_fails() {
        let f = StreamFormat::AesGcmHkdf4Kb;
        let w = Failing {
            room: 5000,
            got: Vec::new(),
        };
        let mut w = EncryptingWriter::new(w, &[1; 32], f, b"").unwrap();
        let e = w.write(&[1u8; 10_000]).unwrap_err();
        assert_eq!(e.to_string(), "disk full");
        w.get_mut().room = 1 << 20;
        let again = w.write(&[1u8; 5]).unwrap_err();
        assert_eq!(error_of(again).kind(), ErrorKind::Io);
        assert_eq!(w.finish().err().map(|e| e.kind()), Some(ErrorKind::Io));
    }

    #[test]
    fn reader_fills_any_buffer_one_segment_at_most_per_read() {
        for f in StreamFormat::ALL {
            let (first, full) = (f.plaintext_len(0), f.plaintext_len(1));
            let n = first + 3 * full + 10;
            let pt: Vec<u8> = (0..n).map(|i| (i * 7 + 5) as u8).collect();
            let ct = encrypt([2; 32], f, b"", &pt, 1 << 16);
            for len in [
                1,
                100,
                first - 1,
                first,
                first + 1,
                full,
                full + 16,
                3 * full,
                n + 1,
            ] {
                for (name, mut r) in readers([2; 32], f, b"", &ct) {
                    let mut buf = vec![0u8; len];
                    let mut got = Vec::new();
                    loop {
                        let k = r.read(&mut buf).unwrap();
                        if k == 0 {
                            break;
                        }
                        assert!(k <= full, "{f:?} {name}: one read gave {k}");
                        got.extend_from_slice(&buf[..k]);
                    }
                    assert!(got == pt, "{f:?} {name} buffer {len}");
                    assert_eq!(r.read(&mut buf).unwrap(), 0);
                }
            }
        }
    }

    #[test]
    fn reader_leaves_no_plaintext_of_a_failing_segment_in_the_callers_buffer() {
        let f = StreamFormat::AesGcmHkdf4Kb;
        let pt = vec![0x5Au8; 5 * 4096];
        let mut bad = encrypt([1; 32], f, b"", &pt, 1000);
        bad[2 * 4096 + 7] ^= 1;
        for (len, (name, mut r)) in [10, 4080, 1 << 16].into_iter().flat_map(|len| {
            readers([1; 32], f, b"", &bad)
                .into_iter()
                .map(move |r| (len, r))
        }) {
            let mut got = 0;
            let err = loop {
                let mut buf = vec![0xEEu8; len];
                match r.read(&mut buf) {
                    Ok(0) => panic!("a tampered stream read to the end"),
                    Ok(k) => got += k,
                    Err(e) => {
                        assert!(buf.iter().all(|&b| b == 0 || b == 0xEE), "{name} len {len}");
                        break e;
                    }
                }
            };
            assert_eq!(
                got,
                f.plaintext_len(0) + f.plaintext_len(1),
                "{name} len {len}"
            );
            assert_eq!(error_of(err).kind(), ErrorKind::Authentication);
            let mut buf = vec![0u8; len];
            assert_eq!(
                error_of(r.read(&mut buf).unwrap_err()).kind(),
                ErrorKind::Authentication
            );
        }
    }

    /// A buffered source that counts the bytes copied out of it with
    /// `read` (the plain reader's copy), beside those borrowed with
    /// `fill_buf`/`consume`.
    struct Counting<'a> {
        data: &'a [u8],
        copied: usize,
        borrowed: usize,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.data.read(buf)?;
            self.copied += n;
            Ok(n)
        }
    }

    impl BufRead for Counting<'_> {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            Ok(self.data)
        }
        fn consume(&mut self, n: usize) {
            self.data = &self.data[n..];
            self.borrowed += n;
        }
    }

    #[test]
    fn buf_reader_copies_only_the_header_and_the_last_segment() {
        for f in StreamFormat::ALL {
            let full = f.plaintext_len(1);
            let pt: Vec<u8> = (0..f.plaintext_len(0) + 3 * full + 10)
                .map(|i| (i * 3) as u8)
                .collect();
            let ct = encrypt([4; 32], f, b"x", &pt, 1 << 16);
            let last = 10 + TAG_LEN;
            for len in [full, 3 * full, 100] {
                let src = Counting {
                    data: &ct,
                    copied: 0,
                    borrowed: 0,
                };
                // A wrong key first: its failed try consumes nothing.
                let mut c = cand([9; 32], f);
                c[0].key_id = 1;
                c.extend(cand([4; 32], f));
                let mut r = DecryptingBufReader::new(src, c, b"x");
                let mut got = Vec::new();
                let mut buf = vec![0u8; len];
                loop {
                    let k = r.read(&mut buf).unwrap();
                    if k == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..k]);
                }
                assert!(got == pt, "{f:?} len {len}");
                assert_eq!(r.key_id(), Some(7));
                let src = r.into_inner();
                assert_eq!(src.copied, HEADER_LEN + last, "{f:?} len {len}");
                assert_eq!(
                    src.borrowed,
                    ct.len() - HEADER_LEN - last,
                    "{f:?} len {len}"
                );
            }
        }
    }

    /// Every way to decrypt `ct`: the reader, the push decryptor (whole and
    /// byte by byte) and random access.
    fn kinds(f: StreamFormat, ct: &[u8]) -> [ErrorKind; 4] {
        let seek = SeekableDecryptor::new(std::io::Cursor::new(ct), cand([1; 32], f), b"")
            .and_then(|mut s| {
                let mut all = vec![0u8; s.plaintext_len() as usize];
                s.read_at(0, &mut all).map(|_| ())
            });
        [
            decrypt([1; 32], f, b"", ct).unwrap_err().kind(),
            push_decrypt(cand([1; 32], f), b"", ct, ct.len().max(1))
                .unwrap_err()
                .kind(),
            push_decrypt(cand([1; 32], f), b"", ct, 1)
                .unwrap_err()
                .kind(),
            seek.unwrap_err().kind(),
        ]
    }

    #[test]
    fn no_header_is_format_and_a_cut_last_segment_authentication() {
        use ErrorKind::{Authentication, Format};
        for f in StreamFormat::ALL {
            let ct = encrypt([1; 32], f, b"", &vec![9u8; 2 * f.segment_size()], 999);
            let empty = encrypt([1; 32], f, b"", b"", 1);
            assert_eq!(empty.len(), HEADER_LEN + TAG_LEN);
            // Fewer bytes than a header: not a stream.
            for n in [0, 1, HEADER_LEN - 1] {
                assert_eq!(kinds(f, &ct[..n]), [Format; 4], "{f:?} {n} bytes");
            }
            let mut not40 = empty.clone();
            not40[0] = 39;
            assert_eq!(kinds(f, &not40), [Format; 4]);
            // A header and less than a tag (40 to 55 bytes): a stream cut
            // short, like any other.
            for n in [HEADER_LEN, HEADER_LEN + 1, HEADER_LEN + TAG_LEN - 1] {
                assert_eq!(
                    kinds(f, &empty[..n]),
                    [Authentication; 4],
                    "{f:?} {n} bytes"
                );
                assert_eq!(f.plaintext_len_of(n as u64).unwrap_err().kind(), Format);
            }
            // A last segment shorter than its tag.
            let last = ct.len() - (ct.len() - 1) % f.segment_size() - 1;
            for keep in [1, 15] {
                let cut = &ct[..last + keep];
                assert_eq!(
                    kinds(f, cut),
                    [Authentication; 4],
                    "{f:?} last segment {keep} bytes"
                );
                assert_eq!(
                    f.plaintext_len_of(cut.len() as u64).unwrap_err().kind(),
                    Format
                );
            }
        }
    }

    #[test]
    fn read_at_fills_the_request_and_wipes_it_on_failure() {
        let f = StreamFormat::AesGcmHkdf4Kb;
        let (first, full) = (f.plaintext_len(0), f.plaintext_len(1));
        let n = first + 6 * full + 100;
        let pt: Vec<u8> = (0..n).map(|i| (i % 251) as u8 | 1).collect();
        let ct = encrypt([1; 32], f, b"", &pt, 5000);
        let mut s =
            SeekableDecryptor::new(std::io::Cursor::new(&ct), cand([1; 32], f), b"").unwrap();
        for (off, len) in [
            (0, n),
            (0, first),
            (1, first),
            (first, full),
            (first - 3, 2 * full + 6),
            (first + full + 9, 4 * full),
            (n - 5, 100),
            (n as u64 as usize, 10),
        ] {
            let mut buf = vec![0u8; len];
            let got = s.read_at(off as u64, &mut buf).unwrap();
            assert_eq!(
                &buf[..got],
                &pt[off.min(n)..(off + len).min(n)],
                "off {off} len {len}"
            );
        }
        // Read through Read + Seek: whole segments in one call.
        s.seek(SeekFrom::Start(5)).unwrap();
        let mut buf = vec![0u8; 3 * full];
        assert_eq!(s.read(&mut buf).unwrap(), 3 * full);
        assert_eq!(&buf[..], &pt[5..5 + 3 * full]);
        // Segment 3 tampered: a read over it fails and returns none of the
        // segments before it either; other ranges still read.
        let mut bad = ct.clone();
        bad[3 * 4096 + 100] ^= 1;
        let mut s =
            SeekableDecryptor::new(std::io::Cursor::new(&bad), cand([1; 32], f), b"").unwrap();
        for (off, len) in [(0, n), (first + 10, 2 * full), (first + 2 * full, full)] {
            let mut buf = vec![0xEEu8; len];
            let e = s.read_at(off as u64, &mut buf).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Authentication);
            assert!(
                buf.iter().all(|&b| b == 0 || b == 0xEE),
                "off {off} len {len}"
            );
        }
        let mut buf = vec![0u8; first + full];
        assert_eq!(s.read_at(0, &mut buf).unwrap(), first + full);
        assert_eq!(&buf[..], &pt[..first + full]);
    }
}
