"""GPT inference: the model exported to ONNX and run by onnxruntime's CPU provider, against bigcore's own forward
(eval, no_grad; the fused engine path) on the same token ids, in one process, in interleaved rounds (the order
rotates every round); prints the median latency of one forward over a (B, T) batch, tokens per second (B * T /
latency) and each contender's speed relative to bigcore. All logits are checked to agree first (1e-4 relative).

    python benchmarks/onnx_infer.py [--config baby|gpt2|all] [--threads 2] [--rounds 7] [--no-generate]

Then greedy generation at batch 1 (a 16-token prompt, up to 100 new tokens within the block): bigcore's
GPT.generate (key/value cache in the engine) against the export with past keys and values
(``export_gpt(..., with_past=True)``) driven by examples/onnx_generate.py's loop, which imports only numpy and
onnxruntime; both must produce the same tokens; tokens/s and the ratio.

Configurations (GPT-2's architecture, random weights: speed does not depend on them):
  baby   L4 NH4 C128 V65 block 64;        batches B1 T64 and B12 T64
  gpt2   L12 NH12 C768 V50304 block 1024; batches B1 T64 and B4 T64   (124M parameters)

Contenders:
  bigcore              GPT.forward, the fused engine op
  bigcore composed     GPT(fused=False).forward: the nn layers, the path the export traces
  ort opset18          bigcore.onnx.export_gpt at the default opset: attention as MatMul/Softmax
  ort opset23          the same at opset 23: attention as one ONNX Attention node
  ort optimized        the opset-18 file after onnxruntime.transformers' optimizer (SkipLayerNormalization,
                       FastGelu; needs sympy), when importable
"""

import argparse
import importlib.util
import os
import statistics
import tempfile
import time

import numpy as np

CONFIGS = {
    "baby": (dict(n_layer=4, n_head=4, n_embd=128, vocab_size=65, block_size=64), [(1, 64), (12, 64)]),
    "gpt2": (dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50304, block_size=1024), [(1, 64), (4, 64)]),
}


def make_bigcore(model):
    import bigcore

    def forward(ids):
        with bigcore.no_grad():
            return model(bigcore.tensor(ids))[0].numpy()

    return forward


def composed(model):
    """The same model (shared parameters) on its composed path: the nn layers, as the export traces them."""
    import copy

    other = copy.copy(model)
    object.__setattr__(other, "fused", False)
    return other


def make_ort(path, threads):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    def forward(ids):
        return session.run(["logits"], {"input_ids": ids})[0]

    return forward


def optimized(path, cfg):
    """The file after onnxruntime's transformer optimizer, or None when it cannot run here (it needs sympy)."""
    try:
        import sympy  # noqa: F401
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError:
        return None
    opt = optimize_model(path, model_type="gpt2", num_heads=cfg["n_head"], hidden_size=cfg["n_embd"], opt_level=0)
    out = path.replace(".onnx", "_optimized.onnx")
    opt.save_model_to_file(out)
    return out


def contenders(model, cfg, tmp, threads):
    """Name -> forward(ids) -> logits; and the seconds each export took."""
    import bigcore

    out = {"bigcore": make_bigcore(model), "bigcore composed": make_bigcore(composed(model))}
    export_s = {}
    for opset in (18, 23):
        path = os.path.join(tmp, f"gpt_{opset}.onnx")
        t0 = time.perf_counter()
        bigcore.onnx.export_gpt(model, path, opset_version=opset)
        export_s[opset] = time.perf_counter() - t0
        out[f"ort opset{opset}"] = make_ort(path, threads)
    opt = optimized(os.path.join(tmp, "gpt_18.onnx"), cfg)
    if opt is not None:
        out["ort optimized"] = make_ort(opt, threads)
    return out, export_s


SETTLE_S = 0.02  # a pause before each timed call: onnxruntime's and bigcore's idle threads spin for a while after
# their last parallel region, and without it each contender ran against the previous one's spinning threads


def time_forwards(forwards, ids, rounds, warmup):
    """Seconds per forward of each contender, interleaved rounds."""
    for f in forwards.values():
        for _ in range(warmup):
            f(ids)
    times = {c: [] for c in forwards}
    order = list(forwards)
    for r in range(rounds):
        for c in order[r % len(order):] + order[:r % len(order)]:
            time.sleep(SETTLE_S)
            t0 = time.perf_counter()
            forwards[c](ids)
            times[c].append(time.perf_counter() - t0)
    return times


