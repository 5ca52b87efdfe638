"""Scaled-dot-product attention, forward + backward, float32: bigcore's fused kernel (``F.scaled_dot_product_attention``)
against PyTorch's (when installed), bigcore composed from its own ops (``q @ k^T``, ``masked_fill``, ``softmax``,
``@ v``: what it ran before the fused kernel) and the same composition in numpy (forward and hand-written backward),
in one process, interleaved, at the issue's shapes: B4 NH12 T1024 HS64 causal, and the GPT "baby" (B12 NH4 T64
HS32 causal). Prints the median milliseconds of each and its ratio to the fused kernel (above 1: slower than it).

    python benchmarks/attention.py [--rounds 5] [--threads 2] [--shapes big,baby] [--forward] [--no-composed]

Each round times a block of calls of each contender in turn, each block after a pause and one untimed call: every
library's workers spin for a while after a call (PyTorch's OpenMP threads, OpenBLAS's, bigcore's pool for 1 ms)
and would steal the next contender's cores on a 2-core machine. Medians are over all timed calls of all rounds.

PyTorch is not a dependency. To take it from another environment, name that environment's site-packages in
``TORCH_SITE_PACKAGES``: it is appended to ``sys.path`` after this one's, so this environment's bigcore and numpy
still win (``PYTHONPATH`` would put the other environment first, and with it any bigcore installed there).
"""

import argparse
import contextlib
import math
import os
import statistics
import sys
import time

import numpy as np

import bigcore
import bigcore.nn.functional as F

if os.environ.get("TORCH_SITE_PACKAGES"):
    sys.path.append(os.environ["TORCH_SITE_PACKAGES"])
try:
    import torch
except ImportError:
    torch = None

try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

SHAPES = {"big": (4, 12, 1024, 64), "baby": (12, 4, 64, 32)}


# Each contender is set up once per shape (its input tensors made from the numpy arrays, outside the timing: numpy
# to bigcore is a copy, to PyTorch a view) and returns the timed call: clear the input gradients, forward,
# backward with the given output gradient.

def fused(q, k, v, g):
    ts, gt = [bigcore.tensor(a, requires_grad=True) for a in (q, k, v)], bigcore.tensor(g)

    def run(backward):
        for t in ts:
            t.grad = None
        out = F.scaled_dot_product_attention(*ts, is_causal=True)
        if backward:
            out.backward(gt)
    return run


def composed(q, k, v, g):
    ts, gt = [bigcore.tensor(a, requires_grad=True) for a in (q, k, v)], bigcore.tensor(g)
    t = q.shape[-2]
    causal = bigcore.ones(t, t, dtype=bigcore.bool).tril()

    def run(backward):
        qt, kt, vt = ts
        for x in ts:
            x.grad = None
        w = ((qt @ kt.mT) * (1 / math.sqrt(q.shape[-1]))).masked_fill(~causal, float("-inf")).softmax(-1)
        out = w @ vt
        if backward:
            out.backward(gt)
    return run


def numpy_attention(q, k, v, g):
    t = q.shape[-2]
    causal = np.tril(np.ones((t, t), bool))
    scale = np.float32(1 / math.sqrt(q.shape[-1]))

    def run(backward):
        s = np.where(causal, (q @ np.swapaxes(k, -1, -2)) * scale, np.float32(-np.inf))
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        out = p @ v
        if not backward:
            return out
        dv = np.swapaxes(p, -1, -2) @ g
        dp = g @ np.swapaxes(v, -1, -2)
        ds = p * (dp - (dp * p).sum(-1, keepdims=True)) * scale
        return out, ds @ k, np.swapaxes(ds, -1, -2) @ q, dv
    return run


def torch_attention(q, k, v, g):
    ts, gt = [torch.from_numpy(a).requires_grad_() for a in (q, k, v)], torch.from_numpy(g)

    def run(backward):
        for t in ts:
            t.grad = None
        out = torch.nn.functional.scaled_dot_product_attention(*ts, is_causal=True)
        if backward:
            out.backward(gt)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes", default="big,baby")
    ap.add_argument("--forward", action="store_true", help="forward only")
    ap.add_argument("--no-composed", action="store_true", help="skip the composed bigcore and numpy contenders")
    args = ap.parse_args()
    bigcore.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    contenders = {"bigcore fused": fused}
    if not args.no_composed:
        contenders.update({"bigcore composed": composed, "numpy composed": numpy_attention})
    if torch is not None:
        contenders["pytorch " + torch.__version__.split("+")[0]] = torch_attention
    limits = threadpool_limits(args.threads) if threadpool_limits else contextlib.nullcontext()
    with limits:
        run(args, contenders)


def timed_block(fn, calls, times):
    time.sleep(0.3)  # let the previous contender's spinning workers go idle
    fn()  # warm up: first-touch pages, lazy initialization
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)


def run(args, contenders):
    what = "forward" if args.forward else "forward+backward"
    print(f"{what}, float32, causal, {args.threads} threads, bigcore SIMD {bigcore.simd_level()}, "
          f"medians over {args.rounds} rounds (ms); ratio = time / bigcore fused")
    for name in args.shapes.split(","):
        b, nh, t, hs = SHAPES[name]
        rng = np.random.default_rng(0)
        q, k, v, g = (rng.standard_normal((b, nh, t, hs)).astype(np.float32) for _ in range(4))
        times = {c: [] for c in contenders}
        runs = {c: setup(q, k, v, g) for c, setup in contenders.items()}
        calls = 2 if t >= 512 else 40
        for _ in range(args.rounds):
            for c, run_one in runs.items():
                timed_block(lambda: run_one(not args.forward), calls, times[c])
        base = statistics.median(times["bigcore fused"])
        print(f"B{b} NH{nh} T{t} HS{hs}:")
        for c in contenders:
            med = statistics.median(times[c])
            print(f"  {c:18} {med * 1e3:9.2f} ms   ratio {med / base:5.2f}")


if __name__ == "__main__":
    main()
