//! The library's thread pool: fork-join regions that cost about a microsecond when the workers are awake.
//!
//! Why not rayon (which the foundation used): a GPT training step issues hundreds of parallel regions, most of
//! them a GEMM or an elementwise loop of tens to hundreds of microseconds. Measured on the 2-core machine, waking
//! a parked thread costs about 55 µs and a rayon `join` on tiny jobs about 50 µs, so a region costs as much as
//! the work it splits; a spinning handoff costs about 1 µs. This pool therefore:
//! - keeps `n - 1` workers; the calling thread is the n-th and always works on its own region;
//! - publishes a region as one atomic word (epoch, task count, next task), which workers poll while spinning.
//!   A task is claimed by compare-and-swap on that word, so any thread takes any task: a worker that wakes late
//!   finds the tasks already done by the caller and never makes the caller wait for its wake-up;
//! - lets workers spin for [`SPIN`] after their last task before parking, so back-to-back regions (a training
//!   step) hand off in about a microsecond and an idle library gives its cores back within a millisecond;
//! - runs a region serially when the pool is busy (another Python thread's region, or a task that itself asks
//!   for a parallel region), so concurrent callers and nested regions never deadlock.
//!
//! A panic in a task is caught on whichever thread ran it and resumed on the caller after every task of the
//! region has finished (the bindings then turn it into a Python RuntimeError).
//!
//! Size: `set_num_threads(n)`, else `BIGCORE_NUM_THREADS`, else the number of available cores. Resizing starts a
//! fresh pool; the old workers exit once idle.

use crate::error::{Error, Result};
use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// Below this many elements (or scalar operations) a loop runs on the calling thread.
pub const MIN_PARALLEL: usize = 1 << 15;

/// How long an idle worker spins before parking.
const SPIN: Duration = Duration::from_millis(1);

/// Most tasks one region may have (the task fields of the claim word are 16 bits).
pub const MAX_TASKS: usize = (1 << 16) - 1;

/// Most threads a pool may have. Far above any core count this library runs on; a larger request is a typo
/// (or `2**40`), refused with a clear error instead of an allocation failure or the OS running out of threads.
pub const MAX_THREADS: usize = 1 << 12;

/// The claim word: epoch (high 32 bits), number of tasks (16 bits), next unclaimed task (low 16 bits).
fn word(epoch: u64, tasks: usize, next: usize) -> u64 {
    (epoch << 32) | ((tasks as u64) << 16) | next as u64
}
fn epoch_of(w: u64) -> u64 {
    w >> 32
}
fn tasks_of(w: u64) -> usize {
    ((w >> 16) & 0xffff) as usize
}
fn next_of(w: u64) -> usize {
    (w & 0xffff) as usize
}

type Payload = Box<dyn Any + Send>;

/// State shared by the caller and the workers of one pool.
struct Shared {
    claim: AtomicU64,
    /// Tasks of the current region that have finished (successfully or by panicking).
    finished: AtomicUsize,
    /// The region's function: a `&dyn Fn(usize) + Sync` split into its two words, valid while the region runs.
    job: Mutex<Option<JobRef>>,
    panic: Mutex<Option<Payload>>,
    sleepers: AtomicUsize,
    shutdown: AtomicBool,
}

/// The region's closure with its lifetime erased (see `Pool::run` for why that is sound).
#[derive(Clone, Copy)]
struct JobRef(&'static (dyn Fn(usize) + Sync));

/// A pool of `threads - 1` workers plus the calling thread.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<Thread>,
    busy: AtomicBool,
}

thread_local! {
    /// Set on the pool's own workers: a region started from inside a task runs serially.
    static IN_WORKER: Cell<bool> = const { Cell::new(false) };
}

