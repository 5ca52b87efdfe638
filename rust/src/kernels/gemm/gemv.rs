//! One-row products (`m == 1`: a single token through `linear`, a matrix-vector product) without packing.
//!
//! Packing B costs a load and a store per value of B, the same as the whole product when A has one row; the
//! blocked driver spent ~95% of `1x768 @ 768x3072` packing. Here B is read once, in its own layout:
//! - columns of B contiguous (B = W^T in `linear`): one dot product per output. In f32, four columns at a time
//!   on the SIMD level's vectors (`dots`: `a` loaded once for four columns, eight FMA chains); measured on
//!   `1x3072x768` (W^T, one thread, Zen 4): 19.9 -> 34.2 GFLOP/s median, OpenBLAS ~32. In f64, 32 partial
//!   sums in a plain loop the compiler vectorizes;
//! - rows of B contiguous (row-major B): the output row accumulates `a[p] * B[p, :]` row by row.
//!
//! Both are memory-bound. Outputs are split over threads by column, each computed whole by one thread with the
//! same arithmetic whatever the split.

use super::pack::MatRef;
use super::Kernel;
use crate::parallel;
use crate::simd::{F32x, Simd};

/// Values per partial-sum array (4 AVX2 vectors of f32).
const LANES: usize = 32;
/// Output columns per task.
const COLS: usize = 256;

/// `c[j] = alpha * sum_p a[p] * B[p, j] + beta * c[j] (+ bias[j])` for `j < n`, if B has a unit stride;
/// returns false (doing nothing) otherwise. `a` must be contiguous (`k` values).
#[allow(clippy::too_many_arguments)]
pub fn gemv<T: Kernel>(
    simd: Simd,
    threads: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: MatRef<'_, T>,
    beta: T,
    bias: Option<&[T]>,
    c: &mut [T],
) -> bool {
    if b.rs != 1 && b.cs != 1 {
        return false;
    }
    let tasks = if k * n >= parallel::MIN_PARALLEL * 8 { threads.min(n.div_ceil(COLS)).max(1) } else { 1 };
    let cols = n.div_ceil(tasks);
    let run = |j0: usize, out: &mut [T]| {
        let job = Job { simd, k, alpha, a, b, beta, bias, j0 };
        #[cfg(target_arch = "x86_64")]
        if simd != Simd::Scalar {
            // SAFETY: `simd` is capped at what the CPU supports by the caller (`gemm_bias_with`), so AVX2 and
            // FMA exist whenever it is not Scalar.
            unsafe { job.run_avx2(out) };
            return;
        }
        job.run(out);
    };
    if tasks == 1 {
        run(0, &mut c[..n]);
    } else {
        parallel::each_chunk(&mut c[..n], cols, |t, out| run(t * cols, out));
    }
    true
}

/// One column range of a one-row product.
struct Job<'a, T> {
    simd: Simd,
    k: usize,
    alpha: T,
    a: &'a [T],
    b: MatRef<'a, T>,
    beta: T,
    bias: Option<&'a [T]>,
    j0: usize,
}

impl<T: Kernel> Job<'_, T> {
    /// # Safety
    /// The CPU supports avx2 and fma.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, out: &mut [T]) {
        self.run(out)
    }

    #[inline(always)]
    fn run(&self, out: &mut [T]) {
        let Job { k, alpha, a, b, beta, bias, j0, .. } = *self;
        let finish = |j: usize, sum: T, c: &mut T| {
            let add = bias.map_or(T::ZERO, |v| v[j0 + j]);
            *c = if beta == T::ZERO { alpha * sum + add } else { alpha * sum + beta * *c + add };
        };
        if b.rs == 1 {
            if let (Some(a32), Some(d32)) = (T::as_f32(&a[..k]), T::as_f32(b.data)) {
                // f32 columns: four dot products at a time on the SIMD level's vectors
                let mut sums = vec![0f32; out.len()];
                dots(self.simd, &mut sums, a32, d32, b.cs, j0);
                for (j, (c, &s)) in out.iter_mut().zip(&sums).enumerate() {
                    finish(j, T::from_f64(s as f64), c);
                }
                return;
            }
            // column j of B is b.data[(j0 + j) * cs ..][..k]
            for (j, c) in out.iter_mut().enumerate() {
                let col = &b.data[(j0 + j) * b.cs..(j0 + j) * b.cs + k];
                // ask for the next column while summing this one: each is a short stream (a few KiB) that the
                // hardware prefetchers would only pick up halfway through
                finish(j, dot(&a[..k], col, (j0 + j + 1) * b.cs, b.data), c);
            }
        } else {
            let w = out.len();
            let mut acc = vec![T::ZERO; w];
            for (p, &ap) in a[..k].iter().enumerate() {
                let row = &b.data[p * b.rs + j0..p * b.rs + j0 + w];
                for (s, &v) in acc.iter_mut().zip(row) {
                    *s += ap * v;
                }
            }
            for (j, (c, &s)) in out.iter_mut().zip(&acc).enumerate() {
                finish(j, s, c);
            }
        }
    }
}

