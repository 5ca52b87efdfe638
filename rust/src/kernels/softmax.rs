//! Softmax and log-softmax along one dimension of a tensor viewed as (outer, D, inner), forward and backward.
//!
//! forward: softmax `y = e / sum(e)` with `e = exp(x - max(x))`; log-softmax `y = (x - max(x)) - ln(sum(e))`.
//! The max is subtracted so large logits do not overflow; a row of all -inf gives NaN (as PyTorch does), and a
//! NaN anywhere in a row makes the whole row NaN.
//! backward (accumulates): softmax `dx += y * (dy - sum(dy * y))`; log-softmax `dx += dy - exp(y) * sum(dy)`.
//!
//! Contiguous rows (inner == 1) of float32 run SIMD kernels (`crate::simd`; sums in per-lane partial sums,
//! `exp` of the non-positive `x - max` by `simd_loops::exp_nonpositive`); strided rows (inner > 1) and float64
//! run plain loops. Threads split the outer slabs of `D * inner` elements, whole rows each, so results do not
//! depend on the thread count.
//! Not here: masks and scaling (attention's fused kernel runs its own online softmax).

use super::simd_loops::{dot, exp_nonpositive, load, load_or, max, step, store, sum};
use crate::dtype::Float;
use crate::parallel;
use crate::simd::{self, F32x, Simd};

/// Which of the two functions a shared loop computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Softmax,
    LogSoftmax,
}

/// `out = softmax(x)` along D. `out`, `x`: (outer, D, inner).
pub fn softmax_forward<T: Float>(out: &mut [T], x: &[T], outer: usize, d: usize, inner: usize) {
    forward(simd::active(), Form::Softmax, out, x, outer, d, inner);
}

/// `out = log_softmax(x)` along D. `out`, `x`: (outer, D, inner).
pub fn log_softmax_forward<T: Float>(out: &mut [T], x: &[T], outer: usize, d: usize, inner: usize) {
    forward(simd::active(), Form::LogSoftmax, out, x, outer, d, inner);
}

/// `dx += y * (dy - sum(dy * y))` along D, with `y` softmax's output. All (outer, D, inner).
pub fn softmax_backward<T: Float>(dx: &mut [T], dy: &[T], y: &[T], outer: usize, d: usize, inner: usize) {
    backward(simd::active(), Form::Softmax, dx, dy, y, outer, d, inner);
}

/// `dx += dy - exp(y) * sum(dy)` along D, with `y` log-softmax's output. All (outer, D, inner).
pub fn log_softmax_backward<T: Float>(dx: &mut [T], dy: &[T], y: &[T], outer: usize, d: usize, inner: usize) {
    backward(simd::active(), Form::LogSoftmax, dx, dy, y, outer, d, inner);
}