impl Pool {
    fn new(threads: usize) -> Result<Pool> {
        let shared = Arc::new(Shared {
            claim: AtomicU64::new(0),
            finished: AtomicUsize::new(0),
            job: Mutex::new(None),
            panic: Mutex::new(None),
            sleepers: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
        });
        let mut workers = Vec::with_capacity(threads.saturating_sub(1));
        for i in 1..threads {
            let s = shared.clone();
            let h = thread::Builder::new()
                .name(format!("bigcore-{i}"))
                .spawn(move || worker(&s))
                .map_err(|e| Error::invalid("set_num_threads", format!("cannot start {threads} threads: {e}")))?;
            workers.push(h.thread().clone());
        }
        Ok(Pool { shared, workers, busy: AtomicBool::new(false) })
    }

    /// Threads that work on a region: the workers and the caller.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Run `f(0) .. f(tasks - 1)`, spread over the pool, returning when all have finished.
    ///
    /// # Panics
    /// Resumes the first panic of any task, after every task has finished.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        assert!(tasks <= MAX_TASKS, "parallel region of {tasks} tasks (at most {MAX_TASKS})");
        let serial = tasks <= 1
            || self.workers.is_empty()
            || IN_WORKER.with(Cell::get)
            || self.busy.compare_exchange(false, true, Acquire, Relaxed).is_err();
        if serial {
            (0..tasks).for_each(f);
            return;
        }
        // From here on the pool is ours; the guard hands it back however this function exits (a panic resumed
        // below included), so one failed region never leaves every later one serial.
        let _busy = BusyGuard(&self.busy);
        let s = &*self.shared;
        // SAFETY: the erased lifetime is never outlived. Workers call the closure only after claiming a task of
        // this region's epoch, and this function returns only once `finished == tasks`, i.e. after every claimed
        // task has returned (panicking tasks are counted after unwinding). A late worker that sees this epoch
        // after the region ends finds no task left to claim and never touches the closure; the next region
        // replaces the job before publishing its own epoch.
        let job = JobRef(unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f) });
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
        s.finished.store(0, Relaxed);
        let epoch = epoch_of(s.claim.load(Relaxed)).wrapping_add(1) & 0xffff_ffff;
        s.claim.store(word(epoch, tasks, 0), SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            self.workers.iter().for_each(Thread::unpark);
        }
        run_tasks(s, epoch, job);
        let mut spins = 0u32;
        while s.finished.load(Acquire) < tasks {
            spin_or_yield(&mut spins);
        }
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let panic = s.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(p) = panic {
            resume_unwind(p);
        }
    }
}

/// Clears a pool's `busy` flag when dropped: on return and on unwinding alike.
struct BusyGuard<'a>(&'a AtomicBool);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Release);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        self.workers.iter().for_each(Thread::unpark);
    }
}

/// Claim and run tasks of region `epoch` until none is left.
fn run_tasks(s: &Shared, epoch: u64, job: JobRef) {
    let mut w = s.claim.load(Acquire);
    loop {
        if epoch_of(w) != epoch || next_of(w) >= tasks_of(w) {
            return;
        }
        match s.claim.compare_exchange_weak(w, w + 1, AcqRel, Acquire) {
            Ok(_) => {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| (job.0)(next_of(w)))) {
                    s.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(p);
                }
                s.finished.fetch_add(1, Release);
                w = s.claim.load(Acquire);
            }
            Err(now) => w = now,
        }
    }
}

fn spin_or_yield(spins: &mut u32) {
    *spins += 1;
    if *spins < 1 << 12 {
        std::hint::spin_loop();
    } else {
        // The other thread may have been descheduled (shared VMs steal time): give it the core.
        thread::yield_now();
    }
}

