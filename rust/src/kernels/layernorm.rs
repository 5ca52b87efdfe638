//! Layer normalization over the last C elements of each of N rows (llm.c's layernorm pair).
//!
//! forward: `out = (x - mean) * rstd * w + b`, saving mean and rstd per row.
//! backward (accumulates): with `n = (x - mean) * rstd` and `dn = dout * w`,
//! `dx += (dn - mean(dn) - n * mean(dn * n)) * rstd`, `dw += sum_rows dout * n`, `db += sum_rows dout`.
//!
//! Threads split whole rows (forward, dx) and whole columns (dw, db: each column summed over every row in row
//! order by one thread), so the results do not depend on the thread count.

use crate::dtype::Float;
use crate::parallel::{self, Rows};

/// Forward over `n` rows of `c` elements. `w`, `b` are `c` long when present.
#[allow(clippy::too_many_arguments)]
pub fn forward<T: Float>(
    out: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
    x: &[T],
    w: Option<&[T]>,
    b: Option<&[T]>,
    c: usize,
    eps: f64,
) {
    if c == 0 || out.is_empty() {
        return;
    }
    let parts = (Rows::new(out, c), Rows::new(mean, 1), Rows::new(rstd, 1));
    parallel::for_row_parts(parts, c, 1, |r0, (out, mean, rstd)| {
        let (out, mean, rstd) = (out.into_slice(), mean.into_slice(), rstd.into_slice());
        for (r, o) in out.chunks_exact_mut(c).enumerate() {
            let row = &x[(r0 + r) * c..(r0 + r + 1) * c];
            // statistics in f64: float32 rows of thousands of elements keep float32 accuracy
            let m: f64 = row.iter().map(|v| v.to_f64()).sum::<f64>() / c as f64;
            let var: f64 = row.iter().map(|v| (v.to_f64() - m).powi(2)).sum::<f64>() / c as f64;
            let (m, s) = (T::from_f64(m), T::from_f64(1.0 / (var + eps).sqrt()));
            mean[r] = m;
            rstd[r] = s;
            for (j, (ov, &xv)) in o.iter_mut().zip(row).enumerate() {
                let nv = (xv - m) * s;
                *ov = nv * w.map_or(T::ONE, |w| w[j]) + b.map_or(T::ZERO, |b| b[j]);
            }
        }
    });
}

/// Backward, accumulating into `dx`, `dw`, `db`.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Float>(
    dx: &mut [T],
    dw: Option<&mut [T]>,
    db: Option<&mut [T]>,
    dout: &[T],
    x: &[T],
    w: Option<&[T]>,
    mean: &[T],
    rstd: &[T],
    c: usize,
) {
    if c == 0 || dx.is_empty() {
        return;
    }
    let rows = dx.len() / c;
    let inv_c = T::from_f64(1.0 / c as f64);
    parallel::for_rows(dx, c, 1, |r0, ch| {
        for (r, dxr) in ch.chunks_exact_mut(c).enumerate() {
            let r = r0 + r;
            let (dor, xr) = (&dout[r * c..(r + 1) * c], &x[r * c..(r + 1) * c]);
            let (m, s) = (mean[r], rstd[r]);
            let mut dn_mean = T::ZERO;
            let mut dnn_mean = T::ZERO;
            for j in 0..c {
                let nv = (xr[j] - m) * s;
                let dn = dor[j] * w.map_or(T::ONE, |w| w[j]);
                dn_mean += dn;
                dnn_mean += dn * nv;
            }
            dn_mean *= inv_c;
            dnn_mean *= inv_c;
            for j in 0..c {
                let nv = (xr[j] - m) * s;
                let dn = dor[j] * w.map_or(T::ONE, |w| w[j]);
                dxr[j] += (dn - dn_mean - nv * dnn_mean) * s;
            }
        }
    });
    if dw.is_none() && db.is_none() {
        return;
    }
    // dw and db column by column: (dw_j, db_j) pairs as rows of 2, each summed over all rows in order
    let mut sums = vec![T::ZERO; 2 * c];
    parallel::for_row_parts(Rows::new(&mut sums, 2), rows, 1, |j0, part| {
        let part = part.into_slice();
        let cols = part.len() / 2;
        for r in 0..rows {
            let (m, s) = (mean[r], rstd[r]);
            let (dor, xr) = (&dout[r * c + j0..r * c + j0 + cols], &x[r * c + j0..r * c + j0 + cols]);
            for (pair, (&d, &xv)) in part.chunks_exact_mut(2).zip(dor.iter().zip(xr)) {
                pair[0] += d * ((xv - m) * s);
                pair[1] += d;
            }
        }
    });
    if let Some(dw) = dw {
        dw.iter_mut().zip(sums.chunks_exact(2)).for_each(|(a, p)| *a += p[0]);
    }
    if let Some(db) = db {
        db.iter_mut().zip(sums.chunks_exact(2)).for_each(|(a, p)| *a += p[1]);
    }
}
