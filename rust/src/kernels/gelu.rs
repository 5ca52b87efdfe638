//! GELU, exact and tanh-approximated, forward and backward, element by element.
//!
//! forward: exact `y = x Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))`; tanh form `y = 0.5 x (1 + tanh(z))` with
//! `z = sqrt(2 / pi) (x + 0.044715 x^3)`, computed as `x sigmoid(2z)`, the same function
//! (`0.5 (1 + tanh z) = sigmoid(2z)`) with one exponential and no cancellation at large negative x.
//! backward (accumulates): exact `dx += dout (Phi(x) + x phi(x))`, `phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`;
//! tanh form, with `s = sigmoid(2z)`: `dx += dout (s + 2 x s (1 - s) sqrt(2 / pi) (1 + 3 * 0.044715 x^2))`.
//!
//! float32 runs SIMD code (`simd::math::{erf, exp}`, not libm per element); float64 runs plain loops with libm.
//! Threads split the elements at any point: every element runs the same vector code (masked tails), so results
//! do not depend on the thread count. Not here: fusing GELU into the GEMM that feeds it.

use super::simd_loops::{load, step, store};
use crate::dtype::Float;
use crate::parallel;
use crate::simd::{self, math, F32x, Simd};

/// Which GELU: PyTorch's `approximate` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gelu {
    /// The exact form, `x Phi(x)` with the error function (`approximate="none"`).
    None,
    /// The tanh approximation (`approximate="tanh"`, GPT-2's).
    Tanh,
}

impl Gelu {
    /// PyTorch's name of the form (`"none"` or `"tanh"`).
    pub fn name(self) -> &'static str {
        match self {
            Gelu::None => "none",
            Gelu::Tanh => "tanh",
        }
    }
}

const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
/// `1 / sqrt(2 pi)`
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// `sqrt(2 / pi)`
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const C: f64 = 0.044_715;

/// Elements per task below which a thread is not worth waking for GELU (about 20 operations an element).
const MIN_CHUNK: usize = 4096;

/// `out = gelu(x)`, element-wise. `out`, `x`: the same length.
pub fn gelu_forward<T: Float>(out: &mut [T], x: &[T], approximate: Gelu) {
    forward(simd::active(), out, x, approximate);
}

/// `dx += dout * gelu'(x)`, element-wise. All the same length.
pub fn gelu_backward<T: Float>(dx: &mut [T], dout: &[T], x: &[T], approximate: Gelu) {
    backward(simd::active(), dx, dout, x, approximate);
}

fn forward<T: Float>(simd: Simd, out: &mut [T], x: &[T], approximate: Gelu) {
    debug_assert_eq!(out.len(), x.len());
    parallel::for_chunks(out, MIN_CHUNK, |lo, ch| {
        let x = &x[lo..lo + ch.len()];
        if let (Some(o), Some(x)) = (T::as_f32_mut(ch), T::as_f32(x)) {
            forward_f32(simd, o, x, approximate);
            return;
        }
        let (half, r) = (T::from_f64(0.5), T::from_f64(FRAC_1_SQRT_2));
        let (k2, c) = (T::from_f64(2.0 * SQRT_2_OVER_PI), T::from_f64(C));
        for (o, &x) in ch.iter_mut().zip(x) {
            *o = match approximate {
                Gelu::None => half * x * (T::ONE + (x * r).erf()),
                Gelu::Tanh => x / (T::ONE + (-(k2 * (x + c * x * x * x))).exp()),
            };
        }
    });
}

