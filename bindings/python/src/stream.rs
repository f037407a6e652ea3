//! Streaming encryption as Python file objects: `EncryptingWriter`,
//! `DecryptingReader` and `SeekableDecryptor` (docs/STREAMING.md).
//!
//! The format, the segmenting, what "finished" and "truncated" mean, all
//! stay in the core (`keystrata::stream`). This file only translates: a
//! Python file object becomes a Rust `Read`/`Write`/`Seek` ([`PyFile`]),
//! the core's stream types sit behind a mutex in frozen pyclasses, and
//! errors come back as the core's exception classes or, when the caller's
//! file object raised, as that very exception.
//!
//! The interpreter: big reads and writes run with it released (the
//! segment encryption is the work), and [`PyFile`] attaches again only
//! around each call into the Python file object. The state mutex is
//! therefore taken without the interpreter held whenever it may have to
//! wait, so a thread holding the mutex can always get the interpreter
//! back.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use keystrata::stream::{error_of, DecryptingReader, EncryptingWriter, SeekableDecryptor};
use keystrata::{ErrorKind, StreamFormat};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PySlice, PyTuple, PyType};
use zeroize::Zeroizing;

use crate::buf::{type_name, BytesIn, DETACH_ABOVE};
use crate::errors::{invalid, raise};

/// A stream format from its name (`StreamFormat::from_name`, the one
/// table); `InvalidInputError` naming the valid ones otherwise.
pub(crate) fn stream_format_from(name: &str) -> PyResult<StreamFormat> {
    StreamFormat::from_name(name).ok_or_else(|| {
        let names: Vec<String> = StreamFormat::ALL
            .iter()
            .map(|f| format!("{:?}", f.name()))
            .collect();
        invalid(format!(
            "format must be {}, not {name:?}",
            names.join(" or ")
        ))
    })
}

/// Where a [`PyFile`] keeps the exception its Python object raised, so the
/// binding re-raises that exception rather than the core's `Io` error that
/// carried it through the core (which keeps only a message).
#[derive(Clone, Default)]
struct PyErrSlot(Arc<Mutex<Option<PyErr>>>);

impl PyErrSlot {
    /// Keeps `e` and returns the `io::Error` the core sees.
    fn keep(&self, e: PyErr) -> io::Error {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        io::Error::other("the Python file object raised an exception")
    }

    fn take(&self) -> Option<PyErr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A Python file object as a Rust `Read`, `Write` and `Seek`: each call
/// attaches to the interpreter and calls `read(n)` (or `readinto(b)`, see
/// [`prefers_readinto`]), `write(b)`, `flush()` or `seek(offset, whence)`.
/// A Python exception is kept in the slot.
struct PyFile {
    obj: Py<PyAny>,
    err: PyErrSlot,
    /// Read with `readinto` into `scratch` (a bytearray reused from call
    /// to call) rather than with `read`, which makes a new `bytes` each
    /// time.
    readinto: bool,
    scratch: Option<Py<PyByteArray>>,
}

/// Whether to read `obj` with `readinto`: when the most derived class in
/// its type's MRO that defines `read` or `readinto` defines `readinto`. So
/// `io.BytesIO`, files and buffered readers are read with `readinto`, but a
/// subclass that overrides only `read` (of `io.BytesIO`, say, or of
/// `io.RawIOBase`, whose own `readinto` is not implemented) keeps its
/// `read`, and an object without either in its class (a proxy) is read
/// with `read`.
fn prefers_readinto(obj: &Bound<'_, PyAny>) -> bool {
    let py = obj.py();
    let Ok(mro) = obj.get_type().getattr(pyo3::intern!(py, "__mro__")) else {
        return false;
    };
    let Ok(mro) = mro.try_iter() else {
        return false;
    };
    for cls in mro.flatten() {
        let Ok(cls) = cls.cast_into::<PyType>() else {
            continue;
        };
        let Ok(dict) = cls.getattr(pyo3::intern!(py, "__dict__")) else {
            continue;
        };
        let defines =
            |name: &Bound<'_, pyo3::types::PyString>| dict.contains(name).unwrap_or(false);
        let readinto = defines(pyo3::intern!(py, "readinto"));
        if readinto || defines(pyo3::intern!(py, "read")) {
            return readinto;
        }
    }
    false
}

impl PyFile {
    /// Checks that `obj` has the `methods` (`TypeError` otherwise).
    fn new(obj: &Bound<'_, PyAny>, methods: &[&str], what: &str) -> PyResult<(PyFile, PyErrSlot)> {
        for m in methods {
            if !obj.hasattr(*m)? {
                return Err(PyTypeError::new_err(format!(
                    "fileobj must be {what} (with a {m}() method), not {}",
                    type_name(obj)
                )));
            }
        }
        let err = PyErrSlot::default();
        Ok((
            PyFile {
                obj: obj.clone().unbind(),
                err: err.clone(),
                readinto: methods.contains(&"read") && prefers_readinto(obj),
                scratch: None,
            },
            err,
        ))
    }

