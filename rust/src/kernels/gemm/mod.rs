//! General matrix multiply: `C = alpha * A @ B + beta * C` for f32 and f64, with A and B given by arbitrary
//! row and column strides (so transposed operands are read in place) and C row-major with row stride `ldc`.
//!
//! The BLIS five-loop structure:
//! ```text
//! for jc in 0..N step NC          B block of NC columns
//!   for pc in 0..K step KC        (the first block applies beta, the last adds the bias)
//!     for ic in 0..M step MC      pack A[ic.., pc..] into MR-tall panels (MC x KC of A stays in L2)
//!       for jr in 0..NC step NR   on the first ic, pack B[pc.., jc+jr..] (GROUP panels at a time) just before use
//!         for ir in 0..MC step MR   microkernel: C[ir.., jr..] = A panel * B panel (+ beta C, + bias)
//! ```
//! Blocking constants (f32), for a core with 32 KiB of L1d and 512 KiB of L2 (Zen 3 here; Intel's AVX-512 parts
//! have 48 KiB and 1–2 MiB): KC = 256 (a KC x NR B panel is 16 KiB with AVX2's NR = 16, 32 KiB with AVX-512's 32;
//! an A panel 6 KiB), NC = 2048, and two regimes for M:
//! - up to 256 KiB of A per block of k (M <= 256 in f32: GPT's M = B*T rows), one row block: every packed group
//!   of B panels is used once, by all of M, right after packing, so groups go to a small ring of GROUP slots
//!   that stays in cache, instead of every panel of a 2 MiB block (each store a miss). Measured, one thread:
//!   packing 11.5–12.3% → 9.4–9.6% of 256x2304x768 (`perf`), and in paired timings +7–18% on that shape,
//!   +14% on 256x3072x768 and +10% on 16x3072x768 with B = W^T (benchmarks/README.md).
//! - taller: row blocks of at most MC = 120 rows (120 KiB of A in L2; M cut into equal blocks, so M = 300 runs
//!   as 102 + 102 + 96 rather than 120 + 120 + 60) sharing one packed B block (KC x NC) per block of k.
//!
//! One-row products skip all of this (`gemv.rs`): packing B would cost as much as the product. A B multiplied
//! many times (a recurrent layer's weights, once per time step) is packed once instead (`packed.rs`).
//!
//! Threads: the output is cut into one tile per thread on a 2-D grid chosen so that each thread packs the fewest
//! rows of A plus columns of B (GPT's wide products split by columns, tall ones by rows); each thread runs the
//! five loops on its tile and writes it in place. Products of under about 0.5 MFLOP a thread use fewer threads.
//! Packing is per thread (each packs its own rows of A and columns of B): sharing packed panels would save at
//! most the duplicated A (or B) of a 2-way split, a few percent at M = 256, for a barrier per block.

mod gemv;
mod microkernel;
mod pack;
mod packed;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use crate::simd::{active as active_simd, best as best_simd, Simd};
pub use microkernel::{tile, Kernel};
pub use pack::MatRef;
pub use packed::{gemm_packed, gemm_packed_tile, gemm_packed_with, PackedB};

use crate::parallel;

const KC: usize = 256;
const MC: usize = 120;
/// Most bytes of A a single row block may pack per block of k (half of a 512 KiB L2).
const ONE_BLOCK_BYTES: usize = 256 * 1024;
const NC: usize = 2048;
/// B panels packed together on the first pass over a block (see `pack::pack_b_panels`).
const GROUP: usize = 4;

/// `C = alpha * A @ B + beta * C`, where A is `m x k`, B is `k x n`, C is `m x n` with row stride `ldc`.
/// `beta == 0` overwrites C (NaNs in C do not propagate), as BLAS does.
///
/// # Panics
/// If `c` is too short for `m` rows of stride `ldc`, or A or B too short for their shapes and strides.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Kernel>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    gemm_with(crate::simd::active(), parallel::num_threads(), m, n, k, alpha, a, b, beta, c, ldc)
}

/// [`gemm`] with an explicit SIMD level and thread count (for tests of every path).
#[allow(clippy::too_many_arguments)]
pub fn gemm_with<T: Kernel>(
    simd: Simd,
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    gemm_bias_with(simd, threads, m, n, k, alpha, a, b, beta, None, c, ldc)
}

