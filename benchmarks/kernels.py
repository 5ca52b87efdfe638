"""The kernels beyond GEMM at GPT shapes: bigcore vs numpy (float32, forward and backward written out by hand),
and PyTorch when installed, on the same inputs in one process, interleaved. Prints the median milliseconds of a
forward+backward (an optimizer step for AdamW) and each peer's time over bigcore's (above 1: bigcore is faster).

    python benchmarks/kernels.py [--threads 2] [--rounds 5] [--only softmax,adamw] [--full-adamw]

bigcore and PyTorch run autograd (a leaf that requires grad, the op, `backward` with a fixed upstream gradient,
the leaf's gradient cleared each call); numpy runs the same math as vectorized array expressions. The AdamW row
updates GPT-2's embedding (50304 x 768), one transformer block and the final layer norm: 46.3M parameters of the
124M, in their shapes (`--full-adamw` runs all 124M: about 2 GB of state per contender). Each round times a block
of calls of each contender in turn, after a short pause so the previous one's spinning workers go idle.
"""

import argparse
import math
import statistics
import time

import numpy as np

import bigcore
import bigcore.nn.functional as F

try:
    import torch
except ImportError:  # PyTorch is optional
    torch = None

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


# ---- numpy forward + backward, float32 ----

def np_softmax(x, g):
    y = np.exp(x - x.max(-1, keepdims=True))
    y /= y.sum(-1, keepdims=True)
    return y * (g - (g * y).sum(-1, keepdims=True))


def np_layer_norm(x, w, b, g, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    xc = x - mean
    rstd = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps)
    n = xc * rstd
    out = n * w + b  # noqa: F841 (the forward's output)
    dn = g * w
    dx = rstd * (dn - dn.mean(-1, keepdims=True) - n * (dn * n).mean(-1, keepdims=True))
    return dx, (g * n).sum(0), g.sum(0)


def np_gelu_tanh(x, g):
    t = np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))
    y = 0.5 * x * (1 + t)  # noqa: F841
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x))


