//! Bytes in (any bytes-like object) and bytes out (new `bytes` objects).

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};
use zeroize::Zeroizing;

use crate::errors::{call, raise};

/// Payloads larger than this many bytes are processed with the interpreter
/// released (the GIL dropped), so other Python threads run meanwhile.
pub(crate) const DETACH_ABOVE: usize = 4096;

/// A bytes-like argument: `bytes`, `bytearray`, `memoryview` or any other
/// object with the buffer protocol.
///
/// - `bytes` is immutable: it is read in place, with no copy, even while
///   the interpreter is released.
/// - `bytearray` may be resized by another thread while keystrata works,
///   so it is copied first, into a buffer keystrata wipes after the call.
/// - Other buffers (`memoryview`, `array.array`, `mmap`, …) are read through
///   `memoryview(obj).tobytes()`: the limited C API of CPython 3.9, which
///   the abi3 wheel targets, has no direct access to a foreign buffer.
pub(crate) enum BytesIn<'a, 'py> {
    Borrowed(&'a [u8]),
    Copied(Zeroizing<Vec<u8>>),
    Temporary(Bound<'py, PyBytes>),
}

impl BytesIn<'_, '_> {
    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            BytesIn::Borrowed(b) => b,
            BytesIn::Copied(v) => v,
            BytesIn::Temporary(b) => b.as_bytes(),
        }
    }
}

impl<'a> From<&'a [u8]> for BytesIn<'a, '_> {
    /// For default arguments (`b""`).
    fn from(b: &'a [u8]) -> Self {
        BytesIn::Borrowed(b)
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for BytesIn<'a, 'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(b) = <&'a [u8] as FromPyObject<'a, 'py>>::extract(obj) {
            return Ok(BytesIn::Borrowed(b));
        }
        if let Ok(ba) = obj.cast::<PyByteArray>() {
            return Ok(BytesIn::Copied(Zeroizing::new(ba.to_vec())));
        }
        if obj.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "expected a bytes-like object (bytes, bytearray, memoryview), not str; \
                 encode it first",
            ));
        }
        match PyMemoryView::from(&obj) {
            Ok(view) => Ok(BytesIn::Temporary(
                view.call_method0(pyo3::intern!(obj.py(), "tobytes"))?
                    .cast_into::<PyBytes>()?,
            )),
            Err(_) => Err(PyTypeError::new_err(format!(
                "expected a bytes-like object (bytes, bytearray, memoryview), not {}",
                type_name(&obj)
            ))),
        }
    }
}

/// A `str` (used as its UTF-8 bytes) or a bytes-like object.
pub(crate) enum TextOrBytes<'a, 'py> {
    Text(String),
    Bytes(BytesIn<'a, 'py>),
}

impl TextOrBytes<'_, '_> {
    /// The bytes (UTF-8 for a `str`).
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            TextOrBytes::Text(s) => s.as_bytes(),
            TextOrBytes::Bytes(b) => b.as_slice(),
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for TextOrBytes<'a, 'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(TextOrBytes::Text(s.to_cow()?.into_owned()));
        }
        BytesIn::extract(obj).map(TextOrBytes::Bytes).map_err(|_| {
            PyTypeError::new_err(format!(
                "expected str or a bytes-like object, not {}",
                type_name(&obj)
            ))
        })
    }
}

impl TextOrBytes<'_, '_> {
    /// The text, for an argument the core reads as text (minisign keys and
    /// signatures, which `Keychain.public_key` hands out as bytes): a
    /// `str` as it is, bytes if they are UTF-8. Other bytes cannot be what
    /// the core expects: `FormatError` saying `what` is not UTF-8 text.
    pub(crate) fn as_text(&self, what: &str) -> PyResult<&str> {
        match self {
            TextOrBytes::Text(s) => Ok(s),
            TextOrBytes::Bytes(b) => std::str::from_utf8(b.as_slice()).map_err(|_| {
                raise(keystrata::Error::new(
                    keystrata::ErrorKind::Format,
                    format!("{what} is not UTF-8 text"),
                ))
            }),
        }
    }
}

