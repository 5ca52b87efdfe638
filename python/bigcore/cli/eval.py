"""Evaluate a language-model checkpoint on a text file: mean cross-entropy per token and perplexity.

  bigcore eval --ckpt out                       # on the bundled tinyshakespeare
  bigcore eval --ckpt out notes.txt --split val  # the last 10% of a file, as bigcore train holds it out

The text is encoded with the checkpoint's tokenizer and cut into consecutive windows of the model's block size;
every token after the first is predicted from the tokens before it in its window. The result line is
``loss=<nats per token> perplexity=<exp(loss)> tokens=<predicted tokens>``.
"""

import math

import numpy as np

from . import _checkpoint
from ._common import CLIError, encode, positive_int, read_text, set_threads

HELP = "loss and perplexity of a checkpoint on a text file"


def add_arguments(p):
    p.add_argument("text_file", nargs="?", metavar="TEXT_FILE", help="UTF-8 text (default: the bundled tinyshakespeare)")
    p.add_argument("--ckpt", required=True, metavar="DIR", help="a checkpoint directory from bigcore train")
    p.add_argument("--split", choices=["all", "train", "val"], default="all",
                   help="all of the text, or the part bigcore train trained on or held out (default: all)")
    p.add_argument("--batch-size", type=positive_int, default=16, metavar="N", help="windows per forward (default: 16)")
    p.add_argument("--max-tokens", type=positive_int, metavar="N", help="evaluate only the first N tokens of the split")
    p.add_argument("--threads", type=positive_int, metavar="N", help="bigcore threads (default: all cores)")


def windows(ids, T):
    """Consecutive windows: inputs ``ids[i:i+T]`` and targets ``ids[i+1:i+T+1]``, the last one padded with
    target -1 (ignored)."""
    n = len(ids) - 1  # predicted tokens
    starts = range(0, n, T)
    x = np.zeros((len(starts), T), np.int64)
    y = np.full((len(starts), T), -1, np.int64)
    for r, i in enumerate(starts):
        k = min(T, n - i)
        x[r, :k] = ids[i:i + k]
        y[r, :k] = ids[i + 1:i + 1 + k]
    return x, y


def run(args):
    import bigcore
    import bigcore.nn.functional as F

    model, tok, ck = _checkpoint.load_model(args.ckpt, "gpt")
    text = read_text(args.text_file)
    set_threads(args.threads)
    ids = encode(tok, text, args.text_file or "the bundled text")
    if args.split != "all":
        frac = ck["extra"].get("train", {}).get("val_fraction", 0.1)
        n_val = int(round(len(ids) * frac))
        ids = ids[len(ids) - n_val:] if args.split == "val" else ids[:len(ids) - n_val]
    if args.max_tokens:
        ids = ids[:args.max_tokens]
    if len(ids) < 2:
        raise CLIError(f"{args.text_file or 'the text'}: the {args.split} split has {len(ids)} token(s); "
                       f"evaluation needs at least 2")
    x, y = windows(ids, model.config.block_size)
    total, count = 0.0, int((y >= 0).sum())
    with bigcore.no_grad():
        for i in range(0, len(x), args.batch_size):
            xb, yb = bigcore.tensor(x[i:i + args.batch_size]), bigcore.tensor(y[i:i + args.batch_size])
            logits, _ = model(xb)  # (B, T, V)
            B, T, V = logits.shape
            total += F.cross_entropy(logits.view(B * T, V), yb.view(B * T), ignore_index=-1, reduction="sum").item()
    loss = total / count
    print(f"loss={loss:.4f} perplexity={math.exp(loss):.3f} tokens={count}")
    return 0
