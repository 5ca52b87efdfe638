//! The GEMM against a naive float64 product: awkward sizes, every transpose, strided and sliced operands, alpha,
//! beta and the bias epilogue, every SIMD path this CPU has, and 1..4 threads (whose results must be identical: a thread count
//! changes which thread computes a tile, never the order of the sums inside it); B packed once and reused
//! (`PackedB`), plain and in column groups.

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

fn paths() -> Vec<Simd> {
    let all = [Simd::Scalar, Simd::Avx2, Simd::Avx512];
    for s in all.iter().filter(|s| !s.supported()) {
        eprintln!("gemm tests: this CPU lacks {}; that path is not exercised here", s.name());
    }
    if crate::simd::avx512_emulated() && Simd::Avx512.supported() {
        eprintln!("gemm tests: this CPU lacks avx512; its 6 x 32 tile runs emulated on AVX2 vector pairs");
    }
    all.into_iter().filter(|s| s.supported()).collect()
}

/// Operand `rows x cols` stored transposed or not, inside a larger buffer (offset, padded leading dimension, and
/// for one layout a column stride of 2) so strided and sliced inputs are covered.
fn operand(rows: usize, cols: usize, trans: bool, strided: bool, seed: u64) -> (Vec<f64>, usize, usize, usize) {
    let off = if strided { 3 } else { 0 };
    let (rs, cs) = match (trans, strided) {
        (false, false) => (cols, 1),
        (true, false) => (1, rows),
        (false, true) => (2 * cols + 5, 2),
        (true, true) => (1, rows + 7),
    };
    let len = off + (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs + 1;
    (data(len, seed), off, rs, cs)
}

const SIZES: [usize; 15] = [1, 2, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 257, 1000];

fn check(simd: Simd, m: usize, n: usize, k: usize, ta: bool, tb: bool, strided: bool) {
    let (av, aoff, ars, acs) = operand(m, k, ta, strided, 1 + m as u64);
    let (bv, boff, brs, bcs) = operand(k, n, tb, !strided, 2 + n as u64);
    let a = MatRef { data: &av[aoff..], rs: ars, cs: acs };
    let b = MatRef { data: &bv[boff..], rs: brs, cs: bcs };
    let want = naive(m, n, k, a, b);
    let ldc = n + 3;
    let tag = format!("{simd:?} {m}x{n}x{k} ta={ta} tb={tb} strided={strided}");

    // f64, beta = 0 over NaN garbage, C with padded rows whose padding must stay untouched
    let mut c = vec![f64::NAN; m * ldc];
    gemm_with(simd, 2, m, n, k, 1.0, a, b, 0.0, &mut c, ldc);
    for i in 0..m {
        for j in 0..ldc {
            let x = c[i * ldc + j];
            if j < n {
                assert!((x - want[i * n + j]).abs() < 1e-12 * (k as f64).sqrt().max(1.0), "f64 {tag}");
            } else {
                assert!(x.is_nan(), "f64 {tag}: padding column {j} was written");
            }
        }
    }

    // f32 with alpha and beta, at 1..4 threads: all identical, and within f32 rounding of the f64 product
    let a32: Vec<f32> = av.iter().map(|&x| x as f32).collect();
    let b32: Vec<f32> = bv.iter().map(|&x| x as f32).collect();
    let a = MatRef { data: &a32[aoff..], rs: ars, cs: acs };
    let b = MatRef { data: &b32[boff..], rs: brs, cs: bcs };
    let mut first: Option<Vec<f32>> = None;
    for threads in 1..=4 {
        let mut c: Vec<f32> = (0..m * ldc).map(|i| (i % 5) as f32).collect();
        gemm_with(simd, threads, m, n, k, 2.0f32, a, b, 0.5, &mut c, ldc);
        for i in 0..m {
            for j in 0..ldc {
                let old = ((i * ldc + j) % 5) as f64;
                let x = c[i * ldc + j] as f64;
                if j < n {
                    let y = 2.0 * want[i * n + j] + 0.5 * old;
                    assert!((x - y).abs() < 2e-6 * (k as f64).sqrt() + 1e-6 * old, "f32 {tag} threads={threads}");
                } else {
                    assert_eq!(x, old, "f32 {tag}: padding column {j} was written");
                }
            }
        }
        match &first {
            None => first = Some(c),
            Some(f) => assert!(f == &c, "f32 {tag}: {threads} threads differ from 1 thread"),
        }
    }

    // the bias epilogue (added once, after the last block of k), over garbage C with beta = 0
    let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.25 - 1.0).collect();
    let mut c = vec![f32::NAN; m * ldc];
    gemm_bias_with(simd, 3, m, n, k, 1.0f32, a, b, 0.0, Some(&bias), &mut c, ldc);
    for i in 0..m {
        for j in 0..n {
            let y = want[i * n + j] + bias[j] as f64;
            assert!((c[i * ldc + j] as f64 - y).abs() < 2e-6 * (k as f64).sqrt() + 1e-6, "bias {tag}");
        }
    }
}

