//! Layer normalization over the last C elements of each row (llm.c's layernorm pair), for rows of x (N, C).
//!
//! forward: `out = (x - mean) * rstd * w + b`, saving mean and rstd (N,) for the backward.
//! backward (accumulates): with `n = (x - mean) * rstd` and `dn = dout * w`,
//! `dx += (dn - mean(dn) - n * mean(dn * n)) * rstd`, `dw += sum_rows dout * n`, `db += sum_rows dout`.
//!
//! float32 runs SIMD kernels (`crate::simd`); float64 runs plain loops. The float32 statistics are two passes
//! over the row: the mean of `x - x[0]` (shifted by the row's first element, so the sum holds numbers of the
//! row's spread rather than of its mean, which may be far larger), then the mean of `(x - mean)^2`. Each pass
//! sums in per-lane partial sums (lane `l` adds every N-th element, the lanes are added at the end) and is
//! finished in f64. On rows of thousands of elements, offset means included, the outputs stay within a few
//! float32 roundings of the float64 reference (see the tests), with no catastrophic cancellation.
//!
//! Threads: the forward splits whole rows. The backward splits the rows into blocks whose size depends only on
//! N (never on the thread count); each block writes its rows of dx and its own partial sums of dw and db (rows
//! in order), and the partial sums are then added in block order. Results are bit-identical on any number of
//! threads. Not here: RMS norm, or normalization over non-trailing dims.

use super::simd_loops::{load, load_or, step, store};
use crate::dtype::Float;
use crate::parallel::{self, Rows, MIN_PARALLEL};
use crate::simd::{self, F32x, Simd};
use std::sync::Mutex;

/// `out = (x - mean) * rstd * w + b` over rows of C, saving `mean` and `rstd`. `out`, `x`: (N, C); `mean`,
/// `rstd`: (N,); `w`, `b`: (C,) when present.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_forward<T: Float>(
    out: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
    x: &[T],
    w: Option<&[T]>,
    b: Option<&[T]>,
    c: usize,
    eps: f64,
) {
    forward(simd::active(), out, mean, rstd, x, w, b, c, eps);
}

/// The backward of [`layer_norm_forward`], accumulating into `dx` (N, C) and, when present, `dw`, `db` (C,).
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward<T: Float>(
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
    backward(simd::active(), dx, dw, db, dout, x, w, mean, rstd, c);
}

#[allow(clippy::too_many_arguments)]
fn forward<T: Float>(
    simd: Simd,
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
    debug_assert_eq!(out.len(), x.len());
    debug_assert_eq!(out.len(), mean.len() * c);
    let parts = (Rows::new(out, c), Rows::new(mean, 1), Rows::new(rstd, 1));
    parallel::for_row_parts(parts, c, 1, |r0, (out, mean, rstd)| {
        let (out, mean, rstd) = (out.into_slice(), mean.into_slice(), rstd.into_slice());
        let x = &x[r0 * c..r0 * c + out.len()];
        if let (Some(o), Some(m), Some(s), Some(x)) =
            (T::as_f32_mut(out), T::as_f32_mut(mean), T::as_f32_mut(rstd), T::as_f32(x))
        {
            let (w, b) = (w.map(|w| T::as_f32(w).expect("f32")), b.map(|b| T::as_f32(b).expect("f32")));
            forward_rows_f32(simd, o, m, s, x, w, b, c, eps);
            return;
        }
        for (r, (o, x)) in out.chunks_exact_mut(c).zip(x.chunks_exact(c)).enumerate() {
            let m = x.iter().map(|v| v.to_f64()).sum::<f64>() / c as f64;
            let var = x.iter().map(|v| (v.to_f64() - m).powi(2)).sum::<f64>() / c as f64;
            let (m, s) = (T::from_f64(m), T::from_f64(1.0 / (var + eps).sqrt()));
            mean[r] = m;
            rstd[r] = s;
            for (j, (ov, &xv)) in o.iter_mut().zip(x).enumerate() {
                *ov = (xv - m) * s * w.map_or(T::ONE, |w| w[j]) + b.map_or(T::ZERO, |b| b[j]);
            }
        }
    });
}

/// Rows of one backward block: enough to amortize a block's partial sums, and at most [`MAX_BLOCKS`] blocks.
const MIN_BLOCK_ROWS: usize = 32;
const MAX_BLOCKS: usize = 256;

/// A backward block: its first row, its rows of dx, and its partial sums `[dw (C), db (C)]` when wanted.
type Block<'a, T> = (usize, &'a mut [T], Option<&'a mut [T]>);

