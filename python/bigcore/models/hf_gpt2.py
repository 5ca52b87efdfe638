"""Hugging Face GPT-2 directories (``config.json`` + ``model.safetensors``) read into bigcore's GPT and written
from it: what ``GPT.from_pretrained`` / ``save_pretrained`` and the classifier's do.

Layouts. Hugging Face's GPT-2 keeps its four projections in ``Conv1D`` modules whose weight is ``(in, out)``
(``x @ W + b``); bigcore's (and nanoGPT's) ``Linear`` keeps ``(out, in)``, so those four weights are transposed
both ways. Everything else (embeddings, layer norms, biases) has one layout. The ``attn.bias`` /
``attn.masked_bias`` entries of older files are the causal-mask buffers, not parameters: ignored. The output
head is tied to the token embedding, so ``lm_head.weight`` is not written (as transformers writes it) and, when a
file has it, it must equal ``wte.weight``.

The model bigcore computes is GPT-2's with ``activation_function`` ``gelu_new`` (the tanh GELU) and
``layer_norm_epsilon`` 1e-5; a config asking for anything else is refused, naming the option, rather than
loaded into a model that would compute something different. Nothing here downloads: ``path`` is a local directory.
"""

import json
import os

import numpy as np

from .._atomic import write_all, write_atomically
from .gpt import GPTConfig

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"  # sharded checkpoints: {"weight_map": {key: shard file}}

