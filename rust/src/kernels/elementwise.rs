//! The common element-wise kernels: the functions neg, exp, tanh, sigmoid, relu and abs with the backward
//! formulas autograd uses for them, and the arithmetic add, sub, mul, div of two operands broadcast by a
//! [`Plan`] (same shape, a row vector over the last dim, a scalar, or any strides).
//!
//! forward: `out = f(x)`; backward (accumulates): `dx += dout * f'(x)`, written with whichever of `x` and
//! `y = f(x)` the formula needs (exp `dout y`, tanh `dout (1 - y^2)`, sigmoid `dout y (1 - y)`, relu
//! `x > 0 ? dout : 0`, abs `sign(x) dout`, 0 at 0).
//!
//! float32 runs SIMD code (`simd::math::{exp, tanh, sigmoid}`, within a few ulp of libm); float64 runs plain
//! loops. Threads split the elements at any point: every element runs the same vector code (masked tails), and
//! add/sub/mul/div round the same in vector and scalar code, so results do not depend on the thread count.
//! Not here: log, sqrt, pow, clamp and comparisons (plain closures over a plan in `ops/elementwise.rs`), GELU
//! (`gelu.rs`).

use super::simd_loops::{load, step, store};
use super::strided::Plan;
use crate::dtype::Float;
use crate::parallel;
use crate::simd::{self, math, F32x};

/// A function of one element with a SIMD kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Map {
    /// `-x`
    Neg,
    /// `e^x`
    Exp,
    /// `tanh x`
    Tanh,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `max(x, 0)`; NaN stays NaN
    Relu,
    /// `|x|`
    Abs,
}

/// An arithmetic operator with a SIMD kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
}

/// Elements per task below which the pool is not worth a region (a few operations an element).
const MIN_CHUNK: usize = 8192;
/// Runs shorter than this take the scalar loop (which rounds the same) instead of a dispatched vector kernel.
const MIN_VECTOR_RUN: usize = 16;

/// `out = f(x)`, element-wise. `out`, `x`: the same length.
pub fn map_forward<T: Float>(out: &mut [T], x: &[T], f: Map) {
    let simd = simd::active();
    debug_assert_eq!(out.len(), x.len());
    parallel::for_chunks(out, MIN_CHUNK, |lo, ch| {
        let x = &x[lo..lo + ch.len()];
        if let (Some(o), Some(x)) = (T::as_f32_mut(ch), T::as_f32(x)) {
            map_forward_f32(simd, o, x, f);
            return;
        }
        for (o, &x) in ch.iter_mut().zip(x) {
            *o = match f {
                Map::Neg => -x,
                Map::Exp => x.exp(),
                Map::Tanh => x.tanh(),
                Map::Sigmoid => super::activation::sigmoid(x),
                // NaN stays NaN (a comparison with NaN is false)
                Map::Relu => {
                    if x < T::ZERO {
                        T::ZERO
                    } else {
                        x
                    }
                }
                Map::Abs => x.abs(),
            };
        }
    });
}

/// `dx += dout * f'(x)` with `y = f(x)`, element-wise. All the same length.
pub fn map_backward<T: Float>(dx: &mut [T], dout: &[T], x: &[T], y: &[T], f: Map) {
    let simd = simd::active();
    debug_assert_eq!(dx.len(), dout.len());
    parallel::for_chunks(dx, MIN_CHUNK, |lo, ch| {
        let hi = lo + ch.len();
        // the formula's second operand: x or y
        let s = match f {
            Map::Relu | Map::Abs => &x[lo..hi],
            _ => &y[lo..hi],
        };
        let g = &dout[lo..hi];
        if let (Some(d), Some(g), Some(s)) = (T::as_f32_mut(ch), T::as_f32(g), T::as_f32(s)) {
            map_backward_f32(simd, d, g, s, f);
            return;
        }
        for ((d, &g), &s) in ch.iter_mut().zip(g).zip(s) {
            *d += match f {
                Map::Neg => -g,
                Map::Exp => g * s,
                Map::Tanh => g * (T::ONE - s * s),
                Map::Sigmoid => g * s * (T::ONE - s),
                Map::Relu => {
                    if s > T::ZERO {
                        g
                    } else {
                        T::ZERO
                    }
                }
                // g * sgn(x) with sgn = (0 < x) - (x < 0), as PyTorch: a multiply, so a NaN or infinite g at
                // x = 0 (or at a NaN x) gives NaN, where a select would drop it
                Map::Abs => {
                    let (pos, neg) =
                        (T::from_f64(f64::from(u8::from(s > T::ZERO))), T::from_f64(f64::from(u8::from(s < T::ZERO))));
                    g * (pos - neg)
                }
            };
        }
    });
}

