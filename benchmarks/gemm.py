"""Matrix-product throughput: bigcore vs numpy (OpenBLAS), and PyTorch when installed, on the same float32 inputs
in one process, interleaved. Prints GFLOP/s (median of all timed calls) and the ratio to each peer. Rows marked
x@W^T are `linear`'s forward (W stored out x in, as nn.Linear keeps it) against numpy's `a @ w.T`.

    python benchmarks/gemm.py [--threads 1,2] [--rounds 5] [--quick]

Each shape runs `rounds` rounds; a round times a block of calls of each contender in turn, each block after a
short pause. Blocks (not single calls) alternate because every library's workers spin for a while after a call
and would steal the next contender's cores on a 2-core machine; rounds spread the machine's noise over everyone.
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
# linear's forward, x @ W^T with W stored (N, K) as nn.Linear keeps it: (M, N, K)
LINEAR = [(1, 3072, 768), (16, 3072, 768), (256, 2304, 768), (256, 3072, 768), (256, 768, 3072)]
QUICK = [(256, 256, 256), (1024, 1024, 1024), (256, 2304, 768), (768, 3072, 256), (127, 253, 509)]


def timed_block(fn, calls, times):
    time.sleep(0.3)  # let the previous contender's spinning workers go idle (OpenBLAS's spin ~0.1 s)
    fn()  # warm up (packing buffers, thread pool)
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="a shorter list of shapes")
    args = ap.parse_args()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    rng = np.random.default_rng(0)
    print(f"simd={bigcore.simd_level()}  torch={'yes' if torch else 'no'}  (GFLOP/s, median over {args.rounds} rounds)")
    for threads in [int(t) for t in args.threads.split(",")]:
        bigcore.set_num_threads(threads)
        if torch:
            torch.set_num_threads(threads)
        limit = threadpool_limits(threads) if threadpool_limits else None
        print(f"\nthreads={threads}" + ("" if limit else "  (threadpoolctl missing: numpy uses its default threads)"))
        print(f"{'M x N x K':>20} {'bigcore':>9} {'numpy':>9} {'ratio':>7}" + (f" {'torch':>9} {'ratio':>7}" if torch else ""))
        cases = [(s, False) for s in (QUICK if args.quick else SHAPES)]
        cases += [] if args.quick else [(s, True) for s in LINEAR]
        for (m, n, k), linear in cases:
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((n, k) if linear else (k, n), dtype=np.float32)
            ta, tb = bigcore.tensor(a), bigcore.tensor(b)
            flop = 2.0 * m * n * k / 1e9
            calls = max(3, int(0.1 / (flop / 100)))  # about 0.1 s a block at 100 GFLOP/s
            if linear:
                contenders = {"bigcore": lambda: bigcore.nn.functional.linear(ta, tb), "numpy": lambda: a @ b.T}
            else:
                contenders = {"bigcore": lambda: ta @ tb, "numpy": lambda: a @ b}
            if torch:
                pa, pb = torch.from_numpy(a), torch.from_numpy(b)
                contenders["torch"] = (lambda: torch.nn.functional.linear(pa, pb)) if linear else (lambda: pa @ pb)
            times = {name: [] for name in contenders}
            for _ in range(args.rounds):
                for name, fn in contenders.items():
                    timed_block(fn, calls, times[name])
            g = {name: flop / statistics.median(t) for name, t in times.items()}
            name = f"{m}x{n}x{k}" + (" x@W^T" if linear else "")
            line = f"{name:>20} {g['bigcore']:9.1f} {g['numpy']:9.1f} {g['bigcore'] / g['numpy']:7.2f}"
            if torch:
                line += f" {g['torch']:9.1f} {g['bigcore'] / g['torch']:7.2f}"
            print(line, flush=True)
        if limit:
            limit.unregister()


if __name__ == "__main__":
    main()