fn forward<T: Float>(simd: Simd, form: Form, out: &mut [T], x: &[T], outer: usize, d: usize, inner: usize) {
    let slab = d * inner;
    debug_assert_eq!(out.len(), outer * slab);
    debug_assert_eq!(x.len(), outer * slab);
    if slab == 0 {
        return;
    }
    parallel::for_rows(out, slab, 1, |o0, ch| {
        let x = &x[o0 * slab..o0 * slab + ch.len()];
        if inner == 1 {
            if let (Some(o), Some(x)) = (T::as_f32_mut(ch), T::as_f32(x)) {
                forward_rows_f32(simd, form, o, x, d);
                return;
            }
        }
        for (o, x) in ch.chunks_exact_mut(slab).zip(x.chunks_exact(slab)) {
            for i in 0..inner {
                forward_row(form, o, x, i, inner, d);
            }
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn backward<T: Float>(simd: Simd, form: Form, dx: &mut [T], dy: &[T], y: &[T], outer: usize, d: usize, inner: usize) {
    let slab = d * inner;
    debug_assert_eq!(dx.len(), outer * slab);
    if slab == 0 {
        return;
    }
    parallel::for_rows(dx, slab, 1, |o0, ch| {
        let (lo, hi) = (o0 * slab, o0 * slab + ch.len());
        let (dy, y) = (&dy[lo..hi], &y[lo..hi]);
        if inner == 1 {
            if let (Some(dx), Some(dy), Some(y)) = (T::as_f32_mut(ch), T::as_f32(dy), T::as_f32(y)) {
                backward_rows_f32(simd, form, dx, dy, y, d);
                return;
            }
        }
        for ((dx, dy), y) in ch.chunks_exact_mut(slab).zip(dy.chunks_exact(slab)).zip(y.chunks_exact(slab)) {
            for i in 0..inner {
                backward_row(form, dx, dy, y, i, inner, d);
            }
        }
    });
}

/// Forward of one row of `d` elements at `base`, `stride` apart (the plain loop).
fn forward_row<T: Float>(form: Form, out: &mut [T], x: &[T], base: usize, stride: usize, d: usize) {
    let at = |j: usize| base + j * stride;
    let mut m = T::NEG_INFINITY;
    for j in 0..d {
        m = m.max_nan(x[at(j)]);
    }
    if m == T::NEG_INFINITY {
        m = T::ZERO; // all -inf: every e is 0, the sum 0, and the result NaN as PyTorch gives
    }
    let mut s = T::ZERO;
    for j in 0..d {
        let e = (x[at(j)] - m).exp();
        out[at(j)] = e;
        s += e;
    }
    match form {
        Form::Softmax => {
            let inv = T::ONE / s;
            for j in 0..d {
                out[at(j)] *= inv;
            }
        }
        Form::LogSoftmax => {
            let ls = s.ln();
            for j in 0..d {
                out[at(j)] = (x[at(j)] - m) - ls;
            }
        }
    }
}

/// Backward of one row of `d` elements at `base`, `stride` apart (the plain loop).
fn backward_row<T: Float>(form: Form, dx: &mut [T], dy: &[T], y: &[T], base: usize, stride: usize, d: usize) {
    let at = |j: usize| base + j * stride;
    match form {
        Form::Softmax => {
            let s: T = (0..d).map(|j| dy[at(j)] * y[at(j)]).sum();
            for j in 0..d {
                dx[at(j)] += y[at(j)] * (dy[at(j)] - s);
            }
        }
        Form::LogSoftmax => {
            let s: T = (0..d).map(|j| dy[at(j)]).sum();
            for j in 0..d {
                dx[at(j)] += dy[at(j)] - y[at(j)].exp() * s;
            }
        }
    }
}

/// Forward of contiguous rows of `d`, one vector step at a time (the tail masked).
#[inline(always)]
unsafe fn forward_rows_body<V: F32x>(form: Form, out: &mut [f32], x: &[f32], d: usize) {
    for (o, x) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
        // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
        unsafe {
            let mut m = max::<V>(x);
            if m == f32::NEG_INFINITY {
                m = 0.0; // all -inf: NaN as in the plain loop
            }
            let mv = V::splat(m);
            // e = exp(x - m), summed; lanes past the tail read -inf, whose e is 0
            let mut s = V::zero();
            let mut i = 0;
            while i < d {
                let k = step::<V>(i, d);
                let e = exp_nonpositive(V::sub(load_or::<V>(x, i, k, f32::NEG_INFINITY), mv));
                if form == Form::Softmax {
                    store(e, o, i, k);
                }
                s = V::add(s, e);
                i += k;
            }
            let s = V::hsum(s);
            let (scale, shift) = match form {
                Form::Softmax => (V::splat(1.0 / s), V::zero()),
                Form::LogSoftmax => (V::zero(), V::splat(s.ln())),
            };
            let mut i = 0;
            while i < d {
                let k = step::<V>(i, d);
                let y = match form {
                    Form::Softmax => V::mul(load::<V>(o, i, k), scale),
                    Form::LogSoftmax => V::sub(V::sub(load::<V>(x, i, k), mv), shift),
                };
                store(y, o, i, k);
                i += k;
            }
        }
    }
}

crate::simd_kernel! {
    /// [`forward_rows_body`] at the given level.
    fn forward_rows_f32(simd: Simd, form: Form, out: &mut [f32], x: &[f32], d: usize) = forward_rows_body;
}

/// Backward of contiguous rows of `d` (accumulating into `dx`).
#[inline(always)]
unsafe fn backward_rows_body<V: F32x>(form: Form, dx: &mut [f32], dy: &[f32], y: &[f32], d: usize) {
    for ((dx, dy), y) in dx.chunks_exact_mut(d).zip(dy.chunks_exact(d)).zip(y.chunks_exact(d)) {
        // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
        unsafe {
            let s = V::splat(match form {
                Form::Softmax => dot::<V>(dy, y),
                Form::LogSoftmax => sum::<V>(dy),
            });
            let mut i = 0;
            while i < d {
                let k = step::<V>(i, d);
                let (g, yv) = (load::<V>(dy, i, k), load::<V>(y, i, k));
                let delta = match form {
                    Form::Softmax => V::mul(yv, V::sub(g, s)),
                    Form::LogSoftmax => V::sub(g, V::mul(exp_nonpositive(yv), s)),
                };
                store(V::add(load::<V>(dx, i, k), delta), dx, i, k);
                i += k;
            }
        }
    }
}

crate::simd_kernel! {
    /// [`backward_rows_body`] at the given level.
    fn backward_rows_f32(simd: Simd, form: Form, dx: &mut [f32], dy: &[f32], y: &[f32], d: usize) = backward_rows_body;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The f64 reference of one contiguous row: (softmax, log_softmax).
    fn reference(x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = x.iter().map(|v| (v - m).exp()).sum();
        (x.iter().map(|v| (v - m).exp() / s).collect(), x.iter().map(|v| v - m - s.ln()).collect())
    }

    fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
        let mut rng = crate::random::Rng::seeded(seed);
        (0..n).map(|_| scale * (2.0 * rng.uniform() - 1.0)).collect()
    }

    #[test]
    fn float32_rows_match_a_float64_loop_on_every_level() {
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            // row lengths around the vector widths and awkward ones; rows enough to cross the parallel threshold
            for (rows, d) in
                [(1, 1), (3, 2), (5, 7), (2, 15), (3, 16), (7, 17), (13, 69), (11, 97), (301, 257), (37, 1000)]
            {
                let x = values(rows * d, 1 + d as u64, 6.0);
                let dy = values(rows * d, 2 + d as u64, 1.0);
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
                for form in [Form::Softmax, Form::LogSoftmax] {
                    let mut y = vec![0f32; rows * d];
                    forward(simd, form, &mut y, &x32, rows, d, 1);
                    let mut dx = vec![0.5f32; rows * d]; // accumulates onto 0.5
                    backward(simd, form, &mut dx, &dy32, &y, rows, d, 1);
                    for r in 0..rows {
                        let xr: Vec<f64> = x32[r * d..(r + 1) * d].iter().map(|&v| v as f64).collect();
                        let (p, lp) = reference(&xr);
                        let want = if form == Form::Softmax { &p } else { &lp };
                        let dyr = &dy32[r * d..(r + 1) * d];
                        let (sum_dy, dot): (f64, f64) =
                            (dyr.iter().map(|&v| v as f64).sum(), dyr.iter().zip(&p).map(|(&a, b)| a as f64 * b).sum());
                        for j in 0..d {
                            let got = y[r * d + j] as f64;
                            let tol = if form == Form::Softmax {
                                2e-6 * want[j] + 1e-9
                            } else {
                                2e-6 * (1.0 + want[j].abs())
                            };
                            assert!(
                                (got - want[j]).abs() <= tol,
                                "{} {form:?} {rows}x{d} [{r},{j}]: {got} vs {}",
                                simd.name(),
                                want[j]
                            );
                            let g = dyr[j] as f64;
                            let want_dx =
                                0.5 + if form == Form::Softmax { p[j] * (g - dot) } else { g - p[j] * sum_dy };
                            let got_dx = dx[r * d + j] as f64;
                            let scale =
                                1.0 + g.abs() + if form == Form::Softmax { dot.abs() } else { p[j] * sum_dy.abs() };
                            assert!(
                                (got_dx - want_dx).abs() <= 4e-6 * scale,
                                "{} {form:?} backward {rows}x{d} [{r},{j}]: {got_dx} vs {want_dx}",
                                simd.name()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn special_rows_on_every_level() {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            for d in [3usize, 20] {
                // all -inf: NaN (as PyTorch); a NaN anywhere: all NaN; -inf next to finite values: 0 / -inf
                let mut rows = vec![-inf; d];
                let mut with_nan = vec![1.0f32; d];
                with_nan[d - 1] = nan;
                let mut with_neg_inf = vec![2.0f32; d];
                with_neg_inf[1] = -inf;
                rows.extend(&with_nan);
                rows.extend(&with_neg_inf);
                rows.extend(vec![1e30f32; d]); // huge logits: max-subtraction keeps them finite
                for form in [Form::Softmax, Form::LogSoftmax] {
                    let mut y = vec![0f32; 4 * d];
                    forward(simd, form, &mut y, &rows, 4, d, 1);
                    assert!(y[..2 * d].iter().all(|v| v.is_nan()), "{} {form:?} d={d}: {:?}", simd.name(), &y[..2 * d]);
                    let r = &y[2 * d..3 * d];
                    let want_other = if form == Form::Softmax { 1.0 / (d - 1) as f32 } else { -((d - 1) as f32).ln() };
                    assert_eq!(r[1], if form == Form::Softmax { 0.0 } else { -inf }, "{} {form:?}", simd.name());
                    assert!((r[0] - want_other).abs() < 1e-6, "{} {form:?}: {} vs {want_other}", simd.name(), r[0]);
                    let uniform = if form == Form::Softmax { 1.0 / d as f32 } else { -(d as f32).ln() };
                    assert!(y[3 * d..].iter().all(|&v| (v - uniform).abs() < 1e-6), "{} {form:?} huge", simd.name());
                }
            }
        }
    }

    #[test]
    fn strided_rows_match_contiguous_ones() {
        // (outer, D, inner) = (3, 37, 5): the rows along D, strided, against the same rows made contiguous
        let (outer, d, inner) = (3, 37, 5);
        let x = values(outer * d * inner, 9, 4.0);
        let dy = values(outer * d * inner, 10, 1.0);
        let transpose = |v: &[f64]| -> Vec<f64> {
            let mut t = vec![0.0; v.len()];
            for o in 0..outer {
                for j in 0..d {
                    for i in 0..inner {
                        t[(o * inner + i) * d + j] = v[(o * d + j) * inner + i];
                    }
                }
            }
            t
        };
        for (fwd, bwd) in [
            (
                softmax_forward::<f64> as fn(&mut [f64], &[f64], usize, usize, usize),
                softmax_backward::<f64> as fn(&mut [f64], &[f64], &[f64], usize, usize, usize),
            ),
            (log_softmax_forward::<f64>, log_softmax_backward::<f64>),
        ] {
            let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            fwd(&mut y, &x, outer, d, inner);
            bwd(&mut dx, &dy, &y, outer, d, inner);
            let (xt, dyt) = (transpose(&x), transpose(&dy));
            let (mut yt, mut dxt) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            fwd(&mut yt, &xt, outer * inner, d, 1);
            bwd(&mut dxt, &dyt, &yt, outer * inner, d, 1);
            assert_eq!(transpose(&y), yt);
            assert_eq!(transpose(&dx), dxt);
        }
    }
}