fn backward<T: Float>(simd: Simd, dx: &mut [T], dout: &[T], x: &[T], approximate: Gelu) {
    debug_assert_eq!(dx.len(), x.len());
    parallel::for_chunks(dx, MIN_CHUNK, |lo, ch| {
        let (dout, x) = (&dout[lo..lo + ch.len()], &x[lo..lo + ch.len()]);
        if let (Some(d), Some(g), Some(x)) = (T::as_f32_mut(ch), T::as_f32(dout), T::as_f32(x)) {
            backward_f32(simd, d, g, x, approximate);
            return;
        }
        let (half, r, p) = (T::from_f64(0.5), T::from_f64(FRAC_1_SQRT_2), T::from_f64(FRAC_1_SQRT_2PI));
        let (k, k2, c, c3) =
            (T::from_f64(SQRT_2_OVER_PI), T::from_f64(2.0 * SQRT_2_OVER_PI), T::from_f64(C), T::from_f64(3.0 * C));
        for ((d, &g), &x) in ch.iter_mut().zip(dout).zip(x) {
            *d += g * match approximate {
                Gelu::None => half * (T::ONE + (x * r).erf()) + x * p * (-half * x * x).exp(),
                Gelu::Tanh => {
                    let s = T::ONE / (T::ONE + (-(k2 * (x + c * x * x * x))).exp());
                    s + (x + x) * s * (T::ONE - s) * k * (T::ONE + c3 * x * x)
                }
            };
        }
    });
}

/// `sigmoid(2z)` of the tanh form, and `x` squared.
#[inline(always)]
unsafe fn tanh_form_gate<V: F32x>(x: V) -> (V, V) {
    // SAFETY: the caller's CPU contract.
    unsafe {
        let x2 = V::mul(x, x);
        let z2 = V::mul(V::splat((2.0 * SQRT_2_OVER_PI) as f32), V::fmadd(V::mul(V::splat(C as f32), x2), x, x));
        (math::sigmoid(z2), x2)
    }
}

#[inline(always)]
unsafe fn forward_body<V: F32x>(out: &mut [f32], x: &[f32], approximate: Gelu) {
    // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
    unsafe {
        let (half, r) = (V::splat(0.5), V::splat(FRAC_1_SQRT_2 as f32));
        let mut i = 0;
        while i < x.len() {
            let k = step::<V>(i, x.len());
            let xv = load::<V>(x, i, k);
            let y = match approximate {
                Gelu::None => V::mul(V::mul(half, xv), V::add(V::splat(1.0), math::erf(V::mul(xv, r)))),
                Gelu::Tanh => V::mul(xv, tanh_form_gate(xv).0),
            };
            store(y, out, i, k);
            i += k;
        }
    }
}

crate::simd_kernel! {
    /// [`forward_body`] at the given level.
    fn forward_f32(simd: Simd, out: &mut [f32], x: &[f32], approximate: Gelu) = forward_body;
}

#[inline(always)]
unsafe fn backward_body<V: F32x>(dx: &mut [f32], dout: &[f32], x: &[f32], approximate: Gelu) {
    // SAFETY: the CPU contract comes from `simd_kernel!`; slices are accessed through bounds-checked loads.
    unsafe {
        let (one, half) = (V::splat(1.0), V::splat(0.5));
        let mut i = 0;
        while i < x.len() {
            let k = step::<V>(i, x.len());
            let xv = load::<V>(x, i, k);
            let d = match approximate {
                Gelu::None => {
                    let phi =
                        V::mul(V::splat(FRAC_1_SQRT_2PI as f32), math::exp(V::mul(V::splat(-0.5), V::mul(xv, xv))));
                    let cdf = V::mul(half, V::add(one, math::erf(V::mul(xv, V::splat(FRAC_1_SQRT_2 as f32)))));
                    V::fmadd(xv, phi, cdf)
                }
                Gelu::Tanh => {
                    let (s, x2) = tanh_form_gate(xv);
                    let slope = V::mul(V::splat(SQRT_2_OVER_PI as f32), V::fmadd(V::splat((3.0 * C) as f32), x2, one));
                    V::fmadd(V::mul(V::mul(V::add(xv, xv), s), V::sub(one, s)), slope, s)
                }
            };
            store(V::fmadd(load::<V>(dout, i, k), d, load::<V>(dx, i, k)), dx, i, k);
            i += k;
        }
    }
}

