//! The whole Rust-error to Python-exception mapping, in one `match` (DESIGN.md's table), and the guard that
//! turns a panic into an exception instead of letting it unwind into the interpreter.

use crate::error::Error;
use pyo3::exceptions::{PyMemoryError, PyNotImplementedError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// A `bigcore.errors` exception class by name, called with `msg`.
fn bigcore_error(py: Python<'_>, class: &str, msg: String) -> PyErr {
    match py.import("bigcore.errors").and_then(|m| m.getattr(class)).and_then(|c| c.call1((msg.clone(),))) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// Convert an engine error into the matching Python exception.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    Python::attach(|py| match e {
        Error::Shape { .. } => bigcore_error(py, "ShapeError", msg),
        Error::OutOfRange { .. } => bigcore_error(py, "OutOfRangeError", msg),
        Error::DType { .. } => bigcore_error(py, "DTypeError", msg),
        Error::InvalidArgument { .. } => PyValueError::new_err(msg),
        Error::Autograd { .. } => bigcore_error(py, "AutogradError", msg),
        Error::Unsupported { .. } => PyNotImplementedError::new_err(msg),
        Error::OutOfMemory { .. } => PyMemoryError::new_err(msg),
    })
}

thread_local! {
    /// The exception a Python callback raised inside an engine call (a gradient hook during backward), to be
    /// raised as it is once the call returns instead of the engine error that stopped it.
    static CALLBACK_ERROR: std::cell::RefCell<Option<PyErr>> = const { std::cell::RefCell::new(None) };
}

/// Call the Python `f` from inside an engine call on this thread; its exception is kept for [`callback_error`]
/// and stops the engine call as `stopped`.
pub fn call_back(f: &Py<PyAny>, stopped: impl FnOnce() -> Error) -> crate::Result<()> {
    Python::attach(|py| f.call0(py).map(drop)).map_err(|e| {
        CALLBACK_ERROR.with(|c| *c.borrow_mut() = Some(e));
        stopped()
    })
}

/// `e`, or the exception a Python callback raised during the engine call that failed with `e`.
pub fn callback_error(e: PyErr) -> PyErr {
    CALLBACK_ERROR.with(|c| c.borrow_mut().take()).unwrap_or(e)
}

/// Run `f` without the GIL, turning engine errors and panics into Python exceptions.
pub fn detached<T: Send>(py: Python<'_>, op: &str, f: impl FnOnce() -> crate::Result<T> + Send) -> PyResult<T> {
    let r = py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(e)),
        Err(p) => {
            let what = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
            Err(PyRuntimeError::new_err(format!(
                "bigcore internal error in {op}: {}; please report it",
                what.unwrap_or_else(|| "panic".into())
            )))
        }
    }
}
