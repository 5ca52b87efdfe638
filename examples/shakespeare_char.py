"""Train nanoGPT's "baby" GPT on tinyshakespeare at the character level, then print a sample.

    python examples/shakespeare_char.py                  # the full recipe: 2000 iterations, a few minutes
    python examples/shakespeare_char.py --max-iters 20   # a smoke run

nanoGPT's config/train_shakespeare_char.py as its README runs it on a CPU: block 64, batch 12, 4 layers, 4 heads,
128 wide, no dropout, no biases (train.py's default), AdamW (betas 0.9, 0.99; weight decay 0.1 on matrices), lr
1e-3 with 100 iterations of linear warmup and cosine decay to 1e-4 at iteration 2000, gradients clipped to norm
1.0. nanoGPT reports a validation loss of about 1.88 for it.

Data: the tinyshakespeare text shipped with bigcore, its 65 distinct characters as the vocabulary, the first 90%
for training and the last 10% for validation. Train and validation loss are the mean over the same fixed
``--eval-iters`` batches each time, every ``--eval-interval`` iterations and at the end. A checkpoint
(bigcore.io, safetensors) goes to ``--checkpoint``. The last line is machine-readable:
``val_loss=<final validation loss> wall_s=<seconds from start to end>``.
"""

import argparse
import math
import os
import time
from dataclasses import asdict

import numpy as np
from tqdm import tqdm

import bigcore
from bigcore.data import load_tinyshakespeare
from bigcore.tokenizers import CharTokenizer
from bigcore.models import GPT, GPTConfig
from bigcore.nn.utils import clip_grad_norm_
from bigcore.optim.lr_scheduler import WarmupCosineLR


def get_batch(data, block_size, batch_size, rng):
    """``batch_size`` random windows of ``data``: inputs and the same windows shifted by one (int64)."""
    ix = rng.integers(0, len(data) - block_size, batch_size)
    x = np.stack([data[i:i + block_size] for i in ix])  # (B, T)
    y = np.stack([data[i + 1:i + 1 + block_size] for i in ix])  # (B, T)
    return bigcore.tensor(x), bigcore.tensor(y)


@bigcore.no_grad()
def estimate_loss(model, batches):
    """Mean loss over fixed batches per split, in eval mode."""
    model.eval()
    out = {split: float(np.mean([model(x, y)[1].item() for x, y in bs])) for split, bs in batches.items()}
    model.train()
    return out


@bigcore.no_grad()
def sample(model, start_ids, length, block_size, temperature, rng):
    """Draw ``length`` tokens one at a time from softmax(last logits / temperature), with numpy."""
    model.eval()
    ids = list(start_ids)
    for _ in range(length):
        context = bigcore.tensor(np.array([ids[-block_size:]]))  # (1, T)
        logits = model(context)[0].numpy()[0, -1].astype(np.float64) / temperature  # (V,)
        p = np.exp(logits - logits.max())
        ids.append(int(rng.choice(len(p), p=p / p.sum())))
    model.train()
    return ids


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-iters", type=int, default=2000)
    ap.add_argument("--eval-interval", type=int, default=250)
    ap.add_argument("--eval-iters", type=int, default=50, help="batches per split in each evaluation")
    ap.add_argument("--batch-size", type=int, default=12)
    ap.add_argument("--block-size", type=int, default=64)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup-iters", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=None, help="bigcore threads (default: all cores)")
    ap.add_argument("--checkpoint", default="out-shakespeare-char/ckpt.safetensors")
    ap.add_argument("--sample-len", type=int, default=300)
    ap.add_argument("--temperature", type=float, default=0.8)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    if args.threads:
        bigcore.set_num_threads(args.threads)
    bigcore.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    text = load_tinyshakespeare()
    tok = CharTokenizer.from_text(text)
    data = np.array(tok.encode(text), dtype=np.int64)  # (N,)
    n = int(0.9 * len(data))
    splits = {"train": data[:n], "val": data[n:]}
    print(f"{len(text):,} characters, vocabulary {tok.vocab_size}; train {n:,}, val {len(data) - n:,} tokens")

    config = GPTConfig(block_size=args.block_size, vocab_size=tok.vocab_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout, bias=False)
    model = GPT(config)
    print(f"{model.num_params() / 1e6:.2f}M parameters, bigcore threads {bigcore.get_num_threads()}, "
          f"SIMD {bigcore.simd_level()}")
    optimizer = model.configure_optimizers(args.weight_decay, args.lr, (0.9, 0.99))
    scheduler = WarmupCosineLR(optimizer, args.warmup_iters, args.max_iters, eta_min=args.min_lr)

    eval_rng = np.random.default_rng(args.seed + 1)
    eval_batches = {split: [get_batch(d, args.block_size, args.batch_size, eval_rng) for _ in range(args.eval_iters)]
                    for split, d in splits.items()}
    tokens_per_iter = args.batch_size * args.block_size

    def report(it):
        losses = estimate_loss(model, eval_batches)
        tqdm.write(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        return losses

    report(0)
    bar = tqdm(range(args.max_iters), desc="training", unit="it")
    t_train = time.perf_counter()
    for it in bar:
        x, y = get_batch(splits["train"], args.block_size, args.batch_size, rng)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        scheduler.step()
        rate = tokens_per_iter * (it + 1) / (time.perf_counter() - t_train)
        bar.set_postfix(loss=f"{loss.item():.4f}", tok_s=f"{rate:,.0f}", refresh=False)
        if (it + 1) % args.eval_interval == 0 and it + 1 < args.max_iters:
            report(it + 1)
    bar.close()
    losses = report(args.max_iters)

    if os.path.dirname(args.checkpoint):
        os.makedirs(os.path.dirname(args.checkpoint), exist_ok=True)
    bigcore.io.save_checkpoint(args.checkpoint, model, optimizer, scheduler, step=args.max_iters,
                               tokenizer=tok, config=asdict(config))
    print(f"checkpoint: {args.checkpoint}")

    ids = sample(model, tok.encode("\n"), args.sample_len, args.block_size, args.temperature, rng)
    print("sample:\n" + tok.decode(ids).strip() + "\n")
    print(f"val_loss={losses['val']:.4f} wall_s={time.perf_counter() - t_start:.1f}")
    return losses["val"]


if __name__ == "__main__":
    main()
