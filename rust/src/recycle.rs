//! A cache of large freed tensor buffers, handed to the next allocation of the same dtype and capacity.
//!
//! Why: a training step frees and reallocates the same large buffers every step (logits and their gradient,
//! every parameter's gradient after `zero_grad()`). The extension's allocator returns buffers of this size to
//! the OS, so each new one is faulted in and zero-filled by the kernel page by page (`clear_page_erms`: 8% of a
//! fused GPT-2 step, up to half of an embedding backward). A buffer taken from here is already mapped; the
//! caller fills it in cache-friendly passes instead. The same trade as PyTorch's caching allocator: memory freed
//! by the program stays with the process (up to [`cap_bytes`]) for the next use of the same size.
//!
//! Only buffers of at least [`MIN_BYTES`] are kept (smaller ones are fast in the allocator's free lists), at
//! most [`cap_bytes`] in all, the oldest given back to the allocator first. Not here: which code allocates
//! (everything goes through `storage::try_with_capacity`) or frees (the last tensor holding a storage).

use crate::dtype::Element;
use crate::storage::Storage;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Smallest buffer kept.
pub const MIN_BYTES: usize = 1 << 20;

struct Cache {
    buffers: VecDeque<Storage>,
    bytes: usize,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache { buffers: VecDeque::new(), bytes: 0 });

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The most bytes kept: `BIGCORE_CACHE_MB` if set (0 turns the cache off), else an eighth of physical memory,
/// at most 4 GiB.
pub fn cap_bytes() -> usize {
    static CAP: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| {
        if let Some(mb) = std::env::var("BIGCORE_CACHE_MB").ok().and_then(|v| v.trim().parse::<usize>().ok()) {
            return mb.saturating_mul(1 << 20);
        }
        let phys = crate::storage::physical_memory().unwrap_or(0).min(usize::MAX as u128) as usize;
        (phys / 8).min(4 << 30)
    })
}

/// Keep `s` for reuse if it is large enough; the oldest kept buffers go back to the allocator beyond the cap.
pub fn give(s: Storage) {
    let bytes = s.capacity_bytes();
    let cap = cap_bytes();
    if bytes < MIN_BYTES || bytes > cap {
        return;
    }
    let mut evicted = Vec::new();
    {
        let mut c = lock();
        while c.bytes + bytes > cap {
            match c.buffers.pop_front() {
                Some(old) => {
                    c.bytes -= old.capacity_bytes();
                    evicted.push(old);
                }
                None => break,
            }
        }
        c.bytes += bytes;
        c.buffers.push_back(s);
    }
    drop(evicted); // freed outside the lock
}

/// A kept buffer of exactly `capacity` elements of `T`, emptied (length 0), or `None`.
pub fn take<T: Element>(capacity: usize) -> Option<Vec<T>> {
    if capacity.saturating_mul(std::mem::size_of::<T>()) < MIN_BYTES {
        return None;
    }
    let mut c = lock();
    // newest first: the most recently freed buffer is the likeliest to be in cache
    let i = c.buffers.iter().rposition(|s| s.dtype() == T::DTYPE && s.capacity() == capacity)?;
    let s = c.buffers.remove(i)?;
    c.bytes -= s.capacity_bytes();
    drop(c);
    let mut v = T::from_storage(s)?;
    v.clear();
    Some(v)
}

/// Give every kept buffer back to the allocator.
pub fn clear() {
    let buffers = std::mem::take(&mut lock().buffers);
    lock().bytes = 0;
    drop(buffers);
}

/// Bytes kept now.
pub fn kept_bytes() -> usize {
    lock().bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_buffer_serves_the_next_allocation_of_its_size() {
        let n = MIN_BYTES; // f32: 4 MiB
        let v: Vec<f32> = vec![1.5; n];
        let p = v.as_ptr();
        give(f32::into_storage(v));
        assert!(take::<f64>(n).is_none(), "another dtype");
        assert!(take::<f32>(n + 1).is_none(), "another size");
        let w = take::<f32>(n).expect("kept");
        assert_eq!((w.as_ptr(), w.len(), w.capacity()), (p, 0, n));
        // small buffers are not kept
        give(f32::into_storage(vec![0.0; 10]));
        assert!(take::<f32>(10).is_none());
    }
}
