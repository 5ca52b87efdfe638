//! General matrix multiply: `C = alpha * A @ B + beta * C` for f32 and f64, with A and B given by arbitrary
//! row and column strides (so transposed operands are read in place) and C row-major with row stride `ldc`.
//!
//! The BLIS five-loop structure:
//! ```text
//! for jc in 0..N step NC        B block of NC columns (stays in L3)
//!   for pc in 0..K step KC      pack B[pc.., jc..] into NR-wide panels (a KC x NR panel stays in L1)
//!     for ic in 0..M step MC    pack A[ic.., pc..] into MR-tall panels (MC x KC of A stays in L2)
//!       for jr in 0..NC step NR
//!         for ir in 0..MC step MR   microkernel: C[ir.., jr..] += A panel * B panel
//! ```
//! Blocking constants (f32): KC = 256 (a 256 x 32 B panel is 32 KiB, the L1d size; the A panel 6 KiB),
//! MC = 120 (120 x 256 x 4 B = 120 KiB of A in the 1 MiB L2), NC = 2048.
//!
//! Threads: the output is split into one block per thread along M (or N when M is small); each thread runs the
//! five loops on its block. Products under [`crate::parallel::MIN_PARALLEL`] x 16 flops stay on the calling thread.

mod dispatch;
mod microkernel;
mod pack;

pub use dispatch::{active as active_simd, best as best_simd, Simd};
pub use microkernel::Kernel;
pub use pack::MatRef;

use crate::parallel;

const KC: usize = 256;
const MC: usize = 120;
const NC: usize = 2048;

/// `C = alpha * A @ B + beta * C`, where A is `m x k`, B is `k x n`, C is `m x n` with row stride `ldc`.
/// `beta == 0` overwrites C (NaNs in C do not propagate), as BLAS does.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Kernel + Default>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    gemm_with(dispatch::active(), parallel::num_threads(), m, n, k, alpha, a, b, beta, c, ldc)
}

/// [`gemm`] with an explicit SIMD level and thread count (for tests of every path).
#[allow(clippy::too_many_arguments)]
pub fn gemm_with<T: Kernel + Default>(
    simd: Simd,
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let simd = if simd as u8 <= dispatch::best() as u8 { simd } else { dispatch::best() };
    scale_rows(c, m, n, ldc, beta);
    if k == 0 || alpha == T::ZERO {
        return;
    }
    let flops = m * n * k;
    let threads = if flops < parallel::MIN_PARALLEL * 16 { 1 } else { threads.max(1) };
    if threads == 1 {
        block(simd, 0, m, 0, n, k, alpha, a, b, c, ldc, 0);
        return;
    }
    let (mr, nr) = microkernel::tile::<T>(simd);
    if m >= n || m >= mr * threads * 4 {
        // split rows: each task owns a disjoint band of C's rows
        let rows = m.div_ceil(threads).div_ceil(mr) * mr;
        let bands: Vec<(usize, &mut [T])> = {
            let mut v = Vec::new();
            let mut rest = c;
            let mut i0 = 0;
            while i0 < m {
                let h = rows.min(m - i0);
                let take = if i0 + h < m { h * ldc } else { rest.len() };
                let (band, tail) = rest.split_at_mut(take);
                v.push((i0, band));
                rest = tail;
                i0 += h;
            }
            v
        };
        // The calling thread computes the first band itself (`in_place_scope`): from a Python thread that saves
        // handing the whole region to the pool and sleeping until it returns.
        let pool = parallel::pool();
        let mut bands = bands.into_iter();
        let (i0_first, first) = bands.next().expect("m > 0 gives at least one band");
        pool.in_place_scope(|s| {
            for (i0, band) in bands {
                let h = rows.min(m - i0);
                s.spawn(move |_| block(simd, i0, h, 0, n, k, alpha, a, b, band, ldc, 0));
            }
            block(simd, i0_first, rows.min(m - i0_first), 0, n, k, alpha, a, b, first, ldc, 0);
        });
    } else {
        // split columns: each task computes alpha * A @ B[:, j0..j0+w] into its own buffer, added to C afterwards
        // (m * n extra adds against m * n * k flops; keeps every `&mut` disjoint without unsafe).
        let cols = n.div_ceil(threads).div_ceil(nr) * nr;
        let ranges: Vec<(usize, usize)> = (0..n).step_by(cols).map(|j0| (j0, cols.min(n - j0))).collect();
        let mut parts: Vec<Vec<T>> = ranges.iter().map(|&(_, w)| vec![T::ZERO; m * w]).collect();
        let pool = parallel::pool();
        let mut work = ranges.iter().zip(parts.iter_mut());
        let (&(j0_first, w_first), first) = work.next().expect("n > 0 gives at least one range");
        pool.in_place_scope(|s| {
            for (&(j0, w), part) in work {
                s.spawn(move |_| block(simd, 0, m, j0, w, k, alpha, a, b, part, w, j0));
            }
            block(simd, 0, m, j0_first, w_first, k, alpha, a, b, first, w_first, j0_first);
        });
        for (&(j0, w), part) in ranges.iter().zip(&parts) {
            for i in 0..m {
                for (cv, &pv) in c[i * ldc + j0..i * ldc + j0 + w].iter_mut().zip(&part[i * w..(i + 1) * w]) {
                    *cv += pv;
                }
            }
        }
    }
}

