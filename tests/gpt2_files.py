"""Tiny Hugging Face GPT-2 directories written by the tests themselves (nothing downloaded), and a numpy
float64 GPT-2 that reads those files' layouts as they are (Conv1D weights (in, out): ``x @ W + b``), written from
GPT-2's math, independent of bigcore."""

import json
import math

import numpy as np
from safetensors.numpy import save_file

#: a config as transformers writes it for GPT2LMHeadModel, at tiny and awkward sizes (3 heads of 5)
TINY = dict(vocab_size=29, n_positions=11, n_embd=15, n_layer=2, n_head=3)


def hf_config(**sizes):
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
            "layer_norm_epsilon": 1e-05, "n_inner": None, "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
            "scale_attn_weights": True, "tie_word_embeddings": True, "bos_token_id": 50256, "eos_token_id": 50256,
            **sizes}


def hf_weights(rng, vocab_size, n_positions, n_embd, n_layer, **_):
    """Random GPT-2 weights by Hugging Face's names (no prefix) and layouts; layer norms and biases far from
    their initial ones and 1, so that a swapped or untransposed tensor shows."""
    C = n_embd
    w = {"wte.weight": rng.normal(0, 0.3, (vocab_size, C)), "wpe.weight": rng.normal(0, 0.3, (n_positions, C)),
         "ln_f.weight": rng.normal(1, 0.2, C), "ln_f.bias": rng.normal(0, 0.2, C)}
    for i in range(n_layer):
        h = f"h.{i}."
        w.update({h + "ln_1.weight": rng.normal(1, 0.2, C), h + "ln_1.bias": rng.normal(0, 0.2, C),
                  h + "ln_2.weight": rng.normal(1, 0.2, C), h + "ln_2.bias": rng.normal(0, 0.2, C),
                  h + "attn.c_attn.weight": rng.normal(0, 0.3, (C, 3 * C)), h + "attn.c_attn.bias": rng.normal(0, 0.2, 3 * C),
                  h + "attn.c_proj.weight": rng.normal(0, 0.3, (C, C)), h + "attn.c_proj.bias": rng.normal(0, 0.2, C),
                  h + "mlp.c_fc.weight": rng.normal(0, 0.3, (C, 4 * C)), h + "mlp.c_fc.bias": rng.normal(0, 0.2, 4 * C),
                  h + "mlp.c_proj.weight": rng.normal(0, 0.3, (4 * C, C)), h + "mlp.c_proj.bias": rng.normal(0, 0.2, C)})
    return {k: v.astype(np.float32) for k, v in w.items()}


def write_hf_dir(path, config, weights, prefix="transformer.", mask_buffers=True):
    """Write ``config.json`` and ``model.safetensors`` as transformers does (``prefix`` on every key, the
    ``{"format": "pt"}`` metadata), with older files' ``attn.bias`` causal-mask buffers when asked."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    tensors = {prefix + k: np.ascontiguousarray(v) for k, v in weights.items()}
    if mask_buffers:
        T = config["n_positions"]
        for i in range(config["n_layer"]):
            tensors[f"{prefix}h.{i}.attn.bias"] = np.tril(np.ones((1, 1, T, T), np.float32))
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path


def _layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w + b


def _gelu_new(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def gpt2_hidden(w, ids, n_head):
    """GPT-2's last hidden states (after ln_f), float64, from Hugging Face-layout weights ``w`` (no prefix)."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    B, T = ids.shape
    x = w["wte.weight"][ids] + w["wpe.weight"][:T]  # (B, T, C)
    C = x.shape[-1]
    HS = C // n_head
    n_layer = len({k.split(".")[1] for k in w if k.startswith("h.")})
    causal = np.tril(np.ones((T, T), bool))
    for i in range(n_layer):
        p = lambda name: w[f"h.{i}.{name}"]  # noqa: E731
        a = _layer_norm(x, p("ln_1.weight"), p("ln_1.bias")) @ p("attn.c_attn.weight") + p("attn.c_attn.bias")
        q, k, v = (a[..., j * C:(j + 1) * C].reshape(B, T, n_head, HS).transpose(0, 2, 1, 3) for j in range(3))
        att = q @ k.transpose(0, 1, 3, 2) / math.sqrt(HS)  # (B, NH, T, T)
        att = np.where(causal, att, -np.inf)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + y @ p("attn.c_proj.weight") + p("attn.c_proj.bias")
        m = _layer_norm(x, p("ln_2.weight"), p("ln_2.bias")) @ p("mlp.c_fc.weight") + p("mlp.c_fc.bias")
        x = x + _gelu_new(m) @ p("mlp.c_proj.weight") + p("mlp.c_proj.bias")
    return _layer_norm(x, w["ln_f.weight"], w["ln_f.bias"])


def gpt2_logits(w, ids, n_head):
    """GPT2LMHeadModel's logits: the hidden states times the tied token embedding."""
    return gpt2_hidden(w, ids, n_head) @ w["wte.weight"].astype(np.float64).T