/// `out = a (op) b` over a two-operand plan (`out` in the plan's row-major order, `plan.len()` long).
pub fn arith_forward<T: Float>(out: &mut [T], a: &[T], b: &[T], plan: &Plan<2>, op: Arith) {
    parallel::for_chunks(out, MIN_CHUNK, |lo, ch| arith_chunk(ch, lo, a, b, plan, op));
}

/// The elements `lo..lo + out.len()` of [`arith_forward`]'s output, on the calling thread (for callers that
/// split the output themselves).
pub fn arith_chunk<T: Float>(out: &mut [T], lo: usize, a: &[T], b: &[T], plan: &Plan<2>, op: Arith) {
    let simd = simd::active();
    let [sa, sb] = plan.inner_strides();
    plan.for_runs(lo, lo + out.len(), |pos, [oa, ob], len| {
        let dst = &mut out[pos - lo..pos - lo + len];
        // the run's operands: a run of `len` elements (stride 1) or one element repeated (stride 0)
        let (ra, rb) = (operand(a, oa, sa, len), operand(b, ob, sb, len));
        if let (true, Some(ra), Some(rb), Some(d)) = (len >= MIN_VECTOR_RUN, ra, rb, T::as_f32_mut(dst)) {
            if let (Some(ra), Some(rb)) = (T::as_f32(ra), T::as_f32(rb)) {
                arith_run_f32(simd, d, ra, rb, op);
                return;
            }
        }
        let dst = &mut out[pos - lo..pos - lo + len];
        for (j, d) in dst.iter_mut().enumerate() {
            let (x, y) = (a[oa + j * sa], b[ob + j * sb]);
            *d = match op {
                Arith::Add => x + y,
                Arith::Sub => x - y,
                Arith::Mul => x * y,
                Arith::Div => x / y,
            };
        }
    });
}

/// A run's operand as a slice: `len` elements for stride 1, the one element for stride 0; `None` otherwise.
fn operand<T>(s: &[T], at: usize, stride: usize, len: usize) -> Option<&[T]> {
    match stride {
        0 => Some(&s[at..at + 1]),
        1 => Some(&s[at..at + len]),
        _ => None,
    }
}

#[inline(always)]
unsafe fn map_forward_body<V: F32x>(out: &mut [f32], x: &[f32], f: Map) {
    // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
    unsafe {
        let mut i = 0;
        while i < x.len() {
            let k = step::<V>(i, x.len());
            let v = load::<V>(x, i, k);
            let y = match f {
                Map::Neg => V::sub(V::splat(-0.0), v),
                Map::Exp => math::exp(v),
                Map::Tanh => math::tanh(v),
                Map::Sigmoid => math::sigmoid(v),
                Map::Relu => V::select_lt(v, V::zero(), V::zero(), v),
                Map::Abs => V::abs(v),
            };
            store(y, out, i, k);
            i += k;
        }
    }
}

crate::simd_kernel! {
    /// [`map_forward_body`] at the given level.
    fn map_forward_f32(simd: Simd, out: &mut [f32], x: &[f32], f: Map) = map_forward_body;
}

#[inline(always)]
unsafe fn map_backward_body<V: F32x>(dx: &mut [f32], dout: &[f32], s: &[f32], f: Map) {
    // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
    unsafe {
        let (zero, one) = (V::zero(), V::splat(1.0));
        let mut i = 0;
        while i < dx.len() {
            let k = step::<V>(i, dx.len());
            let (g, sv, d) = (load::<V>(dout, i, k), load::<V>(s, i, k), load::<V>(dx, i, k));
            let d = match f {
                Map::Neg => V::sub(d, g),
                Map::Exp => V::add(d, V::mul(g, sv)),
                Map::Tanh => V::add(d, V::mul(g, V::sub(one, V::mul(sv, sv)))),
                Map::Sigmoid => V::add(d, V::mul(V::mul(g, sv), V::sub(one, sv))),
                Map::Relu => V::add(d, V::select_lt(zero, sv, g, zero)),
                Map::Abs => {
                    let sgn = V::sub(V::select_lt(zero, sv, one, zero), V::select_lt(sv, zero, one, zero));
                    V::add(d, V::mul(g, sgn))
                }
            };
            store(d, dx, i, k);
            i += k;
        }
    }
}

