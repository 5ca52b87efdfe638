//! Building blocks of the float32 SIMD kernels, written once against [`F32x`]: loads and stores of `k <= N`
//! lanes at any position (a masked load or store for the tail, so every element of a slice runs the same
//! vector code whatever its position), the row reductions max, sum and dot, and `exp` for the non-positive
//! arguments of softmax and cross-entropy.
//!
//! Sums keep one vector accumulator: lane `l` adds the elements `l, l + N, l + 2N, ..` and the lanes are added
//! at the end, so each partial sum holds `len / N` terms (48 for a row of 768 at AVX-512's 16 lanes).
//! Not here: the kernels themselves, and threading (callers split whole rows or elements with `crate::parallel`).

use crate::simd::F32x;

/// Lane numbers, for masking the lanes past a tail.
const LANE: [f32; 16] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0];

/// The number of lanes of a vector step at `i` in a slice of `len`: `N`, or what is left.
#[inline(always)]
pub fn step<V: F32x>(i: usize, len: usize) -> usize {
    (len - i).min(V::N)
}

/// `s[i..i + k]` in the first `k <= N` lanes, zeros in the others.
///
/// # Safety
/// The CPU has `V`'s features. Panics (safely) when `s[i..i + k]` is out of bounds.
#[inline(always)]
pub unsafe fn load<V: F32x>(s: &[f32], i: usize, k: usize) -> V {
    // SAFETY: the caller's CPU contract; bounds are checked by `read`/`read_partial`.
    unsafe {
        if k == V::N {
            V::read(s, i)
        } else {
            V::read_partial(s, i, k)
        }
    }
}

/// `s[i..i + k]` in the first `k <= N` lanes, `fill` in the others (for example -inf before a max or an exp).
///
/// # Safety
/// As for [`load`].
#[inline(always)]
pub unsafe fn load_or<V: F32x>(s: &[f32], i: usize, k: usize, fill: f32) -> V {
    // SAFETY: the caller's CPU contract; bounds are checked by `read`/`read_partial`.
    unsafe {
        if k == V::N {
            V::read(s, i)
        } else {
            V::select_lt(V::read(&LANE, 0), V::splat(k as f32), V::read_partial(s, i, k), V::splat(fill))
        }
    }
}

/// Write the first `k <= N` lanes of `v` to `s[i..i + k]`.
///
/// # Safety
/// As for [`load`].
#[inline(always)]
pub unsafe fn store<V: F32x>(v: V, s: &mut [f32], i: usize, k: usize) {
    // SAFETY: the caller's CPU contract; bounds are checked by `write`/`write_partial`.
    unsafe {
        if k == V::N {
            v.write(s, i)
        } else {
            v.write_partial(s, i, k)
        }
    }
}

/// `e^x` for `x <= 0` (softmax's `x - max`, cross-entropy's `x - lse`): `simd::math::exp` without its
/// overflow handling, which these arguments never need (a few ulp above 0, from rounding, is fine: it is valid
/// up to 88). Below -87.3 (and at -inf) it is exactly 0; NaN gives NaN. Same accuracy, about 25% fewer
/// instructions.
///
/// # Safety
/// The CPU has `V`'s features.
#[inline(always)]
pub unsafe fn exp_nonpositive<V: F32x>(x: V) -> V {
    // SAFETY: the caller's CPU contract.
    unsafe {
        const LO: f32 = -87.336_55; // ln(f32::MIN_POSITIVE): below, 0 (no denormals)
                                    // NaN passes through max (the second operand); then everything stays NaN
        let xc = V::max(V::splat(LO), x);
        let (p, n) = crate::simd::math::exp_reduced(xc);
        V::select_lt(x, V::splat(LO), V::zero(), V::mul(p, V::pow2i(n)))
    }
}

/// The largest element of `x` (-inf when empty). A NaN in `x` may or may not come out (x86's `maxps` keeps
/// one operand); kernels that must propagate NaN get it through `exp(x - max)`, which is NaN there.
///
/// # Safety
/// The CPU has `V`'s features.
#[inline(always)]
pub unsafe fn max<V: F32x>(x: &[f32]) -> f32 {
    // SAFETY: the caller's CPU contract.
    unsafe {
        let mut m = V::splat(f32::NEG_INFINITY);
        let mut i = 0;
        while i < x.len() {
            let k = step::<V>(i, x.len());
            m = V::max(m, load_or::<V>(x, i, k, f32::NEG_INFINITY));
            i += k;
        }
        V::hmax(m)
    }
}

