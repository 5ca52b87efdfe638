//! Tensor storage: one owned vector per dtype, allocated fallibly so an impossible size is an error, not an abort.

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};

/// The elements of a tensor, contiguous and row-major.
#[derive(Clone, Debug)]
pub enum Storage {
    /// float32 elements.
    F32(Vec<f32>),
    /// float64 elements.
    F64(Vec<f64>),
    /// int64 elements.
    I64(Vec<i64>),
    /// bool elements.
    Bool(Vec<bool>),
}

impl Storage {
    /// The dtype held.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::I64(_) => DType::I64,
            Storage::Bool(_) => DType::Bool,
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
            Storage::I64(v) => v.len(),
            Storage::Bool(v) => v.len(),
        }
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The typed slice; panics only if the caller dispatched on the wrong dtype (an engine bug).
    pub fn as_slice<T: Element>(&self) -> &[T] {
        T::slice(self).expect("storage dtype checked by the caller")
    }
    /// The typed mutable slice; panics only if the caller dispatched on the wrong dtype (an engine bug).
    pub fn as_mut_slice<T: Element>(&mut self) -> &mut [T] {
        T::slice_mut(self).expect("storage dtype checked by the caller")
    }
}

/// Allocate `n` copies of `value`, reporting an allocation the system refuses as [`Error::OutOfMemory`].
///
/// # Errors
/// `OutOfMemory` when the allocator refuses; `op` and `shape` go into the message.
pub fn try_filled<T: Element>(op: &'static str, shape: &[usize], n: usize, value: T) -> Result<Vec<T>> {
    let mut v = try_with_capacity(op, shape, n)?;
    v.resize(n, value);
    Ok(v)
}

/// An empty vector with room for `n` elements, or [`Error::OutOfMemory`].
///
/// # Errors
/// `OutOfMemory` when the allocator refuses.
pub fn try_with_capacity<T: Element>(op: &'static str, shape: &[usize], n: usize) -> Result<Vec<T>> {
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        op,
        bytes: n as u128 * std::mem::size_of::<T>() as u128,
        shape: shape.to_vec(),
    })?;
    Ok(v)
}
