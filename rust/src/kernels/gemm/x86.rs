//! Hand-written f32 microkernels for x86-64: AVX2+FMA (6 x 16, 12 ymm accumulators) and AVX-512F (6 x 32, 12 zmm
//! accumulators). Per step of k each loads one row of the B panel (2 vectors), broadcasts six values of the A
//! panel and issues 12 FMAs, so the two FMA pipes of a core stay busy while loads use a third of the load ports.
//!
//! What the generic body in `microkernel.rs` lacked, found by `perf annotate` on 1024^3 (a fifth of the samples
//! were in writing C back): the C rows a tile updates are prefetched before the k loop, so their cache misses
//! overlap the arithmetic instead of stalling after it, and full tiles are updated with vector loads, one FMA by
//! alpha and vector stores rather than 4-wide adds.
//!
//! Both levels run one body, generic over the crate's vector trait ([`F32x`]): the AVX-512 kernel differs from the
//! AVX2 one only in the vector width. On a machine without AVX-512 the unit tests run that body at AVX-512's tile
//! width on pairs of AVX2 vectors ([`emulated`]), so the driver and packing of the 6 x 32 tile are tested too;
//! only the `__m512` impl of [`F32x`] itself needs an AVX-512 CPU. Both compute
//! `C = alpha * A @ B + beta * C (+ bias row)` on the tile and never read C when beta is 0.
//! The functions are `unsafe` twice over: they need the CPU features named in their `target_feature`, and they
//! take raw pointers; `microkernel::Kernel::run` states the contract its callers keep.

use crate::simd::F32x;
use std::arch::x86_64::*;

/// Rows of every tile.
const MR: usize = 6;

/// The 6 x (2 * V::N) tile.
///
/// # Safety
/// The CPU supports `V`'s feature; `ap` is valid for `kc * 6` reads, `bp` for `kc * 2 * V::N` reads, and
/// `c[i * ldc + j]` for reads and writes for every `i < mr <= 6`, `j < nr <= 2 * V::N`; `bias` is null or valid
/// for `nr` reads.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<V: F32x>(
    kc: usize,
    alpha: f32,
    ap: *const f32,
    bp: *const f32,
    beta: f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
) {
    let nr_full = 2 * V::N;
    // SAFETY: every access is inside the ranges of the contract above; the stack tile holds 6 rows of up to 32
    // values, and 2 * V::N <= 32.
    unsafe {
        for i in 0..mr {
            // A prefetch is only a hint and never faults; the addresses are inside C's rows anyway.
            _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc + nr - 1) as *const i8);
        }
        let mut acc = [[V::zero(); 2]; MR];
        let (mut a, mut b) = (ap, bp);
        for _ in 0..kc {
            let b0 = V::load(b);
            let b1 = V::load(b.add(V::N));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = V::splat(*a.add(i));
                row[0] = V::fmadd(ai, b0, row[0]);
                row[1] = V::fmadd(ai, b1, row[1]);
            }
            a = a.add(MR);
            b = b.add(nr_full);
        }
        let (av, bv) = (V::splat(alpha), V::splat(beta));
        // the bias row, if any (an edge tile's copy padded with zeros): 12 adds against 12 * kc FMAs
        let bias = if bias.is_null() {
            None
        } else {
            let mut buf = [0f32; 32];
            std::ptr::copy_nonoverlapping(bias, buf.as_mut_ptr(), nr);
            Some([V::load(buf.as_ptr()), V::load(buf.as_ptr().add(V::N))])
        };

        if mr == MR && nr == nr_full {
            for (i, row) in acc.iter().enumerate() {
                let p = c.add(i * ldc);
                with_bias(out(row[0], p, av, beta, bv), &bias, 0).store(p);
                with_bias(out(row[1], p.add(V::N), av, beta, bv), &bias, 1).store(p.add(V::N));
            }
        } else {
            // Edge tile: through a stack copy, so only the mr x nr corner of C is read and written.
            let mut buf = [0f32; MR * 32];
            let t = buf.as_mut_ptr();
            for i in 0..mr {
                std::ptr::copy_nonoverlapping(c.add(i * ldc), t.add(i * nr_full), nr);
            }
            for (i, row) in acc.iter().enumerate() {
                let p = t.add(i * nr_full);
                with_bias(out(row[0], p, av, beta, bv), &bias, 0).store(p);
                with_bias(out(row[1], p.add(V::N), av, beta, bv), &bias, 1).store(p.add(V::N));
            }
            for i in 0..mr {
                std::ptr::copy_nonoverlapping(t.add(i * nr_full), c.add(i * ldc), nr);
            }
        }
    }
}

