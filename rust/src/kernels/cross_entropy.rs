//! Cross-entropy of logits (N, V) against class indices (N,), fused with log-softmax and label smoothing.
//!
//! With `lse = log(sum_v exp(x_v))`, `logp_v = x_v - lse` and smoothing `e`:
//! forward `loss = (1 - e) (lse - x_y) + e (lse - mean_v x_v)`, saving `lse` (N,); rows whose target is
//! `ignore_index` have loss 0. backward (accumulates): `dx_v += dloss (exp(x_v - lse) - (1 - e) [v == y] - e / V)`.
//!
//! float32 runs SIMD code: the forward reads each row once, keeping per lane a running max and a sum of
//! exponentials rescaled when the max grows (checked once per 4 vectors, so 1.25 exp per element), and the
//! sum of the logits for smoothing; the backward reads each row once more. Every exponential has a non-positive
//! argument (`x - max`, `x - lse`): `simd_loops::exp_nonpositive`, `simd::math::exp` without overflow handling.
//! float64 runs plain loops. Nothing of size N x V is allocated here; the backward writes only the logits'
//! gradient.
//!
//! Threads split whole rows, so the results do not depend on the thread count. Not here: class weights and
//! probability targets (composed in Python from log_softmax).

use super::simd_loops::{exp_nonpositive, load, load_or, step, store};
use crate::dtype::Float;
use crate::parallel::{self, Rows};
use crate::simd::{self, F32x, Simd};

/// Per-row `losses` and `lse` (N,) of `logits` (N, V). Targets must already be checked to lie in `0..V` or
/// equal `ignore_index`.
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_forward<T: Float>(
    losses: &mut [T],
    lse: &mut [T],
    logits: &[T],
    targets: &[i64],
    v: usize,
    ignore_index: i64,
    smoothing: f64,
) {
    forward(simd::active(), losses, lse, logits, targets, v, ignore_index, smoothing);
}

/// The backward of [`cross_entropy_forward`], accumulating into `dlogits` (N, V); `dloss[n]` is the upstream
/// gradient of row `n`'s loss.
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_backward<T: Float>(
    dlogits: &mut [T],
    dloss: &[T],
    logits: &[T],
    lse: &[T],
    targets: &[i64],
    v: usize,
    ignore_index: i64,
    smoothing: f64,
) {
    backward(simd::active(), dlogits, dloss, logits, lse, targets, v, ignore_index, smoothing);
}

#[allow(clippy::too_many_arguments)]
fn forward<T: Float>(
    simd: Simd,
    losses: &mut [T],
    lse: &mut [T],
    logits: &[T],
    targets: &[i64],
    v: usize,
    ignore_index: i64,
    smoothing: f64,
) {
    if v == 0 || losses.is_empty() {
        return;
    }
    debug_assert_eq!(logits.len(), losses.len() * v);
    parallel::for_row_parts((Rows::new(losses, 1), Rows::new(lse, 1)), v, 1, |n0, (losses, lse)| {
        let (losses, lse) = (losses.into_slice(), lse.into_slice());
        let n1 = n0 + losses.len();
        let (logits, targets) = (&logits[n0 * v..n1 * v], &targets[n0..n1]);
        if let (Some(l), Some(s), Some(x)) = (T::as_f32_mut(losses), T::as_f32_mut(lse), T::as_f32(logits)) {
            forward_rows_f32(simd, l, s, x, targets, v, ignore_index, smoothing);
            return;
        }
        for (n, row) in logits.chunks_exact(v).enumerate() {
            let m = row.iter().fold(T::NEG_INFINITY, |m, &x| m.max_nan(x));
            let l = row.iter().map(|&x| (x - m).exp()).sum::<T>().ln() + m;
            lse[n] = l;
            let mean = if smoothing > 0.0 { row.iter().copied().sum::<T>() / T::from_f64(v as f64) } else { T::ZERO };
            losses[n] = row_loss(l, row, mean, targets[n], ignore_index, smoothing);
        }
    });
}

/// One row's loss from its log-sum-exp and the mean of its logits (used only with smoothing).
fn row_loss<T: Float>(lse: T, row: &[T], mean: T, target: i64, ignore_index: i64, smoothing: f64) -> T {
    if target == ignore_index {
        return T::ZERO;
    }
    let e = T::from_f64(smoothing);
    let nll = lse - row[target as usize];
    let smooth = if smoothing > 0.0 { lse - mean } else { T::ZERO };
    (T::ONE - e) * nll + e * smooth
}