crate::simd_kernel! {
    /// [`backward_body`] at the given level.
    fn backward_f32(simd: Simd, dx: &mut [f32], dout: &[f32], x: &[f32], approximate: Gelu) = backward_body;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f64 references: (y, dy/dx), from the textbook formulas (tanh form through tanh, not the sigmoid).
    fn reference(x: f64, approximate: Gelu) -> (f64, f64) {
        match approximate {
            Gelu::None => {
                let cdf = 0.5 * (1.0 + libm::erf(x * FRAC_1_SQRT_2));
                (x * cdf, cdf + x * FRAC_1_SQRT_2PI * (-0.5 * x * x).exp())
            }
            Gelu::Tanh => {
                let t = (SQRT_2_OVER_PI * (x + C * x * x * x)).tanh();
                (
                    0.5 * x * (1.0 + t),
                    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * C * x * x),
                )
            }
        }
    }

    #[test]
    fn float32_matches_float64_formulas_on_every_level() {
        // -9..9 in steps that miss every vector boundary, plus specials; lengths with every tail
        let mut x: Vec<f32> = (0..2311).map(|i| -9.0 + i as f32 * 0.0078).collect();
        x.extend([0.0, -0.0, 1e-20, -1e-20, 30.0, -30.0, 100.0, -100.0]);
        let g: Vec<f32> = (0..x.len()).map(|i| 1.0 - (i % 7) as f32 * 0.3).collect();
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            for approximate in [Gelu::None, Gelu::Tanh] {
                for len in [1, 5, 16, 17, 31, x.len()] {
                    let mut y = vec![0f32; len];
                    forward(simd, &mut y, &x[..len], approximate);
                    let mut dx = vec![0.25f32; len];
                    backward(simd, &mut dx, &g[..len], &x[..len], approximate);
                    for i in 0..len {
                        let (want, want_d) = reference(x[i] as f64, approximate);
                        // absolute 4e-7 from the erf approximation, else a few float32 roundings
                        let tol = 1e-6 * (1.0 + want.abs());
                        assert!(
                            (y[i] as f64 - want).abs() <= tol,
                            "{} {approximate:?} at {}: {} vs {want}",
                            simd.name(),
                            x[i],
                            y[i]
                        );
                        let want_dx = 0.25 + g[i] as f64 * want_d;
                        assert!(
                            (dx[i] as f64 - want_dx).abs() <= 2e-6 * (1.0 + want_dx.abs()),
                            "{} {approximate:?} backward at {}: {} vs {want_dx}",
                            simd.name(),
                            x[i],
                            dx[i]
                        );
                    }
                }
                // far in the negative tail the tanh form keeps its relative accuracy (no 1 + tanh cancellation)
                if approximate == Gelu::Tanh {
                    let mut y = [0f32; 1];
                    forward(simd, &mut y, &[-6.0], approximate);
                    let want = reference(-6.0, approximate).0;
                    assert!((y[0] as f64 - want).abs() <= 1e-5 * want.abs(), "{}: {} vs {want}", simd.name(), y[0]);
                }
                let mut y = [0f32; 3];
                forward(simd, &mut y, &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY], approximate);
                assert!(y[0].is_nan() && y[1] == f32::INFINITY, "{} {approximate:?}: {y:?}", simd.name());
            }
        }
    }

    #[test]
    fn float64_takes_the_exact_loop() {
        let x: Vec<f64> = (0..997).map(|i| -7.0 + i as f64 * 0.0141).collect();
        let g: Vec<f64> = x.iter().map(|v| (v * 3.0).sin()).collect();
        for approximate in [Gelu::None, Gelu::Tanh] {
            let mut y = vec![0.0; x.len()];
            gelu_forward(&mut y, &x, approximate);
            let mut dx = vec![1.0; x.len()];
            gelu_backward(&mut dx, &g, &x, approximate);
            for i in 0..x.len() {
                let (want, want_d) = reference(x[i], approximate);
                assert!((y[i] - want).abs() <= 1e-15 * (1.0 + want.abs()), "{approximate:?} at {}", x[i]);
                assert!((dx[i] - 1.0 - g[i] * want_d).abs() <= 1e-14, "{approximate:?} backward at {}", x[i]);
            }
        }
    }
}
