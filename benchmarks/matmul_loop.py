"""Back-to-back matrix products, as a training loop issues them: bigcore vs numpy (OpenBLAS), each timed over
a block of calls after the other has finished, GFLOP/s median of 7 blocks and the ratio. Complements gemm.py,
which times single calls after an idle pause (cold thread pools).

    python benchmarks/matmul_loop.py [--threads 2] [--sizes 256,1024]
"""

import argparse
import statistics
import time

import numpy as np

import bigcore


def blocks(fn, calls, n_blocks=7):
    fn()
    out = []
    for _ in range(n_blocks):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - t) / calls)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="256,1024")
    args = ap.parse_args()
    bigcore.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(args.threads)
    except ImportError:
        limit = None
    rng = np.random.default_rng(0)
    print(f"threads={args.threads} simd={bigcore.simd_level()} (GFLOP/s, median of 7 blocks of calls)")
    for n in (int(s) for s in args.sizes.split(",")):
        a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
        ta, tb = bigcore.tensor(a), bigcore.tensor(b)
        calls = max(3, int(2e9 / (2 * n**3)))
        g_big = 2 * n**3 / blocks(lambda: ta @ tb, calls) / 1e9
        time.sleep(0.2)  # OpenBLAS workers spin after their calls: let them park before the next contender
        g_np = 2 * n**3 / blocks(lambda: a @ b, calls) / 1e9
        time.sleep(0.2)
        print(f"{n:>6}^3  bigcore {g_big:7.1f}  numpy {g_np:7.1f}  ratio {g_big / g_np:5.2f}", flush=True)
    if limit:
        limit.unregister()


if __name__ == "__main__":
    main()
