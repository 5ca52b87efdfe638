"""LSTM training step, forward + backward, float32: bigcore's ``nn.LSTM`` against PyTorch's (when installed) with the
same weights, or against a numpy loop (forward and hand-written backward through time) when PyTorch is absent, in
one process, interleaved and paired, at the LSTM issue's shapes:

- ``big``: B64 T128 I256 H256, one layer;
- ``small``: B32 T64 I128 H128, two layers.

Prints per shape the median (and best) milliseconds of each contender and the peer's time over bigcore's (above 1:
bigcore is faster), as the median and the range of the per-round ratios, and the ratio of the best times (the
rounds least disturbed by other load on a shared machine).

    python benchmarks/lstm.py [--rounds 7] [--threads 2] [--shapes big,small] [--peer torch|numpy|both]
                              [--forward] [--quick]

The input requires grad (as an embedding's output would), the upstream gradient of the output sequence is fixed,
and each call clears every gradient first; the contenders' outputs are checked to agree before timing. A round times a block of calls of each contender in turn, each block after
a pause and one untimed call (every library's workers spin for a while after a call and would steal the next
contender's cores on a 2-core machine); the order of the contenders alternates between rounds, and the ratio of a
round compares the two blocks timed next to each other, so the host's load swings hit both alike.

PyTorch is not a dependency. To take it from another environment, name that environment's site-packages in
``TORCH_SITE_PACKAGES``: it is appended to ``sys.path`` after this one's, so this environment's bigcore and numpy
still win.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

import bigcore
import bigcore.nn as nn

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

#: name -> (B, T, I, H, num_layers)
SHAPES = {"big": (64, 128, 256, 256, 1), "small": (32, 64, 128, 128, 2)}
#: --quick: the same structure at sizes a CI smoke test runs in well under a second
QUICK = {"big": (4, 6, 5, 7, 1), "small": (3, 5, 4, 6, 2)}


def weights(rng, i, h, layers):
    """PyTorch's parameter names -> float32 arrays, uniform in +-1/sqrt(H) as both libraries initialize."""
    bound = 1 / np.sqrt(h)
    p = {}
    for layer in range(layers):
        in_sz = i if layer == 0 else h
        for name, shape in (("weight_ih", (4 * h, in_sz)), ("weight_hh", (4 * h, h)), ("bias_ih", (4 * h,)),
                            ("bias_hh", (4 * h,))):
            p[f"{name}_l{layer}"] = rng.uniform(-bound, bound, shape).astype(np.float32)
    return p


# Each contender is built once per shape (inputs and weights copied in outside the timing) and returns the timed
# call: clear the gradients, forward, backward of the output sequence with the fixed gradient `g` (T, B, H).

def bigcore_lstm(p, x, g, layers):
    m = nn.LSTM(x.shape[2], g.shape[2], num_layers=layers)
    m.load_state_dict({k: bigcore.tensor(v) for k, v in p.items()})
    xt, gt = bigcore.tensor(x, requires_grad=True), bigcore.tensor(g)

    def run(backward):
        xt.grad = None
        m.zero_grad()
        out, _ = m(xt)
        if backward:
            out.backward(gt)
        return out
    return run


def torch_lstm(p, x, g, layers):
    m = torch.nn.LSTM(x.shape[2], g.shape[2], num_layers=layers)
    with torch.no_grad():
        for k, v in p.items():
            getattr(m, k).copy_(torch.from_numpy(v))
    xt, gt = torch.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(g)

    def run(backward):
        xt.grad = None
        m.zero_grad(set_to_none=True)
        out, _ = m(xt)
        if backward:
            out.backward(gt)
        return out
    return run


def _sig(z):
    return 1 / (1 + np.exp(-z))


