//! The layer against a plain f64 loop over the equations (and, for the gradients, central differences of that
//! loop), both directions, every SIMD level this CPU has, and 1..4 threads, whose results must be identical.

use super::*;

/// Deterministic values in [-scale, scale].
fn data(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (((s >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0) * scale
        })
        .collect()
}

/// One layer's inputs: x, h0, c0, w_ih, w_hh, bias.
struct Case {
    d: Dims,
    v: [Vec<f64>; 6],
}

impl Case {
    fn new(t: usize, b: usize, i: usize, h: usize, direction: Direction, seed: u64) -> Case {
        let d = Dims { t, b, i, h, direction };
        let w = 1.0 / (h as f64).sqrt();
        let v = [
            data(t * b * i, seed, 1.0),
            data(b * h, seed + 1, 0.5),
            data(b * h, seed + 2, 0.5),
            data(4 * h * i, seed + 3, w),
            data(4 * h * h, seed + 4, w),
            data(4 * h, seed + 5, w),
        ];
        Case { d, v }
    }
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The equations as written, one unit at a time: `[h by time, h_last, c_last]`.
fn naive_forward(d: Dims, v: &[Vec<f64>; 6]) -> Vec<f64> {
    let Dims { t, b, i, h, .. } = d;
    let [x, h0, c0, w_ih, w_hh, bias] = v;
    let (mut hs, mut cs) = (h0.clone(), c0.clone());
    let mut out = vec![0.0; (t + 2) * b * h];
    for s in 0..t {
        let tt = d.time(s);
        let (mut hn, mut cn) = (vec![0.0; b * h], vec![0.0; b * h]);
        for r in 0..b {
            for j in 0..h {
                let z = |q: usize| {
                    let row = q * h + j;
                    bias[row]
                        + (0..i).map(|k| x[(tt * b + r) * i + k] * w_ih[row * i + k]).sum::<f64>()
                        + (0..h).map(|k| hs[r * h + k] * w_hh[row * h + k]).sum::<f64>()
                };
                let c = sig(z(1)) * cs[r * h + j] + sig(z(0)) * z(2).tanh();
                cn[r * h + j] = c;
                hn[r * h + j] = sig(z(3)) * c.tanh();
            }
        }
        out[tt * b * h..(tt + 1) * b * h].copy_from_slice(&hn);
        (hs, cs) = (hn, cn);
    }
    out[t * b * h..(t + 1) * b * h].copy_from_slice(&hs);
    out[(t + 1) * b * h..].copy_from_slice(&cs);
    out
}

fn to<T: Kernel>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&a| T::from_f64(a)).collect()
}

/// The kernel's output and gradients `[dx, dh0, dc0, dw_ih, dw_hh, db]` for the upstream gradient `g`.
fn run<T: Kernel>(ctx: Ctx, case: &Case, g: &[f64]) -> (Vec<T>, [Vec<T>; 6]) {
    let d = case.d;
    let [x, h0, c0, w_ih, w_hh, bias] = case.v.each_ref().map(|v| to::<T>(v));
    let (gl, cl) = Saved::<T>::lens(d);
    // garbage in the buffers whose contents must not matter
    let mut saved = Saved { gates: vec![T::from_f64(7.0); gl], c: vec![T::from_f64(-3.0); cl] };
    let mut out = vec![T::from_f64(5.0); (d.t + 2) * d.b * d.h];
    lstm_forward(ctx, &mut out, &mut saved, &x, &h0, &c0, &w_ih, &w_hh, Some(&bias), d);
    // accumulating gradients: start from 1 and subtract it afterwards
    let mut gr = [x.len(), h0.len(), c0.len(), w_ih.len(), w_hh.len(), bias.len()].map(|n| vec![T::ONE; n]);
    let mut dz = vec![T::from_f64(9.0); gl];
    {
        let [dx, dh0, dc0, dwi, dwh, db] = &mut gr;
        let grads =
            Grads { dx: Some(dx), dh0: Some(dh0), dc0: Some(dc0), dw_ih: Some(dwi), dw_hh: Some(dwh), db: Some(db) };
        lstm_backward(ctx, grads, &mut dz, &to::<T>(g), &saved.gates, &saved.c, &out, &x, &h0, &w_ih, &w_hh, d);
    }
    for v in gr.iter_mut() {
        v.iter_mut().for_each(|a| *a = *a - T::ONE);
    }
    (out, gr)
}