#[allow(clippy::too_many_arguments)]
fn backward<T: Float>(
    simd: Simd,
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
    // the block size depends on N alone, so the partial sums (and their rounding) do not depend on the threads
    let per = MIN_BLOCK_ROWS.max(rows.div_ceil(MAX_BLOCKS));
    let blocks = rows.div_ceil(per);
    let want = dw.is_some() || db.is_some();
    let mut partials = vec![T::ZERO; if want { blocks * 2 * c } else { 0 }];
    let mut parts = partials.chunks_mut(2 * c);
    let work: Vec<Mutex<Option<Block<'_, T>>>> =
        dx.chunks_mut(per * c).enumerate().map(|(i, d)| Mutex::new(Some((i * per, d, parts.next())))).collect();
    let run_block = |i: usize| {
        let Some((r0, dx, part)) = work[i].lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        let n = dx.len();
        let (dout, x) = (&dout[r0 * c..r0 * c + n], &x[r0 * c..r0 * c + n]);
        let (mean, rstd) = (&mean[r0..r0 + n / c], &rstd[r0..r0 + n / c]);
        backward_block(simd, dx, part, dout, x, w, mean, rstd, c);
    };
    if rows * c < MIN_PARALLEL {
        (0..blocks).for_each(run_block);
    } else {
        parallel::run(blocks, run_block);
    }
    drop(work);
    if !want {
        return;
    }
    // the blocks' partial sums, added in block order
    let (total, rest) = partials.split_at_mut(2 * c);
    for part in rest.chunks_exact(2 * c) {
        total.iter_mut().zip(part).for_each(|(t, &p)| *t += p);
    }
    if let Some(dw) = dw {
        dw.iter_mut().zip(&total[..c]).for_each(|(a, &p)| *a += p);
    }
    if let Some(db) = db {
        db.iter_mut().zip(&total[c..]).for_each(|(a, &p)| *a += p);
    }
}