/// A worker: wait for a region with unclaimed tasks, help run it, spin a while, park.
fn worker(s: &Shared) {
    IN_WORKER.with(|c| c.set(true));
    let mut seen = epoch_of(s.claim.load(Acquire));
    let mut idle_since = Instant::now();
    let mut spins = 0u32;
    while !s.shutdown.load(Relaxed) {
        let w = s.claim.load(Acquire);
        if epoch_of(w) != seen {
            seen = epoch_of(w);
            if next_of(w) < tasks_of(w) {
                // The job is set before the epoch is published and cleared only after the region ends; a region
                // that already ended leaves no task to claim, so a stale job is never called.
                let job = *s.job.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(job) = job {
                    run_tasks(s, seen, job);
                }
            }
            idle_since = Instant::now();
            spins = 0;
            continue;
        }
        spins += 1;
        if !spins.is_multiple_of(256) || idle_since.elapsed() < SPIN {
            std::hint::spin_loop();
            continue;
        }
        // Park. Announce it first and re-check, so a region published meanwhile either is seen here or sees
        // the sleeper and unparks it (both sides use SeqCst).
        s.sleepers.fetch_add(1, SeqCst);
        if epoch_of(s.claim.load(SeqCst)) == seen && !s.shutdown.load(SeqCst) {
            thread::park();
        }
        s.sleepers.fetch_sub(1, SeqCst);
        idle_since = Instant::now();
    }
}

static POOL: RwLock<Option<Arc<Pool>>> = RwLock::new(None);

fn default_threads() -> usize {
    let cores = thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    match std::env::var("BIGCORE_NUM_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(n) if n > 0 => n.min(MAX_THREADS),
        _ => cores.min(MAX_THREADS),
    }
}

/// The pool, built on first use.
pub fn pool() -> Arc<Pool> {
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut slot = POOL.write().unwrap_or_else(|e| e.into_inner());
    if slot.is_none() {
        // Building a pool of the default size only fails if the OS refuses threads; fall back to the caller alone.
        *slot = Some(Arc::new(Pool::new(default_threads()).or_else(|_| Pool::new(1)).expect("no thread needed")));
    }
    slot.as_ref().cloned().expect("pool was just set")
}

/// The number of threads heavy operations use.
pub fn num_threads() -> usize {
    pool().threads()
}

/// Set the number of threads heavy operations use.
///
/// # Errors
/// `InvalidArgument` for 0, more than [`MAX_THREADS`], or when the OS refuses the threads.
pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid("set_num_threads", "the number of threads must be at least 1, got 0"));
    }
    if n > MAX_THREADS {
        return Err(Error::invalid(
            "set_num_threads",
            format!("the number of threads must be at most {MAX_THREADS}, got {n}"),
        ));
    }
    let p = Pool::new(n)?;
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(p));
    Ok(())
}

/// Run `f(i)` for `i` in `0..tasks` over the pool (see [`Pool::run`]); more than [`MAX_TASKS`] tasks are grouped.
pub fn run(tasks: usize, f: impl Fn(usize) + Sync) {
    if tasks <= MAX_TASKS {
        pool().run(tasks, &f);
    } else {
        let per = tasks.div_ceil(MAX_TASKS);
        pool().run(tasks.div_ceil(per), &|g| (g * per..((g + 1) * per).min(tasks)).for_each(&f));
    }
}

/// Run fallible `f(i)` for `i` in `0..tasks` over the pool; the first error (by task index) is returned.
///
/// # Errors
/// The first error any task returned.
pub fn try_run(tasks: usize, f: impl Fn(usize) -> Result<()> + Sync) -> Result<()> {
    let errors: Vec<Mutex<Option<Error>>> = (0..tasks).map(|_| Mutex::new(None)).collect();
    run(tasks, |i| {
        if let Err(e) = f(i) {
            *errors[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
        }
    });
    errors.into_iter().find_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner())).map_or(Ok(()), Err)
}

/// Items per chunk when splitting `n` items over the pool: at least `min`, about two chunks a thread.
pub fn chunk_len(n: usize, min: usize) -> usize {
    let t = num_threads();
    n.div_ceil(2 * t).max(min).max(n.div_ceil(MAX_TASKS)).max(1)
}

