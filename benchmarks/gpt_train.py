"""One GPT training step (forward, loss, backward, AdamW step, zero_grad) of the nanoGPT-style model: bigcore
against PyTorch (when importable) with the same configuration, data and step, in one process, in interleaved
rounds (the order rotates every round); prints median milliseconds per step and each contender's speed relative
to PyTorch. Then the peak resident memory of each contender alone, one subprocess each (build the model, run a
few steps, read its peak RSS).

    python benchmarks/gpt_train.py [--config baby|gpt2-b4t64|gpt2-b1t1024|all] [--threads 2] [--rounds 5]

Configurations (the model is GPT-2's: biases on, GELU tanh form, tied embedding, AdamW with weight decay on the
matrices only, lr 6e-4, betas (0.9, 0.95), weight decay 0.1):
  baby          L4 NH4 C128 V65,     B12 T64
  gpt2-b4t64    L12 NH12 C768 V50304, B4 T64     (124M parameters)
  gpt2-b1t1024  L12 NH12 C768 V50304, B1 T1024
"""

import argparse
import functools
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

CONFIGS = {
    "baby": dict(n_layer=4, n_head=4, n_embd=128, vocab_size=65, block_size=64, B=12, T=64),
    "gpt2-b4t64": dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50304, block_size=1024, B=4, T=64),
    "gpt2-b1t1024": dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50304, block_size=1024, B=1, T=1024),
}
OPTIM = dict(weight_decay=0.1, learning_rate=6e-4, betas=(0.9, 0.95))


def model_sizes(cfg):
    return {k: v for k, v in cfg.items() if k not in ("B", "T")}


# ----- bigcore -----

def make_bigcore(cfg, x, y, threads, **gpt_kwargs):
    """A function that runs one training step of bigcore's GPT (``gpt_kwargs`` go to ``GPT``)."""
    import bigcore
    from bigcore.models import GPT, GPTConfig

    bigcore.set_num_threads(threads)
    bigcore.manual_seed(0)
    model = GPT(GPTConfig(**model_sizes(cfg)), **gpt_kwargs)
    opt = model.configure_optimizers(**OPTIM)
    xb, yb = bigcore.tensor(x), bigcore.tensor(y)

    def step():
        _, loss = model(xb, yb)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


# ----- PyTorch: the same model, nanoGPT's model.py in brief -----

def make_torch(cfg, x, y, threads):
    """A function that runs one training step of a nanoGPT-style PyTorch GPT with the same sizes."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    C, NH = cfg["n_embd"], cfg["n_head"]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.c_attn, self.attn_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)  # 3 x (B, T, C)
            q, k, v = (t.view(B, T, NH, C // NH).transpose(1, 2) for t in (q, k, v))  # (B, NH, T, HS)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, NH, T, HS)
            x = x + self.attn_proj(a.transpose(1, 2).contiguous().view(B, T, C))  # (B, T, C)
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))  # (B, T, C)

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(cfg["vocab_size"], C)
            self.wpe = nn.Embedding(cfg["block_size"], C)
            self.h = nn.ModuleList([Block() for _ in range(cfg["n_layer"])])
            self.ln_f = nn.LayerNorm(C)
            self.lm_head = nn.Linear(C, cfg["vocab_size"], bias=False)
            self.wte.weight = self.lm_head.weight

        def forward(self, idx, targets):
            T = idx.shape[1]
            x = self.wte(idx) + self.wpe(torch.arange(T))  # (B, T, C)
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))  # (B, T, V)
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

    model = TorchGPT()
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": OPTIM["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=OPTIM["learning_rate"], betas=OPTIM["betas"])
    xb, yb = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = model(xb, yb)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def contenders():
    """Name -> constructor ``(cfg, x, y, threads) -> step``. Add a contender with one line here."""
    out = {
        "bigcore fused": functools.partial(make_bigcore, fused=True),
        "bigcore composed": functools.partial(make_bigcore, fused=False),
    }
    if importlib.util.find_spec("torch") is not None:
        out["pytorch"] = make_torch
    return out


def batch(cfg, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, cfg["vocab_size"], (cfg["B"], cfg["T"]))  # (B, T)
    y = rng.integers(0, cfg["vocab_size"], (cfg["B"], cfg["T"]))  # (B, T)
    return x, y


def time_steps(name, args):
    """Median seconds per step of every contender on configuration ``name``, interleaved."""
    cfg = CONFIGS[name]
    x, y = batch(cfg)
    steps = {c: make(cfg, x, y, args.threads) for c, make in contenders().items()}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    times = {c: [] for c in steps}
    order = list(steps)
    for r in range(args.rounds):
        for c in order[r % len(order):] + order[:r % len(order)]:
            t0 = time.perf_counter()
            steps[c]()
            times[c].append(time.perf_counter() - t0)
    return times


def peak_memory_mib(name, contender, args):
    """Peak RSS (MiB) of a fresh process that builds ``contender`` on ``name`` and runs a few steps."""
    cmd = [sys.executable, os.path.abspath(__file__), "--config", name, "--threads", str(args.threads),
           "--child", contender]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1].split("=")[1])


def peak_rss_mib():
    """This process's peak resident memory. Linux's ru_maxrss outlives exec: a child started by a parent that
    holds 800 MiB reports at least 800 MiB. VmHWM, the high-water mark of this program's own address space,
    starts afresh at exec; ru_maxrss is the fallback where /proc is absent."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(name, contender, args):
    cfg = CONFIGS[name]
    x, y = batch(cfg)
    step = contenders()[contender](cfg, x, y, args.threads)
    for _ in range(3):
        step()
    print(f"peak_rss_mib={peak_rss_mib():.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="all", choices=[*CONFIGS, "all"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="timed steps of each contender, interleaved")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps of each contender first")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    names = list(CONFIGS) if args.config == "all" else [args.config]
    if args.child:
        return child(names[0], args.child, args)

    import bigcore

    versions = f"bigcore {bigcore.__version__} (SIMD {bigcore.simd_level()})"
    if "pytorch" in contenders():
        import torch

        versions += f", PyTorch {torch.__version__}"
    print(f"GPT training step, {args.threads} threads, median of {args.rounds} interleaved rounds "
          f"after {args.warmup} warm-up steps; {versions}")
    print(f"{'config':<14} {'contender':<17} {'median ms':>10} {'min ms':>9} {'vs pytorch':>11} {'peak MiB':>9}")
    for name in names:
        times = time_steps(name, args)
        med = {c: statistics.median(t) for c, t in times.items()}
        for c, t in times.items():
            ratio = f"{med['pytorch'] / med[c]:.2f}x" if "pytorch" in med else "-"
            mem = "-" if args.no_memory else f"{peak_memory_mib(name, c, args):.0f}"
            print(f"{name:<14} {c:<17} {med[c] * 1e3:>10.1f} {min(t) * 1e3:>9.1f} {ratio:>11} {mem:>9}", flush=True)


if __name__ == "__main__":
    main()