    fn wrong(&self, msg: String) -> io::Error {
        self.err.keep(PyTypeError::new_err(msg))
    }
}

impl Write for PyFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Python::attach(|py| {
            let r = self
                .obj
                .bind(py)
                .call_method1(pyo3::intern!(py, "write"), (PyBytes::new(py, data),));
            match r {
                Err(e) => Err(self.err.keep(e)),
                // Many writers return None for "all of it".
                Ok(n) if n.is_none() => Ok(data.len()),
                Ok(n) => match n.extract::<usize>() {
                    Ok(n) if n <= data.len() => Ok(n),
                    _ => Err(self.wrong(format!(
                        "fileobj.write() returned {}, not a count of at most {} bytes",
                        n.repr().map_or_else(|_| "?".to_owned(), |s| s.to_string()),
                        data.len()
                    ))),
                },
            }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Python::attach(|py| {
            let obj = self.obj.bind(py);
            match obj.hasattr(pyo3::intern!(py, "flush")) {
                Ok(false) => Ok(()),
                Ok(true) => obj
                    .call_method0(pyo3::intern!(py, "flush"))
                    .map(|_| ())
                    .map_err(|e| self.err.keep(e)),
                Err(e) => Err(self.err.keep(e)),
            }
        })
    }
}

impl Read for PyFile {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        Python::attach(|py| {
            if self.readinto {
                self.read_into(py, out)
            } else {
                self.read_bytes(py, out)
            }
        })
    }
}

impl PyFile {
    /// `fileobj.read(n)`, copied into `out`.
    fn read_bytes(&mut self, py: Python<'_>, out: &mut [u8]) -> io::Result<usize> {
        let r = self
            .obj
            .bind(py)
            .call_method1(pyo3::intern!(py, "read"), (out.len(),))
            .map_err(|e| self.err.keep(e))?;
        if r.is_none() {
            return Err(self.non_blocking("read"));
        }
        let got = r
            .extract::<BytesIn<'_, '_>>()
            .map_err(|e| self.err.keep(e))?;
        let got = got.as_slice();
        if got.len() > out.len() {
            return Err(self.wrong(format!(
                "fileobj.read({}) returned {} bytes",
                out.len(),
                got.len()
            )));
        }
        out[..got.len()].copy_from_slice(got);
        Ok(got.len())
    }

    /// `fileobj.readinto(view)` with a view of the first `out.len()` bytes
    /// of the scratch bytearray, then copied into `out`: no new object per
    /// call but the view.
    fn read_into(&mut self, py: Python<'_>, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len();
        let scratch = match &self.scratch {
            Some(b) if b.bind(py).len() >= n => b.bind(py).clone(),
            _ => {
                let b = PyByteArray::new_with(py, n, |_| Ok(())).map_err(|e| self.err.keep(e))?;
                self.scratch = Some(b.clone().unbind());
                b
            }
        };
        let whole = PyMemoryView::from(scratch.as_any()).map_err(|e| self.err.keep(e))?;
        let view = whole
            .get_item(PySlice::new(py, 0, n as isize, 1))
            .map_err(|e| self.err.keep(e))?;
        let r = self
            .obj
            .bind(py)
            .call_method1(pyo3::intern!(py, "readinto"), (&view,));
        // End the exports (a view the file object kept stays usable: the
        // bytearray is Python's).
        let _ = view.call_method0(pyo3::intern!(py, "release"));
        let _ = whole.call_method0(pyo3::intern!(py, "release"));
        let r = r.map_err(|e| self.err.keep(e))?;
        if r.is_none() {
            return Err(self.non_blocking("readinto"));
        }
        let got = match r.extract::<usize>() {
            Ok(k) if k <= n => k,
            _ => {
                return Err(self.wrong(format!(
                    "fileobj.readinto() of {n} bytes returned {}",
                    r.repr().map_or_else(|_| "?".to_owned(), |s| s.to_string())
                )))
            }
        };
        // SAFETY: the interpreter is held and no Python code runs while
        // the slice lives (one copy); the bytearray is not resized in that
        // time, and `get` checks its length as it is now.
        #[allow(unsafe_code)]
        let src = unsafe { scratch.as_bytes() }.get(..got);
        match src {
            Some(src) => {
                out[..got].copy_from_slice(src);
                Ok(got)
            }
            None => Err(self.wrong("fileobj.readinto() shrank its buffer".to_owned())),
        }
    }