fn scale_rows<T: Kernel>(c: &mut [T], m: usize, n: usize, ldc: usize, beta: T) {
    if beta == T::ONE {
        return;
    }
    for i in 0..m {
        let row = &mut c[i * ldc..i * ldc + n];
        if beta == T::ZERO {
            row.fill(T::ZERO);
        } else {
            row.iter_mut().for_each(|v| *v *= beta);
        }
    }
}

/// The five loops for `C[i0..i0+m, j0..j0+n] += alpha * A[i0.., :] @ B[:, j0..]`.
#[allow(clippy::too_many_arguments)]
fn block<T: Kernel + Default>(
    simd: Simd,
    i0: usize,
    m: usize,
    j0: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [T],
    ldc: usize,
    c_col0: usize,
) {
    // `c` begins at C's row i0 and column c_col0 (a row band of C, or a thread's private column buffer).
    let (mr, nr) = microkernel::tile::<T>(simd);
    let mut bpack: Vec<T> = Vec::new();
    let mut apack: Vec<T> = Vec::new();
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack::pack_b(&mut bpack, b, pc, kc, j0 + jc, nc, nr);
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack::pack_a(&mut apack, a, i0 + ic, mc, pc, kc, mr);
                for (pj, jr) in (0..nc).step_by(nr).enumerate() {
                    let nr_eff = nr.min(nc - jr);
                    let bp = &bpack[pj * kc * nr..(pj + 1) * kc * nr];
                    for (pi, ir) in (0..mc).step_by(mr).enumerate() {
                        let mr_eff = mr.min(mc - ir);
                        let ap = &apack[pi * kc * mr..(pi + 1) * kc * mr];
                        let off = (ic + ir) * ldc + j0 - c_col0 + jc + jr;
                        T::run(simd, kc, alpha, ap, bp, &mut c[off..], ldc, mr_eff, nr_eff);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs]).sum();
            }
        }
        c
    }

    fn data(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f64 / (1u64 << 31) as f64) - 0.5
            })
            .collect()
    }

    #[test]
    fn every_path_size_and_transpose_matches_naive() {
        let sizes = [1usize, 2, 7, 16, 17, 33, 65, 130, 257];
        for simd in [Simd::Scalar, Simd::Avx2, Simd::Avx512] {
            if simd as u8 > dispatch::best() as u8 {
                eprintln!("gemm test: this CPU lacks {}; that path is not exercised here", simd.name());
                continue;
            }
            for (si, &m) in sizes.iter().enumerate() {
                let n = sizes[(si + 3) % sizes.len()];
                let k = sizes[(si + 5) % sizes.len()] + 255; // crosses the KC boundary
                for threads in [1, 3] {
                    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                        let av = data(m * k, 1);
                        let bv = data(k * n, 2);
                        let a =
                            if ta { MatRef { data: &av, rs: 1, cs: m } } else { MatRef { data: &av, rs: k, cs: 1 } };
                        let b =
                            if tb { MatRef { data: &bv, rs: 1, cs: k } } else { MatRef { data: &bv, rs: n, cs: 1 } };
                        let want = naive(m, n, k, a, b);
                        // f64 path, beta = 0 over NaN garbage
                        let mut c = vec![f64::NAN; m * n];
                        gemm_with(simd, threads, m, n, k, 1.0, a, b, 0.0, &mut c, n);
                        for (x, y) in c.iter().zip(&want) {
                            assert!((x - y).abs() < 1e-9, "f64 {simd:?} {m}x{n}x{k} t={threads} {ta}{tb}");
                        }
                        // f32 path with alpha and beta
                        let a32: Vec<f32> = av.iter().map(|&x| x as f32).collect();
                        let b32: Vec<f32> = bv.iter().map(|&x| x as f32).collect();
                        let a = MatRef { data: &a32[..], rs: a.rs, cs: a.cs };
                        let b = MatRef { data: &b32[..], rs: b.rs, cs: b.cs };
                        let mut c = vec![1.0f32; m * n];
                        gemm_with(simd, threads, m, n, k, 2.0, a, b, 0.5, &mut c, n);
                        for (x, y) in c.iter().zip(&want) {
                            let y = 2.0 * y + 0.5;
                            assert!((*x as f64 - y).abs() < 1e-4 * (k as f64).sqrt(), "f32 {simd:?} {m}x{n}x{k}");
                        }
                    }
                }
            }
        }
    }
}