#[test]
fn awkward_sizes_every_path_and_layout() {
    for simd in paths() {
        for (si, &m) in SIZES.iter().enumerate() {
            // rotate n and k through the list so every size appears in every role; keep the naive product small
            let n = SIZES[(si + 4) % SIZES.len()];
            let k = SIZES[(si + 9) % SIZES.len()];
            let (n, k) = if m * n * k > 40_000_000 { (n.min(129), k) } else { (n, k) };
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                check(simd, m, n, k, ta, tb, (m + n) % 2 == 0);
            }
        }
        check(simd, 1000, 33, 257, false, true, true);
        check(simd, 17, 1000, 300, true, false, false);
        // one-row products: the unpacked path (B with a unit stride; A strided, so copied) split over threads,
        // and the blocked fallback when B has none
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            check(simd, 1, 1000, 300, ta, tb, true);
            check(simd, 1, 65, 33, ta, tb, false);
        }
    }
}

#[test]
fn alpha_zero_and_empty_k_only_scale_c() {
    let a = [1.0f32; 6];
    let b = [1.0f32; 6];
    for (alpha, k) in [(0.0f32, 3), (1.0, 0)] {
        let mut c = vec![2.0f32, f32::NAN, 4.0, 5.0];
        let ar = MatRef { data: &a[..], rs: 3, cs: 1 };
        let br = MatRef { data: &b[..], rs: 2, cs: 1 };
        gemm_with(Simd::Scalar, 1, 2, 2, k, alpha, ar, br, 0.5, &mut c, 2);
        assert_eq!(c[0], 1.0);
        assert!(c[1].is_nan());
        assert_eq!(&c[2..], &[2.0, 2.5]);
        gemm_with(Simd::Scalar, 1, 2, 2, k, alpha, ar, br, 0.0, &mut c, 2);
        assert_eq!(c, vec![0.0; 4], "beta = 0 clears C, NaNs included");
        gemm_bias_with(Simd::Scalar, 1, 2, 2, k, alpha, ar, br, 0.0, Some(&[1.0, 2.0]), &mut c, 2);
        assert_eq!(c, vec![1.0, 2.0, 1.0, 2.0], "the bias is added even without a product");
    }
}

#[test]
#[should_panic(expected = "too short")]
fn short_c_is_refused() {
    let a = [1.0f32; 4];
    let mut c = [0.0f32; 3];
    gemm(2, 2, 2, 1.0, MatRef { data: &a[..], rs: 2, cs: 1 }, MatRef { data: &a[..], rs: 2, cs: 1 }, 0.0, &mut c, 2);
}

#[test]
#[should_panic(expected = "too short")]
fn short_operand_is_refused() {
    let a = [1.0f32; 3];
    let mut c = [0.0f32; 4];
    gemm(2, 2, 2, 1.0, MatRef { data: &a[..], rs: 2, cs: 1 }, MatRef { data: &a[..], rs: 2, cs: 1 }, 0.0, &mut c, 2);
}