    fn non_blocking(&self, method: &str) -> io::Error {
        self.wrong(format!(
            "fileobj.{method}() returned None (a non-blocking file with no data ready); \
             a stream needs a blocking file object"
        ))
    }
}

impl Seek for PyFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let (offset, whence) = match to {
            SeekFrom::Start(n) => (
                i64::try_from(n).map_err(|_| io::Error::other("seek offset too large"))?,
                0,
            ),
            SeekFrom::Current(d) => (d, 1),
            SeekFrom::End(d) => (d, 2),
        };
        Python::attach(|py| {
            let r = self
                .obj
                .bind(py)
                .call_method1(pyo3::intern!(py, "seek"), (offset, whence))
                .map_err(|e| self.err.keep(e))?;
            r.extract::<u64>().map_err(|_| {
                self.wrong(format!(
                    "fileobj.seek() returned {}, not a position",
                    type_name(&r)
                ))
            })
        })
    }
}

/// Why a stream call failed: the caller's file object raised (re-raised as
/// is), or the core refused (its exception class).
enum Failure {
    Py(PyErr),
    Core(keystrata::Error),
}

impl From<keystrata::Error> for Failure {
    fn from(e: keystrata::Error) -> Failure {
        Failure::Core(e)
    }
}

impl Failure {
    /// An `io::Error` from a core stream call: the file object's exception
    /// if it raised one, else the core's error inside (`error_of`).
    fn of_io(slot: &PyErrSlot, e: io::Error) -> Failure {
        match slot.take() {
            Some(p) => Failure::Py(p),
            None => Failure::Core(error_of(e)),
        }
    }

    /// A core error from a call that went through the file object.
    fn of_core(slot: &PyErrSlot, e: keystrata::Error) -> Failure {
        match slot.take() {
            Some(p) => Failure::Py(p),
            None => Failure::Core(e),
        }
    }

    fn into_py(self) -> PyErr {
        match self {
            Failure::Py(e) => e,
            Failure::Core(e) => raise(e),
        }
    }
}

fn closed_err() -> PyErr {
    PyValueError::new_err("I/O operation on closed file.")
}

/// The open stream, or `ValueError` (closed by another thread meanwhile).
fn live<S>(state: &mut Option<S>) -> Result<&mut S, Failure> {
    state.as_mut().ok_or_else(|| Failure::Py(closed_err()))
}

/// A number per thread, for refusing re-entrant calls (a file object whose
/// `write` writes into the very stream that calls it), which would wait
/// for their own thread forever.
fn thread_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.with(|t| *t)
}

/// One stream's state: the core object behind a mutex (`None` once
/// closed), the slot its [`PyFile`] reports Python exceptions to, and
/// which thread is inside it now (0: none).
struct Shared<S> {
    state: Mutex<Option<S>>,
    closed: AtomicBool,
    owner: AtomicU64,
    err: PyErrSlot,
}

impl<S: Send> Shared<S> {
    fn new(s: S, err: PyErrSlot) -> Shared<S> {
        Shared {
            state: Mutex::new(Some(s)),
            closed: AtomicBool::new(false),
            owner: AtomicU64::new(0),
            err,
        }
    }

