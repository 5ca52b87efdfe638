//! [`F32x`]: a vector of `N` f32 lanes, the one type every SIMD kernel is written against. Implemented by
//! `__m512` (AVX-512, 16 lanes), `__m256` (AVX2 + FMA, 8 lanes) and plain `f32` (the portable level, one lane),
//! plus, in the unit tests, a pair of `__m256` standing in for `__m512` on CPUs without AVX-512.
//!
//! Every method is `unsafe` for one reason: it needs the CPU feature of its implementation (the `f32` impl
//! needs none). They are `#[inline]` with that feature enabled, so inside a kernel compiled for the same level
//! (see `simd_kernel!`) each becomes one or a few instructions. Memory is read and written through slices with
//! bounds checks, so a kernel body has no pointer contract of its own.

/// `N` lanes of f32.
///
/// # Safety
/// Each method may only run on a CPU with the implementation's features (checked by `simd_kernel!`); `load`
/// and `store` also take a pointer contract of their own.
#[allow(clippy::missing_safety_doc)] // the trait's `# Safety` covers every method
pub trait F32x: Copy {
    /// The number of lanes.
    const N: usize;
    /// All lanes 0.
    unsafe fn zero() -> Self;
    /// All lanes `x`.
    unsafe fn splat(x: f32) -> Self;
    /// `N` values at `p` (for kernels that walk raw pointers, such as GEMM's microkernel).
    ///
    /// # Safety
    /// As for the trait, and `p` is valid for reading `N` values.
    unsafe fn load(p: *const f32) -> Self;
    /// Write the lanes to `p`.
    ///
    /// # Safety
    /// As for the trait, and `p` is valid for writing `N` values.
    unsafe fn store(self, p: *mut f32);
    /// `s[i..i + N]`. Panics when out of bounds.
    unsafe fn read(s: &[f32], i: usize) -> Self;
    /// Write the lanes to `s[i..i + N]`. Panics when out of bounds.
    unsafe fn write(self, s: &mut [f32], i: usize);
    /// `s[i..i + n]` in the first `n < N` lanes, zeros in the rest. Panics when out of bounds.
    unsafe fn read_partial(s: &[f32], i: usize, n: usize) -> Self;
    /// Write the first `n < N` lanes to `s[i..i + n]`. Panics when out of bounds.
    unsafe fn write_partial(self, s: &mut [f32], i: usize, n: usize);
    /// `a + b`
    unsafe fn add(a: Self, b: Self) -> Self;
    /// `a - b`
    unsafe fn sub(a: Self, b: Self) -> Self;
    /// `a * b`
    unsafe fn mul(a: Self, b: Self) -> Self;
    /// `a / b`
    unsafe fn div(a: Self, b: Self) -> Self;
    /// `a * b + c`, rounded once where the CPU has FMA (the portable level rounds twice).
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
    /// `a > b ? a : b` per lane: `b` when either is NaN (x86's `maxps`).
    unsafe fn max(a: Self, b: Self) -> Self;
    /// `a < b ? a : b` per lane: `b` when either is NaN (x86's `minps`).
    unsafe fn min(a: Self, b: Self) -> Self;
    /// `|a|`
    unsafe fn abs(a: Self) -> Self;
    /// `sqrt(a)`
    unsafe fn sqrt(a: Self) -> Self;
    /// `a` rounded to the nearest integer, ties to even.
    unsafe fn round(a: Self) -> Self;
    /// `2^n` for integral `n` in [-126, 127] (built in the exponent bits).
    unsafe fn pow2i(n: Self) -> Self;
    /// `a < b ? x : y` per lane (false when either is NaN).
    unsafe fn select_lt(a: Self, b: Self, x: Self, y: Self) -> Self;
    /// The sum of the lanes.
    unsafe fn hsum(a: Self) -> f32;
    /// The largest lane (`maxps` semantics lane by lane).
    unsafe fn hmax(a: Self) -> f32;
}