/// Fill `out` element by element by calling `f(start, chunk)` on consecutive chunks, in parallel when `out` is
/// large. Chunk boundaries fall anywhere: only for kernels whose unit of work is one element. Kernels that
/// process rows use [`for_rows`], whose chunks are whole rows.
pub fn for_chunks<T: Send>(out: &mut [T], min: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let n = out.len();
    if n < min.max(MIN_PARALLEL) || num_threads() == 1 {
        f(0, out);
        return;
    }
    let c = chunk_len(n, min);
    each_chunk(out, c, |i, ch| f(i * c, ch));
}

/// Call `f(i, chunk)` for the `i`-th chunk of `len` elements of `out`, one task per chunk.
pub fn each_chunk<T: Send>(out: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    // Each task locks only its own chunk: the mutexes hand out disjoint `&mut` safely at ~20 ns a task.
    let chunks: Vec<Mutex<&mut [T]>> = out.chunks_mut(len.max(1)).map(Mutex::new).collect();
    run(chunks.len(), |i| f(i, &mut chunks[i].lock().unwrap_or_else(|e| e.into_inner())));
}

/// Output buffers that a row kernel fills together, split at the same row: a [`Rows`] or a tuple of them
/// (for example the normalized rows, the means and the reciprocal deviations of layer norm).
pub trait RowParts: Send + Sized {
    /// The number of rows.
    fn rows(&self) -> usize;
    /// Rows `..r` and rows `r..`.
    fn split_at_row(self, r: usize) -> (Self, Self);
}

/// A mutable buffer of whole rows of `len` elements each (`len` 1 for one value per row).
pub struct Rows<'a, T> {
    data: &'a mut [T],
    len: usize,
}

impl<'a, T> Rows<'a, T> {
    /// View `data` as rows of `len` elements.
    ///
    /// # Panics
    /// When `len` is 0 or does not divide `data.len()`: a caller bug, never user input.
    pub fn new(data: &'a mut [T], len: usize) -> Self {
        assert!(len > 0 && data.len().is_multiple_of(len), "{} elements are not whole rows of {len}", data.len());
        Rows { data, len }
    }

    /// The elements.
    pub fn into_slice(self) -> &'a mut [T] {
        self.data
    }
}

impl<T: Send> RowParts for Rows<'_, T> {
    fn rows(&self) -> usize {
        self.data.len() / self.len
    }
    fn split_at_row(self, r: usize) -> (Self, Self) {
        let (a, b) = self.data.split_at_mut(r * self.len);
        (Rows { data: a, len: self.len }, Rows { data: b, len: self.len })
    }
}

impl<A: RowParts, B: RowParts> RowParts for (A, B) {
    fn rows(&self) -> usize {
        self.0.rows()
    }
    fn split_at_row(self, r: usize) -> (Self, Self) {
        let ((a0, a1), (b0, b1)) = (self.0.split_at_row(r), self.1.split_at_row(r));
        ((a0, b0), (a1, b1))
    }
}

impl<A: RowParts, B: RowParts, C: RowParts> RowParts for (A, B, C) {
    fn rows(&self) -> usize {
        self.0.rows()
    }
    fn split_at_row(self, r: usize) -> (Self, Self) {
        let ((a0, a1), (b0, b1), (c0, c1)) = (self.0.split_at_row(r), self.1.split_at_row(r), self.2.split_at_row(r));
        ((a0, b0, c0), (a1, b1, c1))
    }
}

