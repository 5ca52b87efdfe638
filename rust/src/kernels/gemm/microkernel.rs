//! The register-blocked microkernel: `C[mr x nr] = alpha * Apanel(MR x kc) * Bpanel(kc x NR) + beta * C` on
//! packed panels, for the `mr <= MR`, `nr <= NR` corner of the tile that lies inside C.
//!
//! f32 on AVX2 and AVX-512 runs the hand-written kernels of `x86.rs`. Everything else (the portable path, and f64,
//! which exists for exact checks) runs one generic `#[inline(always)]` body, compiled inside `#[target_feature]`
//! wrappers per level. The accumulators are a fixed-size array the compiler keeps in vector registers; the tile
//! sizes per level are chosen so the accumulators fill most of the register file (AVX-512: 6 x 32 f32 = 12 zmm;
//! AVX2: 6 x 16 f32 = 12 ymm).
//!
//! C is a raw pointer because threads write disjoint tiles of one matrix that are not contiguous slices.
//! `beta == 0` writes C without reading it (NaNs in C do not propagate), as BLAS does. A non-null `bias` adds a
//! row to the tile as it is stored (the `linear` epilogue).

use crate::dtype::Float;
use crate::simd::Simd;

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

/// The generic body. `ap` is `kc` groups of `MR` values, `bp` is `kc` groups of `NR` values.
///
/// # Safety
/// `c.add(i * ldc + j)` is valid for reads and writes for `i < mr`, `j < nr`; `bias` is null or valid for `nr`
/// reads (a row added to every row of the tile).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn body<T: Float, const MR: usize, const NR: usize, const FMA: bool>(
    kc: usize,
    alpha: T,
    ap: &[T],
    bp: &[T],
    beta: T,
    bias: *const T,
    c: *mut T,
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
    for (i, row) in acc.iter().enumerate().take(mr) {
        for (j, &v) in row.iter().enumerate().take(nr) {
            // SAFETY: j < nr, inside the bias row the caller guarantees when it is not null.
            let add = if bias.is_null() { T::ZERO } else { unsafe { *bias.add(j) } };
            // SAFETY: i < mr and j < nr, inside the range the caller guarantees.
            let p = unsafe { c.add(i * ldc + j) };
            // SAFETY: as above.
            unsafe { *p = if beta == T::ZERO { alpha * v + add } else { alpha * v + beta * *p + add } };
        }
    }
}

macro_rules! generic_fns {
    ($t:ty, $scalar:ident, $avx2:ident, $avx512:ident, ($smr:literal, $snr:literal), ($amr:literal, $anr:literal), ($bmr:literal, $bnr:literal)) => {
        /// # Safety
        /// As for `body`.
        #[allow(clippy::too_many_arguments)]
        unsafe fn $scalar(
            kc: usize,
            alpha: $t,
            ap: &[$t],
            bp: &[$t],
            beta: $t,
            bias: *const $t,
            c: *mut $t,
            ldc: usize,
            mr: usize,
            nr: usize,
        ) {
            // SAFETY: forwarded contract.
            unsafe { body::<$t, $smr, $snr, false>(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) }
        }

        /// # Safety
        /// As for `body`, and the CPU supports avx2 and fma.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx2(
            kc: usize,
            alpha: $t,
            ap: &[$t],
            bp: &[$t],
            beta: $t,
            bias: *const $t,
            c: *mut $t,
            ldc: usize,
            mr: usize,
            nr: usize,
        ) {
            // SAFETY: forwarded contract.
            unsafe { body::<$t, $amr, $anr, true>(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) }
        }

        /// # Safety
        /// As for `body`, and the CPU supports avx512f, avx2 and fma.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx512(
            kc: usize,
            alpha: $t,
            ap: &[$t],
            bp: &[$t],
            beta: $t,
            bias: *const $t,
            c: *mut $t,
            ldc: usize,
            mr: usize,
            nr: usize,
        ) {
            // SAFETY: forwarded contract.
            unsafe { body::<$t, $bmr, $bnr, true>(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) }
        }
    };
}

generic_fns!(f64, f64_scalar, f64_avx2, f64_avx512, (4, 4), (6, 8), (6, 16));

