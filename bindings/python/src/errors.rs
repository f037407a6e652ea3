//! The one conversion from a keystrata error (or a Rust panic) to a Python
//! exception, and the guard every call into the core goes through.
//!
//! The exception classes are plain Python classes in
//! `keystrata/exceptions.py`; Rust imports them once, at module init.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use keystrata::ErrorKind;
use pyo3::exceptions::{PyImportError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The exception classes, imported once when the module is initialised.
/// Importing them lazily at the first raise failed near the recursion
/// limit (or re-entrantly from a callback), and PyO3's lazy import panics
/// then, which aborted the interpreter.
static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

struct Classes {
    /// `keystrata.Error`.
    base: Py<PyType>,
    /// `<Kind>Error` for each kind of `ErrorKind::ALL`, in that order.
    by_kind: Vec<Py<PyType>>,
}

/// Imports `keystrata.exceptions` and keeps its classes: `<Name>Error` for
/// every kind the core defines (`ErrorKind::ALL`, the one table), checking
/// that each class's `code` is the core's. Called from the module's init,
/// where the recursion depth is that of an import.
pub(crate) fn init(py: Python<'_>) -> PyResult<()> {
    let module = py.import("keystrata.exceptions")?;
    let base = module.getattr("Error")?.cast_into::<PyType>()?.unbind();
    let mut by_kind = Vec::with_capacity(ErrorKind::ALL.len());
    for kind in ErrorKind::ALL {
        let class = module
            .getattr(format!("{}Error", kind.name()))?
            .cast_into::<PyType>()?;
        let code: u32 = class.getattr("code")?.extract()?;
        if code != kind.code() {
            return Err(PyImportError::new_err(format!(
                "keystrata.exceptions.{}Error has code {code}; the core's is {}",
                kind.name(),
                kind.code()
            )));
        }
        by_kind.push(class.unbind());
    }
    let _ = CLASSES.set(py, Classes { base, by_kind });
    Ok(())
}

/// Turns a keystrata error into the Python exception of its kind
/// (`keystrata.AuthenticationError`, …). Its `str()` is the core's message;
/// `kind` and `code` come from the class. Never panics: should the classes
/// be missing, the error becomes a `RuntimeError` with the same message.
pub(crate) fn raise(e: keystrata::Error) -> PyErr {
    let msg = e.message().to_owned();
    let kind = e.kind();
    Python::attach(|py| {
        let Some(classes) = CLASSES.get(py) else {
            return PyRuntimeError::new_err(format!("keystrata {}: {msg}", kind.name()));
        };
        match ErrorKind::ALL.iter().position(|k| *k == kind) {
            Some(i) => PyErr::from_type(classes.by_kind[i].bind(py).clone(), msg),
            // A kind added to the core after this binding was built: the
            // base class, carrying the kind's name and number.
            None => PyErr::from_type(
                classes.base.bind(py).clone(),
                (msg, kind.name(), kind.code()),
            ),
        }
    })
}

/// The other way: a Python exception raised by the caller's code (a
/// `CustomRoot`'s key manager) as a keystrata error. An instance of a
/// `keystrata.<Kind>Error` class keeps that class's kind and its `str()`;
/// any other exception becomes `Backend`, `"<TypeName>: <str(exc)>"`.
/// The core bounds the message's length.
pub(crate) fn from_python(py: Python<'_>, err: &PyErr) -> keystrata::Error {
    let value = err.value(py);
    let text = value
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "<str() failed>".to_owned());
    let kind = CLASSES.get(py).and_then(|classes| {
        ErrorKind::ALL
            .iter()
            .zip(&classes.by_kind)
            .find(|(_, class)| err.is_instance(py, class.bind(py)))
            .map(|(kind, _)| *kind)
    });
    match kind {
        Some(kind) => keystrata::Error::new(kind, text),
        None => keystrata::Error::new(
            ErrorKind::Backend,
            format!("{}: {text}", crate::buf::type_name(value.as_any())),
        ),
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
