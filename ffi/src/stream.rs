//! Streaming encryption (Tink's AES-GCM-HKDF streaming AEAD) through the C
//! ABI: keys of purpose stream, an encryptor and a push-style decryptor.
//! The rules (segment layout, key trial, what a call returns) are the
//! core's (core/src/stream.rs); this file translates and sizes outputs.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{Mutex, MutexGuard, OnceLock};

use keystrata::stream::{Decryptor, Encryptor, SeekableDecryptor};
use keystrata::StreamFormat;

use crate::keychain::{ks_key_info, ks_keychain};
use crate::sign::put_key_info;
use crate::*;

/// A streaming format (passed as uint32_t; the core's StreamFormat codes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ks_stream_format {
    /// Tink's AES256_GCM_HKDF_4KB: 4096-byte ciphertext segments.
    KS_STREAM_AES256_GCM_HKDF_4KB = 1,
    /// Tink's AES256_GCM_HKDF_1MB: 1 MiB ciphertext segments (the better
    /// choice for anything but small records).
    KS_STREAM_AES256_GCM_HKDF_1MB = 2,
}

fn stream_format_from_c(f: u32) -> FfiResult<StreamFormat> {
    StreamFormat::from_code(f).ok_or_else(|| {
        FfiError::invalid(format!(
            "{f} is not a ks_stream_format (KS_STREAM_AES256_GCM_HKDF_4KB or _1MB)"
        ))
    })
}

/// The name of a streaming format (a ks_stream_format value, passed as int),
/// the same in every language: "aes256-gcm-hkdf-4kb", "aes256-gcm-hkdf-1mb";
/// NULL for a number this library does not know. Static storage.
#[no_mangle]
pub extern "C" fn ks_stream_format_name(format: c_int) -> *const c_char {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    guard_value(std::ptr::null(), || {
        let all: Vec<&str> = StreamFormat::ALL.iter().map(|f| f.name()).collect();
        let code = u32::try_from(format)
            .ok()
            .filter(|&c| StreamFormat::from_code(c).is_some());
        name_at(c_names(&NAMES, &all), code)
    })
}

/// Makes a new streaming key of `format` (a ks_stream_format value) the
/// streaming primary, which ks_stream_encryptor_new uses from now on; older
/// streaming keys stay enabled, so their streams keep decrypting. Writes its
/// info to `*out` unless `out` is NULL. A bound keychain writes its file
/// first. Errors: KS_ERR_INVALID_INPUT (unknown format), KS_ERR_UNAVAILABLE
/// (closed), and those of writing a bound keychain.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_rotate_streaming(
    kc: *mut ks_keychain,
    format: u32,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let info = kc.inner.rotate_streaming(stream_format_from_c(format)?)?;
        unsafe { put_key_info(out, &info) };
        Ok(())
    })
}

/// Adds an enabled streaming key of `format` that is not primary (roll it
/// out to every reader, then ks_keychain_promote it). As
/// ks_keychain_rotate_streaming otherwise.
#[no_mangle]
pub unsafe extern "C" fn ks_keychain_add_stream_key(
    kc: *mut ks_keychain,
    format: u32,
    out: *mut ks_key_info,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let info = kc.inner.add_stream_key(stream_format_from_c(format)?)?;
        unsafe { put_key_info(out, &info) };
        Ok(())
    })
}

/// The mutex of a stream handle; a panic in an earlier call poisons it.
fn lock<T>(m: &Mutex<T>) -> FfiResult<MutexGuard<'_, T>> {
    m.lock().map_err(|_| {
        FfiError::new(
            ks_status::KS_ERR_INTERNAL,
            "Internal: an earlier call on this stream handle panicked",
        )
    })
}

/// Encrypts one stream, a piece at a time, under the keychain's streaming
/// primary: ks_stream_encrypt_update for each piece of plaintext,
/// ks_stream_encrypt_finish once at the end (without it the stream does
/// not decrypt: it reads as truncated). Create with
/// ks_stream_encryptor_new; release with ks_stream_encryptor_free.
/// Memory stays O(segment) whatever the stream's size.
///
/// It holds its own segment key: it does not use the keychain after
/// ks_stream_encryptor_new, and keeps working after the keychain is closed
/// or freed.
///
/// Thread safety: may move between threads; calls on one encryptor are
/// serialized internally (never a crash), but a stream is one sequence, so
/// feed it from one thread at a time. Only ks_stream_encryptor_free must
/// not race with another call on it.
pub struct ks_stream_encryptor {
    inner: Mutex<Encryptor>,
}