/// One block of rows: dx, and the block's sums of `dout * n` and `dout` into `part` (zeroed, 2C) when present.
#[allow(clippy::too_many_arguments)]
fn backward_block<T: Float>(
    simd: Simd,
    dx: &mut [T],
    part: Option<&mut [T]>,
    dout: &[T],
    x: &[T],
    w: Option<&[T]>,
    mean: &[T],
    rstd: &[T],
    c: usize,
) {
    if let (Some(dx32), Some(dout), Some(x), Some(mean), Some(rstd)) =
        (T::as_f32_mut(dx), T::as_f32(dout), T::as_f32(x), T::as_f32(mean), T::as_f32(rstd))
    {
        let w = w.map(|w| T::as_f32(w).expect("f32"));
        let part = part.map(|p| T::as_f32_mut(p).expect("f32"));
        backward_block_f32(simd, dx32, part, dout, x, w, mean, rstd, c);
        return;
    }
    let inv_c = T::from_f64(1.0 / c as f64);
    let mut part = part;
    for (r, dxr) in dx.chunks_exact_mut(c).enumerate() {
        let (dor, xr) = (&dout[r * c..(r + 1) * c], &x[r * c..(r + 1) * c]);
        let (m, s) = (mean[r], rstd[r]);
        let (mut dn_mean, mut dnn_mean) = (T::ZERO, T::ZERO);
        for j in 0..c {
            let dn = dor[j] * w.map_or(T::ONE, |w| w[j]);
            dn_mean += dn;
            dnn_mean += dn * ((xr[j] - m) * s);
        }
        dn_mean *= inv_c;
        dnn_mean *= inv_c;
        for j in 0..c {
            let nv = (xr[j] - m) * s;
            let dn = dor[j] * w.map_or(T::ONE, |w| w[j]);
            dxr[j] += (dn - dn_mean - nv * dnn_mean) * s;
        }
        if let Some(p) = part.as_deref_mut() {
            let (pw, pb) = p.split_at_mut(c);
            for j in 0..c {
                pw[j] += dor[j] * ((xr[j] - m) * s);
                pb[j] += dor[j];
            }
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_rows_body<V: F32x>(
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    x: &[f32],
    w: Option<&[f32]>,
    b: Option<&[f32]>,
    c: usize,
    eps: f64,
) {
    for (r, (o, x)) in out.chunks_exact_mut(c).zip(x.chunks_exact(c)).enumerate() {
        // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
        unsafe {
            // the mean of x - x[0], plus x[0]: the sum then holds numbers of the rows' spread, not of its mean
            let x0 = x[0];
            let mut s1 = V::zero();
            let mut i = 0;
            while i < c {
                let k = step::<V>(i, c);
                s1 = V::add(s1, V::sub(load_or::<V>(x, i, k, x0), V::splat(x0)));
                i += k;
            }
            let m = (x0 as f64 + V::hsum(s1) as f64 / c as f64) as f32;
            let mv = V::splat(m);
            // lanes past the tail read the mean, so they add 0
            let mut sq = V::zero();
            let mut i = 0;
            while i < c {
                let k = step::<V>(i, c);
                let d = V::sub(load_or::<V>(x, i, k, m), mv);
                sq = V::fmadd(d, d, sq);
                i += k;
            }
            let s = (1.0 / (V::hsum(sq) as f64 / c as f64 + eps).sqrt()) as f32;
            mean[r] = m;
            rstd[r] = s;
            let sv = V::splat(s);
            let mut i = 0;
            while i < c {
                let k = step::<V>(i, c);
                let n = V::mul(V::sub(load::<V>(x, i, k), mv), sv);
                let wv = match w {
                    Some(w) => load::<V>(w, i, k),
                    None => V::splat(1.0),
                };
                let bv = match b {
                    Some(b) => load::<V>(b, i, k),
                    None => V::zero(),
                };
                store(V::fmadd(n, wv, bv), o, i, k);
                i += k;
            }
        }
    }
}

crate::simd_kernel! {
    /// [`forward_rows_body`] at the given level.
    fn forward_rows_f32(simd: Simd, out: &mut [f32], mean: &mut [f32], rstd: &mut [f32], x: &[f32],
        w: Option<&[f32]>, b: Option<&[f32]>, c: usize, eps: f64) = forward_rows_body;
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_block_body<V: F32x>(
    dx: &mut [f32],
    mut part: Option<&mut [f32]>,
    dout: &[f32],
    x: &[f32],
    w: Option<&[f32]>,
    mean: &[f32],
    rstd: &[f32],
    c: usize,
) {
    for (r, dx) in dx.chunks_exact_mut(c).enumerate() {
        let (dout, x) = (&dout[r * c..(r + 1) * c], &x[r * c..(r + 1) * c]);
        // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
        unsafe {
            let (mv, sv) = (V::splat(mean[r]), V::splat(rstd[r]));
            // pass 1: sum(dn) and sum(dn * n); lanes past the tail load dout = 0, so add 0
            let (mut a, mut bsum) = (V::zero(), V::zero());
            let mut i = 0;
            while i < c {
                let k = step::<V>(i, c);
                let g = load::<V>(dout, i, k);
                let dn = match w {
                    Some(w) => V::mul(g, load::<V>(w, i, k)),
                    None => g,
                };
                let n = V::mul(V::sub(load::<V>(x, i, k), mv), sv);
                a = V::add(a, dn);
                bsum = V::fmadd(dn, n, bsum);
                i += k;
            }
            let inv_c = 1.0 / c as f64;
            let a = V::splat((V::hsum(a) as f64 * inv_c) as f32);
            let bsum = V::splat((V::hsum(bsum) as f64 * inv_c) as f32);
            // pass 2: dx, and the block's partial sums of dw and db
            let mut i = 0;
            while i < c {
                let k = step::<V>(i, c);
                let g = load::<V>(dout, i, k);
                let dn = match w {
                    Some(w) => V::mul(g, load::<V>(w, i, k)),
                    None => g,
                };
                let n = V::mul(V::sub(load::<V>(x, i, k), mv), sv);
                let d = V::mul(V::sub(V::sub(dn, a), V::mul(n, bsum)), sv);
                store(V::add(load::<V>(dx, i, k), d), dx, i, k);
                if let Some(p) = part.as_deref_mut() {
                    let (pw, pb) = p.split_at_mut(c);
                    store(V::fmadd(g, n, load::<V>(pw, i, k)), pw, i, k);
                    store(V::add(load::<V>(pb, i, k), g), pb, i, k);
                }
                i += k;
            }
        }
    }
}

crate::simd_kernel! {
    /// [`backward_block_body`] at the given level.
    fn backward_block_f32(simd: Simd, dx: &mut [f32], part: Option<&mut [f32]>, dout: &[f32], x: &[f32],
        w: Option<&[f32]>, mean: &[f32], rstd: &[f32], c: usize) = backward_block_body;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
        let mut rng = crate::random::Rng::seeded(seed);
        (0..n).map(|_| lo + (hi - lo) * rng.uniform()).collect()
    }

    /// f64 reference over rows of `c`: (out, dx, dw, db) with dx, dw, db starting at zero.
    fn reference(x: &[f64], w: &[f64], b: &[f64], dout: &[f64], c: usize) -> [Vec<f64>; 4] {
        let rows = x.len() / c;
        let (mut out, mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        for r in 0..rows {
            let xr = &x[r * c..(r + 1) * c];
            let m = xr.iter().sum::<f64>() / c as f64;
            let s = 1.0 / (xr.iter().map(|v| (v - m).powi(2)).sum::<f64>() / c as f64 + 1e-5).sqrt();
            let n: Vec<f64> = xr.iter().map(|v| (v - m) * s).collect();
            let dn: Vec<f64> = (0..c).map(|j| dout[r * c + j] * w[j]).collect();
            let a = dn.iter().sum::<f64>() / c as f64;
            let bb = dn.iter().zip(&n).map(|(d, v)| d * v).sum::<f64>() / c as f64;
            for j in 0..c {
                out[r * c + j] = n[j] * w[j] + b[j];
                dx[r * c + j] = (dn[j] - a - n[j] * bb) * s;
                dw[j] += dout[r * c + j] * n[j];
                db[j] += dout[r * c + j];
            }
        }
        [out, dx, dw, db]
    }

    #[test]
    fn float32_matches_a_float64_loop_on_every_level() {
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            // rows around the block size and the parallel threshold; row lengths up to thousands, with an
            // offset mean (a one-pass variance would cancel catastrophically on these)
            for (rows, c) in
                [(1, 1), (3, 2), (5, 7), (33, 16), (7, 17), (65, 69), (13, 97), (301, 257), (9, 768), (5, 4099)]
            {
                let x = values(rows * c, c as u64, 97.0, 103.0);
                let (w, b) = (values(c, 1, -2.0, 2.0), values(c, 2, -1.0, 1.0));
                let dout = values(rows * c, 3, -1.0, 1.0);
                let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
                let (x32, w32, b32, d32) = (f(&x), f(&w), f(&b), f(&dout));
                let back = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
                let want = reference(&back(&x32), &back(&w32), &back(&b32), &back(&d32), c);
                let (mut out, mut mean, mut rstd) = (vec![0f32; rows * c], vec![0f32; rows], vec![0f32; rows]);
                forward(simd, &mut out, &mut mean, &mut rstd, &x32, Some(&w32), Some(&b32), c, 1e-5);
                let (mut dx, mut dw, mut db) = (vec![0f32; rows * c], vec![0f32; c], vec![0f32; c]);
                backward(simd, &mut dx, Some(&mut dw), Some(&mut db), &d32, &x32, Some(&w32), &mean, &rstd, c);
                // relative to the output's largest value: the mean of 100 stored in float32 is already off by
                // up to 3.8e-6, 2e-6 of the spread, so a few float32 roundings of the conditioning (|mean| / std
                // ~ 60) is the floor; measured: at most 4.1e-6 (dx of 3x2), 1e-6 to 2e-6 elsewhere; db 2e-7
                let tol = [1e-5, 1e-5, 1e-5, 1e-6];
                for (k, (got, want)) in [out, dx, dw, db].iter().zip(&want).enumerate() {
                    let scale = want.iter().fold(1f64, |a, v| a.max(v.abs()));
                    for (i, (&g, &e)) in got.iter().zip(want).enumerate() {
                        assert!(
                            (g as f64 - e).abs() <= tol[k] * scale,
                            "{} {rows}x{c} output {k} [{i}]: {g} vs {e}",
                            simd.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn without_affine_parameters_and_accumulating() {
        let (rows, c) = (67, 45);
        let x = values(rows * c, 5, -3.0, 3.0);
        let dout = values(rows * c, 6, -1.0, 1.0);
        let ones = vec![1.0; c];
        let want = reference(&x, &ones, &vec![0.0; c], &dout, c);
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let d32: Vec<f32> = dout.iter().map(|&v| v as f32).collect();
            let (mut out, mut mean, mut rstd) = (vec![0f32; rows * c], vec![0f32; rows], vec![0f32; rows]);
            forward(simd, &mut out, &mut mean, &mut rstd, &x32, None, None, c, 1e-5);
            let mut dx = vec![1f32; rows * c];
            let mut db = vec![2f32; c];
            backward(simd, &mut dx, None, Some(&mut db), &d32, &x32, None, &mean, &rstd, c);
            for i in 0..rows * c {
                assert!((out[i] as f64 - want[0][i]).abs() < 1e-5, "{} out {i}", simd.name());
                assert!((dx[i] as f64 - 1.0 - want[1][i]).abs() < 1e-4, "{} dx {i}", simd.name());
            }
            for j in 0..c {
                assert!((db[j] as f64 - 2.0 - want[3][j]).abs() < 1e-5, "{} db {j}", simd.name());
            }
        }
        // float64 takes the plain loop: exact up to rounding
        let (mut out, mut mean, mut rstd) = (vec![0.0; rows * c], vec![0.0; rows], vec![0.0; rows]);
        layer_norm_forward(&mut out, &mut mean, &mut rstd, &x, None, None, c, 1e-5);
        let (mut dx, mut dw) = (vec![0.0; rows * c], vec![0.0; c]);
        layer_norm_backward(&mut dx, Some(&mut dw), None, &dout, &x, None, &mean, &rstd, c);
        for i in 0..rows * c {
            assert!((out[i] - want[0][i]).abs() < 1e-12 && (dx[i] - want[1][i]).abs() < 1e-12);
        }
        for j in 0..c {
            assert!((dw[j] - want[2][j]).abs() < 1e-11);
        }
    }
}
