//! The one error type of the engine. Each variant maps to one Python exception (see `python/errors.rs`).
//!
//! Messages name the operation and the shapes involved; they never carry `Debug` dumps. The engine does no file
//! I/O (files are Python's, `bigcore.io`), so there is no I/O variant.

/// Every fallible engine call returns this.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, with the operation that noticed it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Shapes that do not fit: mismatched matmul, broadcast, reshape or rank.
    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },
    /// A dimension or index outside its range.
    #[error("{op}: {msg}")]
    OutOfRange { op: &'static str, msg: String },
    /// A dtype the operation does not accept.
    #[error("{op}: {msg}")]
    DType { op: &'static str, msg: String },
    /// Any other bad argument (negative size, probability outside [0, 1), ...).
    #[error("{op}: {msg}")]
    InvalidArgument { op: &'static str, msg: String },
    /// Misuse of autograd: a freed graph, a non-scalar root without a gradient.
    #[error("{op}: {msg}")]
    Autograd { op: &'static str, msg: String },
    /// A valid request the engine does not implement.
    #[error("{op}: {msg}")]
    Unsupported { op: &'static str, msg: String },
    /// An allocation the system refused.
    #[error("{op}: cannot allocate {bytes} bytes for a tensor of shape {shape:?}")]
    OutOfMemory { op: &'static str, bytes: u128, shape: Vec<usize> },
}

impl Error {
    /// A [`Error::Shape`] error.
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape { op, msg: msg.into() }
    }
    /// An [`Error::OutOfRange`] error.
    pub fn range(op: &'static str, msg: impl Into<String>) -> Self {
        Error::OutOfRange { op, msg: msg.into() }
    }
    /// An [`Error::DType`] error.
    pub fn dtype(op: &'static str, msg: impl Into<String>) -> Self {
        Error::DType { op, msg: msg.into() }
    }
    /// An [`Error::InvalidArgument`] error.
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument { op, msg: msg.into() }
    }
    /// An [`Error::Autograd`] error.
    pub fn autograd(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Autograd { op, msg: msg.into() }
    }
    /// An [`Error::Unsupported`] error.
    pub fn unsupported(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Unsupported { op, msg: msg.into() }
    }
}
