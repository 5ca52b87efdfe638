//! The register-blocked microkernel: `C[MR x NR] += alpha * Apanel(MR x kc) * Bpanel(kc x NR)` on packed panels.
//!
//! One generic `#[inline(always)]` body, compiled three times: inside `#[target_feature]` wrappers for AVX-512
//! and AVX2+FMA, and plain for the portable path. The accumulators are a fixed-size array the compiler keeps in
//! vector registers; the tile sizes per level are chosen so the accumulators fill most of the register file
//! (AVX-512: 6 x 32 f32 = 12 zmm; AVX2: 6 x 16 f32 = 12 ymm).

use super::dispatch::Simd;
use crate::dtype::Float;

/// Rows and columns of the register tile for a dtype on a SIMD level.
pub fn tile<T: Float>(simd: Simd) -> (usize, usize) {
    let wide = std::mem::size_of::<T>() == 4;
    match (simd, wide) {
        (Simd::Avx512, true) => (6, 32),
        (Simd::Avx512, false) => (6, 16),
        (Simd::Avx2, true) => (6, 16),
        (Simd::Avx2, false) => (6, 8),
        (Simd::Scalar, true) => (4, 8),
        (Simd::Scalar, false) => (4, 4),
    }
}

/// The body: `acc = Apanel * Bpanel`, then `C += alpha * acc` for the `mr x nr` corner that is inside C.
/// `ap` is `kc` groups of `MR` values, `bp` is `kc` groups of `NR` values; `c` starts at the tile's corner.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn body<T: Float, const MR: usize, const NR: usize, const FMA: bool>(
    kc: usize,
    alpha: T,
    ap: &[T],
    bp: &[T],
    c: &mut [T],
    ldc: usize,
    mr: usize,
    nr: usize,
) {
    let mut acc = [[T::ZERO; NR]; MR];
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)).take(kc) {
        for i in 0..MR {
            let ai = a[i];
            for j in 0..NR {
                acc[i][j] = if FMA { ai.mul_add(b[j], acc[i][j]) } else { acc[i][j] + ai * b[j] };
            }
        }
    }
    for i in 0..mr {
        let row = &mut c[i * ldc..i * ldc + nr];
        for (cv, &av) in row.iter_mut().zip(&acc[i][..nr]) {
            *cv += alpha * av;
        }
    }
}

macro_rules! kernel_fns {
    ($t:ty, $scalar:ident, $avx2:ident, $avx512:ident, ($smr:literal, $snr:literal), ($amr:literal, $anr:literal), ($bmr:literal, $bnr:literal)) => {
        #[allow(clippy::too_many_arguments)]
        fn $scalar(kc: usize, alpha: $t, ap: &[$t], bp: &[$t], c: &mut [$t], ldc: usize, mr: usize, nr: usize) {
            body::<$t, $smr, $snr, false>(kc, alpha, ap, bp, c, ldc, mr, nr)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        fn $avx2(kc: usize, alpha: $t, ap: &[$t], bp: &[$t], c: &mut [$t], ldc: usize, mr: usize, nr: usize) {
            body::<$t, $amr, $anr, true>(kc, alpha, ap, bp, c, ldc, mr, nr)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        fn $avx512(kc: usize, alpha: $t, ap: &[$t], bp: &[$t], c: &mut [$t], ldc: usize, mr: usize, nr: usize) {
            body::<$t, $bmr, $bnr, true>(kc, alpha, ap, bp, c, ldc, mr, nr)
        }
    };
}

kernel_fns!(f32, f32_scalar, f32_avx2, f32_avx512, (4, 8), (6, 16), (6, 32));
kernel_fns!(f64, f64_scalar, f64_avx2, f64_avx512, (4, 4), (6, 8), (6, 16));

/// A microkernel for one dtype: dispatches to the compiled body of a SIMD level.
pub trait Kernel: Float {
    /// Run the tile for `simd` (which must be supported by this CPU: `dispatch::active` guarantees it).
    #[allow(clippy::too_many_arguments)]
    fn run(
        simd: Simd,
        kc: usize,
        alpha: Self,
        ap: &[Self],
        bp: &[Self],
        c: &mut [Self],
        ldc: usize,
        mr: usize,
        nr: usize,
    );
}

macro_rules! kernel_impl {
    ($t:ty, $scalar:ident, $avx2:ident, $avx512:ident) => {
        impl Kernel for $t {
            #[inline]
            fn run(
                simd: Simd,
                kc: usize,
                alpha: $t,
                ap: &[$t],
                bp: &[$t],
                c: &mut [$t],
                ldc: usize,
                mr: usize,
                nr: usize,
            ) {
                match simd {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `simd` comes from `dispatch::active`, which never returns a level the CPU lacks,
                    // so the avx512f/avx2/fma instructions in this function exist. The body only indexes slices.
                    Simd::Avx512 => unsafe { $avx512(kc, alpha, ap, bp, c, ldc, mr, nr) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: as above, for avx2 and fma.
                    Simd::Avx2 => unsafe { $avx2(kc, alpha, ap, bp, c, ldc, mr, nr) },
                    _ => $scalar(kc, alpha, ap, bp, c, ldc, mr, nr),
                }
            }
        }
    };
}

kernel_impl!(f32, f32_scalar, f32_avx2, f32_avx512);
kernel_impl!(f64, f64_scalar, f64_avx2, f64_avx512);