/// `C = alpha * A @ B + beta * C + bias` with `bias` (length n) added to every row as each tile of C is stored,
/// while it is still in registers: `linear`'s epilogue, with no separate pass over C.
#[allow(clippy::too_many_arguments)]
pub fn gemm_bias<T: Kernel>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    bias: Option<&[T]>,
    c: &mut [T],
    ldc: usize,
) {
    gemm_bias_with(crate::simd::active(), parallel::num_threads(), m, n, k, alpha, a, b, beta, bias, c, ldc)
}

/// [`gemm_bias`] with an explicit SIMD level and thread count.
#[allow(clippy::too_many_arguments)]
pub fn gemm_bias_with<T: Kernel>(
    simd: Simd,
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    bias: Option<&[T]>,
    c: &mut [T],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n, "gemm: C of {} values is too short for {m} x {n}", c.len());
    if let Some(bias) = bias {
        assert!(bias.len() >= n, "gemm: bias of {} values is too short for {n} columns", bias.len());
    }
    if k == 0 || alpha == T::ZERO {
        scale_rows(c, m, n, ldc, beta);
        if let Some(bias) = bias {
            for i in 0..m {
                c[i * ldc..i * ldc + n].iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
            }
        }
        return;
    }
    a.check(m, k, "A");
    b.check(k, n, "B");
    let simd = if simd.supported() { simd } else { crate::simd::best() };
    if m == 1 {
        let row: std::borrow::Cow<'_, [T]> = if a.cs == 1 {
            std::borrow::Cow::Borrowed(&a.data[..k])
        } else {
            std::borrow::Cow::Owned((0..k).map(|p| a.data[p * a.cs]).collect())
        };
        if gemv::gemv(simd, threads, n, k, alpha, &row, b, beta, bias, c) {
            return;
        }
    }
    let c = CPtr { ptr: c.as_mut_ptr(), ldc };
    let (tr, tc) = grid::<T>(simd, threads, m, n, k);
    let rows = split(m, tr, microkernel::tile::<T>(simd).0);
    let cols = split(n, tc, microkernel::tile::<T>(simd).1);
    let tile = |t: usize| {
        let (i0, i1) = (rows * (t / tc), (rows * (t / tc + 1)).min(m));
        let (j0, j1) = (cols * (t % tc), (cols * (t % tc + 1)).min(n));
        if i0 < i1 && j0 < j1 {
            // SAFETY: tile t covers rows i0..i1 and columns j0..j1 of C; the tiles of the grid are disjoint, the
            // assert above puts every one of their elements inside `c`, and `c` stays mutably borrowed (so
            // untouched by anyone else) until `run` returns after the last tile.
            unsafe { block(simd, i0, i1 - i0, j0, j1 - j0, k, alpha, a, b, beta, bias, c) };
        }
    };
    if tr * tc == 1 {
        tile(0);
    } else {
        parallel::run(tr * tc, tile);
    }
}

/// C as a raw pointer, so threads can write disjoint tiles that are not contiguous slices.
#[derive(Clone, Copy)]
struct CPtr<T> {
    ptr: *mut T,
    ldc: usize,
}

// SAFETY: a `CPtr` is only shared between the tiles of one `gemm_with` call, which write disjoint elements.
unsafe impl<T: Send> Send for CPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for CPtr<T> {}

/// Rows (or columns) per tile when splitting `len` into `parts`, rounded up to the register tile `unit`.
fn split(len: usize, parts: usize, unit: usize) -> usize {
    len.div_ceil(parts).div_ceil(unit) * unit
}

/// Tiles of the output per dimension: `threads` tiles (fewer for small products), arranged so each thread
/// packs the least: a thread packs its rows of A and its columns of B, so the grid minimises rows + columns.
fn grid<T: Kernel>(simd: Simd, threads: usize, m: usize, n: usize, k: usize) -> (usize, usize) {
    let (mr, nr) = microkernel::tile::<T>(simd);
    // about 0.5 MFLOP (several microseconds) per thread, so a region's ~1 µs hand-off stays small
    let by_work = (m.saturating_mul(n).saturating_mul(k) / (parallel::MIN_PARALLEL * 8)).max(1);
    let t = threads.min(by_work).min(m.div_ceil(mr) * n.div_ceil(nr)).max(1);
    let mut best = (1, t, usize::MAX);
    for tr in (1..=t).filter(|tr| t % tr == 0) {
        let tc = t / tr;
        let cost = split(m, tr, mr) + split(n, tc, nr);
        if tr <= m.div_ceil(mr) && tc <= n.div_ceil(nr) && cost < best.2 {
            best = (tr, tc, cost);
        }
    }
    (best.0, best.1)
}

