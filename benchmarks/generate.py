"""Greedy generation speed: bigcore's GPT.generate (key/value cache in the engine) against a PyTorch GPT with the
same weights and a Hugging Face-style loop (past_key_values kept as tensors, one position per step), in one
process, interleaved, at batch 1. Prints tokens/s of each and their ratio, and the per-token time of bigcore at
positions 50 and 900 (the cache's cost growing with the context).

    python benchmarks/generate.py [--config baby|gpt2|all] [--threads 2] [--new 100] [--rounds 3]

PyTorch is optional (run in a scratch environment that has it); the bigcore rows print either way.
"""

import argparse
import importlib.util
import statistics
import time

import numpy as np

import bigcore
from bigcore.models import GPT, GPTConfig

CONFIGS = {
    "baby": GPTConfig(block_size=1024, vocab_size=65, n_layer=4, n_head=4, n_embd=128),
    "gpt2": GPTConfig(block_size=1024, vocab_size=50304, n_layer=12, n_head=12, n_embd=768),
}


def torch_generator(model, threads):
    """A greedy loop over a PyTorch copy of ``model`` with a key/value cache, as Hugging Face's GPT-2 runs."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    sd = {k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}
    cfg = model.config
    C, NH, L = cfg.n_embd, cfg.n_head, cfg.n_layer
    HS = C // NH

    def ln(x, name):
        return F.layer_norm(x, (C,), sd[name + ".weight"], sd.get(name + ".bias"), 1e-5)

    def lin(x, name):
        return F.linear(x, sd[name + ".weight"], sd.get(name + ".bias"))

    @torch.inference_mode()
    def forward(ids, past, pos0):
        B, T = ids.shape
        x = sd["transformer.wte.weight"][ids] + sd["transformer.wpe.weight"][pos0:pos0 + T]  # (B, T, C)
        present = []
        for i in range(L):
            h = f"transformer.h.{i}."
            q, k, v = lin(ln(x, h + "ln_1"), h + "attn.c_attn").split(C, dim=2)
            q, k, v = (t.view(B, T, NH, HS).transpose(1, 2) for t in (q, k, v))  # (B, NH, T, HS)
            if past is not None:
                k, v = torch.cat([past[i][0], k], 2), torch.cat([past[i][1], v], 2)
            present.append((k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=past is None)  # (B, NH, T, HS)
            x = x + lin(y.transpose(1, 2).reshape(B, T, C), h + "attn.c_proj")
            x = x + lin(F.gelu(lin(ln(x, h + "ln_2"), h + "mlp.c_fc"), approximate="tanh"), h + "mlp.c_proj")
        logits = F.linear(ln(x[:, -1], "transformer.ln_f"), sd["transformer.wte.weight"])  # (B, V)
        return logits, present

    def generate(prompt, n):
        ids = torch.from_numpy(prompt)
        logits, past = forward(ids, None, 0)
        out, pos = [], ids.shape[1]
        for _ in range(n):
            nxt = logits.argmax(-1, keepdim=True)  # (B, 1)
            out.append(nxt)
            logits, past = forward(nxt, past, pos)
            pos += 1
        return torch.cat([ids] + out, 1).numpy()

    return generate


def bigcore_generator(model):
    def generate(prompt, n):
        return model.generate(bigcore.tensor(prompt), n, do_sample=False).numpy()

    return generate


def per_token_ms(model, prompt_len, n, rng):
    """bigcore's median time of one token after a prompt of ``prompt_len``, over ``n`` tokens."""
    prompt = bigcore.tensor(rng.integers(0, model.config.vocab_size, (1, prompt_len)))
    times, last = [], time.perf_counter()
    for _ in model.stream(prompt, n, do_sample=False):
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return statistics.median(times[1:]) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new", type=int, default=100, help="tokens generated per run")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    bigcore.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    have_torch = importlib.util.find_spec("torch") is not None
    print(f"greedy generation, batch 1, {args.new} new tokens, {args.threads} threads, median of {args.rounds} "
          f"interleaved rounds; SIMD {bigcore.simd_level()}" + ("" if have_torch else "; PyTorch not installed"))
    print(f"{'config':<6} {'prompt':>6} {'bigcore tok/s':>14} {'pytorch tok/s':>14} {'ratio':>6}")
    for name in CONFIGS if args.config == "all" else [args.config]:
        bigcore.manual_seed(0)
        model = GPT(CONFIGS[name])
        model.eval()
        contenders = {"bigcore": bigcore_generator(model)}
        if have_torch:
            contenders["pytorch"] = torch_generator(model, args.threads)
        for prompt_len in (16, 512):
            prompt = rng.integers(0, model.config.vocab_size, (1, prompt_len))
            outs = {c: g(prompt, 4) for c, g in contenders.items()}  # warm up, and the same tokens
            if have_torch:
                assert np.array_equal(outs["bigcore"], outs["pytorch"]), "the two greedy loops disagree"
            times = {c: [] for c in contenders}
            for _ in range(args.rounds):
                for c, g in contenders.items():
                    t0 = time.perf_counter()
                    g(prompt, args.new)
                    times[c].append(time.perf_counter() - t0)
            rate = {c: args.new / statistics.median(t) for c, t in times.items()}
            ratio = f"{rate['bigcore'] / rate['pytorch']:.2f}x" if have_torch else "-"
            torch_rate = f"{rate['pytorch']:.1f}" if have_torch else "-"
            print(f"{name:<6} {prompt_len:>6} {rate['bigcore']:>14.1f} {torch_rate:>14} {ratio:>6}", flush=True)
        at50 = per_token_ms(model, 40, 20, rng)
        at900 = per_token_ms(model, 890, 20, rng)
        print(f"{name}: bigcore per token at position ~50: {at50:.2f} ms, at ~900: {at900:.2f} ms "
              f"({at900 / at50:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