/// Starts a stream under the streaming primary bound to `aad` (`aad_len`
/// bytes; the same aad is needed to decrypt) and writes a new encryptor to
/// `*out`. Errors: KS_ERR_UNKNOWN_KEY (no streaming key yet:
/// ks_keychain_rotate_streaming first), KS_ERR_UNAVAILABLE (closed).
#[no_mangle]
pub unsafe extern "C" fn ks_stream_encryptor_new(
    kc: *const ks_keychain,
    aad: *const u8,
    aad_len: usize,
    out: *mut *mut ks_stream_encryptor,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let aad = unsafe { bytes(aad, aad_len, "aad")? };
        let out = out_ptr(out, "out")?;
        let e = kc.inner.stream_encryptor(aad)?;
        let enc = ks_stream_encryptor {
            inner: Mutex::new(e),
        };
        unsafe { put_handle(out, enc) };
        Ok(())
    })
}

/// Encrypts `input_len` bytes at `input` and writes the ciphertext this call
/// produces (the header and the segments the data completes; a full
/// segment is held back until more data or finish shows whether it is the
/// last) to `out` (room for `cap` bytes), its length to `*out_len`. The
/// length depends only on `input_len` and what came before: `out` NULL reports
/// it exactly, without consuming anything; so does KS_ERR_BUFFER_TOO_SMALL.
/// Refused arguments (NULL, a capacity out of range, `out` overlapping
/// `input`: KS_ERR_NULL_ARGUMENT, KS_ERR_INVALID_INPUT) consume nothing
/// either; an error while encrypting ends the stream: every later call
/// returns it. Errors: KS_ERR_UNAVAILABLE (finished), KS_ERR_POLICY (2^32
/// segments).
#[no_mangle]
pub unsafe extern "C" fn ks_stream_encrypt_update(
    enc: *mut ks_stream_encryptor,
    input: *const u8,
    input_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let enc = unsafe { handle(enc, "enc")? };
        let data = unsafe { bytes(input, input_len, "input")? };
        let dst = SizedOut::new(out, cap, out_len, "out")?;
        let mut e = lock(&enc.inner)?;
        e.check()?;
        let need = e
            .update_output_len(data.len())
            .ok_or_else(|| FfiError::invalid("input_len is out of range"))?;
        let Some(buf) = (unsafe { dst.slice(need, &[(input, data.len())])? }) else {
            dst.set_len(need);
            return Ok(());
        };
        // Segments are sealed straight into the caller's buffer.
        let n = e.update(data, buf)?;
        dst.set_len(n);
        Ok(())
    })
}

/// Ends the stream: writes its last segment (and the header, for a stream
/// given no data at all) to `out` (room for `cap` bytes), its length to
/// `*out_len`; `out` NULL reports that length exactly. After success every
/// call on the encryptor fails with KS_ERR_UNAVAILABLE; release it with
/// ks_stream_encryptor_free.
#[no_mangle]
pub unsafe extern "C" fn ks_stream_encrypt_finish(
    enc: *mut ks_stream_encryptor,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let enc = unsafe { handle(enc, "enc")? };
        let dst = SizedOut::new(out, cap, out_len, "out")?;
        let mut e = lock(&enc.inner)?;
        e.check()?;
        let need = e.finish_output_len();
        let Some(buf) = (unsafe { dst.slice(need, &[])? }) else {
            dst.set_len(need);
            return Ok(());
        };
        let n = e.finish(buf)?;
        dst.set_len(n);
        Ok(())
    })
}

/// Releases an encryptor and wipes its key and buffered plaintext. NULL is
/// a no-op. An unfinished stream stays unfinished (it does not decrypt).
#[no_mangle]
pub unsafe extern "C" fn ks_stream_encryptor_free(enc: *mut ks_stream_encryptor) {
    // SAFETY: NULL or a handle from put_handle, freed once (the contract).
    guard_value((), || unsafe { free_handle(enc) })
}