/// The sum of `x`, in per-lane partial sums.
///
/// # Safety
/// The CPU has `V`'s features.
#[inline(always)]
pub unsafe fn sum<V: F32x>(x: &[f32]) -> f32 {
    // SAFETY: the caller's CPU contract.
    unsafe {
        let mut s = V::zero();
        let mut i = 0;
        while i < x.len() {
            let k = step::<V>(i, x.len());
            s = V::add(s, load::<V>(x, i, k));
            i += k;
        }
        V::hsum(s)
    }
}

/// The sum of `a * b`, in per-lane partial sums.
///
/// # Safety
/// The CPU has `V`'s features; `b` is at least as long as `a`.
#[inline(always)]
pub unsafe fn dot<V: F32x>(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: the caller's CPU contract.
    unsafe {
        let mut s = V::zero();
        let mut i = 0;
        while i < a.len() {
            let k = step::<V>(i, a.len());
            s = V::fmadd(load::<V>(a, i, k), load::<V>(b, i, k), s);
            i += k;
        }
        V::hsum(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Simd;

    unsafe fn probe_body<V: F32x>(out: &mut [f32], x: &[f32]) {
        // SAFETY: the CPU contract comes from `simd_kernel!`.
        unsafe {
            out[0] = max::<V>(x);
            out[1] = sum::<V>(x);
            out[2] = dot::<V>(x, x);
            // a copy through masked loads and stores, filling nothing past the end
            let mut i = 0;
            while i < x.len() {
                let k = step::<V>(i, x.len());
                store(V::add(load_or::<V>(x, i, k, 7.0), V::zero()), &mut out[3..3 + x.len()], i, k);
                i += k;
            }
        }
    }
    crate::simd_kernel! {
        fn probe(simd: Simd, out: &mut [f32], x: &[f32]) = probe_body;
    }

    unsafe fn exp_body<V: F32x>(out: &mut [f32], x: &[f32]) {
        // SAFETY: the CPU contract comes from `simd_kernel!`.
        unsafe {
            let mut i = 0;
            while i < x.len() {
                let k = step::<V>(i, x.len());
                store(exp_nonpositive(load::<V>(x, i, k)), out, i, k);
                i += k;
            }
        }
    }
    crate::simd_kernel! {
        fn exp_np(simd: Simd, out: &mut [f32], x: &[f32]) = exp_body;
    }

    #[test]
    fn exp_of_nonpositive_arguments_on_every_level() {
        let mut x: Vec<f32> = (0..=20000).map(|i| -100.0 + i as f32 * 0.005).collect(); // -100 ..= 0
        x.extend([0.0, -0.0, 1e-7, 3.0, 88.0, -87.3, -87.4, -1e30, f32::NEG_INFINITY, f32::NAN]);
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            let mut out = vec![0f32; x.len()];
            exp_np(simd, &mut out, &x);
            for (&a, &y) in x.iter().zip(&out) {
                let want = (a as f64).exp();
                let ok = if a.is_nan() {
                    y.is_nan()
                } else if want < 1.2e-38 {
                    y == 0.0 || (y as f64 - want).abs() < 1e-38 // no denormals: 0 below f32's normal range
                } else {
                    (y as f64 - want).abs() <= 2.5e-7 * want
                };
                assert!(ok, "{} exp({a}) = {y}, want {want}", simd.name());
            }
            // exactly zero where softmax needs it: -inf (masked) and far below
            exp_np(simd, &mut out[..2], &[f32::NEG_INFINITY, -200.0]);
            assert_eq!(&out[..2], &[0.0, 0.0], "{}", simd.name());
        }
    }

    #[test]
    fn reductions_and_tails_on_every_level() {
        for simd in Simd::ALL.into_iter().filter(|s| s.supported()) {
            for len in [0usize, 1, 2, 7, 15, 16, 17, 31, 33, 69, 97] {
                // negative values so a tail padded with zeros would win the max
                let x: Vec<f32> = (0..len).map(|i| -1.0 - (i as f32 * 0.37) % 5.0).collect();
                let mut out = vec![-1.0f32; 3 + len + 1];
                probe(simd, &mut out, &x);
                let want_max = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let want_sum: f64 = x.iter().map(|&v| v as f64).sum();
                let want_dot: f64 = x.iter().map(|&v| v as f64 * v as f64).sum();
                assert_eq!(out[0], want_max, "{} max of {len}", simd.name());
                assert!(
                    (out[1] as f64 - want_sum).abs() <= 1e-6 * (1.0 + want_sum.abs()),
                    "{} sum of {len}",
                    simd.name()
                );
                assert!((out[2] as f64 - want_dot).abs() <= 1e-6 * (1.0 + want_dot), "{} dot of {len}", simd.name());
                assert_eq!(&out[3..3 + len], &x[..], "{} copy of {len}", simd.name());
                assert_eq!(out[3 + len], -1.0, "{} wrote past {len}", simd.name());
            }
        }
    }
}