/// Call `f(first_row, part)` on consecutive chunks of whole rows of `parts`, in parallel when the work is large.
///
/// `row_work` is the cost of one row in elements (its length, for most kernels): the region runs on the calling
/// thread below [`MIN_PARALLEL`] elements of work, and each chunk holds at least `min_rows` rows. Every part is
/// cut at the same row, so a chunk's rows are complete in all of them; a kernel that computes each row on its
/// own therefore gives bit-identical results on any number of threads.
pub fn for_row_parts<P: RowParts>(parts: P, row_work: usize, min_rows: usize, f: impl Fn(usize, P) + Sync) {
    let rows = parts.rows();
    if rows.saturating_mul(row_work) < MIN_PARALLEL || num_threads() == 1 || rows < 2 {
        f(0, parts);
        return;
    }
    let per = chunk_len(rows, min_rows.max(1));
    let mut chunks = Vec::with_capacity(rows.div_ceil(per));
    let mut rest = parts;
    let mut first = 0;
    while rest.rows() > per {
        let (a, b) = rest.split_at_row(per);
        chunks.push(Mutex::new(Some((first, a))));
        first += per;
        rest = b;
    }
    chunks.push(Mutex::new(Some((first, rest))));
    run(chunks.len(), |i| {
        let chunk = chunks[i].lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((first, part)) = chunk {
            f(first, part);
        }
    });
}

