//! One-row products (`m == 1`: a single token through `linear`, a matrix-vector product) without packing.
//!
//! Packing B costs a load and a store per value of B, the same as the whole product when A has one row; the
//! blocked driver spent ~95% of `1x768 @ 768x3072` packing. Here B is read once, in its own layout:
//! - columns of B contiguous (B = W^T in `linear`): one dot product per output, 32 independent partial sums;
//! - rows of B contiguous (row-major B): the output row accumulates `a[p] * B[p, :]` row by row.
//!
//! Both are memory-bound; the bodies are plain loops the compiler vectorizes, compiled once more inside an
//! AVX2 wrapper. Outputs are split over threads by column, each computed whole by one thread.

use super::pack::MatRef;
use super::Kernel;
use crate::parallel;
use crate::simd::Simd;

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
        let job = Job { k, alpha, a, b, beta, bias, j0 };
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
        let Job { k, alpha, a, b, beta, bias, j0 } = *self;
        let finish = |j: usize, sum: T, c: &mut T| {
            let add = bias.map_or(T::ZERO, |v| v[j0 + j]);
            *c = if beta == T::ZERO { alpha * sum + add } else { alpha * sum + beta * *c + add };
        };
        if b.rs == 1 {
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
