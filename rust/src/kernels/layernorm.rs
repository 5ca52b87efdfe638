//! Layer normalization over the last C elements of each of N rows (llm.c's layernorm pair).
//!
//! forward: `out = (x - mean) * rstd * w + b`, saving mean and rstd per row.
//! backward (accumulates): with `n = (x - mean) * rstd` and `dn = dout * w`,
//! `dx += (dn - mean(dn) - n * mean(dn * n)) * rstd`, `dw += sum_rows dout * n`, `db += sum_rows dout`.

use crate::dtype::Float;
use crate::parallel;

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
    if c == 0 {
        return;
    }
    // statistics first (cheap, serial), then the normalized output in parallel
    for (r, row) in x.chunks_exact(c).enumerate() {
        let m: f64 = row.iter().map(|v| v.to_f64()).sum::<f64>() / c as f64;
        let var: f64 = row.iter().map(|v| (v.to_f64() - m).powi(2)).sum::<f64>() / c as f64;
        mean[r] = T::from_f64(m);
        rstd[r] = T::from_f64(1.0 / (var + eps).sqrt());
    }
    parallel::for_chunks(out, c * 64, |lo, ch| {
        for (ri, o) in ch.chunks_exact_mut(c).enumerate() {
            let r = lo / c + ri;
            let (m, s) = (mean[r], rstd[r]);
            for (j, (ov, &xv)) in o.iter_mut().zip(&x[r * c..(r + 1) * c]).enumerate() {
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
    mut dw: Option<&mut [T]>,
    mut db: Option<&mut [T]>,
    dout: &[T],
    x: &[T],
    w: Option<&[T]>,
    mean: &[T],
    rstd: &[T],
    c: usize,
) {
    if c == 0 {
        return;
    }
    let inv_c = T::from_f64(1.0 / c as f64);
    for (r, (dxr, (dor, xr))) in dx.chunks_exact_mut(c).zip(dout.chunks_exact(c).zip(x.chunks_exact(c))).enumerate() {
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
            if let Some(dw) = dw.as_deref_mut() {
                dw[j] += dor[j] * nv;
            }
            if let Some(db) = db.as_deref_mut() {
                db[j] += dor[j];
            }
        }
    }
}