def np_cross_entropy(x, y):
    m = x.max(-1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(-1, keepdims=True)
    lse = np.log(s) + m
    loss = (lse[:, 0] - x[np.arange(len(y)), y]).mean()  # noqa: F841
    d = e / s
    d[np.arange(len(y)), y] -= 1
    return d / len(y)


def np_embedding(w, ids, g):
    out = w[ids]  # noqa: F841
    dw = np.zeros_like(w)
    np.add.at(dw, ids, g)
    return dw


def np_adamw(params, grads, ms, vs, step, lr=6e-4, b1=0.9, b2=0.95, eps=1e-8, wd=0.1):
    bc1, bc2 = 1 - b1 ** step, math.sqrt(1 - b2 ** step)
    for p, g, m, v in zip(params, grads, ms, vs):
        p *= 1 - lr * wd
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        p -= (lr / bc1) * m / (np.sqrt(v) / bc2 + eps)


# ---- contenders ----

def autograd_case(lib, inputs, op, grad_of=None):
    """fwd+bwd of `op` on leaves made from the numpy `inputs` (those in `grad_of`, default all float ones)."""
    if lib == "bigcore":
        leaves = [bigcore.tensor(a, requires_grad=a.dtype == np.float32 and (grad_of is None or i in grad_of))
                  for i, a in enumerate(inputs)]
        wrap = bigcore.tensor
    else:
        leaves = [torch.from_numpy(a.copy()) for a in inputs]
        for i, t in enumerate(leaves):
            if t.dtype == torch.float32 and (grad_of is None or i in grad_of):
                t.requires_grad_()
        wrap = torch.from_numpy
    out = op(*leaves)
    g = wrap(np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(np.float32)) if out.ndim else None

    def run():
        for t in leaves:
            if t.requires_grad:
                t.grad = None
        y = op(*leaves)
        y.backward(g) if g is not None else y.backward()
    return run


def row_cases(rows, c):
    def build(args, rng):
        x, g = rng.standard_normal((rows, c), dtype=np.float32), rng.standard_normal((rows, c), dtype=np.float32)
        return {
            "bigcore": lambda: autograd_case("bigcore", [x], lambda t: F.softmax(t, -1)),
            "numpy": lambda: lambda: np_softmax(x, g),
            "torch": lambda: autograd_case("torch", [x], lambda t: torch.softmax(t, -1)),
        }

    def build_ln(args, rng):
        x, g = rng.standard_normal((rows, c), dtype=np.float32), rng.standard_normal((rows, c), dtype=np.float32)
        w, b = rng.standard_normal(c, dtype=np.float32), rng.standard_normal(c, dtype=np.float32)
        return {
            "bigcore": lambda: autograd_case("bigcore", [x, w, b], lambda t, w, b: F.layer_norm(t, (c,), w, b)),
            "numpy": lambda: lambda: np_layer_norm(x, w, b, g),
            "torch": lambda: autograd_case("torch", [x, w, b], lambda t, w, b: torch.nn.functional.layer_norm(t, (c,), w, b)),
        }
    return [(f"softmax {rows}x{c}", build), (f"layer_norm {rows}x{c}", build_ln)]


def gelu_case(rows, c):
    def build(args, rng):
        x, g = rng.standard_normal((rows, c), dtype=np.float32), rng.standard_normal((rows, c), dtype=np.float32)
        return {
            "bigcore": lambda: autograd_case("bigcore", [x], lambda t: F.gelu(t, approximate="tanh")),
            "numpy": lambda: lambda: np_gelu_tanh(x, g),
            "torch": lambda: autograd_case("torch", [x], lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
        }
    return [(f"gelu tanh {rows}x{c}", build)]


def cross_entropy_case(rows, v):
    def build(args, rng):
        x, y = rng.standard_normal((rows, v), dtype=np.float32), rng.integers(0, v, rows)
        return {
            "bigcore": lambda: autograd_case("bigcore", [x, y], lambda t, y: F.cross_entropy(t, y)),
            "numpy": lambda: lambda: np_cross_entropy(x, y),
            "torch": lambda: autograd_case("torch", [x, y], lambda t, y: torch.nn.functional.cross_entropy(t, y)),
        }
    return [(f"cross_entropy {rows}x{v}", build)]


def embedding_case(v, c, n):
    def build(args, rng):
        w, ids = rng.standard_normal((v, c), dtype=np.float32), rng.integers(0, v, n)
        g = np.random.default_rng(1).standard_normal((n, c)).astype(np.float32)  # autograd_case's upstream gradient
        return {
            "bigcore": lambda: autograd_case("bigcore", [w, ids], lambda t, i: F.embedding(i, t)),
            "numpy": lambda: lambda: np_embedding(w, ids, g),
            "torch": lambda: autograd_case("torch", [w, ids], lambda t, i: torch.nn.functional.embedding(i, t)),
        }
    return [(f"embedding {v}x{c}, {n} ids", build)]


def add_cases(rows, c):
    def build(args, rng, row=False):
        a, b = rng.standard_normal((rows, c), dtype=np.float32), rng.standard_normal((rows, c), dtype=np.float32)
        b = b[0].copy() if row else b
        return {
            "bigcore": lambda: (lambda ta, tb: lambda: ta + tb)(bigcore.tensor(a), bigcore.tensor(b)),
            "numpy": lambda: lambda: a + b,
            "torch": lambda: (lambda pa, pb: lambda: pa + pb)(torch.from_numpy(a), torch.from_numpy(b)),
        }
    return [(f"add {rows}x{c} (forward)", build), (f"add {rows}x{c} + row (forward)", lambda a, r: build(a, r, True))]


#: (name, build(args, rng) -> {contender: factory of the timed function}), in the order printed
CASES = [
    *row_cases(768, 128), *row_cases(256, 768), *row_cases(4 * 12 * 64, 64),
    *gelu_case(768, 512), *gelu_case(256, 3072),
    *cross_entropy_case(768, 65), *cross_entropy_case(256, 50304),
    *embedding_case(50304, 768, 256),
    ("adamw", lambda args, rng: adamw_contenders(args, rng)),
    *add_cases(256, 768),
]


def gpt2_shapes(full):
    """GPT-2 124M's parameter shapes (wte tied to lm_head): all, or wte + one block + ln_f."""
    C, V, L = 768, 50304, 12
    block = [(C,), (C,), (3 * C, C), (3 * C,), (C, C), (C,), (C,), (C,), (4 * C, C), (4 * C,), (C, 4 * C), (C,)]
    return [(V, C), (1024, C)] * full + [(V, C)] * (not full) + block * (L if full else 1) + [(C,), (C,)]


def adamw_contenders(args, rng):
    shapes = gpt2_shapes(args.full_adamw)
    print(f"adamw over {sum(math.prod(s) for s in shapes) / 1e6:.1f}M parameters in {len(shapes)} tensors")
    vals = [rng.standard_normal(s, dtype=np.float32) * 0.02 for s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) * 1e-3 for s in shapes]
    hyper = dict(lr=6e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    ps = [bigcore.nn.Parameter(bigcore.tensor(v)) for v in vals]
    for p, g in zip(ps, grads):
        p.grad = bigcore.tensor(g)
    opt = bigcore.optim.AdamW(ps, **hyper)
    nps = [v.copy() for v in vals]
    nms, nvs = [np.zeros_like(v) for v in vals], [np.zeros_like(v) for v in vals]
    step = [0]

    def numpy_step():
        step[0] += 1
        np_adamw(nps, grads, nms, nvs, step[0])

    def torch_step():
        tps = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in vals]
        for p, g in zip(tps, grads):
            p.grad = torch.from_numpy(g)
        return torch.optim.AdamW(tps, **hyper).step
    return {"bigcore": lambda: opt.step, "numpy": lambda: numpy_step, "torch": torch_step}


def timed_block(fn, calls, times):
    time.sleep(0.3)  # let the previous contender's spinning workers go idle
    fn()  # warm up
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated prefixes of the case names to run")
    ap.add_argument("--full-adamw", action="store_true", help="AdamW over all 124M parameters of GPT-2")
    args = ap.parse_args()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    rng = np.random.default_rng(0)
    print(f"simd={bigcore.simd_level()}  torch={torch.__version__ if torch else 'no'}  "
          f"(ms per fwd+bwd, median over {args.rounds} rounds; ratio = peer time / bigcore time)")
    only = [o for o in args.only.split(",") if o]
    for threads in [int(t) for t in args.threads.split(",")]:
        bigcore.set_num_threads(threads)
        if torch:
            torch.set_num_threads(threads)
        limit = threadpool_limits(threads) if threadpool_limits else None
        print(f"\nthreads={threads}")
        print(f"{'case':>34} {'bigcore':>9} {'numpy':>9} {'ratio':>6}" + (f" {'torch':>9} {'ratio':>6}" if torch else ""))
        for name, build in CASES:
            if only and not any(name.startswith(o) for o in only):
                continue
            contenders = {k: f() for k, f in build(args, rng).items() if k != "torch" or torch}
            first = time.perf_counter()
            contenders["bigcore"]()
            calls = max(3, min(50, int(0.15 / max(time.perf_counter() - first, 1e-5))))
            times = {k: [] for k in contenders}
            for _ in range(args.rounds):
                for k, fn in contenders.items():
                    timed_block(fn, calls, times[k])
            ms = {k: 1e3 * statistics.median(t) for k, t in times.items()}
            line = f"{name:>34} {ms['bigcore']:9.3f} {ms['numpy']:9.3f} {ms['numpy'] / ms['bigcore']:6.2f}"
            if "torch" in ms:
                line += f" {ms['torch']:9.3f} {ms['torch'] / ms['bigcore']:6.2f}"
            print(line, flush=True)
        if limit:
            limit.unregister()


if __name__ == "__main__":
    main()
