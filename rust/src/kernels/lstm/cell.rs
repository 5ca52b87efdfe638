//! The LSTM cell update of one batch row on a block of hidden units, element by element.
//!
//! forward: the gate pre-activations `z = [i, f, g, o]` become `sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)` (in
//! place), `c = f c_prev + i g`, `h = o tanh(c)`.
//! backward: with `dh = dh_seq + dh_rec` (the output's gradient and the next step's), `tc = tanh(c)`,
//! `dc' = dc + dh o (1 - tc^2)`: `di = dc' g i (1 - i)`, `df = dc' c_prev f (1 - f)`, `dg = dc' i (1 - g^2)`,
//! `do = dh tc o (1 - o)`, and `dc` becomes `dc' f`, the gradient of c_prev.
//!
//! float32 runs SIMD code (`simd::math::{sigmoid, tanh}`, not libm per element) on every level, float64 plain
//! loops with libm. Every element runs the same vector code whatever its position (masked tails), so a caller may
//! cut the hidden units into blocks anywhere: results do not depend on the split. Not here: the products that
//! feed the cell and the split itself (`mod.rs`, `step.rs`).

use super::super::activation::sigmoid;
use super::super::simd_loops::{load, step, store};
use crate::dtype::Float;
use crate::simd::{math, F32x, Simd};

/// One step forward on a block: `z = [i, f, g, o]` pre-activations in, activations out; `c` and `h` written.
/// All slices have the same length.
pub fn cell_forward<T: Float>(simd: Simd, z: [&mut [T]; 4], c_prev: &[T], c: &mut [T], h: &mut [T]) {
    let n = c.len();
    assert!(z.iter().all(|s| s.len() == n) && c_prev.len() == n && h.len() == n, "lstm cell: slices of unequal length");
    let [zi, zf, zg, zo] = z;
    if let (Some(i), Some(f), Some(g), Some(o), Some(cp), Some(cc), Some(hh)) = (
        T::as_f32_mut(&mut *zi),
        T::as_f32_mut(&mut *zf),
        T::as_f32_mut(&mut *zg),
        T::as_f32_mut(&mut *zo),
        T::as_f32(c_prev),
        T::as_f32_mut(&mut *c),
        T::as_f32_mut(&mut *h),
    ) {
        forward_f32(simd, [i, f, g, o], cp, cc, hh);
        return;
    }
    for j in 0..n {
        let (ig, fg, gg, og) = (sigmoid(zi[j]), sigmoid(zf[j]), zg[j].tanh(), sigmoid(zo[j]));
        (zi[j], zf[j], zg[j], zo[j]) = (ig, fg, gg, og);
        c[j] = fg * c_prev[j] + ig * gg;
        h[j] = og * c[j].tanh();
    }
}

/// One step back on a block: gate gradients `dz = [di, df, dg, do]` (written) from the activations `act`, the
/// cell states `c_prev` and `c`, the hidden state's gradient `dh_seq + dh_rec`, and `dc` (the cell's gradient
/// from the step after, replaced by c_prev's). All slices have the same length.
#[allow(clippy::too_many_arguments)]
pub fn cell_backward<T: Float>(
    simd: Simd,
    dz: [&mut [T]; 4],
    dc: &mut [T],
    act: [&[T]; 4],
    c_prev: &[T],
    c: &[T],
    dh_seq: &[T],
    dh_rec: &[T],
) {
    let n = dc.len();
    assert!(
        dz.iter().all(|s| s.len() == n)
            && act.iter().all(|s| s.len() == n)
            && [c_prev, c, dh_seq, dh_rec].iter().all(|s| s.len() == n),
        "lstm cell: slices of unequal length"
    );
    let [di, df, dg, d_o] = dz;
    let [ai, af, ag, ao] = act;
    if let (Some(di32), Some(df32), Some(dg32), Some(do32), Some(dc32)) = (
        T::as_f32_mut(&mut *di),
        T::as_f32_mut(&mut *df),
        T::as_f32_mut(&mut *dg),
        T::as_f32_mut(&mut *d_o),
        T::as_f32_mut(&mut *dc),
    ) {
        fn f32s<T: Float>(s: &[T]) -> &[f32] {
            T::as_f32(s).expect("T is f32 here")
        }
        let act = [f32s(ai), f32s(af), f32s(ag), f32s(ao)];
        backward_f32(simd, [di32, df32, dg32, do32], dc32, act, f32s(c_prev), f32s(c), f32s(dh_seq), f32s(dh_rec));
        return;
    }
    for j in 0..n {
        let (ig, fg, gg, og) = (ai[j], af[j], ag[j], ao[j]);
        let tc = c[j].tanh();
        let dh = dh_seq[j] + dh_rec[j];
        let dct = dc[j] + dh * og * (T::ONE - tc * tc);
        di[j] = dct * gg * ig * (T::ONE - ig);
        df[j] = dct * c_prev[j] * fg * (T::ONE - fg);
        dg[j] = dct * ig * (T::ONE - gg * gg);
        d_o[j] = dh * tc * og * (T::ONE - og);
        dc[j] = dct * fg;
    }
}