#[test]
fn grid_splits_the_wide_dimension_and_small_products_stay_serial() {
    let s = Simd::Avx2;
    assert_eq!(grid::<f32>(s, 2, 256, 2304, 768), (1, 2));
    assert_eq!(grid::<f32>(s, 2, 3072, 768, 256), (2, 1));
    assert_eq!(grid::<f32>(s, 16, 1024, 1024, 1024), (4, 4));
    assert_eq!(grid::<f32>(s, 4, 8, 8, 8), (1, 1));
    assert_eq!(grid::<f32>(s, 8, 6, 4096, 512).0, 1);
}

/// Packed once, used for several A: every product within rounding of the f64 one and, for two rows or more,
/// bit-identical to `gemm` on the same level (the same panels through the same kernel), at 1..4 threads.
#[test]
fn packed_b_reused_across_products_matches_gemm() {
    for simd in paths() {
        for &(m, n, k) in &[(1, 1, 1), (2, 7, 3), (7, 33, 17), (64, 1024, 256), (13, 257, 300), (33, 65, 513)] {
            let bv = data(k * n, 7 + n as u64);
            let b64 = MatRef { data: &bv[..], rs: 1, cs: k }; // B = W^T, W (n, k) row-major: the LSTM's layout
            let b32v: Vec<f32> = bv.iter().map(|&x| x as f32).collect();
            let b32 = MatRef { data: &b32v[..], rs: 1, cs: k };
            let packed = PackedB::new(simd, k, n, b32);
            for round in 0..3u64 {
                let av = data(m * k, 100 * round + m as u64);
                let a64 = MatRef { data: &av[..], rs: k, cs: 1 };
                let want = naive(m, n, k, a64, b64);
                let a32v: Vec<f32> = av.iter().map(|&x| x as f32).collect();
                let a32 = MatRef { data: &a32v[..], rs: k, cs: 1 };
                let init: Vec<f32> = (0..m * n).map(|i| (i % 3) as f32).collect();
                let mut plain = init.clone();
                gemm_with(simd, 2, m, n, k, 1.0, a32, b32, 0.5, &mut plain, n);
                for threads in 1..=4 {
                    let mut c = init.clone();
                    gemm_packed_with(threads, m, 1.0, a32, &packed, 0.5, &mut c, n);
                    let tag = format!("{simd:?} {m}x{n}x{k} round {round} threads {threads}");
                    for (idx, (&x, &w)) in c.iter().zip(&want).enumerate() {
                        let y = w + 0.5 * (idx % 3) as f64;
                        assert!((x as f64 - y).abs() < 2e-6 * (k as f64).sqrt() + 1e-6, "{tag}: {x} vs {y}");
                    }
                    if m >= 2 {
                        assert!(c == plain, "{tag}: packed product differs from gemm");
                    }
                }
            }
        }
    }
}

/// Column groups: each group's columns computed by one call land where a product with that group alone would
/// put them, for column ranges at every panel boundary, in f64 too.
#[test]
fn grouped_tiles_write_each_group_in_place() {
    for simd in paths() {
        let (m, g, groups, k) = (9, 37, 4, 29);
        let n = g * groups;
        let bv = data(k * n, 3);
        let b = MatRef { data: &bv[..], rs: 1, cs: k };
        let av = data(m * k, 4);
        let a = MatRef { data: &av[..], rs: k, cs: 1 };
        let want = naive(m, n, k, a, b);
        let packed = PackedB::grouped(simd, k, n, groups, b);
        let nr = packed.nr();
        let mut c = vec![f64::NAN; m * n];
        // rows in two blocks, columns in panel-aligned blocks: every group's block written by one call
        for (i0, i1) in [(0, 4), (4, m)] {
            let mut j0 = 0;
            while j0 < g {
                let j1 = (j0 + nr).min(g);
                // SAFETY: the block is inside `c` and nothing else touches it during the call.
                unsafe { gemm_packed_tile(i0, i1 - i0, j0, j1 - j0, 1.0, a, &packed, 0.0, c.as_mut_ptr(), n) };
                j0 = j1;
            }
        }
        for (x, w) in c.iter().zip(&want) {
            assert!((x - w).abs() < 1e-12, "{simd:?}: {x} vs {w}");
        }
    }
}
