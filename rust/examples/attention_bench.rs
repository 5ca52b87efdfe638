//! Time of the engine's fused attention kernels alone (no Python, no autograd), for profiling them.
//!
//! `cargo run --release --example attention_bench [threads] [B NH T HS causal(0|1) seconds dropout%]`: forward and
//! backward repeated for that long (default B4 NH12 T1024 HS64 causal, 5 s), printing the median and best time of
//! each and the GFLOP/s of the products (2 in the forward, 5 in the backward, over the causal half when causal).
//! Run it under `perf record -e cpu-clock` to see where the time goes. With one thread it also prints the time
//! the thread was on a CPU (`/proc/thread-self/schedstat`, which moves by scheduler ticks of a few ms), which
//! other processes on a shared machine disturb far less than the wall time.

use bigcore::kernels::attention::{
    attention_backward, attention_forward, AttentionSpec, Dims, Dropout, Layout, Mask, QkvGrads,
};
use std::time::Instant;

/// Nanoseconds this thread has run on a CPU (0 where /proc does not say).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| args.get(i).map_or(default, |s| s.parse().expect("a number"));
    let threads = arg(0, 2);
    bigcore::parallel::set_num_threads(threads).expect("threads");
    let (b, nh, t, hs) = (arg(1, 4), arg(2, 12), arg(3, 1024), arg(4, 64));
    let causal = arg(5, 1) == 1;
    let secs = arg(6, 5) as f64;
    let dropout = (arg(7, 0) > 0).then(|| Dropout { p: arg(7, 0) as f64 / 100.0, seed: 1 });
    let d = Dims { b, nh, t, s: t, hs, hv: hs };
    let n = b * nh * t * hs;
    let fill = |k: usize| (0..n).map(|i| ((i * k) % 97) as f32 / 97.0 - 0.5).collect::<Vec<f32>>();
    let (q, k, v, g) = (fill(7), fill(11), fill(13), fill(17));
    let l = Layout::bhtd(nh, t, hs);
    let spec = AttentionSpec {
        dims: d,
        q: l,
        k: l,
        v: l,
        out: l,
        causal,
        mask: Mask::None,
        scale: 1.0 / (hs as f64).sqrt(),
        dropout,
    };
    let (mut out, mut lse) = (vec![0f32; n], vec![0f32; b * nh * t]);
    let (mut dq, mut dk, mut dv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    let (mut fwd, mut bwd, mut fwd_cpu, mut bwd_cpu) = (vec![], vec![], vec![], vec![]);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs || fwd.len() < 3 {
        let (t0, c0) = (Instant::now(), cpu_ns());
        attention_forward(&mut out, &mut lse, &q, &k, &v, &spec).expect("forward");
        let (t1, c1) = (Instant::now(), cpu_ns());
        let grads = QkvGrads::Separate(&mut dq, &mut dk, &mut dv);
        attention_backward(grads, &g, &q, &k, &v, &out, &lse, &spec).expect("backward");
        fwd.push((t1 - t0).as_secs_f64());
        bwd.push(t1.elapsed().as_secs_f64());
        fwd_cpu.push((c1 - c0) as f64 * 1e-9);
        bwd_cpu.push((cpu_ns() - c1) as f64 * 1e-9);
    }
    // one product over the (causal half of the) T x T scores: 2 * T * T * HS flops per head
    let product = 2.0 * (b * nh * t * t * hs) as f64 * if causal { 0.5 } else { 1.0 } / 1e9;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0])
    };
    for (name, times, cpu, products) in
        [("forward", &mut fwd, &mut fwd_cpu, 2.0), ("backward", &mut bwd, &mut bwd_cpu, 5.0)]
    {
        let ((med, best), (cpu_med, cpu_best)) = (median(times), median(cpu));
        let cpu = if threads == 1 {
            format!(
                "; this thread on a CPU: median {:8.2} ms, best {:8.2} ms, {:6.1} GFLOP/s (best)",
                cpu_med * 1e3,
                cpu_best * 1e3,
                products * product / cpu_best
            )
        } else {
            String::new()
        };
        println!(
            "{name:9} B{b} NH{nh} T{t} HS{hs} causal={causal}: median {:8.2} ms, best {:8.2} ms, {:6.1} GFLOP/s \
             (median){cpu}",
            med * 1e3,
            best * 1e3,
            products * product / med,
        );
    }
}
