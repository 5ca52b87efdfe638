//! GFLOP/s of the engine's f32 GEMM alone (no Python), for profiling the kernel and its packing.
//!
//! `cargo run --release --example gemm_bench [threads]`: a fixed list of shapes, kernel and tensor `matmul`.
//! `cargo run --release --example gemm_bench threads MxNxK[t] seconds`: one shape, repeated for that long, printing
//! the median and best rate (a trailing `t` reads B transposed, as `linear` does); run it under
//! `perf record -e cpu-clock` to see where the time goes.

use bigcore::kernels::gemm::{active_simd, gemm_with, MatRef};
use std::time::Instant;

fn operands(m: usize, n: usize, k: usize) -> (Vec<f32>, Vec<f32>) {
    ((0..m * k).map(|i| (i % 7) as f32 * 0.1).collect(), (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect())
}

#[allow(clippy::too_many_arguments)]
fn run(threads: usize, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], bt: bool) {
    let a = MatRef { data: a, rs: k, cs: 1 };
    let b = if bt { MatRef { data: b, rs: 1, cs: k } } else { MatRef { data: b, rs: n, cs: 1 } };
    gemm_with(active_simd(), threads, m, n, k, 1.0, a, b, 0.0, c, n)
}

fn gflops(m: usize, n: usize, k: usize, secs: f64) -> f64 {
    2.0 * (m * n * k) as f64 / secs / 1e9
}

fn one_shape(threads: usize, shape: &str, secs: f64) {
    let bt = shape.ends_with('t');
    let dims: Vec<usize> =
        shape.trim_end_matches('t').split('x').map(|s| s.parse().expect("shape as MxNxK[t]")).collect();
    let (m, n, k) = (dims[0], dims[1], dims[2]);
    let (a, b) = operands(m, n, k);
    let mut c = vec![0f32; m * n];
    let start = Instant::now();
    let mut times = vec![];
    while start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        run(threads, m, n, k, &a, &b, &mut c, bt);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let (med, best) = (times[times.len() / 2], times[0]);
    println!(
        "{shape}: {} calls, median {:.1} GFLOP/s, best {:.1} ({threads} threads, {})",
        times.len(),
        gflops(m, n, k, med),
        gflops(m, n, k, best),
        active_simd().name()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(1);
    bigcore::parallel::set_num_threads(threads).unwrap();
    if let Some(shape) = args.get(1) {
        one_shape(threads, shape, args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3.0));
        return;
    }
    for &(m, n, k) in &[(256, 256, 256), (1024, 1024, 1024), (256, 2304, 768), (768, 3072, 256), (127, 253, 509)] {
        let (a, b) = operands(m, n, k);
        let mut c = vec![0f32; m * n];
        run(threads, m, n, k, &a, &b, &mut c, false);
        let reps = (2e9 / (2.0 * (m * n * k) as f64)).clamp(3.0, 200.0) as usize;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                run(threads, m, n, k, &a, &b, &mut c, false);
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
        println!(
            "{m:>5}x{n:>5}x{k:>5}  kernel {:7.1}  tensor matmul {:7.1} GFLOP/s  ({threads} threads, {})",
            gflops(m, n, k, best),
            gflops(m, n, k, best_t),
            active_simd().name()
        );
    }
}
