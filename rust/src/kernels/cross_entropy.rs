//! Cross-entropy of logits (N, C) against class indices (N,), fused with log-softmax and label smoothing.
//!
//! With `lse = log(sum_c exp(x_c))`, `logp_c = x_c - lse` and smoothing `e`:
//! `loss = (1 - e) * (-logp_y) + e * mean_c(-logp_c)`; rows whose target is `ignore_index` have loss 0.
//! backward (accumulates): `dx_c += dloss * (softmax_c - (1 - e) [c == y] - e / C)`.
//!
//! Threads split whole rows, so the results do not depend on the thread count.

use crate::dtype::Float;
use crate::parallel::{self, Rows};

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
    if c == 0 {
        return;
    }
    let e = T::from_f64(smoothing);
    parallel::for_row_parts((Rows::new(losses, 1), Rows::new(lse, 1)), c, 1, |n0, (losses, lse)| {
        let (losses, lse) = (losses.into_slice(), lse.into_slice());
        for (i, (loss, lse)) in losses.iter_mut().zip(lse).enumerate() {
            let n = n0 + i;
            let row = &logits[n * c..(n + 1) * c];
            let mut m = T::NEG_INFINITY;
            for &v in row {
                m = m.max_nan(v);
            }
            let s: T = row.iter().map(|&v| (v - m).exp()).sum();
            let l = s.ln() + m;
            *lse = l;
            if targets[n] == ignore_index {
                *loss = T::ZERO;
                continue;
            }
            let nll = l - row[targets[n] as usize];
            let smooth = if smoothing > 0.0 {
                let mean: T = row.iter().copied().sum::<T>() / T::from_f64(c as f64);
                l - mean
            } else {
                T::ZERO
            };
            *loss = (T::ONE - e) * nll + e * smooth;
        }
    });
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
    if c == 0 {
        return;
    }
    let e = T::from_f64(smoothing);
    let e_c = T::from_f64(smoothing / c as f64);
    parallel::for_rows(dlogits, c, 1, |n0, ch| {
        for (i, drow) in ch.chunks_exact_mut(c).enumerate() {
            let n = n0 + i;
            if targets[n] == ignore_index {
                continue;
            }
            let (g, y, row) = (dloss[n], targets[n] as usize, &logits[n * c..(n + 1) * c]);
            for (j, (d, &v)) in drow.iter_mut().zip(row).enumerate() {
                let p = (v - lse[n]).exp();
                let q = if j == y { T::ONE - e + e_c } else { e_c };
                *d += g * (p - q);
            }
        }
    });
}