#[inline(always)]
unsafe fn forward_body<V: F32x>(z: [&mut [f32]; 4], c_prev: &[f32], c: &mut [f32], h: &mut [f32]) {
    // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
    unsafe {
        let [zi, zf, zg, zo] = z;
        let mut j = 0;
        while j < c.len() {
            let k = step::<V>(j, c.len());
            let ig = math::sigmoid(load::<V>(zi, j, k));
            let fg = math::sigmoid(load::<V>(zf, j, k));
            let gg = math::tanh(load::<V>(zg, j, k));
            let og = math::sigmoid(load::<V>(zo, j, k));
            let ct = V::fmadd(fg, load::<V>(c_prev, j, k), V::mul(ig, gg));
            store(ig, zi, j, k);
            store(fg, zf, j, k);
            store(gg, zg, j, k);
            store(og, zo, j, k);
            store(ct, c, j, k);
            store(V::mul(og, math::tanh(ct)), h, j, k);
            j += k;
        }
    }
}

crate::simd_kernel! {
    /// [`forward_body`] at the given level.
    fn forward_f32(simd: Simd, z: [&mut [f32]; 4], c_prev: &[f32], c: &mut [f32], h: &mut [f32]) = forward_body;
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_body<V: F32x>(
    dz: [&mut [f32]; 4],
    dc: &mut [f32],
    act: [&[f32]; 4],
    c_prev: &[f32],
    c: &[f32],
    dh_seq: &[f32],
    dh_rec: &[f32],
) {
    // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
    unsafe {
        let [di, df, dg, d_o] = dz;
        let one = V::splat(1.0);
        let mut j = 0;
        while j < dc.len() {
            let k = step::<V>(j, dc.len());
            let (ig, fg) = (load::<V>(act[0], j, k), load::<V>(act[1], j, k));
            let (gg, og) = (load::<V>(act[2], j, k), load::<V>(act[3], j, k));
            let tc = math::tanh(load::<V>(c, j, k));
            let dh = V::add(load::<V>(dh_seq, j, k), load::<V>(dh_rec, j, k));
            let dct = V::fmadd(V::mul(dh, og), V::sub(one, V::mul(tc, tc)), load::<V>(dc, j, k));
            store(V::mul(V::mul(dct, gg), V::mul(ig, V::sub(one, ig))), di, j, k);
            store(V::mul(V::mul(dct, load::<V>(c_prev, j, k)), V::mul(fg, V::sub(one, fg))), df, j, k);
            store(V::mul(V::mul(dct, ig), V::sub(one, V::mul(gg, gg))), dg, j, k);
            store(V::mul(V::mul(dh, tc), V::mul(og, V::sub(one, og))), d_o, j, k);
            store(V::mul(dct, fg), dc, j, k);
            j += k;
        }
    }
}

crate::simd_kernel! {
    /// [`backward_body`] at the given level.
    fn backward_f32(
        simd: Simd,
        dz: [&mut [f32]; 4],
        dc: &mut [f32],
        act: [&[f32]; 4],
        c_prev: &[f32],
        c: &[f32],
        dh_seq: &[f32],
        dh_rec: &[f32],
    ) = backward_body;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Inputs for a block of `n` units: pre-activations across the saturating range, states and gradients.
    fn inputs(n: usize, seed: usize) -> Vec<Vec<f64>> {
        (0..10)
            .map(|v| {
                (0..n)
                    .map(|j| {
                        let x = ((j * 37 + v * 11 + seed * 5) % 97) as f64 / 97.0 - 0.5;
                        if v < 4 {
                            x * 24.0
                        } else {
                            x * 3.0
                        } // gates to +-12, the rest to +-1.5
                    })
                    .collect()
            })
            .collect()
    }

    /// The f64 equations (module docs), the reference for every level.
    #[allow(clippy::type_complexity)]
    fn reference(x: &[Vec<f64>]) -> (Vec<[f64; 6]>, Vec<[f64; 5]>) {
        (0..x[0].len())
            .map(|j| {
                let (i, f, g, o) = (sig(x[0][j]), sig(x[1][j]), x[2][j].tanh(), sig(x[3][j]));
                let (c_prev, dc, dh_seq, dh_rec) = (x[4][j], x[5][j], x[6][j], x[7][j]);
                let c = f * c_prev + i * g;
                let tc = c.tanh();
                let dh = dh_seq + dh_rec;
                let dct = dc + dh * o * (1.0 - tc * tc);
                let back = [
                    dct * g * i * (1.0 - i),
                    dct * c_prev * f * (1.0 - f),
                    dct * i * (1.0 - g * g),
                    dh * tc * o * (1.0 - o),
                    dct * f,
                ];
                ([i, f, g, o, c, o * tc], back)
            })
            .unzip()
    }

    /// (forward [i, f, g, o, c, h], backward [di, df, dg, do, dc]) for units `lo..hi` of the block, computed
    /// in f32 on `simd` (the backward from the activations and c the forward gave).
    fn run_f32(simd: Simd, x: &[Vec<f64>], lo: usize, hi: usize, out: &mut [Vec<f32>]) {
        let f = |v: usize| x[v][lo..hi].iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (mut zi, mut zf, mut zg, mut zo) = (f(0), f(1), f(2), f(3));
        let (mut c, mut h) = (vec![0f32; hi - lo], vec![0f32; hi - lo]);
        cell_forward(simd, [&mut zi, &mut zf, &mut zg, &mut zo], &f(4), &mut c, &mut h);
        let mut dz = vec![vec![0f32; hi - lo]; 4];
        let mut dc = f(5);
        let [d0, d1, d2, d3] = &mut dz[..] else { unreachable!() };
        cell_backward(simd, [d0, d1, d2, d3], &mut dc, [&zi, &zf, &zg, &zo], &f(4), &c, &f(6), &f(7));
        for (v, vals) in [zi, zf, zg, zo, c, h].into_iter().chain(dz).chain([dc]).enumerate() {
            out[v][lo..hi].copy_from_slice(&vals);
        }
    }

    #[test]
    fn every_level_matches_the_f64_equations_and_the_portable_level() {
        for n in [1, 7, 15, 16, 17, 33, 100, 257] {
            let x = inputs(n, n);
            let (fwd, back) = reference(&x);
            let mut portable = vec![vec![0f32; n]; 11];
            run_f32(Simd::Scalar, &x, 0, n, &mut portable);
            for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
                let mut got = vec![vec![0f32; n]; 11];
                run_f32(simd, &x, 0, n, &mut got);
                for j in 0..n {
                    let want: Vec<f64> = fwd[j].iter().chain(&back[j]).copied().collect();
                    for (v, &w) in want.iter().enumerate() {
                        let (y, p) = (got[v][j] as f64, portable[v][j] as f64);
                        // a few float32 roundings of values of order 1 (the SIMD exp and tanh are within 2 ulp)
                        let tol = 2e-6 * (1.0 + w.abs());
                        assert!((y - w).abs() <= tol, "{} n={n} unit {j} value {v}: {y} vs f64 {w}", simd.name());
                        assert!((y - p).abs() <= tol, "{} n={n} unit {j} value {v}: {y} vs portable {p}", simd.name());
                    }
                }
            }
        }
    }

    #[test]
    fn blocks_cut_anywhere_give_the_same_bits() {
        // what a thread split does: the units of a row in pieces, each piece's tail masked differently
        let n = 100;
        let x = inputs(n, 3);
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            let mut whole = vec![vec![0f32; n]; 11];
            run_f32(simd, &x, 0, n, &mut whole);
            for cuts in [vec![0, 1, n], vec![0, 7, 40, 41, n], vec![0, 33, 66, 99, n]] {
                let mut pieces = vec![vec![0f32; n]; 11];
                for w in cuts.windows(2) {
                    run_f32(simd, &x, w[0], w[1], &mut pieces);
                }
                assert!(pieces == whole, "{} cut at {cuts:?}", simd.name());
            }
        }
    }

    #[test]
    fn float64_runs_the_exact_equations() {
        let n = 33;
        let x = inputs(n, 1);
        let (fwd, back) = reference(&x);
        let mut z = [x[0].clone(), x[1].clone(), x[2].clone(), x[3].clone()];
        let (mut c, mut h) = (vec![0.0; n], vec![0.0; n]);
        let [zi, zf, zg, zo] = &mut z;
        cell_forward(Simd::Avx2, [zi, zf, zg, zo], &x[4], &mut c, &mut h);
        let mut dz = vec![vec![0.0; n]; 4];
        let mut dc = x[5].clone();
        let [d0, d1, d2, d3] = &mut dz[..] else { unreachable!() };
        cell_backward(Simd::Avx2, [d0, d1, d2, d3], &mut dc, [&z[0], &z[1], &z[2], &z[3]], &x[4], &c, &x[6], &x[7]);
        for j in 0..n {
            let got = [z[0][j], z[1][j], z[2][j], z[3][j], c[j], h[j], dz[0][j], dz[1][j], dz[2][j], dz[3][j], dc[j]];
            for (v, (&y, &w)) in got.iter().zip(fwd[j].iter().chain(&back[j])).enumerate() {
                assert!((y - w).abs() <= 1e-14 * (1.0 + w.abs()), "unit {j} value {v}: {y} vs {w}");
            }
        }
    }
}
