//! Core errors as Python exceptions: one mapping function, [`to_pyerr`].
//!
//! The exception classes live in `oncelog/errors.py` (so that they can also derive
//! from `ValueError`, `OSError`, ... and be pickled); `errors.class_for_code` maps
//! the core's kind name to its class, falling back to `OncelogError` for a kind it
//! does not know. The flags (`retriable`, `fatal`, `txn_requires_abort`) are the
//! core's own, set on each instance.

use oncelog::{Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

/// `oncelog.errors.class_for_code`, imported on first use.
static CLASS_FOR_CODE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The Python exception for a core error.
pub fn to_pyerr(py: Python<'_>, e: &Error) -> PyErr {
    let flags = Flags {
        retriable: e.is_retriable(),
        fatal: e.is_fatal(),
        txn_requires_abort: e.txn_requires_abort(),
    };
    build(py, e.kind().name(), e.message(), flags, e.os_error())
}

/// An error of the binding itself that has no core kind: `ConcurrentUse`.
pub fn concurrent_use(py: Python<'_>, message: &str) -> PyErr {
    build(py, "concurrent_use", message, Flags::default(), None)
}

/// A core-kind error raised by the binding (closed objects, bad arguments).
pub fn binding_error(kind: ErrorKind, message: impl Into<String>) -> PyErr {
    let e = Error::new(kind, message);
    Python::attach(|py| to_pyerr(py, &e))
}

#[derive(Default, Clone, Copy)]
struct Flags {
    retriable: bool,
    fatal: bool,
    txn_requires_abort: bool,
}

fn build(py: Python<'_>, code: &str, message: &str, flags: Flags, errno: Option<i32>) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let lookup = CLASS_FOR_CODE.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            Ok(py
                .import("oncelog.errors")?
                .getattr("class_for_code")?
                .unbind())
        })?;
        let class = lookup.bind(py).call1((code,))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("retriable", flags.retriable)?;
        kwargs.set_item("fatal", flags.fatal)?;
        kwargs.set_item("txn_requires_abort", flags.txn_requires_abort)?;
        let exc = class.call((message, code), Some(&kwargs))?;
        if let Some(errno) = errno {
            // OSError subclasses carry the operating-system error number; others
            // simply get the attribute.
            exc.setattr("errno", errno)?;
        }
        Ok(PyErr::from_value(exc))
    })();
    // If even the exception cannot be made (the package is broken), say so with the
    // original message rather than losing it.
    made.unwrap_or_else(|e| e)
}

/// `?` for core results inside the binding: the core error becomes its exception.
pub trait OrRaise<T> {
    /// The value, or the core error as a Python exception.
    fn or_raise(self) -> PyResult<T>;
}

impl<T> OrRaise<T> for oncelog::Result<T> {
    fn or_raise(self) -> PyResult<T> {
        self.map_err(|e| Python::attach(|py| to_pyerr(py, &e)))
    }
}