/// `sum x[i] * y[i]` with [`LANES`] independent partial sums, so the loop vectorizes and pipelines; meanwhile
/// prefetches `x.len()` values of `data` from `next` on.
#[inline(always)]
fn dot<T: Kernel>(x: &[T], y: &[T], next: usize, data: &[T]) -> T {
    let mut part = [T::ZERO; LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (c, (xs, ys)) in xc.zip(yc).enumerate() {
        super::pack::prefetch(data, next + c * LANES);
        super::pack::prefetch(data, next + c * LANES + LANES / 2);
        for i in 0..LANES {
            part[i] += xs[i] * ys[i];
        }
    }
    let mut sum = T::ZERO;
    for (&u, &v) in xr.iter().zip(yr) {
        sum += u * v;
    }
    part.iter().fold(sum, |s, &p| s + p)
}

crate::simd_kernel! {
    /// `sums[j] = a . B[:, j0 + j]` where column `j` of B is `data[j * cs..][..a.len()]`.
    fn dots(simd: Simd, sums: &mut [f32], a: &[f32], data: &[f32], cs: usize, j0: usize) = dots_body;
}

/// Four columns at a time, each with two accumulators (eight independent FMA chains), `a` loaded once per step
/// for all four; masked loads for the tail of each column. Leftover columns run the same arithmetic one at a
/// time, so a column's sum does not depend on which group it fell in (thread splits move the groups).
#[inline(always)]
unsafe fn dots_body<V: F32x>(sums: &mut [f32], a: &[f32], data: &[f32], cs: usize, j0: usize) {
    let mut j = 0;
    while j + 4 <= sums.len() {
        // SAFETY: the caller's CPU contract.
        unsafe { dot_cols::<V, 4>(&mut sums[j..j + 4], a, data, cs, j0 + j) };
        j += 4;
    }
    while j < sums.len() {
        // SAFETY: as above.
        unsafe { dot_cols::<V, 1>(&mut sums[j..j + 1], a, data, cs, j0 + j) };
        j += 1;
    }
}

/// `sums[c] = a . B[:, j + c]` for `c < W`.
#[inline(always)]
unsafe fn dot_cols<V: F32x, const W: usize>(sums: &mut [f32], a: &[f32], data: &[f32], cs: usize, j: usize) {
    let k = a.len();
    let full = k / V::N * V::N;
    let col = |c: usize| (j + c) * cs;
    // SAFETY: the vector methods need the level's CPU features (the caller's contract); every read is
    // bounds-checked by `F32x::read`.
    unsafe {
        let mut acc = [[V::zero(); 2]; W];
        let mut i = 0;
        while i + 2 * V::N <= full {
            let (a0, a1) = (V::read(a, i), V::read(a, i + V::N));
            for (c, acc) in acc.iter_mut().enumerate() {
                acc[0] = V::fmadd(a0, V::read(data, col(c) + i), acc[0]);
                acc[1] = V::fmadd(a1, V::read(data, col(c) + i + V::N), acc[1]);
            }
            i += 2 * V::N;
        }
        if i < full {
            let a0 = V::read(a, i);
            for (c, acc) in acc.iter_mut().enumerate() {
                acc[0] = V::fmadd(a0, V::read(data, col(c) + i), acc[0]);
            }
        }
        if full < k {
            let a0 = V::read_partial(a, full, k - full);
            for (c, acc) in acc.iter_mut().enumerate() {
                acc[1] = V::fmadd(a0, V::read_partial(data, col(c) + full, k - full), acc[1]);
            }
        }
        for (s, acc) in sums.iter_mut().zip(&acc) {
            *s = V::hsum(V::add(acc[0], acc[1]));
        }
    }
}