#: the projections stored as Conv1D (in, out) by Hugging Face and as Linear (out, in) by bigcore
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
#: config options that change what the model computes, and the value bigcore's GPT computes with
_FIXED = {
    "layer_norm_epsilon": 1e-5,
    "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False,
    "add_cross_attention": False,
    "tie_word_embeddings": True,
}
_GELU_TANH = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")  # three spellings of 0.5x(1 + tanh(...)) in transformers
_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_config(path):
    """The ``GPTConfig`` of a Hugging Face GPT-2 directory, and its ``config.json`` as a dict.

    Missing sizes take GPT2Config's defaults (GPT-2 small), as transformers does.

    Raises:
        FileNotFoundError: no directory, or no config.json in it.
        ValueError: a config that is not GPT-2's, or one with an option bigcore's GPT does not compute (named).
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no such model directory: {path!r} (from_pretrained reads a local Hugging Face "
                                f"GPT-2 directory; nothing is downloaded)")
    file = os.path.join(path, CONFIG_NAME)
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{path!r} has no {CONFIG_NAME}")
    try:
        with open(file, encoding="utf-8") as f:
            hf = json.load(f)
        if not isinstance(hf, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{file!r} is not a model config: {e}") from None
    if hf.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"{file!r}: model_type is {hf['model_type']!r}; bigcore reads GPT-2 ('gpt2') models")
    act = hf.get("activation_function", "gelu_new")
    if act not in _GELU_TANH:
        raise ValueError(f"{file!r}: activation_function {act!r} is not supported; bigcore's GPT computes the tanh "
                         f"GELU ('gelu_new')")
    for key, want in _FIXED.items():
        if key in hf and hf[key] != want:
            raise ValueError(f"{file!r}: {key}={hf[key]!r} is not supported; bigcore's GPT computes {key}={want!r}")
    n_embd = hf.get("n_embd", 768)
    if hf.get("n_inner") not in (None, 4 * n_embd):
        raise ValueError(f"{file!r}: n_inner={hf['n_inner']} is not supported; bigcore's GPT has an MLP of "
                         f"4 * n_embd = {4 * n_embd}")
    config = GPTConfig(block_size=hf.get("n_positions", 1024), vocab_size=hf.get("vocab_size", 50257),
                       n_layer=hf.get("n_layer", 12), n_head=hf.get("n_head", 12), n_embd=n_embd, dropout=0.0,
                       bias=True)
    return config, hf


def read_weights(path):
    """Every tensor of the directory's ``model.safetensors`` (or its shards) as numpy, by Hugging Face name,
    with the ``transformer.`` prefix of a GPT2LMHeadModel file removed and the mask buffers left out.

    Raises:
        FileNotFoundError: no weights file (a ``pytorch_model.bin`` alone is named: bigcore does not unpickle).
        ValueError: a truncated or corrupt file, or a dtype numpy cannot hold (bfloat16), naming the file.
    """
    from safetensors import safe_open

    path = os.fspath(path)
    single, index = os.path.join(path, WEIGHTS_NAME), os.path.join(path, INDEX_NAME)
    if os.path.isfile(single):
        files = [single]
    elif os.path.isfile(index):
        try:
            with open(index, encoding="utf-8") as f:
                files = [os.path.join(path, s) for s in sorted(set(json.load(f)["weight_map"].values()))]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{index!r} is not a safetensors index: {e}") from None
    else:
        extra = " (it has pytorch_model.bin, a pickle bigcore does not read: convert it to safetensors)" \
            if os.path.isfile(os.path.join(path, "pytorch_model.bin")) else ""
        raise FileNotFoundError(f"{path!r} has no {WEIGHTS_NAME}{extra}")
    out = {}
    for file in files:
        if not os.path.isfile(file):
            raise FileNotFoundError(f"no such weights shard: {file!r}")
        try:
            with safe_open(file, framework="numpy") as f:
                for key in f.keys():
                    name = key[len("transformer."):] if key.startswith("transformer.") else key
                    if name.endswith((".attn.bias", ".attn.masked_bias")):
                        continue  # the causal mask, a buffer
                    out[name] = f.get_tensor(key)
        except Exception as e:  # safetensors raises its own error types for truncated or foreign files
            raise ValueError(f"{file!r} is not a readable safetensors file: {e}") from None
    for name, arr in out.items():
        if arr.dtype not in (np.float16, np.float32, np.float64):
            raise ValueError(f"{files[0]!r}: tensor {name!r} has dtype {arr.dtype}; bigcore reads float16/32/64")
    return out


def trunk_from_hf(weights, config, where):
    """bigcore's names and layouts for the trunk (``transformer.*``) from Hugging Face's (``read_weights``),
    checked against the config's sizes; the used keys are removed from ``weights``.

    Raises:
        ValueError: a missing tensor or one of the wrong shape, naming the key, both shapes and ``where``.
    """
    C, L = config.n_embd, config.n_layer
    shapes = {"wte.weight": (config.vocab_size, C), "wpe.weight": (config.block_size, C),
              "ln_f.weight": (C,), "ln_f.bias": (C,)}
    for i in range(L):
        h = f"h.{i}."
        shapes.update({h + "ln_1.weight": (C,), h + "ln_1.bias": (C,), h + "ln_2.weight": (C,), h + "ln_2.bias": (C,),
                       h + "attn.c_attn.weight": (C, 3 * C), h + "attn.c_attn.bias": (3 * C,),
                       h + "attn.c_proj.weight": (C, C), h + "attn.c_proj.bias": (C,),
                       h + "mlp.c_fc.weight": (C, 4 * C), h + "mlp.c_fc.bias": (4 * C,),
                       h + "mlp.c_proj.weight": (4 * C, C), h + "mlp.c_proj.bias": (C,)})
    missing = [k for k in shapes if k not in weights]
    if missing:
        raise ValueError(f"{where}: missing {len(missing)} GPT-2 tensor(s): {', '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''}")
    state = {}
    for key, shape in shapes.items():
        arr = weights.pop(key)
        if arr.shape != shape:
            raise ValueError(f"{where}: {key} has shape {arr.shape}, the config's sizes give {shape}")
        state["transformer." + key] = arr.T if key.endswith(_CONV1D) else arr  # Conv1D (in, out) -> (out, in)
    head = weights.pop("lm_head.weight", None)
    if head is not None and not np.array_equal(head, state["transformer.wte.weight"]):
        raise ValueError(f"{where}: lm_head.weight differs from wte.weight; bigcore's GPT ties the two")
    return state


def trunk_to_hf(state, bias, dtype):
    """Hugging Face's names (with the ``transformer.`` prefix) and Conv1D layouts from bigcore's
    ``state_dict`` (``transformer.*`` entries; others are left out). A model without biases gets zero ones,
    which compute the same."""
    out = {}
    for key, t in state.items():
        if not key.startswith("transformer."):
            continue
        arr = np.ascontiguousarray((t.numpy().T if key.endswith(_CONV1D) else t.numpy()).astype(dtype))
        out[key] = arr
        if not bias and key.endswith(".weight") and not key.endswith(("wte.weight", "wpe.weight")):
            out[key[:-len("weight")] + "bias"] = np.zeros(arr.shape[-1] if key.endswith(_CONV1D) else arr.shape[0], dtype)
    return out


def write_pretrained(path, config, tensors, dtype, **config_extra):
    """Write ``config.json`` (GPT2Config's keys) and ``model.safetensors`` (``{"format": "pt"}`` metadata, which
    transformers requires) into the directory ``path``, each file replaced atomically."""
    from safetensors.numpy import save as safetensors_bytes

    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(f"save_pretrained: {path!r} is a file, not a directory")
    os.makedirs(path, exist_ok=True)
    gpt2_vocab = config.vocab_size > 50256  # GPT-2's <|endoftext|> is id 50256; a smaller vocabulary has none
    hf = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
        "vocab_size": config.vocab_size, "n_positions": config.block_size, "n_ctx": config.block_size,
        "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": None,
        "layer_norm_epsilon": 1e-5, "resid_pdrop": config.dropout, "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout, "initializer_range": 0.02, "scale_attn_weights": True,
        "tie_word_embeddings": True, "torch_dtype": np.dtype(dtype).name,
        "bos_token_id": 50256 if gpt2_vocab else None, "eos_token_id": 50256 if gpt2_vocab else None,
        **config_extra,
    }
    weights = safetensors_bytes(tensors, metadata={"format": "pt"})
    write_atomically(os.path.join(path, WEIGHTS_NAME), lambda fd: write_all(fd, weights))
    config_bytes = json.dumps(hf, indent=2).encode("utf-8")
    write_atomically(os.path.join(path, CONFIG_NAME), lambda fd: write_all(fd, config_bytes))


def load_gpt(cls, path, dtype=None, dropout=0.0):
    """``GPT.from_pretrained``'s body: read the directory, build ``cls(config, dtype)``, copy the weights in."""
    config, _ = read_config(path)
    config.dropout = dropout
    weights = read_weights(path)
    where = os.path.join(os.fspath(path), WEIGHTS_NAME)
    state = trunk_from_hf(weights, config, where)
    if weights:
        raise ValueError(f"{where}: unexpected tensor(s) for a GPT-2 language model: {', '.join(sorted(weights)[:5])}")
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model = cls(config, dtype=dtype)
    model.load_state_dict(state)
    return model.eval()


def save_gpt(model, path):
    """``GPT.save_pretrained``'s body."""
    dtype = np.dtype(model.lm_head.weight.dtype.name)
    write_pretrained(path, model.config, trunk_to_hf(model.state_dict(), model.config.bias, dtype), dtype)