    /// Runs `f` on the state with the mutex held, the interpreter released
    /// if `detach` or if another thread holds the mutex. A panic becomes
    /// `InternalError`; a closed stream `ValueError`. If `f` leaves the
    /// state `None`, the stream is closed from then on.
    fn run<T, F>(&self, py: Python<'_>, detach: bool, f: F) -> PyResult<T>
    where
        F: FnOnce(&mut Option<S>, &PyErrSlot) -> Result<T, Failure> + Send,
        T: Send,
    {
        self.run_if(py, |_| detach, f)
    }

    /// [`run`](Self::run), with the interpreter released if `detach` says
    /// so of the state (a call that will seal a segment, say) or if
    /// another thread holds the mutex.
    fn run_if<T, D, F>(&self, py: Python<'_>, detach: D, f: F) -> PyResult<T>
    where
        D: FnOnce(Option<&S>) -> bool,
        F: FnOnce(&mut Option<S>, &PyErrSlot) -> Result<T, Failure> + Send,
        T: Send,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_err());
        }
        let me = thread_token();
        if self.owner.load(Ordering::Acquire) == me {
            return Err(PyRuntimeError::new_err(
                "re-entrant call into a keystrata stream (from its own file object)",
            ));
        }
        let locked = |state: &mut Option<S>| {
            self.owner.store(me, Ordering::Release);
            let _ = self.err.take();
            let r = catch_unwind(AssertUnwindSafe(|| f(state, &self.err))).unwrap_or_else(|_| {
                Err(Failure::Core(keystrata::Error::new(
                    ErrorKind::Internal,
                    "keystrata panicked in a stream call (a bug; please report it)",
                )))
            });
            // The state gone (closed, or ended by a failure): closed.
            if state.is_none() {
                self.closed.store(true, Ordering::Release);
            }
            self.owner.store(0, Ordering::Release);
            r
        };
        let guard = match self.state.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        // Asked of the state as it is now; if another thread changes it
        // before this one locks again, the choice was only a cost.
        let guard = guard.filter(|g| !detach(g.as_ref()));
        let r = match guard {
            Some(mut g) => locked(&mut g),
            None => py.detach(|| {
                let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
                locked(&mut g)
            }),
        };
        r.map_err(Failure::into_py)
    }

    /// Takes the state out (closing the stream) and runs `f` on it.
    fn close_with<F>(&self, py: Python<'_>, detach: bool, f: F) -> PyResult<()>
    where
        F: FnOnce(S, &PyErrSlot) -> Result<(), Failure> + Send,
    {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.run(py, detach, |state, slot| match state.take() {
            Some(s) => f(s, slot),
            None => Ok(()),
        })
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// `read(size)` on a core reader: up to `size` bytes (all of them for a
/// negative size or None), fewer only at the end.
fn read_some<R: Read>(
    r: &mut R,
    size: Option<i64>,
    slot: &PyErrSlot,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut out = Zeroizing::new(Vec::new());
    let res = match size {
        Some(n) if n >= 0 => {
            let n = u64::try_from(n).unwrap_or(0);
            // Grown as data comes, so read(2**40) allocates what there is.
            out.reserve(usize::try_from(n.min(1 << 20)).unwrap_or(0));
            r.take(n).read_to_end(&mut out)
        }
        _ => r.read_to_end(&mut out),
    };
    res.map_err(|e| Failure::of_io(slot, e))?;
    Ok(out)
}

/// Whether a read of `size` should release the interpreter.
fn detach_read(size: Option<i64>) -> bool {
    size.is_none_or(|n| n < 0 || n > DETACH_ABOVE as i64)
}

/// The byte length of a writable buffer for `readinto`.
fn writable_len(b: &Bound<'_, PyAny>) -> PyResult<usize> {
    let py = b.py();
    let view = py.import("builtins")?.getattr("memoryview")?.call1((b,))?;
    if view.getattr("readonly")?.extract::<bool>()? {
        return Err(PyTypeError::new_err(
            "readinto() needs a writable buffer (bytearray, memoryview, …)",
        ));
    }
    view.getattr("nbytes")?.extract()
}

/// The most plaintext one step of `read`/`readinto` decrypts into the
/// reader's scratch buffer before it goes to Python: a 1 MB segment.
const STEP: usize = 1 << 20;

/// Reads until `out` is full or `r` ends; returns how many bytes.
fn read_full<R: Read>(r: &mut R, out: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < out.len() {
        match r.read(&mut out[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A reader's scratch buffer: plaintext on its way to Python, wiped when
/// the reader goes. Taken out for a call (a concurrent call, serialized
/// behind the stream's mutex anyway, makes its own).
#[derive(Default)]
struct Scratch(Mutex<Zeroizing<Vec<u8>>>);

impl Scratch {
    fn take(&self) -> Zeroizing<Vec<u8>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn put(&self, buf: Zeroizing<Vec<u8>>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = buf;
    }
}

/// Reads up to `want` (at most [`STEP`]) bytes from the stream into
/// `buf`, with the interpreter released for more than a few KiB; returns
/// the buffer and how many bytes (fewer only at the end).
fn read_step<S: Read + Send>(
    shared: &Shared<S>,
    py: Python<'_>,
    mut buf: Zeroizing<Vec<u8>>,
    want: usize,
) -> PyResult<(Zeroizing<Vec<u8>>, usize)> {
    if buf.len() < want {
        buf.resize(want, 0);
    }
    shared.run(py, want > DETACH_ABOVE, move |state, slot| {
        let r = live(state)?;
        let n = read_full(r, &mut buf[..want]).map_err(|e| Failure::of_io(slot, e))?;
        Ok((buf, n))
    })
}

/// `read(size)`: a size up to [`STEP`] is read into the scratch buffer and
/// copied once, into the new `bytes`; anything bigger (or the rest of the
/// stream) grows as it comes.
fn read_bytes<'py, S: Read + Send>(
    shared: &Shared<S>,
    scratch: &Scratch,
    py: Python<'py>,
    size: Option<i64>,
) -> PyResult<Bound<'py, PyBytes>> {
    match size.and_then(|n| usize::try_from(n).ok()) {
        Some(want) if want <= STEP => {
            let (buf, n) = read_step(shared, py, scratch.take(), want)?;
            let out = PyBytes::new(py, &buf[..n]);
            scratch.put(buf);
            Ok(out)
        }
        _ => {
            let out = shared.run(py, detach_read(size), |state, slot| {
                let r = live(state)?;
                read_some(r, size, slot)
            })?;
            Ok(PyBytes::new(py, &out))
        }
    }
}

/// `readinto(b)`: fills the writable buffer `b` (fewer bytes only at the
/// end), a [`STEP`] at a time: each step decrypts into the scratch buffer
/// with the interpreter released, then is copied into `b` with it held,
/// so no Rust reference into Python's memory lives while Python code
/// (another thread's, or the file object's) runs.
fn readinto<S: Read + Send>(
    shared: &Shared<S>,
    scratch: &Scratch,
    py: Python<'_>,
    b: &Bound<'_, PyAny>,
) -> PyResult<usize> {
    let total = writable_len(b)?;
    let mut buf = scratch.take();
    let mut done = 0;
    while done < total {
        let want = (total - done).min(STEP);
        let (back, n) = read_step(shared, py, buf, want)?;
        buf = back;
        copy_into(b, done, &buf[..n])?;
        done += n;
        if n < want {
            break;
        }
    }
    scratch.put(buf);
    Ok(done)
}

/// Copies `data` into the writable buffer `b` at `off`: a bytearray
/// directly, any other buffer through a memoryview.
fn copy_into(b: &Bound<'_, PyAny>, off: usize, data: &[u8]) -> PyResult<()> {
    if data.is_empty() {
        return Ok(());
    }
    if let Ok(ba) = b.cast::<PyByteArray>() {
        // SAFETY: the interpreter is held and no Python code runs while the
        // slice lives (one copy); `get_mut` checks the bytearray's length
        // as it is now (another thread may have resized it since
        // `writable_len`).
        #[allow(unsafe_code)]
        let dst = unsafe { ba.as_bytes_mut() }.get_mut(off..off + data.len());
        return match dst {
            Some(dst) => {
                dst.copy_from_slice(data);
                Ok(())
            }
            None => Err(PyValueError::new_err("the buffer shrank during readinto()")),
        };
    }
    let py = b.py();
    let view = py
        .import("builtins")?
        .getattr("memoryview")?
        .call1((b,))?
        .call_method1("cast", ("B",))?;
    let slice = PySlice::new(py, off as isize, (off + data.len()) as isize, 1);
    view.set_item(slice, PyBytes::new(py, data))?;
    view.call_method0("release")?;
    Ok(())
}

// ----------------------------------------------------------------------
// EncryptingWriter
// ----------------------------------------------------------------------

/// A writable binary file object that encrypts what is written to it into
/// another file object, as one stream (Tink's AES-GCM-HKDF streaming AEAD,
/// docs/STREAMING.md), under the keychain's streaming primary. Made by
/// ``Keychain.encrypting_writer(fileobj, aad=b"")``.
///
/// ``close()`` writes the last segment and flushes ``fileobj`` (it does
/// not close it); leaving a ``with`` block closes it, unless an exception
/// leaves the block: then the stream is left unfinished, and an unfinished
/// stream never decrypts (it reads as truncated), so a failed copy cannot
/// pass for a complete one. A writer dropped without ``close()`` is
/// unfinished too. ``shutil.copyfileobj(src, w)`` works inside ``with``.
///
/// ``write(b)`` accepts any bytes-like object and returns ``len(b)``; data
/// is buffered a segment at a time (4 KiB or 1 MiB), so memory stays
/// bounded. An exception raised by ``fileobj.write`` propagates as it is
/// and closes the writer, leaving the stream unfinished (part of a
/// segment may have been written). Thread safety: calls are serialized;
/// writes above 4 KiB run with the GIL released.
#[pyclass(frozen, name = "EncryptingWriter", module = "keystrata")]
pub(crate) struct PyEncryptingWriter {
    inner: Shared<EncryptingWriter<PyFile>>,
}

impl PyEncryptingWriter {
    pub(crate) fn new(
        py: Python<'_>,
        kc: &keystrata::Keychain,
        fileobj: &Bound<'_, PyAny>,
        aad: &[u8],
        detach: bool,
    ) -> PyResult<PyEncryptingWriter> {
        let (file, slot) = PyFile::new(fileobj, &["write"], "a writable binary file object")?;
        let w = crate::errors::call(py, detach, || kc.encrypting_writer(file, aad))?;
        Ok(PyEncryptingWriter {
            inner: Shared::new(w, slot),
        })
    }
}

#[pymethods]
impl PyEncryptingWriter {
    /// Encrypts ``data`` (buffered a segment at a time); returns
    /// ``len(data)``.
    fn write(&self, py: Python<'_>, data: BytesIn<'_, '_>) -> PyResult<usize> {
        let data = data.as_slice();
        // A small write that completes a segment seals it (up to 1 MB of
        // AES-GCM): that one, too, runs with the interpreter released.
        let sealing = |w: Option<&keystrata::stream::EncryptingWriter<PyFile>>| {
            data.len() > DETACH_ABOVE
                || w.is_some_and(|w| w.pending_output_len(data.len()) != Some(0))
        };
        self.inner.run_if(py, sealing, |state, slot| {
            let w = live(state)?;
            if let Err(e) = w.write_all(data) {
                // Part of a segment may have reached fileobj: the
                // stream cannot go on. Dropped unfinished, it never
                // decrypts; later calls raise ValueError.
                *state = None;
                return Err(Failure::of_io(slot, e));
            }
            Ok(data.len())
        })
    }

    /// Flushes ``fileobj`` (if it has ``flush``). The data of the segment
    /// being filled stays buffered: only ``close()`` ends the stream.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.inner
            .run(py, false, |state, slot| match state.as_mut() {
                Some(w) => w.flush().map_err(|e| Failure::of_io(slot, e)),
                None => Ok(()),
            })
    }

    /// Writes the last segment, flushes ``fileobj`` and closes the writer
    /// (idempotent). ``fileobj`` itself stays open.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.close_with(py, true, |w, slot| {
            w.finish()
                .map(|_| ())
                .map_err(|e| Failure::of_core(slot, e))
        })
    }

    /// Closes the writer without finishing the stream: what is written so
    /// far never decrypts (it reads as truncated). What leaving a ``with``
    /// block with an exception does.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.close_with(py, false, |w, _| {
            drop(w);
            Ok(())
        })
    }

    /// Whether the writer is closed.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.closed()
    }

    /// True.
    fn writable(&self) -> PyResult<bool> {
        self.open()?;
        Ok(true)
    }

    /// False.
    fn readable(&self) -> PyResult<bool> {
        self.open()?;
        Ok(false)
    }

    /// False.
    fn seekable(&self) -> PyResult<bool> {
        self.open()?;
        Ok(false)
    }

    /// Returns the writer itself, for ``with``.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Finishes the stream (``close()``) if the block ended normally;
    /// leaves it unfinished (``abort()``) if it raised.
    #[pyo3(signature = (*exc_info))]
    fn __exit__(&self, py: Python<'_>, exc_info: &Bound<'_, PyTuple>) -> PyResult<bool> {
        let raised = exc_info.get_item(0).map(|t| !t.is_none()).unwrap_or(false);
        if raised {
            self.abort(py)?;
        } else {
            self.close(py)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<keystrata.EncryptingWriter{}>",
            if self.inner.closed() { " (closed)" } else { "" }
        )
    }
}