/// `alpha * acc + beta * C[p..]` (alpha and beta splatted in `av`, `bv`), without reading C when beta is 0.
/// A function rather than a closure: closures do not inherit the kernel's target features, so the vector
/// methods inside one would stay calls.
///
/// # Safety
/// As for [`tile`]; `p` is valid for `V::N` reads when beta is not 0.
#[inline(always)]
unsafe fn out<V: F32x>(acc: V, p: *const f32, av: V, beta: f32, bv: V) -> V {
    // SAFETY: forwarded contract.
    unsafe {
        if beta == 0.0 {
            V::mul(av, acc)
        } else if beta == 1.0 {
            V::fmadd(av, acc, V::load(p))
        } else {
            V::fmadd(av, acc, V::mul(bv, V::load(p)))
        }
    }
}

/// `v + bias[h]` when there is a bias row (a function for the same reason as [`out`]).
///
/// # Safety
/// The CPU supports `V`'s feature.
#[inline(always)]
unsafe fn with_bias<V: F32x>(v: V, bias: &Option<[V; 2]>, h: usize) -> V {
    match bias {
        // SAFETY: forwarded contract.
        Some(b) => unsafe { V::add(v, b[h]) },
        None => v,
    }
}

/// The 6 x 16 tile with AVX2 and FMA.
///
/// # Safety
/// The CPU supports avx2 and fma; `ap` is valid for `kc * 6` reads, `bp` for `kc * 16` reads, and
/// `c[i * ldc + j]` is valid for reads and writes for every `i < mr <= 6`, `j < nr <= 16`; `bias` is null or
/// valid for `nr` reads.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm_avx2_6x16(
    kc: usize,
    alpha: f32,
    ap: *const f32,
    bp: *const f32,
    beta: f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
) {
    // SAFETY: forwarded contract.
    unsafe { tile::<__m256>(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) }
}

/// The 6 x 32 tile with AVX-512F.
///
/// # Safety
/// The CPU supports avx512f; `ap` is valid for `kc * 6` reads, `bp` for `kc * 32` reads, and
/// `c[i * ldc + j]` is valid for reads and writes for every `i < mr <= 6`, `j < nr <= 32`; `bias` is null or
/// valid for `nr` reads.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm_avx512_6x32(
    kc: usize,
    alpha: f32,
    ap: *const f32,
    bp: *const f32,
    beta: f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
) {
    // SAFETY: forwarded contract.
    unsafe { tile::<__m512>(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) }
}

/// Transpose a block of f32: `dst[q * w + l] = src[l * ls + q]` for `q < 8` and `l < lanes`, where `lanes` is 8
/// or 6 (packing `x @ W^T`'s B panels in groups of 8 lanes, and row-major A into 6-row panels): the lanes are
/// read as vectors, shuffled in registers (missing lanes as zeros) and written as rows.
///
/// # Safety
/// The CPU supports avx2; `lanes` is 6 or 8; `src` is valid for reading 8 values at each `l * ls` for
/// `l < lanes`, and `dst` for writing `lanes` values at each `q * w` for `q < 8`.
#[target_feature(enable = "avx2")]
pub unsafe fn transpose_block(src: *const f32, ls: usize, lanes: usize, dst: *mut f32, w: usize) {
    // SAFETY: the reads and writes are the ranges of the contract above.
    unsafe {
        let r = [0, 1, 2, 3, 4, 5, 6, 7].map(|l| {
            if l < lanes {
                _mm256_loadu_ps(src.add(l * ls))
            } else {
                _mm256_setzero_ps()
            }
        });
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let rows = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (q, row) in rows.iter().enumerate() {
            let d = dst.add(q * w);
            if lanes == 8 {
                _mm256_storeu_ps(d, *row);
            } else {
                // six values: four, then two as one 64-bit store
                _mm_storeu_ps(d, _mm256_castps256_ps128(*row));
                _mm_store_sd(d.add(4) as *mut f64, _mm_castps_pd(_mm256_extractf128_ps::<1>(*row)));
            }
        }
    }
}

/// AVX-512's 6 x 32 tile on a CPU with only AVX2, for the unit tests (`Simd::supported`): each 16-lane vector is
/// a pair of AVX2 vectors (`simd::vector::emulated`), so the driver, packing and edge tiles at the AVX-512 tile
/// width run on any test machine, through the same generic [`tile`] body as the real kernel.
#[cfg(test)]
pub mod emulated {
    use super::*;
    use crate::simd::vector::emulated::Pair;

    /// [`sgemm_avx512_6x32`]'s contract, with avx2 and fma in place of avx512f.
    ///
    /// # Safety
    /// As for [`sgemm_avx512_6x32`], on a CPU with avx2 and fma.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn sgemm_6x32(
        kc: usize,
        alpha: f32,
        ap: *const f32,
        bp: *const f32,
        beta: f32,
        bias: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
    ) {
        // SAFETY: forwarded contract.
        unsafe { tile::<Pair>(kc, alpha, ap, bp, beta, bias, c, ldc, mr, nr) }
    }
}
