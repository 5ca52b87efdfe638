//! Transcendental functions on [`F32x`] vectors, built from its methods so every level computes them the same
//! way (the portable level included): `exp` (Cephes's range reduction and degree-6 polynomial, about 1 ulp),
//! `tanh` (a polynomial near 0, `1 - 2 / (e^2x + 1)` beyond), `sigmoid`, and `erf` (Abramowitz and Stegun
//! 7.1.26: absolute error below 1.5e-7 in exact arithmetic, 4e-7 in float32, enough for GELU).
//!
//! Special values follow libm: `exp(-inf) = 0`, `exp(+inf) = +inf`, NaN in gives NaN out.

use super::F32x;

/// `(p, n)` with `e^x = p * 2^n`: `x = n ln2 + r`, `|r| <= ln2 / 2` (ln2 split in two so `r` is exact), and `p`
/// the degree-7 polynomial of `e^r`. `x` must already be clamped to the range the caller handles.
///
/// # Safety
/// The CPU has `V`'s features.
#[inline(always)]
pub unsafe fn exp_reduced<V: F32x>(x: V) -> (V, V) {
    // SAFETY: the caller's CPU contract.
    unsafe {
        let n = V::round(V::mul(x, V::splat(std::f32::consts::LOG2_E)));
        let r = V::fmadd(n, V::splat(-0.693_359_4), x);
        let r = V::fmadd(n, V::splat(2.121_944_4e-4), r);
        let mut p = V::splat(1.987_569_1e-4);
        p = V::fmadd(p, r, V::splat(1.398_2e-3));
        p = V::fmadd(p, r, V::splat(8.333_452e-3));
        p = V::fmadd(p, r, V::splat(4.166_579_6e-2));
        p = V::fmadd(p, r, V::splat(1.666_666_5e-1));
        p = V::fmadd(p, r, V::splat(5e-1));
        (V::fmadd(p, V::mul(r, r), V::add(r, V::splat(1.0))), n)
    }
}

/// `e^x`.
///
/// # Safety
/// The CPU has `V`'s features.
#[inline(always)]
pub unsafe fn exp<V: F32x>(x: V) -> V {
    // SAFETY: the caller's CPU contract.
    unsafe {
        const HI: f32 = 88.722_84; // ln(f32::MAX): beyond, +inf
        const LO: f32 = -87.336_55; // ln(f32::MIN_POSITIVE): below, 0 (no denormals)
                                    // clamp with x second so NaN passes through (maxps/minps return the second operand on NaN)
        let xc = V::min(V::splat(HI), V::max(V::splat(LO), x));
        let (p, n) = exp_reduced(xc);
        // n = 128 at x = HI: scale by 2^127 twice so the top of the range does not overflow the exponent
        let half = V::pow2i(V::min(n, V::splat(127.0)));
        let y = V::mul(p, half);
        let y = V::select_lt(V::splat(127.0), n, V::mul(y, V::splat(2.0)), y);
        let y = V::select_lt(V::splat(HI), x, V::splat(f32::INFINITY), y);
        V::select_lt(x, V::splat(LO), V::zero(), y)
    }
}

/// `tanh(x)`.
///
/// # Safety
/// The CPU has `V`'s features.
#[inline(always)]
pub unsafe fn tanh<V: F32x>(x: V) -> V {
    // SAFETY: the caller's CPU contract.
    unsafe {
        let a = V::abs(x);
        // |x| < 0.625: x + x^3 P(x^2) (Cephes tanhf), no cancellation near 0
        let z = V::mul(x, x);
        let mut p = V::splat(-5.704_988_7e-3);
        p = V::fmadd(p, z, V::splat(2.063_909e-2));
        p = V::fmadd(p, z, V::splat(-5.373_971_6e-2));
        p = V::fmadd(p, z, V::splat(1.333_144_2e-1));
        p = V::fmadd(p, z, V::splat(-3.333_328e-1));
        let small = V::fmadd(V::mul(p, z), x, x);
        // beyond: 1 - 2 / (e^(2|x|) + 1) with the sign of x (e^(2|x|) = inf gives exactly 1)
        let e = exp(V::add(a, a));
        let big = V::sub(V::splat(1.0), V::div(V::splat(2.0), V::add(e, V::splat(1.0))));
        let big = V::select_lt(x, V::zero(), V::sub(V::zero(), big), big);
        V::select_lt(a, V::splat(0.625), small, big)
    }
}

