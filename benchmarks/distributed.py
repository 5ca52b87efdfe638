"""Data parallelism on one machine: a GPT training step (forward, backward, AdamW) with 1 rank x N threads against
N ranks x 1 thread (``mpirun``, ``DistributedDataParallel``) on the same global batch, and how much of the
all-reduce the backward hides.

    python benchmarks/distributed.py [--config baby|30m|all] [--ranks 2] [--steps 5] [--paths fused,composed]

For the data-parallel run it reports three medians per step: with DDP as used (buckets reduced while the
backward runs), under ``no_sync()`` (no communication at all), and the blocking all-reduce of all gradients
alone (one ``all_reduce`` of a flat buffer of their size). The hidden fraction is
1 - (DDP step - no_sync step) / all-reduce alone: 1 when communication costs the step nothing, 0 when none of it
overlaps. The fused GPT's backward is one engine call, so all its gradients become final together at its end
and there is nothing to overlap them with; the composed path (``GPT(fused=False)``) finishes them layer by
layer. Needs the mpi extra (``pip install "bigcore[mpi]"``); ``mpirun`` is taken from this Python's bin/.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

CONFIGS = {  # global batch B x T
    "baby": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65, B=12),
    "30m": dict(n_layer=6, n_head=10, n_embd=640, block_size=128, vocab_size=65, B=8),  # 29.6M parameters
}


def worker(name, fused, steps, warmup):
    """One rank (or the only process): median seconds per step; prints JSON on rank 0."""
    import bigcore
    import bigcore.distributed as dist
    from bigcore.models import GPT, GPTConfig
    from bigcore.nn.parallel import DistributedDataParallel

    cfg = dict(CONFIGS[name])
    B = cfg.pop("B")
    parallel = "OMPI_COMM_WORLD_SIZE" in os.environ
    rank, world = 0, 1
    if parallel:
        dist.init_process_group("mpi")
        rank, world = dist.get_rank(), dist.get_world_size()
    bigcore.manual_seed(0)
    model = GPT(GPTConfig(**cfg, dropout=0.0, bias=False), fused=fused)
    net = DistributedDataParallel(model) if parallel else model
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95))
    rng = np.random.default_rng(0)
    share = B // world
    x = bigcore.tensor(rng.integers(0, cfg["vocab_size"], (B, cfg["block_size"]))[rank * share:(rank + 1) * share])
    y = bigcore.tensor(rng.integers(0, cfg["vocab_size"], (B, cfg["block_size"]))[rank * share:(rank + 1) * share])

    def step():
        opt.zero_grad(set_to_none=True)
        net(x, y)[1].backward()
        opt.step()

    def timed(fn):
        for _ in range(warmup):
            fn()
        out = []
        for _ in range(steps):
            if parallel:
                dist.barrier()
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return statistics.median(out)

    result = {"step": timed(step), "params": model.num_params()}
    if parallel:
        def local():
            with net.no_sync():
                step()

        flat = bigcore.zeros(sum(p.numel() for p in model.parameters()))
        result.update(no_sync=timed(local), allreduce=timed(lambda: dist.all_reduce(flat)))
    if rank == 0:
        print(json.dumps(result), flush=True)


def run(cmd, env):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if p.returncode != 0:
        raise SystemExit(p.stdout + p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="all", choices=[*CONFIGS, "all"])
    ap.add_argument("--ranks", type=int, default=2, help="ranks of the data-parallel run (1 thread each)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--paths", default="fused,composed", help="GPT paths to run, comma-separated")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--path", default="fused", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.path == "fused", args.steps, args.warmup)
    mpirun = os.path.join(os.path.dirname(sys.executable), "mpirun")
    me = [sys.executable, os.path.abspath(__file__), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI"))}
    print(f"GPT step (forward, backward, AdamW), median of {args.steps} after {args.warmup} warm-up steps; "
          f"1 rank x {args.ranks} threads against {args.ranks} ranks x 1 thread, same global batch")
    print(f"{'config':<6} {'path':<9} {'params':>7} {'1 rank ms':>10} {'ranks ms':>9} {'speed':>6} {'no_sync ms':>11} "
          f"{'allreduce ms':>13} {'hidden':>7}")
    for name in CONFIGS if args.config == "all" else [args.config]:
        for path in args.paths.split(","):
            cmd = me + ["--worker", name, "--path", path]
            one = run(cmd, dict(env, BIGCORE_NUM_THREADS=str(args.ranks)))
            par = run([mpirun, "-n", str(args.ranks), "--oversubscribe", "--bind-to", "none", *cmd],
                      dict(env, BIGCORE_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1"))
            hidden = 1 - (par["step"] - par["no_sync"]) / par["allreduce"]
            print(f"{name:<6} {path:<9} {one['params'] / 1e6:>6.1f}M {one['step'] * 1e3:>10.1f} "
                  f"{par['step'] * 1e3:>9.1f} {one['step'] / par['step']:>5.2f}x {par['no_sync'] * 1e3:>11.1f} "
                  f"{par['allreduce'] * 1e3:>13.1f} {hidden:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
