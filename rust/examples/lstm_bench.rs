//! Milliseconds of the engine's LSTM layer kernel alone (no Python, no autograd), forward and backward timed
//! apart, for profiling.
//!
//! `cargo run --release --example lstm_bench [threads] [BxTxIxH] [seconds]` (default 2 threads, B64 T128 I256
//! H256, 3 s): repeats forward + backward for that long and prints the median and best of each, with the GFLOP/s
//! of their products (forward 2 T B 4H (I + H): the input projections and the recurrent ones; backward twice that:
//! dW_ih, dx, dW_hh and the recurrent dh).
//! Run it under `perf record -e cpu-clock` to see where the time goes.

use bigcore::kernels::gemm::active_simd;
use bigcore::kernels::lstm::{lstm_backward, lstm_forward, Ctx, Dims, Direction, Grads, Saved};
use std::time::Instant;

fn values(n: usize, seed: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|k| (((k * 2654435761 + seed * 97) % 1000) as f32 / 1000.0 - 0.5) * scale).collect()
}

fn median_best(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0])
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(2);
    let shape = args.get(1).map_or("64x128x256x256", String::as_str);
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let dims: Vec<usize> = shape.split('x').map(|s| s.parse().expect("shape as BxTxIxH")).collect();
    let (b, t, i, h) = (dims[0], dims[1], dims[2], dims[3]);
    bigcore::parallel::set_num_threads(threads).unwrap();
    let d = Dims { t, b, i, h, direction: Direction::Forward };
    let ctx = Ctx::current();
    let w = 1.0 / (h as f32).sqrt();
    let (x, h0, c0) = (values(t * b * i, 1, 2.0), values(b * h, 2, 1.0), values(b * h, 3, 1.0));
    let (w_ih, w_hh, bias) = (values(4 * h * i, 4, 2.0 * w), values(4 * h * h, 5, 2.0 * w), values(4 * h, 6, 2.0 * w));
    let dout = values((t + 2) * b * h, 7, 2.0);
    let (gl, cl) = Saved::<f32>::lens(d);
    let mut saved = Saved { gates: vec![0f32; gl], c: vec![0f32; cl] };
    let mut out = vec![0f32; (t + 2) * b * h];
    let mut dz = vec![0f32; gl];
    let mut g = [t * b * i, b * h, b * h, 4 * h * i, 4 * h * h, 4 * h].map(|n| vec![0f32; n]);
    let (mut fwd, mut bwd) = (vec![], vec![]);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs || fwd.is_empty() {
        let t0 = Instant::now();
        lstm_forward(ctx, &mut out, &mut saved, &x, &h0, &c0, &w_ih, &w_hh, Some(&bias), d);
        let t1 = Instant::now();
        let [dx, dh0, dc0, dwi, dwh, db] = &mut g;
        let grads =
            Grads { dx: Some(dx), dh0: Some(dh0), dc0: Some(dc0), dw_ih: Some(dwi), dw_hh: Some(dwh), db: Some(db) };
        lstm_backward(ctx, grads, &mut dz, &dout, &saved.gates, &saved.c, &out, &x, &h0, &w_ih, &w_hh, d);
        fwd.push((t1 - t0).as_secs_f64());
        bwd.push(t1.elapsed().as_secs_f64());
    }
    let flops_f = 2.0 * (t * b * 4 * h * (i + h)) as f64;
    let flops_b = 2.0 * flops_f;
    let ((fm, fb), (bm, bb)) = (median_best(fwd.clone()), median_best(bwd));
    println!(
        "B{b} T{t} I{i} H{h}, {threads} threads, {}, {} runs: forward median {:.1} ms (best {:.1}, {:.0} GFLOP/s), \
         backward median {:.1} ms (best {:.1}, {:.0} GFLOP/s)",
        active_simd().name(),
        fwd.len(),
        fm * 1e3,
        fb * 1e3,
        flops_f / fm / 1e9,
        bm * 1e3,
        bb * 1e3,
        flops_b / bm / 1e9
    );
}
