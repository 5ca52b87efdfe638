"""Matrix-product throughput: bigcore vs numpy (OpenBLAS), and PyTorch when installed, on the same float32 inputs
in one process, interleaved. Prints GFLOP/s (median of repeats) and the ratio to each peer.

    python benchmarks/gemm.py [--threads 1,2] [--repeats 7] [--quick]
"""

import argparse
import statistics
import time

import numpy as np

import bigcore

try:
    import torch
except ImportError:  # PyTorch is optional
    torch = None

SHAPES = [  # (M, N, K): C (M x N) = A (M x K) @ B (K x N)
    (256, 256, 256), (1024, 1024, 1024), (2048, 2048, 2048),
    (256, 2304, 768), (256, 768, 768), (256, 3072, 768), (256, 768, 3072),
    (768, 3072, 256), (3072, 768, 256), (256, 50304, 768), (127, 253, 509),
]
QUICK = [(256, 256, 256), (1024, 1024, 1024), (256, 2304, 768), (768, 3072, 256), (127, 253, 509)]


def median_time(fn, repeats):
    # OpenBLAS's workers spin for a while after each call; on 2 cores they would steal the next contender's
    # cores. Pausing first lets every contender start on an idle machine.
    time.sleep(0.2)
    fn()  # warm up (packing buffers, thread pool)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="a shorter list of shapes")
    args = ap.parse_args()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    rng = np.random.default_rng(0)
    print(f"simd={bigcore.simd_level()}  torch={'yes' if torch else 'no'}  (GFLOP/s, median of {args.repeats})")
    for threads in [int(t) for t in args.threads.split(",")]:
        bigcore.set_num_threads(threads)
        if torch:
            torch.set_num_threads(threads)
        limit = threadpool_limits(threads) if threadpool_limits else None
        print(f"\nthreads={threads}" + ("" if limit else "  (threadpoolctl missing: numpy uses its default threads)"))
        print(f"{'M x N x K':>20} {'bigcore':>9} {'numpy':>9} {'ratio':>7}" + (f" {'torch':>9} {'ratio':>7}" if torch else ""))
        for m, n, k in QUICK if args.quick else SHAPES:
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            ta, tb = bigcore.tensor(a), bigcore.tensor(b)
            flop = 2.0 * m * n * k / 1e9
            g_big = flop / median_time(lambda: ta @ tb, args.repeats)
            g_np = flop / median_time(lambda: a @ b, args.repeats)
            line = f"{f'{m}x{n}x{k}':>20} {g_big:9.1f} {g_np:9.1f} {g_big / g_np:7.2f}"
            if torch:
                pa, pb = torch.from_numpy(a), torch.from_numpy(b)
                g_t = flop / median_time(lambda: pa @ pb, args.repeats)
                line += f" {g_t:9.1f} {g_big / g_t:7.2f}"
            print(line, flush=True)
        if limit:
            limit.unregister()


if __name__ == "__main__":
    main()
