"""Generate text from an exported GPT with onnxruntime alone: this script imports numpy and onnxruntime, not
bigcore, as an application embedding the model would.

Export once, with bigcore (the graph takes past keys and values, so each new token costs one position):

    bigcore.onnx.export_gpt(model, "gpt.onnx", with_past=True)
    open("chars.txt", "w", encoding="utf-8").write("".join(tokenizer.chars))   # a character-level vocabulary

then anywhere:

    python examples/onnx_generate.py gpt.onnx chars.txt --prompt "ROMEO:" --max-new-tokens 200
    python examples/onnx_generate.py gpt.onnx chars.txt --greedy            # the tokens model.generate gives

The loop is Hugging Face Optimum's: the prompt with a past of length 0, then one token at a time with the
``present.*`` outputs fed back as ``past_key_values.*``. Past the model's ``block_size`` (read from the file's
metadata) the context is cropped to the last ``block_size`` tokens and the past restarted, as nanoGPT does.
Sampling: temperature, then top-k, then a draw from numpy's generator; ``--greedy`` takes the arg-max.
"""

import argparse
import sys

import numpy as np
import onnxruntime as ort


def load(path):
    """The session, its sizes from the metadata, and the past inputs' names with their (heads, head size)."""
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("model") != "gpt":
        raise SystemExit(f"{path}: not a GPT exported by bigcore.onnx.export_gpt (no 'model: gpt' metadata)")
    names = [i.name for i in session.get_inputs()]
    if names[:2] != ["input_ids", "position_ids"]:
        raise SystemExit(f"{path}: exported without past keys and values; use export_gpt(..., with_past=True)")
    n_head = int(meta["n_head"])
    return session, int(meta["block_size"]), names[2:], (n_head, int(meta["n_embd"]) // n_head)


def generate(session, block_size, past_names, heads, ids, max_new_tokens, greedy=True, temperature=1.0, top_k=None,
             rng=None):
    """Extend ``ids`` (B, T) int64 by ``max_new_tokens`` tokens; returns (B, T + new)."""
    B = ids.shape[0]
    outputs = [o.name for o in session.get_outputs()]

    def prefill(context):
        feeds = {"input_ids": context, "position_ids": np.tile(np.arange(context.shape[1]), (B, 1))}
        feeds.update({n: np.zeros((B, *heads[:1], 0, heads[1]), np.float32) for n in past_names})
        return session.run(None, feeds)

    result = prefill(ids[:, -block_size:])
    for i in range(max_new_tokens):
        logits = result[0][:, -1].astype(np.float64)  # (B, V)
        if greedy or temperature == 0:
            new = logits.argmax(-1)
        else:
            z = logits / temperature
            if top_k is not None and top_k < z.shape[1]:
                kth = np.sort(z, axis=1)[:, -top_k][:, None]
                z = np.where(z < kth, -np.inf, z)
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            new = np.array([rng.choice(p.shape[1], p=row) for row in p])
        ids = np.concatenate([ids, new[:, None]], axis=1)
        if i + 1 == max_new_tokens:
            break
        past_len = result[1].shape[2]
        if past_len + 1 > block_size:
            result = prefill(ids[:, -block_size:])  # crop: restart the past on the last block_size tokens
            continue
        feeds = {"input_ids": new[:, None].astype(np.int64), "position_ids": np.full((B, 1), past_len)}
        feeds.update({n.replace("present", "past_key_values"): v for n, v in zip(outputs[1:], result[1:])})
        result = session.run(None, feeds)
    return ids


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a .onnx file from bigcore.onnx.export_gpt(..., with_past=True)")
    ap.add_argument("chars", help="the character vocabulary in id order, a UTF-8 text file")
    ap.add_argument("--prompt", default="\n")
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--greedy", action="store_true", help="take the most likely token each time")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-k", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1337)
    args = ap.parse_args(argv)
    with open(args.chars, encoding="utf-8") as f:
        chars = f.read()
    index = {c: i for i, c in enumerate(chars)}
    missing = sorted(set(args.prompt) - set(index))
    if missing:
        print(f"onnx_generate: the prompt has characters outside the vocabulary: {missing}", file=sys.stderr)
        return 2
    session, block_size, past_names, heads = load(args.model)
    ids = np.array([[index[c] for c in args.prompt]], dtype=np.int64)
    out = generate(session, block_size, past_names, heads, ids, args.max_new_tokens, args.greedy, args.temperature,
                   args.top_k, np.random.default_rng(args.seed))
    print("".join(chars[i] for i in out[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
