"""Who says this line? Fine-tune a GPT pretrained on Shakespeare to name the speaker, against the same network
trained from scratch.

    python examples/finetune_speakers.py                       # the full run: about 3.5 minutes on 2 cores
    python examples/finetune_speakers.py --pretrain-iters 50 --epochs 1 --max-lines 400   # a smoke run

The task: every line spoken by one of the 8 speakers with the most lines in the bundled tinyshakespeare
(GLOUCESTER, DUKE VINCENTIO, KING RICHARD II, LEONTES, CORIOLANUS, ROMEO, MENENIUS, PETRUCHIO: 5,592 lines),
labelled with the speaker. Whole speeches are held out (15%, seeded), so no held-out line has a neighbour from its
own speech in training; and the held-out speeches are removed from the text the GPT is pretrained on, so the
language model never reads a line it is later tested on.

1. Pretrain nanoGPT's "baby" GPT at the character level on that text, by examples/shakespeare_char.py's recipe
   (block 64, batch 12, 4 layers, 4 heads, 128 wide, AdamW, warmup and cosine decay; 2000 iterations by default).
2. Fine-tune ``GPTForSequenceClassification.from_gpt(pretrained, 8)`` (the hidden state of each line's last
   character through a new bias-free head) and, with the same recipe, the same network from random weights.
3. Print the held-out accuracy of both beside the majority-class baseline (always answering the speaker with the
   most training lines). The last line is machine-readable:
   ``pretrained_acc=... scratch_acc=... majority_acc=... wall_s=...``.
"""

import argparse
import collections
import os
import time
from dataclasses import asdict

import numpy as np
from tqdm import tqdm

import bigcore
from bigcore.data import load_tinyshakespeare
from bigcore.models import GPT, GPTConfig, GPTForSequenceClassification
from bigcore.nn.utils import clip_grad_norm_
from bigcore.optim.lr_scheduler import WarmupCosineLR
from bigcore.tokenizers import CharTokenizer


def speeches(text):
    """``(speaker, [lines], block)`` for every speech: a ``NAME:`` line, then its lines, up to a blank line."""
    out = []
    for block in text.split("\n\n"):
        head, *lines = block.split("\n")
        if head.endswith(":") and lines:
            out.append((head[:-1], [line for line in lines if line.strip()], block))
    return out


def split_task(text, n_speakers, held_out, rng):
    """Lines of the ``n_speakers`` speakers with the most lines, split by whole speeches; and the text without
    the held-out speeches, for pretraining."""
    all_speeches = speeches(text)
    count = collections.Counter()
    for who, lines, _ in all_speeches:
        count[who] += len(lines)
    names = [who for who, _ in count.most_common(n_speakers)]
    mine = [i for i, (who, _, _) in enumerate(all_speeches) if who in names]
    test_ids = set(rng.choice(mine, size=int(round(held_out * len(mine))), replace=False).tolist())
    train, test = [], []
    for i in mine:
        who, lines, _ = all_speeches[i]
        (test if i in test_ids else train).extend((line.rstrip(), names.index(who)) for line in lines)
    held_blocks = {all_speeches[i][2] for i in test_ids}
    pretrain_text = "\n\n".join(b for b in text.split("\n\n") if b not in held_blocks)
    return names, train, test, pretrain_text