def onnx_generate_example():
    """examples/onnx_generate.py as a module (its ``load`` and ``generate``)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "onnx_generate.py")
    spec = importlib.util.spec_from_file_location("onnx_generate", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def time_generation(model, tmp, threads, rounds):
    """Median seconds of a greedy generation at batch 1 in bigcore and in onnxruntime (with past); new tokens."""
    import onnxruntime as ort

    import bigcore

    example = onnx_generate_example()
    path = os.path.join(tmp, "gpt_past.onnx")
    bigcore.onnx.export_gpt(model, path, with_past=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    _, block_size, past_names, heads = example.load(path)  # the sizes; the session is ours, with --threads
    prompt = np.random.default_rng(1).integers(0, model.config.vocab_size, (1, 16))
    n = min(100, model.config.block_size - 16)
    runs = {
        "bigcore": lambda: model.generate(bigcore.tensor(prompt), n, do_sample=False).numpy(),
        "ort with past": lambda: example.generate(session, block_size, past_names, heads, prompt, n),
    }
    outs = {c: f() for c, f in runs.items()}  # warm-up, and the same tokens
    np.testing.assert_array_equal(outs["ort with past"], outs["bigcore"])
    times = {c: [] for c in runs}
    for _ in range(rounds):
        for c, f in runs.items():
            time.sleep(SETTLE_S)
            t0 = time.perf_counter()
            f()
            times[c].append(time.perf_counter() - t0)
    return {c: statistics.median(t) for c, t in times.items()}, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="all", choices=[*CONFIGS, "all"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7, help="timed forwards of each contender, interleaved")
    ap.add_argument("--warmup", type=int, default=2, help="untimed forwards of each contender first")
    ap.add_argument("--no-generate", action="store_true", help="skip the generation comparison")
    args = ap.parse_args()

    import onnxruntime

    import bigcore
    from bigcore.models import GPT, GPTConfig

    bigcore.set_num_threads(args.threads)
    print(f"GPT forward (inference), {args.threads} threads, median of {args.rounds} interleaved rounds after "
          f"{args.warmup} warm-up forwards; bigcore {bigcore.__version__} (SIMD {bigcore.simd_level()}), "
          f"onnxruntime {onnxruntime.__version__}")
    print(f"{'config':<6} {'B x T':>7} {'contender':<16} {'median ms':>10} {'min ms':>9} {'tokens/s':>10} {'vs bigcore':>11}")
    names = list(CONFIGS) if args.config == "all" else [args.config]
    for name in names:
        sizes, batches = CONFIGS[name]
        bigcore.manual_seed(0)
        model = GPT(GPTConfig(**sizes)).eval()
        with tempfile.TemporaryDirectory() as tmp:
            forwards, export_s = contenders(model, sizes, tmp, args.threads)
            print(f"{name}: export_gpt took " + ", ".join(f"{s:.1f} s (opset {o})" for o, s in export_s.items()))
            for B, T in batches:
                ids = np.random.default_rng(B * T).integers(0, sizes["vocab_size"], (B, T))
                want = forwards["bigcore"](ids)
                for c, f in forwards.items():
                    np.testing.assert_allclose(f(ids), want, rtol=1e-4, atol=1e-4, err_msg=c)
                times = time_forwards(forwards, ids, args.rounds, args.warmup)
                med = {c: statistics.median(t) for c, t in times.items()}
                for c, t in times.items():
                    print(f"{name:<6} {f'{B}x{T}':>7} {c:<16} {med[c] * 1e3:>10.2f} {min(t) * 1e3:>9.2f} "
                          f"{B * T / med[c]:>10.0f} {med['bigcore'] / med[c]:>10.2f}x", flush=True)
            if not args.no_generate:
                med, n = time_generation(model, tmp, args.threads, args.rounds)
                print(f"{name}: greedy generation, batch 1, prompt 16, {n} new tokens: " + ", ".join(
                    f"{c} {n / t:.1f} tokens/s ({med['bigcore'] / t:.2f}x bigcore)" for c, t in med.items()),
                    flush=True)


if __name__ == "__main__":
    main()