fn upstream(case: &Case) -> Vec<f64> {
    data((case.d.t + 2) * case.d.b * case.d.h, 99, 1.0)
}

/// Central differences of `sum(naive_forward * g)` in every input.
fn numeric_grads(case: &Case, g: &[f64]) -> [Vec<f64>; 6] {
    let loss = |v: &[Vec<f64>; 6]| naive_forward(case.d, v).iter().zip(g).map(|(a, b)| a * b).sum::<f64>();
    std::array::from_fn(|k| {
        (0..case.v[k].len())
            .map(|e| {
                let mut v = case.v.clone();
                v[k][e] += 1e-6;
                let up = loss(&v);
                v[k][e] -= 2e-6;
                (up - loss(&v)) / 2e-6
            })
            .collect()
    })
}

#[test]
fn float64_matches_the_equations_and_their_finite_differences() {
    for direction in [Direction::Forward, Direction::Reverse] {
        for (t, b, i, h) in [(1, 1, 1, 1), (3, 2, 3, 5), (4, 3, 2, 7)] {
            let case = Case::new(t, b, i, h, direction, (t * 10 + h) as u64);
            let g = upstream(&case);
            let (out, grads) = run::<f64>(Ctx { simd: crate::simd::best(), threads: 2 }, &case, &g);
            let want = naive_forward(case.d, &case.v);
            for (a, w) in out.iter().zip(&want) {
                assert!((a - w).abs() < 1e-12, "{direction:?} T{t} B{b} I{i} H{h} forward: {a} vs {w}");
            }
            for (k, (got, num)) in grads.iter().zip(numeric_grads(&case, &g)).enumerate() {
                for (a, w) in got.iter().zip(&num) {
                    assert!(
                        (a - w).abs() < 1e-6 * (1.0 + w.abs()),
                        "{direction:?} T{t} B{b} I{i} H{h} grad {k}: {a} vs {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn float32_every_level_is_within_rounding_of_float64_and_threads_agree_bitwise() {
    // above the parallel threshold per step (so 2..4 threads really split it), odd in every dim: batch rows
    // (each thread runs the whole sequence) and, for a batch of 3 (one register tile of rows), hidden units
    let cases = [
        (Direction::Forward, (5, 37, 19, 131)),
        (Direction::Reverse, (4, 13, 7, 200)),
        (Direction::Reverse, (3, 3, 5, 300)),
    ];
    for (direction, (t, b, i, h)) in cases {
        let case = Case::new(t, b, i, h, direction, 5);
        let g = upstream(&case);
        let (want_out, want_grads) = run::<f64>(Ctx { simd: crate::simd::best(), threads: 1 }, &case, &g);
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            let first = run::<f32>(Ctx { simd, threads: 1 }, &case, &g);
            let tag = format!("{} {direction:?} T{t} B{b} I{i} H{h}", simd.name());
            for (a, w) in first.0.iter().zip(&want_out) {
                assert!((*a as f64 - w).abs() < 1e-5, "{tag} forward: {a} vs {w}");
            }
            for (k, (got, want)) in first.1.iter().zip(&want_grads).enumerate() {
                let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                for (a, w) in got.iter().zip(want) {
                    assert!((*a as f64 - w).abs() < 2e-5 * scale, "{tag} grad {k}: {a} vs {w}");
                }
            }
            for threads in 2..=4 {
                let other = run::<f32>(Ctx { simd, threads }, &case, &g);
                assert!(other.0 == first.0, "{tag}: forward on {threads} threads differs from 1");
                for k in 0..6 {
                    assert!(other.1[k] == first.1[k], "{tag}: grad {k} on {threads} threads differs from 1");
                }
            }
        }
    }
}

#[test]
fn the_plan_splits_rows_first_then_units_per_step_and_stays_serial_when_small() {
    let p = Plan::new::<f32>(Simd::Avx512, 2, 64, 256); // rows: each thread runs the whole sequence
    assert_eq!((p.tr, p.tc), (2, 1));
    let p = Plan::new::<f32>(Simd::Avx512, 4, 1, 512); // one sequence: units, a region per step
    assert_eq!((p.tr, p.tc, p.cols), (1, 4, 128));
    let p = Plan::new::<f32>(Simd::Avx512, 4, 8, 256); // two row tiles for four threads: both
    assert_eq!((p.tr, p.tc), (2, 2));
    let p = Plan::new::<f32>(Simd::Avx2, 2, 4, 16); // 2 kFLOP a step
    assert_eq!((p.tr, p.tc), (1, 1));
}