/// Decrypts one stream pushed to it a piece at a time (bytes from a socket,
/// a file read in chunks): ks_stream_decrypt_update for each piece,
/// ks_stream_decrypt_finish at the end of the input. Create with
/// ks_stream_decryptor_new; release with ks_stream_decryptor_free. The
/// stream does not name its key: each enabled streaming key of the keychain
/// is tried on the first segment, primary first (as Tink does). No
/// plaintext of a segment is returned before its tag checks. Memory stays
/// O(segment).
///
/// It holds the keys it may need: it does not use the keychain after
/// ks_stream_decryptor_new.
///
/// Thread safety: as ks_stream_encryptor.
pub struct ks_stream_decryptor {
    inner: Mutex<Decryptor>,
}

/// Starts decrypting a stream bound to `aad` with the keychain's enabled
/// streaming keys, and writes a new decryptor to `*out`. Errors:
/// KS_ERR_UNKNOWN_KEY (no enabled streaming key), KS_ERR_UNAVAILABLE
/// (closed).
#[no_mangle]
pub unsafe extern "C" fn ks_stream_decryptor_new(
    kc: *const ks_keychain,
    aad: *const u8,
    aad_len: usize,
    out: *mut *mut ks_stream_decryptor,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let aad = unsafe { bytes(aad, aad_len, "aad")? };
        let out = out_ptr(out, "out")?;
        let d = kc.inner.stream_decryptor(aad)?;
        let dec = ks_stream_decryptor {
            inner: Mutex::new(d),
        };
        unsafe { put_handle(out, dec) };
        Ok(())
    })
}

/// Pushes `input_len` bytes at `input` and writes the plaintext of every segment
/// now complete and known not to be the last (more bytes follow it) to
/// `out` (room for `cap` bytes), its length to `*out_len`; the rest stays
/// buffered until more bytes or ks_stream_decrypt_finish.
///
/// Sizing: `cap >= input_len + ks_stream_decryptor_buffered(dec)` always
/// suffices. `out` NULL reports, without consuming anything, exactly what
/// this call returns if it succeeds when that is known (the stream's key
/// was found, or every enabled streaming key has the same format), and
/// otherwise that bound; a `cap` below the number reported gives
/// KS_ERR_BUFFER_TOO_SMALL with it in `*out_len`, consuming nothing.
/// `out` must not overlap `input`.
///
/// On failure nothing is returned (bytes of `out` this call wrote are
/// wiped to zero) and every later call, queries included, returns the same
/// error. Errors: KS_ERR_AUTHENTICATION (wrong key or aad, tampered,
/// reordered: says nothing more), KS_ERR_FORMAT (not a stream's header),
/// KS_ERR_UNAVAILABLE (finished).
#[no_mangle]
pub unsafe extern "C" fn ks_stream_decrypt_update(
    dec: *mut ks_stream_decryptor,
    input: *const u8,
    input_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let dec = unsafe { handle(dec, "dec")? };
        let data = unsafe { bytes(input, input_len, "input")? };
        let dst = SizedOut::new(out, cap, out_len, "out")?;
        let mut d = lock(&dec.inner)?;
        d.check()?;
        let need = d.update_output_bound(data.len());
        let Some(buf) = (unsafe { dst.slice(need, &[(input, data.len())])? }) else {
            dst.set_len(need);
            return Ok(());
        };
        let n = d.update(data, buf)?;
        dst.set_len(n);
        Ok(())
    })
}

/// Ends the input: checks and writes the last segment's plaintext to `out`
/// (room for `cap` bytes), its length to `*out_len`; `out` NULL reports
/// that length exactly (what is buffered, less the 16-byte tag). A stream
/// cut short, even exactly at a segment boundary, fails with
/// KS_ERR_AUTHENTICATION; one shorter than its 40-byte header with
/// KS_ERR_FORMAT. After success every call fails with KS_ERR_UNAVAILABLE;
/// after a failure, every call returns that failure.
#[no_mangle]
pub unsafe extern "C" fn ks_stream_decrypt_finish(
    dec: *mut ks_stream_decryptor,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let dec = unsafe { handle(dec, "dec")? };
        let dst = SizedOut::new(out, cap, out_len, "out")?;
        let mut d = lock(&dec.inner)?;
        d.check()?;
        let need = d.finish_output_len();
        let Some(buf) = (unsafe { dst.slice(need, &[])? }) else {
            dst.set_len(need);
            return Ok(());
        };
        let n = d.finish(buf)?;
        dst.set_len(n);
        Ok(())
    })
}