impl PyEncryptingWriter {
    fn open(&self) -> PyResult<()> {
        if self.inner.closed() {
            Err(closed_err())
        } else {
            Ok(())
        }
    }
}

// ----------------------------------------------------------------------
// DecryptingReader
// ----------------------------------------------------------------------

/// A readable binary file object that decrypts a stream read from another
/// file object (anything with ``read(n)``). Made by
/// ``Keychain.decrypting_reader(fileobj, aad=b"")``.
///
/// ``read(size=-1)`` returns ``size`` bytes (all the rest for -1), fewer
/// only at the end, ``b""`` after it; ``readinto(b)`` fills a writable
/// buffer. Plaintext comes out only after its segment's tag checked. A
/// truncated, reordered or tampered stream, the wrong key or the wrong
/// ``aad`` raise ``AuthenticationError``; data that is not a stream
/// ``FormatError``; a keychain with no enabled streaming key
/// ``UnknownKeyError``; an exception raised by ``fileobj.read``
/// propagates as it is. After an error every read raises again.
///
/// ``close()`` releases ``fileobj`` (without closing it). Thread safety:
/// calls are serialized; reads above 4 KiB run with the GIL released.
#[pyclass(frozen, name = "DecryptingReader", module = "keystrata")]
pub(crate) struct PyDecryptingReader {
    inner: Shared<DecryptingReader<PyFile>>,
    scratch: Scratch,
}