/// `1 / (1 + e^-x)`.
///
/// # Safety
/// The CPU has `V`'s features.
#[inline(always)]
pub unsafe fn sigmoid<V: F32x>(x: V) -> V {
    // SAFETY: the caller's CPU contract.
    unsafe { V::div(V::splat(1.0), V::add(V::splat(1.0), exp(V::sub(V::zero(), x)))) }
}

/// `erf(x)`, absolute error below 4e-7.
///
/// # Safety
/// The CPU has `V`'s features.
#[inline(always)]
pub unsafe fn erf<V: F32x>(x: V) -> V {
    // SAFETY: the caller's CPU contract.
    unsafe {
        let a = V::abs(x);
        let t = V::div(V::splat(1.0), V::fmadd(V::splat(0.327_591_1), a, V::splat(1.0)));
        let mut p = V::splat(1.061_405_4);
        p = V::fmadd(p, t, V::splat(-1.453_152_1));
        p = V::fmadd(p, t, V::splat(1.421_413_8));
        p = V::fmadd(p, t, V::splat(-0.284_496_74));
        p = V::fmadd(p, t, V::splat(0.254_829_6));
        let y = V::sub(V::splat(1.0), V::mul(V::mul(p, t), exp(V::sub(V::zero(), V::mul(a, a)))));
        V::select_lt(x, V::zero(), V::sub(V::zero(), y), y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Simd;

    unsafe fn map_body<V: F32x>(out: &mut [f32], x: &[f32], which: usize) {
        // SAFETY: the CPU contract comes from `simd_kernel!`.
        unsafe {
            let mut i = 0;
            while i < x.len() {
                let n = (x.len() - i).min(V::N);
                let v = if n == V::N { V::read(x, i) } else { V::read_partial(x, i, n) };
                let y = match which {
                    0 => exp(v),
                    1 => tanh(v),
                    2 => sigmoid(v),
                    _ => erf(v),
                };
                if n == V::N {
                    y.write(out, i)
                } else {
                    y.write_partial(out, i, n)
                }
                i += n;
            }
        }
    }
    crate::simd_kernel! {
        fn map(simd: Simd, out: &mut [f32], x: &[f32], which: usize) = map_body;
    }

    fn inputs() -> Vec<f32> {
        let mut v: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.011).collect();
        v.extend([
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            1e-8,
            0.624,
            0.626,
            -0.625,
            87.0,
            88.5,
            88.72,
            88.73,
            89.0,
            -87.3,
            -87.4,
            -100.0,
            1e6,
            -1e6,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            9.0,
            -9.0,
            30.0,
        ]);
        v
    }

    fn reference(which: usize, x: f64) -> f64 {
        match which {
            0 => x.exp(),
            1 => x.tanh(),
            2 => 1.0 / (1.0 + (-x).exp()),
            _ => libm::erf(x),
        }
    }

    #[test]
    fn functions_match_libm_on_every_level() {
        let x = inputs();
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            for which in 0..4 {
                let mut out = vec![0f32; x.len()];
                map(simd, &mut out, &x, which);
                for (&xi, &yi) in x.iter().zip(&out) {
                    let want = reference(which, xi as f64);
                    let ok = if (want as f32).is_infinite() {
                        yi == want as f32
                    } else if which == 0 {
                        // exp: relative (2 ulp); results below f32's normal range flush to 0
                        (yi as f64 - want).abs() <= 2.5e-7 * want.abs() || (want < 1.2e-38 && yi == 0.0)
                    } else if which == 1 {
                        // tanh: relative near 0, absolute beyond
                        (yi as f64 - want).abs() <= 3e-7 * want.abs().max(if xi.abs() < 0.625 { 0.0 } else { 1.0 })
                    } else if which == 2 {
                        // sigmoid: relative; below f32's normal range it flushes to 0 like exp
                        (yi as f64 - want).abs() <= 3e-7 * want.abs() || (want < 1.2e-38 && yi == 0.0)
                    } else {
                        (yi as f64 - want).abs() <= 4e-7
                    };
                    assert!(ok, "{} fn {which} at {xi}: {yi} vs {want}", simd.name());
                }
                // NaN in, NaN out
                let mut out = [0f32; 3];
                map(simd, &mut out, &[f32::NAN, 1.0, f32::NAN], which);
                assert!(out[0].is_nan() && out[2].is_nan() && !out[1].is_nan(), "{} fn {which} NaN", simd.name());
            }
        }
    }
}