/// Fill `out`, whole rows of `row_len` elements, by calling `f(first_row, rows)` on consecutive chunks of rows,
/// in parallel when `out` is large (see [`for_row_parts`]).
pub fn for_rows<T: Send>(out: &mut [T], row_len: usize, min_rows: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if row_len == 0 || out.is_empty() {
        return;
    }
    for_row_parts(Rows::new(out, row_len), row_len, min_rows, |r, rows| f(r, rows.into_slice()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_task_runs_once_across_many_regions() {
        let pool = Pool::new(3).unwrap();
        for tasks in [0, 1, 2, 3, 7, 64, 1000] {
            for _ in 0..50 {
                let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                pool.run(tasks, &|i| {
                    hits[i].fetch_add(1, Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "{tasks} tasks");
            }
        }
    }

    #[test]
    fn regions_after_the_workers_parked_still_run() {
        let pool = Pool::new(2).unwrap();
        for _ in 0..3 {
            thread::sleep(SPIN * 3);
            let sum = AtomicUsize::new(0);
            pool.run(4, &|i| {
                sum.fetch_add(i, Relaxed);
            });
            assert_eq!(sum.load(Relaxed), 6);
        }
    }

    #[test]
    fn a_panicking_task_resumes_on_the_caller_after_the_others_finish() {
        let pool = Pool::new(2).unwrap();
        let done = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(8, &|i| {
                if i == 3 {
                    panic!("task 3 failed");
                }
                thread::sleep(Duration::from_millis(2));
                done.fetch_add(1, Relaxed);
            })
        }));
        let msg = r.expect_err("the panic reaches the caller");
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"task 3 failed"));
        assert_eq!(done.load(Relaxed), 7);
        // the pool is usable afterwards
        let n = AtomicUsize::new(0);
        pool.run(5, &|_| {
            n.fetch_add(1, Relaxed);
        });
        assert_eq!(n.load(Relaxed), 5);
    }

    #[test]
    fn a_region_that_fails_its_checks_leaves_the_pool_parallel() {
        let pool = Pool::new(2).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| pool.run(MAX_TASKS + 1, &|_| ())));
        assert!(r.is_err(), "too many tasks is refused");
        assert!(!pool.busy.load(SeqCst), "a refused region left the pool busy");
        // a panicking task neither
        let r = catch_unwind(AssertUnwindSafe(|| pool.run(4, &|i| assert_ne!(i, 2))));
        assert!(r.is_err());
        assert!(!pool.busy.load(SeqCst), "a panicking region left the pool busy");
        // the next region runs on both threads again
        let threads = Mutex::new(std::collections::HashSet::new());
        for _ in 0..200 {
            pool.run(64, &|_| {
                threads.lock().unwrap().insert(thread::current().id());
                thread::sleep(Duration::from_micros(50));
            });
            if threads.lock().unwrap().len() > 1 {
                break;
            }
        }
        assert_eq!(threads.lock().unwrap().len(), 2, "regions after a failure ran serially");
    }

    #[test]
    fn thread_counts_beyond_the_cap_are_refused_before_allocating() {
        for n in [MAX_THREADS + 1, 1 << 40, 1 << 62, usize::MAX] {
            let e = set_num_threads(n).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("at most"), "{e}");
        }
    }

    #[test]
    fn nested_and_concurrent_regions_run_without_deadlock() {
        let pool = Arc::new(Pool::new(2).unwrap());
        let total = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        pool.run(3, &|_| {
                            // a region inside a task runs serially on that thread
                            pool.run(2, &|_| {
                                total.fetch_add(1, Relaxed);
                            });
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Relaxed), 4 * 100 * 3 * 2);
    }

    #[test]
    fn more_tasks_than_the_claim_word_holds_are_grouped() {
        let hits: Vec<AtomicUsize> = (0..MAX_TASKS * 2 + 5).map(|_| AtomicUsize::new(0)).collect();
        run(hits.len(), |i| {
            hits[i].fetch_add(1, Relaxed);
        });
        assert!(hits.iter().all(|h| h.load(Relaxed) == 1));
    }

    #[test]
    fn try_run_returns_the_first_error_by_index() {
        let r = try_run(6, |i| if i >= 2 { Err(Error::invalid("t", format!("task {i}"))) } else { Ok(()) });
        assert!(r.unwrap_err().to_string().contains("task 2"));
        assert!(try_run(6, |_| Ok(())).is_ok());
    }

    #[test]
    fn for_rows_hands_out_whole_rows_once() {
        // row lengths that divide nothing, row counts around the thresholds, 1 to 4 threads
        for threads in 1..=4 {
            set_num_threads(threads).unwrap();
            for row_len in [1, 2, 69, 97, 257, 1000] {
                for rows in [1, 2, 3, 7, 301, MIN_PARALLEL / row_len + 1, 3 * MIN_PARALLEL / row_len + 5] {
                    let mut v = vec![usize::MAX; rows * row_len];
                    for_rows(&mut v, row_len, 1, |first, ch| {
                        assert!(
                            ch.len().is_multiple_of(row_len),
                            "a chunk of {} elements cuts rows of {row_len}",
                            ch.len()
                        );
                        for (i, x) in ch.iter_mut().enumerate() {
                            assert_eq!(*x, usize::MAX, "element visited twice");
                            *x = first * row_len + i;
                        }
                    });
                    assert!(v.iter().enumerate().all(|(i, &x)| x == i), "rows {rows} of {row_len}, {threads} threads");
                }
            }
        }
    }

    #[test]
    fn for_row_parts_cuts_every_part_at_the_same_row() {
        set_num_threads(3).unwrap();
        let (rows, c) = (1001, 97);
        let (mut out, mut a, mut b) = (vec![0usize; rows * c], vec![0usize; rows], vec![0usize; rows]);
        for_row_parts(
            (Rows::new(&mut out, c), Rows::new(&mut a, 1), Rows::new(&mut b, 1)),
            c,
            1,
            |first, (o, a, b)| {
                let (o, a, b) = (o.into_slice(), a.into_slice(), b.into_slice());
                assert_eq!(o.len(), a.len() * c);
                assert_eq!(a.len(), b.len());
                for r in 0..a.len() {
                    o[r * c..(r + 1) * c].iter_mut().for_each(|x| *x = first + r);
                    a[r] = first + r;
                    b[r] = 2 * (first + r);
                }
            },
        );
        assert!((0..rows).all(|r| a[r] == r && b[r] == 2 * r && out[r * c..(r + 1) * c].iter().all(|&x| x == r)));
    }

    #[test]
    fn for_chunks_covers_every_element_once() {
        let mut v = vec![0usize; MIN_PARALLEL * 3 + 17];
        for_chunks(&mut v, 1, |lo, ch| ch.iter_mut().enumerate().for_each(|(i, x)| *x += lo + i));
        assert!(v.iter().enumerate().all(|(i, &x)| x == i));
    }
}