impl PyDecryptingReader {
    pub(crate) fn new(
        py: Python<'_>,
        kc: &keystrata::Keychain,
        fileobj: &Bound<'_, PyAny>,
        aad: &[u8],
    ) -> PyResult<PyDecryptingReader> {
        let (file, slot) = PyFile::new(fileobj, &["read"], "a readable binary file object")?;
        let r = crate::errors::call(py, false, || kc.decrypting_reader(file, aad))?;
        Ok(PyDecryptingReader {
            inner: Shared::new(r, slot),
            scratch: Scratch::default(),
        })
    }
}

#[pymethods]
impl PyDecryptingReader {
    /// Up to ``size`` bytes of plaintext (all the rest if ``size`` is
    /// negative or None); fewer only at the end of the stream.
    #[pyo3(signature = (size = -1), text_signature = "($self, size=-1)")]
    fn read<'py>(&self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        read_bytes(&self.inner, &self.scratch, py, size)
    }

    /// Fills the writable buffer ``b``; returns how many bytes (fewer only
    /// at the end, 0 after it).
    fn readinto(&self, py: Python<'_>, b: &Bound<'_, PyAny>) -> PyResult<usize> {
        readinto(&self.inner, &self.scratch, py, b)
    }

    /// Does nothing (a reader has nothing to flush); for ``io`` wrappers.
    fn flush(&self) -> PyResult<()> {
        open(&self.inner)
    }

    /// Closes the reader (idempotent); ``fileobj`` stays open.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.close_with(py, false, |r, _| {
            drop(r);
            Ok(())
        })
    }

    /// Whether the reader is closed.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.closed()
    }

    /// True.
    fn readable(&self) -> PyResult<bool> {
        open(&self.inner)?;
        Ok(true)
    }

    /// False.
    fn writable(&self) -> PyResult<bool> {
        open(&self.inner)?;
        Ok(false)
    }

    /// False.
    fn seekable(&self) -> PyResult<bool> {
        open(&self.inner)?;
        Ok(false)
    }

    /// Returns the reader itself, for ``with``.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the reader; an exception raised in the block propagates.
    #[pyo3(signature = (*exc_info))]
    fn __exit__(&self, py: Python<'_>, exc_info: &Bound<'_, PyTuple>) -> PyResult<bool> {
        let _ = exc_info;
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<keystrata.DecryptingReader{}>",
            if self.inner.closed() { " (closed)" } else { "" }
        )
    }
}