def pretrain(text, tok, args):
    """The baby recipe of examples/shakespeare_char.py on ``text``; returns the GPT and its validation loss."""
    data = np.array(tok.encode(text), dtype=np.int64)
    n = int(0.9 * len(data))
    rng = np.random.default_rng(args.seed)

    def batch(d):
        ix = rng.integers(0, len(d) - args.block_size, args.batch_size)
        x = np.stack([d[i:i + args.block_size] for i in ix])  # (B, T)
        y = np.stack([d[i + 1:i + 1 + args.block_size] for i in ix])  # (B, T)
        return bigcore.tensor(x), bigcore.tensor(y)

    model = GPT(GPTConfig(block_size=args.block_size, vocab_size=tok.vocab_size, n_layer=4, n_head=4, n_embd=128,
                          dropout=0.0, bias=False))
    optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    scheduler = WarmupCosineLR(optimizer, min(100, args.pretrain_iters // 10), args.pretrain_iters, eta_min=1e-4)
    for _ in tqdm(range(args.pretrain_iters), desc="pretraining", unit="it"):
        _, loss = model(*batch(data[:n]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
    model.eval()
    with bigcore.no_grad():
        val = float(np.mean([model(*batch(data[n:]))[1].item() for _ in range(50)]))
    return model.train(), val


def padded(pairs, idx, pad):
    """The lines ``idx`` as a right-padded (B, T) batch and their labels (B,)."""
    T = max(len(pairs[i][0]) for i in idx)
    x = np.full((len(idx), T), pad, np.int64)
    for r, i in enumerate(idx):
        x[r, :len(pairs[i][0])] = pairs[i][0]
    return bigcore.tensor(x), bigcore.tensor(np.array([pairs[i][1] for i in idx], np.int64))


def finetune(model, train, args, desc):
    """AdamW (lr warmup then cosine to a tenth), gradient clipping; every parameter that requires grad moves."""
    steps = args.epochs * -(-len(train) // args.ft_batch_size)
    optimizer = model.configure_optimizers(0.01, args.ft_lr, (0.9, 0.99))
    scheduler = WarmupCosineLR(optimizer, steps // 10, steps, eta_min=args.ft_lr / 10)
    rng = np.random.default_rng(args.seed)
    model.train()
    bar = tqdm(total=steps, desc=desc, unit="it")
    for _ in range(args.epochs):
        order = rng.permutation(len(train))
        for b in range(0, len(train), args.ft_batch_size):
            _, loss = model(*padded(train, order[b:b + args.ft_batch_size], model.pad_token_id))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            scheduler.step()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            bar.update(1)
    bar.close()
    return model


@bigcore.no_grad()
def accuracy(model, test, batch_size):
    model.eval()
    correct = 0
    for b in range(0, len(test), batch_size):
        x, y = padded(test, range(b, min(b + batch_size, len(test))), model.pad_token_id)
        correct += int((model(x)[0].numpy().argmax(-1) == y.numpy()).sum())
    return correct / len(test)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrain-iters", type=int, default=2000, help="language-model iterations (the baby recipe: 2000)")
    ap.add_argument("--block-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=12, help="pretraining batch")
    ap.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs, for both classifiers")
    ap.add_argument("--ft-batch-size", type=int, default=32)
    ap.add_argument("--ft-lr", type=float, default=1e-3, help="fine-tuning peak learning rate, for both")
    ap.add_argument("--freeze", type=int, default=0, help="keep the pretrained embeddings and first N blocks fixed")
    ap.add_argument("--speakers", type=int, default=8)
    ap.add_argument("--held-out", type=float, default=0.15, help="share of the speeches held out")
    ap.add_argument("--max-lines", type=int, default=None, help="use only this many training lines (smoke runs)")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--pretrained", metavar="FILE", help="keep the pretrained GPT in this checkpoint: written after "
                    "pretraining, read instead of pretraining when it exists (same --seed and --held-out)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    if args.threads:
        bigcore.set_num_threads(args.threads)
    bigcore.manual_seed(args.seed)
    text = load_tinyshakespeare()
    tok = CharTokenizer.from_text(text)  # 65 characters, "\n" among them: the padding id
    pad = tok.encode("\n")[0]
    names, train, test, pretrain_text = split_task(text, args.speakers, args.held_out, np.random.default_rng(args.seed))
    if args.max_lines:
        train = train[:args.max_lines]
    # a line is its characters, cut to the block size; none ends in "\n", so the padding is never mistaken for it
    train = [(tok.encode(line)[:args.block_size], y) for line, y in train]
    test = [(tok.encode(line)[:args.block_size], y) for line, y in test]
    counts = np.bincount([y for _, y in train], minlength=len(names))
    majority = float(np.mean([y == counts.argmax() for _, y in test]))
    print(f"speakers: {', '.join(names)}")
    print(f"{len(train):,} training lines, {len(test):,} held-out lines; pretraining on {len(pretrain_text):,} "
          f"characters (the held-out speeches removed)")

    if args.pretrained and os.path.exists(args.pretrained):
        gpt = GPT(GPTConfig(**bigcore.io.load(args.pretrained)["extra"]["config"]))
        bigcore.io.load_checkpoint(args.pretrained, gpt)
        print(f"pretrained: read from {args.pretrained}")
    else:
        gpt, val = pretrain(pretrain_text, tok, args)
        print(f"pretrained: {args.pretrain_iters} iterations, validation loss {val:.4f}")
        if args.pretrained:
            bigcore.io.save_checkpoint(args.pretrained, gpt, tokenizer=tok, config=asdict(gpt.config), seed=args.seed)
    pretrained = GPTForSequenceClassification.from_gpt(gpt, len(names), pad_token_id=pad)
    if args.freeze:
        for m in [pretrained.transformer.wte, pretrained.transformer.wpe, *list(pretrained.transformer.h)[:args.freeze]]:
            m.requires_grad_(False)
    bigcore.manual_seed(args.seed)
    scratch = GPTForSequenceClassification(gpt.config, len(names), pad_token_id=pad)

    results = {}
    for name, model in (("pretrained", pretrained), ("scratch", scratch)):
        finetune(model, train, args, f"fine-tuning ({name})")
        results[name] = accuracy(model, test, 128)
        print(f"{name:>10}: held-out accuracy {results[name]:.4f}")
    print(f"  majority: held-out accuracy {majority:.4f} (always {names[counts.argmax()]})")
    print(f"pretrained_acc={results['pretrained']:.4f} scratch_acc={results['scratch']:.4f} "
          f"majority_acc={majority:.4f} wall_s={time.perf_counter() - t0:.1f}")
    return {**results, "majority": majority}


if __name__ == "__main__":
    main()