fn scale_rows<T: Kernel>(c: &mut [T], m: usize, n: usize, ldc: usize, beta: T) {
    if beta == T::ONE {
        return;
    }
    for i in 0..m {
        let row = &mut c[i * ldc..i * ldc + n];
        if beta == T::ZERO {
            row.fill(T::ZERO);
        } else {
            row.iter_mut().for_each(|v| *v *= beta);
        }
    }
}

/// Rows per row block: all of them when their A block fits in [`ONE_BLOCK_BYTES`], else blocks of at most [`MC`]
/// rows, equal in size (rounded to the register tile) so none is a thin remainder.
fn row_block<T>(m: usize, kc: usize, mr: usize) -> usize {
    if m * kc * std::mem::size_of::<T>() <= ONE_BLOCK_BYTES {
        m
    } else {
        split(m, m.div_ceil(MC), mr)
    }
}

/// The five loops for `C[i0..i0+m, j0..j0+n] = alpha * A[i0.., :] @ B[:, j0..] + beta * C[..] (+ bias[j0..])`.
///
/// # Safety
/// No other thread accesses that block of C during the call, every element of it is inside C's allocation, and
/// `bias`, if given, holds at least `j0 + n` values.
#[allow(clippy::too_many_arguments)]
unsafe fn block<T: Kernel>(
    simd: Simd,
    i0: usize,
    m: usize,
    j0: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    bias: Option<&[T]>,
    c: CPtr<T>,
) {
    let (mr, nr) = microkernel::tile::<T>(simd);
    let mcb = row_block::<T>(m, KC.min(k), mr);
    // one row block: each group of B panels is used once, so it is packed into a ring of GROUP slots
    let ring = mcb >= m;
    T::with_bufs(|apack, bpack| {
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                // the first block of k applies beta, the others accumulate; the last adds the bias
                let beta = if pc == 0 { beta } else { T::ONE };
                let bias = if pc + kc == k { bias } else { None };
                bpack.reserve(if ring { GROUP } else { nc.div_ceil(nr) } * kc * nr);
                for ic in (0..m).step_by(mcb) {
                    let mc = mcb.min(m - ic);
                    pack::pack_a(apack, a, i0 + ic, mc, pc, kc, mr);
                    let apk = apack.get();
                    for (pj, jr) in (0..nc).step_by(nr).enumerate() {
                        let slot = if ring { pj % GROUP } else { pj };
                        if ic == 0 && pj % GROUP == 0 {
                            // packed just before first use, so the kernels below read it from cache
                            let count = GROUP.min(nc.div_ceil(nr) - pj);
                            pack::pack_b_panels(bpack, b, pc, kc, j0 + jc, nc, nr, pj, count, slot);
                            pack::prefetch_b_panels(b, pc, kc, j0 + jc, nc, nr, pj + count, GROUP);
                        }
                        let nr_eff = nr.min(nc - jr);
                        let bp = &bpack.get()[slot * kc * nr..(slot + 1) * kc * nr];
                        let bias = bias.map_or(std::ptr::null(), |v| v[j0 + jc + jr..].as_ptr());
                        for (pi, ir) in (0..mc).step_by(mr).enumerate() {
                            let mr_eff = mr.min(mc - ir);
                            let ap = &apk[pi * kc * mr..(pi + 1) * kc * mr];
                            // SAFETY: the tile's mr_eff x nr_eff corner lies inside this block of C (the caller's
                            // contract), the panels hold kc steps of the full tile, and `simd` is capped at what
                            // the CPU supports by `gemm_with`.
                            unsafe {
                                let corner = c.ptr.add((i0 + ic + ir) * c.ldc + j0 + jc + jr);
                                T::run(simd, kc, alpha, ap, bp, beta, bias, corner, c.ldc, mr_eff, nr_eff);
                            }
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests;