fn open<S: Send>(s: &Shared<S>) -> PyResult<()> {
    if s.closed() {
        Err(closed_err())
    } else {
        Ok(())
    }
}

// ----------------------------------------------------------------------
// SeekableDecryptor
// ----------------------------------------------------------------------

/// Random access to a stream in a seekable file object (with ``read``,
/// ``seek`` and ``tell``): a readable, seekable binary file object over
/// the plaintext that decrypts (and checks) only the segments a read
/// touches. Made by ``Keychain.seekable_decryptor(fileobj, aad=b"")``,
/// which finds the key on the first segment at once
/// (``AuthenticationError`` if none opens it, ``FormatError`` if the data
/// is not a stream).
///
/// ``read(size=-1)``, ``readinto(b)``, ``seek(offset, whence=0)``,
/// ``tell()``, ``read_at(offset, size)`` (leaves the position alone),
/// ``plaintext_len()`` and ``key_id``. Errors as for ``DecryptingReader``.
#[pyclass(frozen, name = "SeekableDecryptor", module = "keystrata")]
pub(crate) struct PySeekableDecryptor {
    inner: Shared<SeekableDecryptor<PyFile>>,
    scratch: Scratch,
    plaintext_len: u64,
    /// The key the stream is under.
    #[pyo3(get)]
    key_id: u32,
}

