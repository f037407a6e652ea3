//! The one conversion from a keystrata error (or a Rust panic) to a Python
//! exception, and the guard every call into the core goes through.
//!
//! The exception classes are plain Python classes in
//! `keystrata/exceptions.py`; Rust imports them lazily by name.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use keystrata::ErrorKind;
use pyo3::prelude::*;

mod py {
    pyo3::import_exception!(keystrata.exceptions, Error);
    pyo3::import_exception!(keystrata.exceptions, InvalidInputError);
    pyo3::import_exception!(keystrata.exceptions, AuthenticationError);
    pyo3::import_exception!(keystrata.exceptions, UnknownKeyError);
    pyo3::import_exception!(keystrata.exceptions, KeyDisabledError);
    pyo3::import_exception!(keystrata.exceptions, KeyDestroyedError);
    pyo3::import_exception!(keystrata.exceptions, PolicyError);
    pyo3::import_exception!(keystrata.exceptions, UnsupportedError);
    pyo3::import_exception!(keystrata.exceptions, BackendError);
    pyo3::import_exception!(keystrata.exceptions, UnavailableError);
    pyo3::import_exception!(keystrata.exceptions, FormatError);
    pyo3::import_exception!(keystrata.exceptions, IoError);
    pyo3::import_exception!(keystrata.exceptions, InternalError);
}

/// Turns a keystrata error into the Python exception of its kind
/// (`keystrata.AuthenticationError`, …). Its `str()` is the core's message;
/// `kind` and `code` come from the class.
pub(crate) fn raise(e: keystrata::Error) -> PyErr {
    let msg = e.message().to_owned();
    match e.kind() {
        ErrorKind::InvalidInput => py::InvalidInputError::new_err(msg),
        ErrorKind::Authentication => py::AuthenticationError::new_err(msg),
        ErrorKind::UnknownKey => py::UnknownKeyError::new_err(msg),
        ErrorKind::KeyDisabled => py::KeyDisabledError::new_err(msg),
        ErrorKind::KeyDestroyed => py::KeyDestroyedError::new_err(msg),
        ErrorKind::Policy => py::PolicyError::new_err(msg),
        ErrorKind::Unsupported => py::UnsupportedError::new_err(msg),
        ErrorKind::Backend => py::BackendError::new_err(msg),
        ErrorKind::Unavailable => py::UnavailableError::new_err(msg),
        ErrorKind::Format => py::FormatError::new_err(msg),
        ErrorKind::Io => py::IoError::new_err(msg),
        ErrorKind::Internal => py::InternalError::new_err(msg),
        // A kind added to the core after this binding was written: the base
        // class, carrying the kind's name and number.
        other => py::Error::new_err((msg, other.name(), other.code())),
    }
}

/// An `InvalidInput` error raised from the binding itself (for values the
/// core never sees, such as a purpose name).
pub(crate) fn invalid(message: impl Into<String>) -> PyErr {
    raise(keystrata::Error::new(ErrorKind::InvalidInput, message))
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "unknown panic payload"
    }
}

/// Runs `f` (a call into the core) and converts its outcome: a keystrata
/// error becomes its exception, and a panic becomes `InternalError` rather
/// than crossing into Python as `PanicException`.
///
/// With `detach`, the thread lets go of the interpreter (the GIL) while `f`
/// runs, so other Python threads proceed. Callers pass `true` for payloads
/// above [`crate::buf::DETACH_ABOVE`] bytes and for anything that may block
/// (files, scrypt, age); never for sub-microsecond calls, where detaching
/// costs more than it saves.
pub(crate) fn call<T, F>(py: Python<'_>, detach: bool, f: F) -> PyResult<T>
where
    F: FnOnce() -> keystrata::Result<T> + Send,
    T: Send,
{
    let guarded = move || {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
            Err(keystrata::Error::new(
                ErrorKind::Internal,
                format!(
                    "keystrata panicked (a bug; please report it): {}",
                    panic_message(p.as_ref())
                ),
            ))
        })
    };
    let r = if detach {
        py.detach(guarded)
    } else {
        guarded()
    };
    r.map_err(raise)
}