/// The f64 AVX-512 tile (6 x 16) compiled for AVX2, for unit tests on CPUs without AVX-512 (`Simd::supported`).
///
/// # Safety
/// As for `body`, and the CPU supports avx2 and fma.
#[cfg(test)]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn f64_avx512_emulated(
    kc: usize,
    alpha: f64,
    ap: &[f64],
    bp: &[f64],
    beta: f64,
    bias: *const f64,
    c: *mut f64,
    ldc: usize,
    mr: usize,
    nr: usize,
) {
    // SAFETY: forwarded contract.
    unsafe { body::<f64, 6, 16, true>(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) }
}

/// # Safety
/// As for `body`.
#[allow(clippy::too_many_arguments)]
unsafe fn f32_scalar(
    kc: usize,
    alpha: f32,
    ap: &[f32],
    bp: &[f32],
    beta: f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
) {
    // SAFETY: forwarded contract.
    unsafe { body::<f32, 4, 8, false>(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) }
}

/// A microkernel for one dtype: dispatches to the compiled kernel of a SIMD level.
pub trait Kernel: Float + super::pack::Pack {
    /// Run the tile for `simd`.
    ///
    /// # Safety
    /// `simd` is supported by this CPU (`simd::active` and `simd::best` guarantee it); `ap` and `bp` hold
    /// `kc` steps of the tile's `MR` and `NR` values; `1 <= mr <= MR`, `1 <= nr <= NR`; `c.add(i * ldc + j)` is
    /// valid for reads and writes for `i < mr`, `j < nr`, and no other thread accesses those elements meanwhile;
    /// `bias` is null or valid for `nr` reads.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run(
        simd: Simd,
        kc: usize,
        alpha: Self,
        ap: &[Self],
        bp: &[Self],
        beta: Self,
        bias: *const Self,
        c: *mut Self,
        ldc: usize,
        mr: usize,
        nr: usize,
    );
}

impl Kernel for f32 {
    #[inline]
    unsafe fn run(
        simd: Simd,
        kc: usize,
        alpha: f32,
        ap: &[f32],
        bp: &[f32],
        beta: f32,
        bias: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
    ) {
        let (tmr, tnr) = tile::<f32>(simd);
        debug_assert!(mr >= 1 && mr <= tmr && nr >= 1 && nr <= tnr);
        assert!(ap.len() >= kc * tmr && bp.len() >= kc * tnr, "gemm microkernel: panels too short for the tile");
        let (a, b) = (ap.as_ptr(), bp.as_ptr());
        match simd {
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => {
                #[cfg(test)]
                if crate::simd::avx512_emulated() {
                    // SAFETY: as below; without avx512f, `Simd::supported` only admits this level on AVX2 CPUs.
                    return unsafe { super::x86::emulated::sgemm_6x32(kc, alpha, a, b, beta, bias, c, ldc, mr, nr) };
                }
                // SAFETY: the panel lengths are checked above; C and the CPU level are the caller's contract.
                unsafe { super::x86::sgemm_avx512_6x32(kc, alpha, a, b, beta, bias, c, ldc, mr, nr) }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Simd::Avx2 => unsafe { super::x86::sgemm_avx2_6x16(kc, alpha, a, b, beta, bias, c, ldc, mr, nr) },
            // SAFETY: as above (no CPU feature needed).
            _ => unsafe { f32_scalar(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) },
        }
    }
}

impl Kernel for f64 {
    #[inline]
    unsafe fn run(
        simd: Simd,
        kc: usize,
        alpha: f64,
        ap: &[f64],
        bp: &[f64],
        beta: f64,
        bias: *const f64,
        c: *mut f64,
        ldc: usize,
        mr: usize,
        nr: usize,
    ) {
        match simd {
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => {
                #[cfg(test)]
                if crate::simd::avx512_emulated() {
                    // SAFETY: as below; without avx512f, `Simd::supported` only admits this level on AVX2 CPUs.
                    return unsafe { f64_avx512_emulated(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) };
                }
                // SAFETY: the caller's contract (CPU level, C range); the body only indexes the panel slices.
                unsafe { f64_avx512(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Simd::Avx2 => unsafe { f64_avx2(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) },
            // SAFETY: as above.
            _ => unsafe { f64_scalar(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) },
        }
    }
}
