//! Cross-entropy of logits (N, C) against class indices (N,), fused with log-softmax and label smoothing.
//!
//! With `lse = log(sum_c exp(x_c))`, `logp_c = x_c - lse` and smoothing `e`:
//! `loss = (1 - e) * (-logp_y) + e * mean_c(-logp_c)`; rows whose target is `ignore_index` have loss 0.
//! backward (accumulates): `dx_c += dloss * (softmax_c - (1 - e) [c == y] - e / C)`.

use crate::dtype::Float;

/// Per-row losses and log-sum-exp. Targets must already be checked to lie in `0..C` or equal `ignore_index`.
#[allow(clippy::too_many_arguments)]
pub fn forward<T: Float>(
    losses: &mut [T],
    lse: &mut [T],
    logits: &[T],
    targets: &[i64],
    c: usize,
    ignore_index: i64,
    smoothing: f64,
) {
    let e = T::from_f64(smoothing);
    for (n, row) in logits.chunks_exact(c).enumerate() {
        let mut m = T::NEG_INFINITY;
        for &v in row {
            m = m.max_nan(v);
        }
        let s: T = row.iter().map(|&v| (v - m).exp()).sum();
        let l = s.ln() + m;
        lse[n] = l;
        if targets[n] == ignore_index {
            losses[n] = T::ZERO;
            continue;
        }
        let nll = l - row[targets[n] as usize];
        let smooth = if smoothing > 0.0 {
            let mean: T = row.iter().copied().sum::<T>() / T::from_f64(c as f64);
            l - mean
        } else {
            T::ZERO
        };
        losses[n] = (T::ONE - e) * nll + e * smooth;
    }
}

/// Backward, accumulating into `dlogits`; `dloss[n]` is the upstream gradient of row `n`'s loss.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Float>(
    dlogits: &mut [T],
    dloss: &[T],
    logits: &[T],
    lse: &[T],
    targets: &[i64],
    c: usize,
    ignore_index: i64,
    smoothing: f64,
) {
    let e = T::from_f64(smoothing);
    let e_c = T::from_f64(smoothing / c as f64);
    for (n, (drow, row)) in dlogits.chunks_exact_mut(c).zip(logits.chunks_exact(c)).enumerate() {
        if targets[n] == ignore_index {
            continue;
        }
        let g = dloss[n];
        let y = targets[n] as usize;
        for (j, (d, &v)) in drow.iter_mut().zip(row).enumerate() {
            let p = (v - lse[n]).exp();
            let q = if j == y { T::ONE - e + e_c } else { e_c };
            *d += g * (p - q);
        }
    }
}
