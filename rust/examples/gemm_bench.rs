//! GFLOP/s of the engine's f32 GEMM alone (no Python), for profiling the kernel and its packing:
//! `cargo run --release --example gemm_bench [threads]`.

use bigcore::kernels::gemm::{active_simd, gemm_with, MatRef};
use std::time::Instant;

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    bigcore::parallel::set_num_threads(threads).unwrap();
    for &(m, n, k) in &[(256, 256, 256), (1024, 1024, 1024), (256, 2304, 768), (768, 3072, 256), (127, 253, 509)] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let run = |c: &mut [f32]| {
            gemm_with(
                active_simd(),
                threads,
                m,
                n,
                k,
                1.0,
                MatRef { data: &a, rs: k, cs: 1 },
                MatRef { data: &b, rs: n, cs: 1 },
                0.0,
                c,
                n,
            )
        };
        run(&mut c);
        let reps = (2e9 / (2.0 * (m * n * k) as f64)).clamp(3.0, 200.0) as usize;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                run(&mut c);
            }
            best = best.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        let ta = bigcore::Tensor::from_vec(a.clone(), &[m, k]).unwrap();
        let tb = bigcore::Tensor::from_vec(b.clone(), &[k, n]).unwrap();
        let mut best_t = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(bigcore::ops::linalg::matmul(&ta, &tb).unwrap());
            }
            best_t = best_t.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        let gf = |s: f64| 2.0 * (m * n * k) as f64 / s / 1e9;
        println!(
            "{m:>5}x{n:>5}x{k:>5}  kernel {:7.1}  tensor matmul {:7.1} GFLOP/s  ({threads} threads, {})",
            gf(best),
            gf(best_t),
            active_simd().name()
        );
    }
}