def numpy_lstm(p, x, g, layers):
    """The reference every LSTM library implements: per layer, the input projections of all steps as one product,
    one (B, H) x (H, 4H) product per step, then backward through time with the weight gradients as three products."""
    t_len, b, _ = x.shape
    h_sz = g.shape[2]

    def run(backward):
        inp, tapes = x, []
        for layer in range(layers):
            w_ih, w_hh = p[f"weight_ih_l{layer}"], p[f"weight_hh_l{layer}"]
            pre = (inp.reshape(t_len * b, -1) @ w_ih.T + (p[f"bias_ih_l{layer}"] + p[f"bias_hh_l{layer}"]))
            pre = pre.reshape(t_len, b, 4 * h_sz)
            gates = np.empty_like(pre)
            hs = np.zeros((t_len + 1, b, h_sz), np.float32)
            cs = np.zeros((t_len + 1, b, h_sz), np.float32)
            for t in range(t_len):
                z = pre[t] + hs[t] @ w_hh.T
                gates[t, :, :2 * h_sz] = _sig(z[:, :2 * h_sz])
                gates[t, :, 2 * h_sz:3 * h_sz] = np.tanh(z[:, 2 * h_sz:3 * h_sz])
                gates[t, :, 3 * h_sz:] = _sig(z[:, 3 * h_sz:])
                i, f, gg, o = np.split(gates[t], 4, axis=-1)
                cs[t + 1] = f * cs[t] + i * gg
                hs[t + 1] = o * np.tanh(cs[t + 1])
            tapes.append((inp, gates, hs, cs, w_ih, w_hh))
            inp = hs[1:]
        if not backward:
            return inp
        dout, grads = g, []
        for inp, gates, hs, cs, w_ih, w_hh in reversed(tapes):
            dg = np.empty_like(gates)
            dh_next = np.zeros((b, h_sz), np.float32)
            dc_next = np.zeros((b, h_sz), np.float32)
            for t in reversed(range(t_len)):
                i, f, gg, o = np.split(gates[t], 4, axis=-1)
                tc = np.tanh(cs[t + 1])
                dh = dout[t] + dh_next
                dc = dc_next + dh * o * (1 - tc * tc)
                dg[t, :, :h_sz] = dc * gg * i * (1 - i)
                dg[t, :, h_sz:2 * h_sz] = dc * cs[t] * f * (1 - f)
                dg[t, :, 2 * h_sz:3 * h_sz] = dc * i * (1 - gg * gg)
                dg[t, :, 3 * h_sz:] = dh * tc * o * (1 - o)
                dc_next = dc * f
                dh_next = dg[t] @ w_hh
            dg2 = dg.reshape(t_len * b, 4 * h_sz)
            grads.append((dg2.T @ inp.reshape(t_len * b, -1), dg2.T @ hs[:-1].reshape(t_len * b, h_sz), dg2.sum(0)))
            dout = (dg2 @ w_ih).reshape(t_len, b, -1)
        return inp, dout, grads
    return run


def as_numpy(out):
    return out.detach().numpy() if torch is not None and isinstance(out, torch.Tensor) else np.asarray(
        out if isinstance(out, np.ndarray) else out.numpy())


def timed_block(fn, calls, backward, times, pause):
    time.sleep(pause)  # let the previous contender's spinning workers go idle
    fn(backward)  # warm up
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(backward)
    times.append((time.perf_counter() - t0) / calls)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes", default="big,small")
    ap.add_argument("--peer", choices=["torch", "numpy", "both"], default="torch" if torch else "numpy")
    ap.add_argument("--forward", action="store_true", help="forward only")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, two rounds (a smoke test)")
    args = ap.parse_args()
    if args.peer != "numpy" and torch is None:
        ap.error("PyTorch is not installed: use --peer numpy (or set TORCH_SITE_PACKAGES)")
    shapes, rounds = (QUICK, 2) if args.quick else (SHAPES, args.rounds)
    bigcore.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    limit = threadpool_limits(args.threads) if threadpool_limits else None
    peers = {"torch": ["torch"], "numpy": ["numpy"], "both": ["torch", "numpy"]}[args.peer]
    builders = {"bigcore": bigcore_lstm, "torch": torch_lstm, "numpy": numpy_lstm}
    print(f"simd={bigcore.simd_level()}  threads={args.threads}  torch={torch.__version__ if torch else 'no'}  "
          f"({'forward' if args.forward else 'forward+backward'}, float32; ms per call, median over {rounds} rounds; "
          "ratio = peer time / bigcore time, median [min-max] of the rounds, and of the best times)")
    rng = np.random.default_rng(0)
    for name in args.shapes.split(","):
        b, t, i, h, layers = shapes[name]
        p = weights(rng, i, h, layers)
        x = rng.standard_normal((t, b, i), dtype=np.float32)
        g = rng.standard_normal((t, b, h), dtype=np.float32)
        runs = {k: builders[k](p, x, g, layers) for k in ["bigcore", *peers]}
        # the contenders compute the same thing: their output sequences agree to float32 rounding
        want = as_numpy(runs["bigcore"](False))
        for k in peers:
            np.testing.assert_allclose(as_numpy(runs[k](False)), want, rtol=0, atol=1e-4, err_msg=k)
        first = time.perf_counter()
        runs["bigcore"](not args.forward)
        calls = max(1, min(20, int(0.5 / max(time.perf_counter() - first, 1e-6))))
        times = {k: [] for k in runs}
        for r in range(rounds):
            order = list(runs) if r % 2 == 0 else list(reversed(runs))
            for k in order:
                timed_block(runs[k], calls, not args.forward, times[k], 0.0 if args.quick else 0.3)
        print(f"\n{name}: B{b} T{t} I{i} H{h} layers={layers}, {calls} calls a block")
        for k, ts in times.items():
            line = f"  {k:>8} {1e3 * statistics.median(ts):9.2f} ms (best {1e3 * min(ts):8.2f})"
            if k != "bigcore":
                ratios = sorted(a / c for a, c in zip(ts, times["bigcore"]))
                line += (f"   ratio {statistics.median(ratios):.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}],"
                         f" best/best {min(ts) / min(times['bigcore']):.2f}")
            print(line, flush=True)
    if limit:
        limit.unregister()


if __name__ == "__main__":
    main()
