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
    /// Elements the buffer has room for.
    pub fn capacity(&self) -> usize {
        match self {
            Storage::F32(v) => v.capacity(),
            Storage::F64(v) => v.capacity(),
            Storage::I64(v) => v.capacity(),
            Storage::Bool(v) => v.capacity(),
        }
    }
    /// Bytes the buffer holds allocated.
    pub fn capacity_bytes(&self) -> usize {
        self.capacity() * self.dtype().size()
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

/// An empty vector with room for `n` elements, or [`Error::OutOfMemory`]: a large freed buffer of that size if
/// one is kept (`recycle.rs`), else a new allocation. More than the machine's physical memory is refused up front: an allocator that maps with `MAP_NORESERVE`
/// (mimalloc, the extension's) gets any size of address space from Linux, and filling it would end in the
/// out-of-memory killer instead of an error.
///
/// # Errors
/// `OutOfMemory` when the allocator refuses or the size exceeds physical memory.
pub fn try_with_capacity<T: Element>(op: &'static str, shape: &[usize], n: usize) -> Result<Vec<T>> {
    let bytes = n as u128 * std::mem::size_of::<T>() as u128;
    let refused = || Error::OutOfMemory { op, bytes, shape: shape.to_vec() };
    if physical_memory().is_some_and(|total| bytes > total) {
        return Err(refused());
    }
    if let Some(v) = crate::recycle::take::<T>(n) {
        return Ok(v);
    }
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(n).map_err(|_| refused())?;
    Ok(v)
}

/// Bytes of physical memory, where the system says (Linux); `None` elsewhere.
pub(crate) fn physical_memory() -> Option<u128> {
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn sysconf(name: i32) -> i64;
        }
        const SC_PAGESIZE: i32 = 30;
        const SC_PHYS_PAGES: i32 = 85;
        // SAFETY: sysconf only reads system configuration; both names are valid on Linux (glibc and musl).
        let (page, pages) = unsafe { (sysconf(SC_PAGESIZE), sysconf(SC_PHYS_PAGES)) };
        if page > 0 && pages > 0 {
            return Some(page as u128 * pages as u128);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_physical_memory_is_refused_before_allocating() {
        // 4 TiB: an overcommitting allocator would hand out the address space and filling it would be killed
        let n = 1usize << 40;
        let err = try_filled::<f32>("zeros", &[1 << 20, 1 << 20], n, 0.0).unwrap_err();
        assert!(matches!(err, Error::OutOfMemory { bytes, .. } if bytes == 4 << 40), "{err}");
        if let Some(total) = physical_memory() {
            assert!(total > 1 << 20, "physical memory read as {total} bytes");
        }
        assert_eq!(try_filled::<f32>("zeros", &[3], 3, 1.5).unwrap(), vec![1.5; 3]);
    }
}