crate::simd_kernel! {
    /// [`map_backward_body`] at the given level.
    fn map_backward_f32(simd: Simd, dx: &mut [f32], dout: &[f32], s: &[f32], f: Map) = map_backward_body;
}

/// One run: `out[i] = a[i] (op) b[i]`, where an operand of length 1 is repeated.
#[inline(always)]
unsafe fn arith_run_body<V: F32x>(out: &mut [f32], a: &[f32], b: &[f32], op: Arith) {
    // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
    unsafe {
        let n = out.len();
        let (sa, sb) = (a.len() == 1 && n > 1, b.len() == 1 && n > 1);
        let (ca, cb) = (V::splat(a[0]), V::splat(b[0]));
        let mut i = 0;
        while i < n {
            let k = step::<V>(i, n);
            let x = if sa { ca } else { load::<V>(a, i, k) };
            let y = if sb { cb } else { load::<V>(b, i, k) };
            let z = match op {
                Arith::Add => V::add(x, y),
                Arith::Sub => V::sub(x, y),
                Arith::Mul => V::mul(x, y),
                Arith::Div => V::div(x, y),
            };
            store(z, out, i, k);
            i += k;
        }
    }
}

crate::simd_kernel! {
    /// [`arith_run_body`] at the given level.
    fn arith_run_f32(simd: Simd, out: &mut [f32], a: &[f32], b: &[f32], op: Arith) = arith_run_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Simd;

    const MAPS: [Map; 6] = [Map::Neg, Map::Exp, Map::Tanh, Map::Sigmoid, Map::Relu, Map::Abs];

    fn reference(f: Map, x: f64) -> (f64, f64) {
        let s = 1.0 / (1.0 + (-x).exp());
        match f {
            Map::Neg => (-x, -1.0),
            Map::Exp => (x.exp(), x.exp()),
            Map::Tanh => (x.tanh(), 1.0 - x.tanh().powi(2)),
            Map::Sigmoid => (s, s * (1.0 - s)),
            Map::Relu => (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 }),
            Map::Abs => (x.abs(), x.signum() * (x != 0.0) as u8 as f64),
        }
    }

    #[test]
    fn maps_match_float64_on_every_level() {
        let x: Vec<f32> = (0..1237).map(|i| -6.0 + i as f32 * 0.0097).chain([0.0, -0.0, 20.0, -20.0]).collect();
        let g: Vec<f32> = (0..x.len()).map(|i| 0.5 - (i % 5) as f32 * 0.25).collect();
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            for f in MAPS {
                for len in [1, 7, 16, 33, x.len()] {
                    let (x, g) = (&x[..len], &g[..len]);
                    let mut y = vec![0f32; len];
                    map_forward_f32(simd, &mut y, x, f);
                    let mut dx = vec![0.125f32; len];
                    let s = if matches!(f, Map::Relu | Map::Abs) { x } else { &y[..] };
                    map_backward_f32(simd, &mut dx, g, s, f);
                    for i in 0..len {
                        let (want, d) = reference(f, x[i] as f64);
                        assert!(
                            (y[i] as f64 - want).abs() <= 6e-7 * want.abs(),
                            "{} {f:?}({}): {} vs {want}",
                            simd.name(),
                            x[i],
                            y[i]
                        );
                        let want_dx = 0.125 + g[i] as f64 * d;
                        assert!(
                            (dx[i] as f64 - want_dx).abs() <= 1e-6 * (1.0 + want_dx.abs()),
                            "{} {f:?}' at {}",
                            simd.name(),
                            x[i]
                        );
                    }
                }
            }
            // NaN stays NaN through relu and everything else
            let mut y = [0f32; 2];
            for f in MAPS {
                map_forward_f32(simd, &mut y, &[f32::NAN, 1.0], f);
                assert!(y[0].is_nan(), "{} {f:?} NaN", simd.name());
            }
        }
    }

    #[test]
    fn abs_backward_multiplies_by_the_sign() {
        // PyTorch's g * sgn(x): a NaN or infinite gradient at x = 0 (or NaN x) is NaN, not dropped; relu selects
        let x = [0.0f32, -0.0, f32::NAN, 2.0, -3.0, 0.0, 0.0, 1.0, -1.0];
        let g = [f32::NAN, f32::INFINITY, 1.0, f32::NAN, 2.0, 0.5, f32::NEG_INFINITY, 0.25, 0.25];
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            let mut dx = vec![0f32; x.len()];
            map_backward_f32(simd, &mut dx, &g, &x, Map::Abs);
            let want = [f32::NAN, f32::NAN, 0.0, f32::NAN, -2.0, 0.0, f32::NAN, 0.25, -0.25];
            for (i, (&d, &w)) in dx.iter().zip(&want).enumerate() {
                assert!(d == w || (d.is_nan() && w.is_nan()), "{} abs' at {}: {d} vs {w}", simd.name(), x[i]);
            }
            let mut dr = vec![0f32; x.len()];
            map_backward_f32(simd, &mut dr, &g, &x, Map::Relu);
            assert_eq!(dr[0], 0.0, "{}: relu's gradient at 0 is a select", simd.name());
        }
        let mut d64 = vec![0f64; 2];
        map_backward(&mut d64, &[f64::NAN, 3.0], &[0.0, -1.0], &[0.0, 1.0], Map::Abs);
        assert!(d64[0].is_nan() && d64[1] == -3.0);
    }

    #[test]
    fn arithmetic_runs_round_like_scalar_code() {
        // the vector kernel and the scalar loop agree bit for bit: each operator is one IEEE rounding
        let a: Vec<f32> = (0..203).map(|i| (i as f32 * 0.731).sin() * 3.0).collect();
        let b: Vec<f32> = (0..203).map(|i| 0.5 + (i as f32 * 0.377).cos().abs()).collect();
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            for op in [Arith::Add, Arith::Sub, Arith::Mul, Arith::Div] {
                let f = |x: f32, y: f32| match op {
                    Arith::Add => x + y,
                    Arith::Sub => x - y,
                    Arith::Mul => x * y,
                    Arith::Div => x / y,
                };
                for (ra, rb) in [(&a[..], &b[..]), (&a[..1], &b[..]), (&a[..], &b[..1])] {
                    let n = ra.len().max(rb.len());
                    let mut out = vec![0f32; n];
                    arith_run_f32(simd, &mut out, ra, rb, op);
                    for i in 0..n {
                        let want = f(ra[if ra.len() == 1 { 0 } else { i }], rb[if rb.len() == 1 { 0 } else { i }]);
                        assert_eq!(out[i].to_bits(), want.to_bits(), "{} {op:?} [{i}]", simd.name());
                    }
                }
            }
        }
    }

    #[test]
    fn broadcast_plans_match_scalar_code() {
        // (7, 5, 33) op (5, 1), (33,), () and a transposed operand: every run kind of the plan
        let shape = [7usize, 5, 33];
        let n: usize = shape.iter().product();
        let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let cases: Vec<(Vec<usize>, Vec<f32>)> = vec![
            (vec![0, 1, 0], (0..5).map(|i| 1.0 + i as f32).collect()),
            (vec![0, 0, 1], (0..33).map(|i| 0.5 + i as f32).collect()),
            (vec![0, 0, 0], vec![1.75]),
            (vec![1, 7, 35], (0..n).map(|i| 1.0 + i as f32 * 0.01).collect()), // a permuted (33, 5, 7) tensor
        ];
        for (strides_b, b) in cases {
            let plan = Plan::new(&shape, [vec![165, 33, 1], strides_b.clone()], [0, 0]);
            for op in [Arith::Add, Arith::Sub, Arith::Mul, Arith::Div] {
                let mut out = vec![0f32; n];
                arith_forward(&mut out, &a, &b, &plan, op);
                for i0 in 0..7 {
                    for i1 in 0..5 {
                        for i2 in 0..33 {
                            let (x, y) = (
                                a[i0 * 165 + i1 * 33 + i2],
                                b[i0 * strides_b[0] + i1 * strides_b[1] + i2 * strides_b[2]],
                            );
                            let want = match op {
                                Arith::Add => x + y,
                                Arith::Sub => x - y,
                                Arith::Mul => x * y,
                                Arith::Div => x / y,
                            };
                            assert_eq!(out[i0 * 165 + i1 * 33 + i2], want, "{op:?} strides {strides_b:?}");
                        }
                    }
                }
            }
        }
    }
}