/// A secret argument such as a password: a `str` (used as UTF-8) or a
/// bytes-like object. Never echoed in messages. Keystrata's own copy (the
/// UTF-8 of a `str`, the copy of a `bytearray`) is wiped after the call;
/// the caller's object is outside its reach.
pub(crate) enum SecretIn<'a, 'py> {
    Text(Zeroizing<String>),
    Bytes(BytesIn<'a, 'py>),
}

impl SecretIn<'_, '_> {
    /// The bytes (UTF-8 for a `str`).
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            SecretIn::Text(s) => s.as_bytes(),
            SecretIn::Bytes(b) => b.as_slice(),
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for SecretIn<'a, 'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(SecretIn::Text(Zeroizing::new(s.to_cow()?.into_owned())));
        }
        BytesIn::extract(obj).map(SecretIn::Bytes).map_err(|_| {
            PyTypeError::new_err(format!(
                "expected str or a bytes-like object, not {}",
                type_name(&obj)
            ))
        })
    }
}

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an object of unknown type".to_owned())
}

/// A new `bytes` object holding `data` (for outputs the core returns as a
/// `Vec`: saved keychains, envelopes' ciphertexts). Payloads (seal, unseal,
/// encrypt, decrypt) are written by the core straight into the new object
/// with [`payload_out`] instead.
pub(crate) fn bytes_out<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, data)
}

/// A new `bytes` object holding secret key material. The material is copied
/// into the object; the core's copy is wiped when `secret` drops here, but
/// the Python copy is outside keystrata's zeroization.
pub(crate) fn secret_out(py: Python<'_>, secret: keystrata::SecretBytes) -> Bound<'_, PyBytes> {
    PyBytes::new(py, secret.expose_secret())
}

/// A new `bytes` object of `len` bytes written by `fill` (a core `*_to`
/// call), with the interpreter released during `fill` when `detach`.
///
/// Small payloads use `PyBytes::new_with`: zeroed, then filled, all with the
/// interpreter held. For large ones (`detach`) only the allocation holds it:
/// the object is made uninitialised, then zeroed and filled with the
/// interpreter released, so other Python threads run during all the
/// per-byte work (measured: zeroing 1 MiB costs about as much as a quarter
/// of sealing it, and under the GIL it capped 2-thread seal of 64 KiB at
/// 1.5x of 1 thread). The object is unreachable from Python until returned.
#[allow(unsafe_code)]
pub(crate) fn payload_out<'py, F>(
    py: Python<'py>,
    len: usize,
    detach: bool,
    fill: F,
) -> PyResult<Bound<'py, PyBytes>>
where
    F: FnOnce(&mut [u8]) -> keystrata::Result<()> + Send,
{
    if !detach {
        return PyBytes::new_with(py, len, |out| call(py, false, || fill(out)));
    }
    let n = pyo3::ffi::Py_ssize_t::try_from(len)
        .map_err(|_| PyOverflowError::new_err("output too large"))?;
    // SAFETY: with a NULL source, PyBytes_FromStringAndSize returns a new
    // bytes object of `n` uninitialised bytes (or NULL with an exception
    // set, which from_owned_ptr_or_err turns into the error).
    let obj = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), n),
        )?
    };
    let obj = obj.cast_into::<PyBytes>()?;
    // SAFETY: `obj` is a bytes object; its buffer holds `len` bytes (plus a
    // NUL) and lives as long as `obj`, which outlives the call below.
    let buf = unsafe { pyo3::ffi::PyBytes_AsString(obj.as_ptr()) } as usize;
    call(py, true, move || {
        let p = buf as *mut u8;
        // SAFETY: `p` points at `len` writable bytes that nothing else can
        // reach (the object is not yet returned to Python); they are zeroed
        // before the slice exists, so it never shows uninitialised memory.
        let out = unsafe {
            std::ptr::write_bytes(p, 0, len);
            std::slice::from_raw_parts_mut(p, len)
        };
        fill(out)
    })?;
    Ok(obj)
}