#[allow(clippy::too_many_arguments)]
fn backward<T: Float>(
    simd: Simd,
    dlogits: &mut [T],
    dloss: &[T],
    logits: &[T],
    lse: &[T],
    targets: &[i64],
    v: usize,
    ignore_index: i64,
    smoothing: f64,
) {
    if v == 0 {
        return;
    }
    let e = T::from_f64(smoothing);
    let e_v = T::from_f64(smoothing / v as f64);
    parallel::for_rows(dlogits, v, 1, |n0, ch| {
        let n1 = n0 + ch.len() / v;
        let (logits, dloss, lse, targets) = (&logits[n0 * v..n1 * v], &dloss[n0..n1], &lse[n0..n1], &targets[n0..n1]);
        if let (Some(d), Some(x), Some(g), Some(l)) =
            (T::as_f32_mut(ch), T::as_f32(logits), T::as_f32(dloss), T::as_f32(lse))
        {
            backward_rows_f32(simd, d, g, x, l, targets, v, ignore_index, smoothing);
            return;
        }
        for (n, (drow, row)) in ch.chunks_exact_mut(v).zip(logits.chunks_exact(v)).enumerate() {
            if targets[n] == ignore_index {
                continue;
            }
            let (g, y) = (dloss[n], targets[n] as usize);
            for (j, (d, &x)) in drow.iter_mut().zip(row).enumerate() {
                let p = (x - lse[n]).exp();
                let q = if j == y { T::ONE - e + e_v } else { e_v };
                *d += g * (p - q);
            }
        }
    });
}

