//! The library's one thread pool, its size, and the work-size threshold under which work stays on the calling
//! thread.
//!
//! This is a rayon pool. Waking parked rayon workers costs tens of microseconds, so any region smaller than
//! [`MIN_PARALLEL`] elements runs on the caller without touching the pool. (The GEMM issue revisits the pool
//! design with spinning handoffs once the GPT step's hundreds of regions are measured.)
//!
//! Size: `set_num_threads(n)`, else `BIGCORE_NUM_THREADS`, else the number of available cores.
//! Resizing builds a fresh pool; work already running on the old one finishes there.

use crate::error::{Error, Result};
use rayon::ThreadPool;
use std::sync::{Arc, RwLock};

/// Below this many elements (or scalar operations) a loop runs on the calling thread.
pub const MIN_PARALLEL: usize = 1 << 15;

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    match std::env::var("BIGCORE_NUM_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(n) if n > 0 => n,
        _ => cores,
    }
}

fn build(n: usize) -> Result<Arc<ThreadPool>> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("bigcore-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::invalid("set_num_threads", format!("cannot start {n} threads: {e}")))
}

/// The pool, built on first use.
pub fn pool() -> Arc<ThreadPool> {
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut slot = POOL.write().unwrap_or_else(|e| e.into_inner());
    if slot.is_none() {
        // Building a pool of the default size only fails if the OS refuses threads; fall back to one.
        *slot = Some(build(default_threads()).or_else(|_| build(1)).expect("the OS refused to start even one thread"));
    }
    slot.as_ref().cloned().expect("pool was just set")
}

/// The number of threads heavy operations use.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}

/// Set the number of threads heavy operations use.
///
/// # Errors
/// `InvalidArgument` for 0 or when the OS refuses the threads.
pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid("set_num_threads", "the number of threads must be at least 1, got 0"));
    }
    let p = build(n)?;
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(p);
    Ok(())
}

/// Run `f` inside the pool, so rayon's parallel iterators in it use the library's threads.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}

/// Elements per chunk when splitting `n` elements over the pool: at least `min`, about two chunks a thread.
pub fn chunk_len(n: usize, min: usize) -> usize {
    let t = num_threads();
    n.div_ceil(2 * t).max(min).max(1)
}

/// Fill `out` by calling `f(start, chunk)` on consecutive chunks, in parallel when `out` is large.
pub fn for_chunks<T: Send>(out: &mut [T], min: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    use rayon::prelude::*;
    let n = out.len();
    if n < min.max(MIN_PARALLEL) || num_threads() == 1 {
        f(0, out);
        return;
    }
    let c = chunk_len(n, min);
    install(|| out.par_chunks_mut(c).enumerate().for_each(|(i, ch)| f(i * c, ch)));
}