impl PySeekableDecryptor {
    pub(crate) fn new(
        py: Python<'_>,
        kc: &keystrata::Keychain,
        fileobj: &Bound<'_, PyAny>,
        aad: &[u8],
    ) -> PyResult<PySeekableDecryptor> {
        let (file, slot) = PyFile::new(
            fileobj,
            &["read", "seek"],
            "a readable, seekable binary file object",
        )?;
        let r = py
            .detach(|| {
                catch_unwind(AssertUnwindSafe(|| kc.seekable_decryptor(file, aad))).unwrap_or_else(
                    |_| {
                        Err(keystrata::Error::new(
                            ErrorKind::Internal,
                            "keystrata panicked in a stream call (a bug; please report it)",
                        ))
                    },
                )
            })
            .map_err(|e| Failure::of_core(&slot, e).into_py())?;
        Ok(PySeekableDecryptor {
            plaintext_len: r.plaintext_len(),
            key_id: r.key_id(),
            inner: Shared::new(r, slot),
            scratch: Scratch::default(),
        })
    }
}

#[pymethods]
impl PySeekableDecryptor {
    /// Up to ``size`` bytes of plaintext from the current position (all
    /// the rest if ``size`` is negative or None).
    #[pyo3(signature = (size = -1), text_signature = "($self, size=-1)")]
    fn read<'py>(&self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        read_bytes(&self.inner, &self.scratch, py, size)
    }

    /// Fills the writable buffer ``b`` from the current position; returns
    /// how many bytes (fewer only at the end).
    fn readinto(&self, py: Python<'_>, b: &Bound<'_, PyAny>) -> PyResult<usize> {
        readinto(&self.inner, &self.scratch, py, b)
    }

    /// Up to ``size`` bytes of plaintext at ``offset`` (fewer only at the
    /// end), without moving the position.
    fn read_at<'py>(
        &self,
        py: Python<'py>,
        offset: u64,
        size: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.inner.run(py, size > DETACH_ABOVE, |state, slot| {
            let r = live(state)?;
            let want = usize::try_from(r.plaintext_len().saturating_sub(offset))
                .unwrap_or(usize::MAX)
                .min(size);
            let mut out = Zeroizing::new(vec![0u8; want]);
            // The core fills the request (up to the end of the plaintext).
            let got = r
                .read_at(offset, &mut out)
                .map_err(|e| Failure::of_core(slot, e))?;
            out.truncate(got);
            Ok(out)
        })?;
        Ok(PyBytes::new(py, &out))
    }

    /// Moves to ``offset`` (plaintext position) from the start
    /// (``whence=0``), the current position (1) or the end (2); returns
    /// the new position. Beyond the end is allowed (reads return
    /// ``b""``); before the start raises ``ValueError``.
    #[pyo3(signature = (offset, whence = 0))]
    fn seek(&self, py: Python<'_>, offset: i64, whence: i32) -> PyResult<u64> {
        let to =
            match whence {
                0 => SeekFrom::Start(u64::try_from(offset).map_err(|_| {
                    PyValueError::new_err(format!("negative seek position {offset}"))
                })?),
                1 => SeekFrom::Current(offset),
                2 => SeekFrom::End(offset),
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "whence must be 0, 1 or 2, not {whence}"
                    )))
                }
            };
        self.inner.run(py, false, |state, _| {
            let r = live(state)?;
            r.seek(to)
                .map_err(|e| Failure::Py(PyValueError::new_err(e.to_string())))
        })
    }

    /// The current plaintext position.
    fn tell(&self, py: Python<'_>) -> PyResult<u64> {
        self.seek(py, 0, 1)
    }

    /// The plaintext's length, in bytes.
    fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Does nothing (a reader has nothing to flush); for ``io`` wrappers.
    fn flush(&self) -> PyResult<()> {
        open(&self.inner)
    }

    /// Closes the decryptor (idempotent); ``fileobj`` stays open.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.close_with(py, false, |r, _| {
            drop(r);
            Ok(())
        })
    }

    /// Whether the decryptor is closed.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.closed()
    }

    /// True.
    fn readable(&self) -> PyResult<bool> {
        open(&self.inner)?;
        Ok(true)
    }

    /// False.
    fn writable(&self) -> PyResult<bool> {
        open(&self.inner)?;
        Ok(false)
    }

    /// True.
    fn seekable(&self) -> PyResult<bool> {
        open(&self.inner)?;
        Ok(true)
    }

    /// Returns the decryptor itself, for ``with``.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the decryptor; an exception raised in the block propagates.
    #[pyo3(signature = (*exc_info))]
    fn __exit__(&self, py: Python<'_>, exc_info: &Bound<'_, PyTuple>) -> PyResult<bool> {
        let _ = exc_info;
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<keystrata.SeekableDecryptor: {} bytes of plaintext, key {}{}>",
            self.plaintext_len,
            self.key_id,
            if self.inner.closed() { " (closed)" } else { "" }
        )
    }
}