/// The online update of a lane's running max `m` and sum `s` of `exp(x - m)` with a block whose lane-wise
/// max is `bm`; returns the new max and the factor the old sum is rescaled by.
#[inline(always)]
unsafe fn rescale<V: F32x>(m: V, bm: V) -> (V, V) {
    // SAFETY: the caller's CPU contract.
    unsafe {
        let mn = V::max(m, bm);
        (mn, exp_nonpositive(V::sub(m, mn)))
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_rows_body<V: F32x>(
    losses: &mut [f32],
    lse: &mut [f32],
    logits: &[f32],
    targets: &[i64],
    v: usize,
    ignore_index: i64,
    smoothing: f64,
) {
    let smooth = smoothing > 0.0;
    for (n, x) in logits.chunks_exact(v).enumerate() {
        // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
        unsafe {
            // the running max starts at the lowest finite float, so exp(old - new) is never exp(-inf + inf);
            // the logits are summed as x - x[0], numbers of the row's spread, not of its mean
            let (mut m, mut s, mut sx) = (V::splat(f32::MIN), V::zero(), V::zero());
            let first = V::splat(x[0]);
            let mut i = 0;
            while i + 4 * V::N <= v {
                let (x0, x1, x2, x3) =
                    (V::read(x, i), V::read(x, i + V::N), V::read(x, i + 2 * V::N), V::read(x, i + 3 * V::N));
                let (mn, r) = rescale(m, V::max(V::max(x0, x1), V::max(x2, x3)));
                let e01 = V::add(exp_nonpositive(V::sub(x0, mn)), exp_nonpositive(V::sub(x1, mn)));
                let e23 = V::add(exp_nonpositive(V::sub(x2, mn)), exp_nonpositive(V::sub(x3, mn)));
                s = V::fmadd(s, r, V::add(e01, e23));
                m = mn;
                if smooth {
                    let d = V::add(
                        V::add(V::sub(x0, first), V::sub(x1, first)),
                        V::add(V::sub(x2, first), V::sub(x3, first)),
                    );
                    sx = V::add(sx, d);
                }
                i += 4 * V::N;
            }
            while i < v {
                let k = step::<V>(i, v);
                let xv = load_or::<V>(x, i, k, f32::NEG_INFINITY);
                let (mn, r) = rescale(m, xv);
                s = V::fmadd(s, r, exp_nonpositive(V::sub(xv, mn)));
                m = mn;
                if smooth {
                    sx = V::add(sx, V::sub(load_or::<V>(x, i, k, x[0]), first));
                }
                i += k;
            }
            // the lanes' sums brought to the largest lane's max
            let top = V::hmax(m);
            let total = V::hsum(V::mul(s, exp_nonpositive(V::sub(m, V::splat(top)))));
            let l = ((total as f64).ln() + top as f64) as f32;
            lse[n] = l;
            let mean = (x[0] as f64 + V::hsum(sx) as f64 / v as f64) as f32;
            losses[n] = row_loss(l, x, mean, targets[n], ignore_index, smoothing);
        }
    }
}

crate::simd_kernel! {
    /// [`forward_rows_body`] at the given level.
    fn forward_rows_f32(simd: Simd, losses: &mut [f32], lse: &mut [f32], logits: &[f32], targets: &[i64], v: usize,
        ignore_index: i64, smoothing: f64) = forward_rows_body;
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_rows_body<V: F32x>(
    dlogits: &mut [f32],
    dloss: &[f32],
    logits: &[f32],
    lse: &[f32],
    targets: &[i64],
    v: usize,
    ignore_index: i64,
    smoothing: f64,
) {
    let e_v = (smoothing / v as f64) as f32;
    for (n, (d, x)) in dlogits.chunks_exact_mut(v).zip(logits.chunks_exact(v)).enumerate() {
        if targets[n] == ignore_index {
            continue;
        }
        let (g, y) = (dloss[n], targets[n] as usize);
        let at_target = d[y];
        // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
        unsafe {
            let (gv, lv, ev) = (V::splat(g), V::splat(lse[n]), V::splat(e_v));
            let mut i = 0;
            while i < v {
                let k = step::<V>(i, v);
                let p = exp_nonpositive(V::sub(load::<V>(x, i, k), lv));
                store(V::fmadd(gv, V::sub(p, ev), load::<V>(d, i, k)), d, i, k);
                i += k;
            }
        }
        // the target's element once more, with its own q: 1 - e + e / V
        let p = (x[y] - lse[n]).exp();
        d[y] = at_target + g * (p - ((1.0 - smoothing) as f32 + e_v));
    }
}

crate::simd_kernel! {
    /// [`backward_rows_body`] at the given level.
    fn backward_rows_f32(simd: Simd, dlogits: &mut [f32], dloss: &[f32], logits: &[f32], lse: &[f32], targets: &[i64],
        v: usize, ignore_index: i64, smoothing: f64) = backward_rows_body;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
        let mut rng = crate::random::Rng::seeded(seed);
        (0..n).map(|_| scale * (2.0 * rng.uniform() - 1.0)).collect()
    }

    /// f64 reference of one row: (loss, dlogits for dloss = g).
    fn reference(x: &[f64], y: usize, e: f64, g: f64) -> (f64, Vec<f64>) {
        let v = x.len() as f64;
        let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = x.iter().map(|a| (a - m).exp()).sum::<f64>().ln() + m;
        let mean = x.iter().sum::<f64>() / v;
        let loss = (1.0 - e) * (lse - x[y]) + e * (lse - mean);
        let d = x
            .iter()
            .enumerate()
            .map(|(j, a)| g * ((a - lse).exp() - e / v - if j == y { 1.0 - e } else { 0.0 }))
            .collect();
        (loss, d)
    }

    #[test]
    fn float32_rows_match_a_float64_loop_on_every_level() {
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            // vocabularies around the 4-vector block and awkward ones, one GPT-2 sized; logits far from 0
            for (rows, v) in [(3, 1), (4, 2), (5, 17), (3, 63), (3, 64), (7, 65), (5, 97), (301, 257), (2, 50304)] {
                for smoothing in [0.0, 0.1] {
                    let x = values(rows * v, v as u64, 8.0);
                    let x32: Vec<f32> = x.iter().map(|&a| (a + 30.0) as f32).collect();
                    let targets: Vec<i64> =
                        (0..rows).map(|r| if r % 3 == 2 { -100 } else { ((r * 37 + 5) % v) as i64 }).collect();
                    let g32: Vec<f32> = (0..rows).map(|r| 0.5 + r as f32 * 0.25).collect();
                    let (mut loss, mut lse) = (vec![0f32; rows], vec![0f32; rows]);
                    forward(simd, &mut loss, &mut lse, &x32, &targets, v, -100, smoothing);
                    let mut d = vec![0.5f32; rows * v];
                    backward(simd, &mut d, &g32, &x32, &lse, &targets, v, -100, smoothing);
                    for r in 0..rows {
                        let xr: Vec<f64> = x32[r * v..(r + 1) * v].iter().map(|&a| a as f64).collect();
                        let tag = format!("{} {rows}x{v} smoothing {smoothing} row {r}", simd.name());
                        if targets[r] == -100 {
                            assert_eq!(loss[r], 0.0, "{tag}");
                            assert!(
                                d[r * v..(r + 1) * v].iter().all(|&a| a == 0.5),
                                "{tag}: ignored rows get no gradient"
                            );
                            continue;
                        }
                        let (want, want_d) = reference(&xr, targets[r] as usize, smoothing, g32[r] as f64);
                        // the loss is a difference of numbers near 38: a few float32 roundings of those
                        // lse near 40 is stored in float32 (3.8e-6 apart): the loss is that close, and a little more
                        assert!((loss[r] as f64 - want).abs() <= 1e-5, "{tag}: {} vs {want}", loss[r]);
                        for j in 0..v {
                            let got = d[r * v + j] as f64 - 0.5;
                            assert!(
                                (got - want_d[j]).abs() <= 4e-6 * g32[r] as f64,
                                "{tag} [{j}]: {got} vs {}",
                                want_d[j]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn special_logits_on_every_level() {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            for v in [5usize, 70] {
                let mut x = vec![1.0f32; 3 * v];
                x[v + 3] = nan; // row 1: NaN -> NaN loss
                x[2 * v..].iter_mut().for_each(|a| *a = -inf); // row 2: all -inf but the target
                x[2 * v + 4] = 0.0;
                let (mut loss, mut lse) = (vec![0f32; 3], vec![0f32; 3]);
                forward(simd, &mut loss, &mut lse, &x, &[0, 0, 4], v, -100, 0.0);
                assert!((loss[0] - (v as f32).ln()).abs() < 1e-6, "{} uniform row: {}", simd.name(), loss[0]);
                assert!(loss[1].is_nan() && lse[1].is_nan(), "{} NaN row: {}", simd.name(), loss[1]);
                assert_eq!(loss[2], 0.0, "{} one finite logit, the target", simd.name());
                let mut x = vec![0f32; v];
                x[2] = inf;
                forward(simd, &mut loss[..1], &mut lse[..1], &x, &[0], v, -100, 0.0);
                assert!(loss[0].is_nan(), "{} +inf logit: {}", simd.name(), loss[0]);
            }
        }
    }
}