/// The number of bytes pushed to `dec` and not yet decrypted (at most a
/// segment and its header); 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn ks_stream_decryptor_buffered(dec: *const ks_stream_decryptor) -> usize {
    guard_value(0, || {
        // SAFETY: NULL or a live handle (the contract).
        match unsafe { dec.as_ref() } {
            Some(d) => d.inner.lock().map_or(0, |d| d.buffered()),
            None => 0,
        }
    })
}

/// Releases a decryptor and wipes its keys. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn ks_stream_decryptor_free(dec: *mut ks_stream_decryptor) {
    // SAFETY: NULL or a handle from put_handle, freed once (the contract).
    guard_value((), || unsafe { free_handle(dec) })
}

// ---------------------------------------------------------------------
// Random access
// ---------------------------------------------------------------------

/// Reads the stored stream for ks_stream_seekable: up to `len` bytes at
/// byte `offset` of the ciphertext into `buf`, the number read in `*out_n`
/// (fewer only at the end). Return 0 on success, anything else for an I/O
/// failure (the call in progress fails with KS_ERR_IO). `buf` is valid only
/// during the call; the callback runs on the thread of the ks_ call that
/// needs the bytes, one call at a time per handle.
pub type ks_stream_read_at_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        offset: u64,
        buf: *mut u8,
        len: usize,
        out_n: *mut usize,
    ) -> c_int,
>;

/// The stored stream, read through the caller's callback.
struct CallbackSource {
    read_at: unsafe extern "C" fn(*mut c_void, u64, *mut u8, usize, *mut usize) -> c_int,
    user_data: *mut c_void,
    size: u64,
    pos: u64,
}

impl std::io::Read for CallbackSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.size.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let mut n = 0usize;
        // SAFETY: the callback the caller gave, with a buffer of `want`
        // writable bytes valid for the call.
        let rc =
            unsafe { (self.read_at)(self.user_data, self.pos, buf.as_mut_ptr(), want, &mut n) };
        if rc != 0 {
            return Err(std::io::Error::other("the read_at callback failed"));
        }
        if n > want {
            return Err(std::io::Error::other(
                "the read_at callback reported more bytes than asked",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for CallbackSource {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => self.size.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}

/// Random access to a stored stream: any range of the plaintext, decrypting
/// (and checking) only the segments a read touches. The ciphertext is read
/// through a ks_stream_read_at_fn. Create with ks_stream_seekable_new;
/// release with ks_stream_seekable_free.
///
/// Thread safety: may move between threads; calls on one handle are
/// serialized internally (so are its callbacks). Only
/// ks_stream_seekable_free must not race with another call on it.
pub struct ks_stream_seekable {
    inner: Mutex<SeekableDecryptor<CallbackSource>>,
}

/// Opens the stream of `size` bytes that `read_at` reads (`user_data` is
/// passed to it and must stay valid until ks_stream_seekable_free), made
/// under one of the keychain's enabled streaming keys with `aad`: reads
/// the header and the first segment now, to find the key. Errors:
/// KS_ERR_AUTHENTICATION (no key opens it, wrong aad, tampered),
/// KS_ERR_FORMAT (not a stream's header or length), KS_ERR_UNKNOWN_KEY (no
/// enabled streaming key), KS_ERR_IO (the callback failed),
/// KS_ERR_UNAVAILABLE (closed).
#[no_mangle]
pub unsafe extern "C" fn ks_stream_seekable_new(
    kc: *const ks_keychain,
    aad: *const u8,
    aad_len: usize,
    read_at: ks_stream_read_at_fn,
    user_data: *mut c_void,
    size: u64,
    out: *mut *mut ks_stream_seekable,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let kc = unsafe { handle(kc, "kc")? };
        let aad = unsafe { bytes(aad, aad_len, "aad")? };
        let read_at = read_at.ok_or_else(|| FfiError::null("read_at"))?;
        let out = out_ptr(out, "out")?;
        let src = CallbackSource {
            read_at,
            user_data,
            size,
            pos: 0,
        };
        let s = kc.inner.seekable_decryptor(src, aad)?;
        unsafe {
            put_handle(
                out,
                ks_stream_seekable {
                    inner: Mutex::new(s),
                },
            )
        };
        Ok(())
    })
}

/// Writes the plaintext's length to `*out`.
#[no_mangle]
pub unsafe extern "C" fn ks_stream_seekable_plaintext_len(
    s: *const ks_stream_seekable,
    out: *mut u64,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let s = unsafe { handle(s, "s")? };
        let out = out_ptr(out, "out")?;
        let n = lock(&s.inner)?.plaintext_len();
        unsafe { put(out, n) };
        Ok(())
    })
}