impl F32x for f32 {
    const N: usize = 1;
    #[inline(always)]
    unsafe fn zero() -> Self {
        0.0
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        x
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees one readable value at p.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees one writable value at p.
        unsafe { *p = self }
    }
    #[inline(always)]
    unsafe fn read(s: &[f32], i: usize) -> Self {
        s[i]
    }
    #[inline(always)]
    unsafe fn write(self, s: &mut [f32], i: usize) {
        s[i] = self;
    }
    #[inline(always)]
    unsafe fn read_partial(_: &[f32], _: usize, _: usize) -> Self {
        0.0 // n < 1 lanes: none
    }
    #[inline(always)]
    unsafe fn write_partial(self, _: &mut [f32], _: usize, _: usize) {}
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        a + b
    }
    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        a - b
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        a * b
    }
    #[inline(always)]
    unsafe fn div(a: Self, b: Self) -> Self {
        a / b
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        a * b + c // no FMA at the portable level: `mul_add` would be a libm call
    }
    #[inline(always)]
    unsafe fn max(a: Self, b: Self) -> Self {
        if a > b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    unsafe fn min(a: Self, b: Self) -> Self {
        if a < b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    unsafe fn abs(a: Self) -> Self {
        a.abs()
    }
    #[inline(always)]
    unsafe fn sqrt(a: Self) -> Self {
        a.sqrt()
    }
    #[inline(always)]
    unsafe fn round(a: Self) -> Self {
        a.round_ties_even()
    }
    #[inline(always)]
    unsafe fn pow2i(n: Self) -> Self {
        f32::from_bits((((n as i32) + 127) << 23) as u32)
    }
    #[inline(always)]
    unsafe fn select_lt(a: Self, b: Self, x: Self, y: Self) -> Self {
        if a < b {
            x
        } else {
            y
        }
    }
    #[inline(always)]
    unsafe fn hsum(a: Self) -> f32 {
        a
    }
    #[inline(always)]
    unsafe fn hmax(a: Self) -> f32 {
        a
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::F32x;
    use std::arch::x86_64::*;

    /// The lanes `i < n` of an AVX2 mask (sign bit set), for masked loads and stores.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mask8(n: usize) -> __m256i {
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }

    impl F32x for __m256 {
        const N: usize = 8;
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn zero() -> Self {
            _mm256_setzero_ps()
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn splat(x: f32) -> Self {
            _mm256_set1_ps(x)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees 8 readable values at p.
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller guarantees 8 writable values at p.
            unsafe { _mm256_storeu_ps(p, self) }
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn read(s: &[f32], i: usize) -> Self {
            let s = &s[i..i + 8];
            // SAFETY: `s` holds the 8 values read.
            unsafe { _mm256_loadu_ps(s.as_ptr()) }
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn write(self, s: &mut [f32], i: usize) {
            let s = &mut s[i..i + 8];
            // SAFETY: `s` holds the 8 values written.
            unsafe { _mm256_storeu_ps(s.as_mut_ptr(), self) }
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn read_partial(s: &[f32], i: usize, n: usize) -> Self {
            assert!(n < 8);
            let s = &s[i..i + n];
            // SAFETY: the mask enables lanes `< n`, all inside `s`; masked-off lanes are not accessed.
            unsafe { _mm256_maskload_ps(s.as_ptr(), mask8(n)) }
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn write_partial(self, s: &mut [f32], i: usize, n: usize) {
            assert!(n < 8);
            let s = &mut s[i..i + n];
            // SAFETY: as for `read_partial`.
            unsafe { _mm256_maskstore_ps(s.as_mut_ptr(), mask8(n), self) }
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn add(a: Self, b: Self) -> Self {
            _mm256_add_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn sub(a: Self, b: Self) -> Self {
            _mm256_sub_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn mul(a: Self, b: Self) -> Self {
            _mm256_mul_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn div(a: Self, b: Self) -> Self {
            _mm256_div_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn max(a: Self, b: Self) -> Self {
            _mm256_max_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn min(a: Self, b: Self) -> Self {
            _mm256_min_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn abs(a: Self) -> Self {
            _mm256_andnot_ps(_mm256_set1_ps(-0.0), a)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn sqrt(a: Self) -> Self {
            _mm256_sqrt_ps(a)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn round(a: Self) -> Self {
            _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn pow2i(n: Self) -> Self {
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
                _mm256_cvtps_epi32(n),
                _mm256_set1_epi32(127),
            )))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn select_lt(a: Self, b: Self, x: Self, y: Self) -> Self {
            _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_LT_OQ>(a, b))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn hsum(a: Self) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn hmax(a: Self) -> f32 {
            let s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
        }
    }

    /// The lanes `i < n` of an AVX-512 mask.
    #[inline(always)]
    fn mask16(n: usize) -> __mmask16 {
        ((1u32 << n) - 1) as __mmask16
    }

    impl F32x for __m512 {
        const N: usize = 16;
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn zero() -> Self {
            _mm512_setzero_ps()
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn splat(x: f32) -> Self {
            _mm512_set1_ps(x)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees 16 readable values at p.
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller guarantees 16 writable values at p.
            unsafe { _mm512_storeu_ps(p, self) }
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn read(s: &[f32], i: usize) -> Self {
            let s = &s[i..i + 16];
            // SAFETY: `s` holds the 16 values read.
            unsafe { _mm512_loadu_ps(s.as_ptr()) }
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn write(self, s: &mut [f32], i: usize) {
            let s = &mut s[i..i + 16];
            // SAFETY: `s` holds the 16 values written.
            unsafe { _mm512_storeu_ps(s.as_mut_ptr(), self) }
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn read_partial(s: &[f32], i: usize, n: usize) -> Self {
            assert!(n < 16);
            let s = &s[i..i + n];
            // SAFETY: the mask enables lanes `< n`, all inside `s`; masked-off lanes are not accessed.
            unsafe { _mm512_maskz_loadu_ps(mask16(n), s.as_ptr()) }
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn write_partial(self, s: &mut [f32], i: usize, n: usize) {
            assert!(n < 16);
            let s = &mut s[i..i + n];
            // SAFETY: as for `read_partial`.
            unsafe { _mm512_mask_storeu_ps(s.as_mut_ptr(), mask16(n), self) }
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn add(a: Self, b: Self) -> Self {
            _mm512_add_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn sub(a: Self, b: Self) -> Self {
            _mm512_sub_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn mul(a: Self, b: Self) -> Self {
            _mm512_mul_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn div(a: Self, b: Self) -> Self {
            _mm512_div_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn max(a: Self, b: Self) -> Self {
            _mm512_max_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn min(a: Self, b: Self) -> Self {
            _mm512_min_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn abs(a: Self) -> Self {
            _mm512_abs_ps(a)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn sqrt(a: Self) -> Self {
            _mm512_sqrt_ps(a)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn round(a: Self) -> Self {
            _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn pow2i(n: Self) -> Self {
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
                _mm512_cvtps_epi32(n),
                _mm512_set1_epi32(127),
            )))
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn select_lt(a: Self, b: Self, x: Self, y: Self) -> Self {
            _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b), y, x)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn hsum(a: Self) -> f32 {
            let h = _mm256_add_ps(
                _mm512_castps512_ps256(a),
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a))),
            );
            // SAFETY: AVX2 is enabled here too.
            unsafe { <__m256 as F32x>::hsum(h) }
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn hmax(a: Self) -> f32 {
            let h = _mm256_max_ps(
                _mm512_castps512_ps256(a),
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a))),
            );
            // SAFETY: AVX2 is enabled here too.
            unsafe { <__m256 as F32x>::hmax(h) }
        }
    }
}

/// 16 lanes as a pair of AVX2 vectors: the AVX-512 level's width on CPUs without AVX-512, for the unit tests
/// (see `Simd::supported`). Each method applies the `__m256` one to both halves.
#[cfg(all(test, target_arch = "x86_64"))]
pub mod emulated {
    use super::F32x;
    use std::arch::x86_64::__m256;

    /// Lanes 0..8 and 8..16.
    #[derive(Clone, Copy)]
    pub struct Pair(__m256, __m256);

    macro_rules! both {
        ($($f:ident),*) => {$(
            #[inline(always)]
            unsafe fn $f(a: Self, b: Self) -> Self {
                // SAFETY: the caller's CPU contract, the same as `__m256`'s.
                unsafe { Pair(<__m256 as F32x>::$f(a.0, b.0), <__m256 as F32x>::$f(a.1, b.1)) }
            }
        )*};
    }
    macro_rules! each {
        ($($f:ident),*) => {$(
            #[inline(always)]
            unsafe fn $f(a: Self) -> Self {
                // SAFETY: the caller's CPU contract, the same as `__m256`'s.
                unsafe { Pair(<__m256 as F32x>::$f(a.0), <__m256 as F32x>::$f(a.1)) }
            }
        )*};
    }

    impl F32x for Pair {
        const N: usize = 16;
        both!(add, sub, mul, div, max, min);
        each!(abs, sqrt, round, pow2i);
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: the caller's CPU (and pointer) contract, the same as `__m256`'s.
            unsafe { Pair(<__m256 as F32x>::zero(), <__m256 as F32x>::zero()) }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: the caller's CPU (and pointer) contract, the same as `__m256`'s.
            unsafe { Pair(<__m256 as F32x>::splat(x), <__m256 as F32x>::splat(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees 16 readable values at p.
            unsafe { Pair(<__m256 as F32x>::load(p), <__m256 as F32x>::load(p.add(8))) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller guarantees 16 writable values at p.
            unsafe {
                self.0.store(p);
                self.1.store(p.add(8));
            }
        }
        #[inline(always)]
        unsafe fn read(s: &[f32], i: usize) -> Self {
            let s = &s[i..i + 16];
            // SAFETY: the caller's CPU (and pointer) contract, the same as `__m256`'s.
            unsafe { Pair(<__m256 as F32x>::read(s, 0), <__m256 as F32x>::read(s, 8)) }
        }
        #[inline(always)]
        unsafe fn write(self, s: &mut [f32], i: usize) {
            let s = &mut s[i..i + 16];
            // SAFETY: the caller's CPU (and pointer) contract, the same as `__m256`'s.
            unsafe {
                self.0.write(s, 0);
                self.1.write(s, 8);
            }
        }
        #[inline(always)]
        unsafe fn read_partial(s: &[f32], i: usize, n: usize) -> Self {
            assert!(n < 16);
            // SAFETY: the caller's CPU (and pointer) contract, the same as `__m256`'s.
            unsafe {
                if n < 8 {
                    Pair(<__m256 as F32x>::read_partial(s, i, n), <__m256 as F32x>::zero())
                } else if n == 8 {
                    Pair(<__m256 as F32x>::read(s, i), <__m256 as F32x>::zero())
                } else {
                    Pair(<__m256 as F32x>::read(s, i), <__m256 as F32x>::read_partial(s, i + 8, n - 8))
                }
            }
        }
        #[inline(always)]
        unsafe fn write_partial(self, s: &mut [f32], i: usize, n: usize) {
            assert!(n < 16);
            // SAFETY: the caller's CPU (and pointer) contract, the same as `__m256`'s.
            unsafe {
                if n < 8 {
                    self.0.write_partial(s, i, n);
                } else {
                    self.0.write(s, i);
                    if n > 8 {
                        self.1.write_partial(s, i + 8, n - 8);
                    }
                }
            }
        }
        #[inline(always)]
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
            // SAFETY: the caller's CPU (and pointer) contract, the same as `__m256`'s.
            unsafe { Pair(<__m256 as F32x>::fmadd(a.0, b.0, c.0), <__m256 as F32x>::fmadd(a.1, b.1, c.1)) }
        }
        #[inline(always)]
        unsafe fn select_lt(a: Self, b: Self, x: Self, y: Self) -> Self {
            // SAFETY: the caller's CPU (and pointer) contract, the same as `__m256`'s.
            unsafe {
                Pair(<__m256 as F32x>::select_lt(a.0, b.0, x.0, y.0), <__m256 as F32x>::select_lt(a.1, b.1, x.1, y.1))
            }
        }
        #[inline(always)]
        unsafe fn hsum(a: Self) -> f32 {
            // SAFETY: the caller's CPU (and pointer) contract, the same as `__m256`'s.
            unsafe { <__m256 as F32x>::hsum(<__m256 as F32x>::add(a.0, a.1)) }
        }
        #[inline(always)]
        unsafe fn hmax(a: Self) -> f32 {
            // SAFETY: the caller's CPU (and pointer) contract, the same as `__m256`'s.
            unsafe { <__m256 as F32x>::hmax(<__m256 as F32x>::max(a.0, a.1)) }
        }
    }
}