/// Reads plaintext from byte `offset` into `out` (room for `cap` bytes):
/// as much as fits, fewer only at the end of the plaintext (0 at or past
/// it), the number in `*out_len`. Only the segments the range touches are
/// read and checked; a segment that does not check fails the call with
/// KS_ERR_AUTHENTICATION and nothing is returned (bytes of `out` written
/// are wiped). Other ranges stay readable. `out` may be NULL only when
/// `cap` is 0. Errors: KS_ERR_AUTHENTICATION, KS_ERR_IO (the callback
/// failed).
#[no_mangle]
pub unsafe extern "C" fn ks_stream_seekable_read_at(
    s: *const ks_stream_seekable,
    offset: u64,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut ks_error,
) -> ks_status {
    guard(err, || {
        let s = unsafe { handle(s, "s")? };
        let out_len = out_ptr(out_len, "out_len")?;
        if cap == 0 {
            unsafe { put(out_len, 0) };
            return Ok(());
        }
        if out.is_null() {
            return Err(FfiError::null("out"));
        }
        if cap > isize::MAX as usize {
            return Err(FfiError::invalid(format!(
                "out: capacity {cap} is out of range"
            )));
        }
        // SAFETY: non-NULL, `cap` writable bytes for the call (the contract).
        let dst = unsafe { std::slice::from_raw_parts_mut(out, cap) };
        // The core fills the request and wipes what it wrote on failure.
        let n = lock(&s.inner)?.read_at(offset, dst)?;
        unsafe { put(out_len, n) };
        Ok(())
    })
}

/// Releases a ks_stream_seekable and wipes its key and cached plaintext;
/// `read_at` is not called again. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn ks_stream_seekable_free(s: *mut ks_stream_seekable) {
    // SAFETY: NULL or a handle from put_handle, freed once (the contract).
    guard_value((), || unsafe { free_handle(s) })
}

#[cfg(test)]
mod table_tests {
    use super::*;

    /// The C numbers are the core's codes, for every format the core has.
    #[test]
    fn stream_formats_are_the_core_codes() {
        use ks_stream_format::*;
        for (c, f) in [
            (KS_STREAM_AES256_GCM_HKDF_4KB, StreamFormat::AesGcmHkdf4Kb),
            (KS_STREAM_AES256_GCM_HKDF_1MB, StreamFormat::AesGcmHkdf1Mb),
        ] {
            assert_eq!(c as u32, f.code());
            assert_eq!(stream_format_from_c(c as u32).ok(), Some(f));
        }
        assert_eq!(StreamFormat::ALL.len(), 2);
        for f in StreamFormat::ALL {
            let name =
                unsafe { std::ffi::CStr::from_ptr(ks_stream_format_name(f.code() as c_int)) };
            assert_eq!(name.to_str().ok(), Some(f.name()));
        }
        for bad in [-1, 0, 3, c_int::MAX] {
            assert!(ks_stream_format_name(bad).is_null());
        }
        for bad in [0, 3, u32::MAX] {
            assert!(stream_format_from_c(bad).is_err());
        }
    }
}
