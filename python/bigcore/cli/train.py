"""Train a GPT language model on a text file (default: the bundled tinyshakespeare).

  bigcore train --preset baby --max-iters 2000                 # nanoGPT's "baby" Shakespeare recipe
  bigcore train notes.txt --tokenizer bpe --vocab-size 1024 --out notes-gpt
  bigcore train --out notes-gpt --resume --max-iters 4000     # continue a run (bit-identically)

The first 90% of the tokens train, the last 10% validate. Every --eval-interval steps and at the end, the train
and validation loss (means over --eval-iters fixed batches) are printed and OUT/ckpt.safetensors is written
(model, optimizer, scheduler, tokenizer, settings, step and generator states; atomically). Ctrl-C finishes the
current step, writes the checkpoint and exits with status 130; --resume continues from it. The learning rate warms
up linearly for --warmup-iters, then decays along a cosine to --min-lr at --lr-decay-iters (default: --max-iters).

Data-parallel over MPI (pip install "bigcore[mpi]"): `mpirun -n 4 bigcore train ...` runs 4 ranks, each on
--batch-size windows of a global batch of 4 x --batch-size (the gradients are averaged, so the run equals one
process with the global batch); only rank 0 prints, evaluates and writes checkpoints; --resume works with any
number of ranks. --out must be on a file system every rank can read.

Presets (explicit options override them):
  baby   4 layers, 4 heads, 128 wide, block 64, batch 12, lr 1e-3 -> 1e-4, 2000 iterations (nanoGPT's
         shakespeare_char as its README runs it on a CPU; about 0.8M parameters)
  small  6 layers, 6 heads, 384 wide, block 256, batch 64, dropout 0.2, 5000 iterations (nanoGPT's
         shakespeare_char GPU config; 10.7M parameters: hours on a CPU)
  gpt2   GPT-2 small (12 layers, 12 heads, 768 wide, block 1024, biases; 124M parameters with GPT-2's
         vocabulary), batch 8, lr 6e-4 -> 6e-5, warmup 2000, betas (0.9, 0.95)
"""

import argparse
import os
import sys
import time
import numpy as np

from . import _checkpoint
from ._common import (CLIError, StopOnInterrupt, encode, fraction, non_negative_float, non_negative_int, positive_float,
                      mpi_world, positive_int, probability, read_text, say, set_threads, sha256)

HELP = "train a GPT language model on a text file"

_BASE = dict(dropout=0.0, bias=False, weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0, warmup_iters=100,
             eval_interval=250, eval_iters=50)
PRESETS = {
    "baby": dict(_BASE, n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, lr=1e-3, min_lr=1e-4,
                 max_iters=2000),
    "small": dict(_BASE, n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2, lr=1e-3,
                  min_lr=1e-4, max_iters=5000, eval_iters=200),
    "gpt2": dict(_BASE, n_layer=12, n_head=12, n_embd=768, block_size=1024, bias=True, batch_size=8, lr=6e-4,
                 min_lr=6e-5, beta2=0.95, warmup_iters=2000, max_iters=600000, eval_interval=2000, eval_iters=200),
}
#: the settings of a run: a preset's keys, and these (None in a preset: chosen from the data or other settings)
SETTINGS = ["preset"] + list(PRESETS["baby"]) + ["lr_decay_iters", "seed", "tokenizer", "vocab_size",
                                                "tokenizer_file", "val_fraction"]
#: what --resume may change; everything else comes from the checkpoint
RESUMABLE = {"max_iters", "eval_interval", "eval_iters"}


def add_arguments(p):
    p.add_argument("text_file", nargs="?", metavar="TEXT_FILE",
                   help="UTF-8 text to train on (default: the bundled tinyshakespeare, 1.1M characters)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="model and training sizes (default: baby)")
    p.add_argument("--out", default="out", metavar="DIR", help="checkpoint directory (default: out)")
    p.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in --out")
    g = p.add_argument_group("model (default: the preset's)")
    g.add_argument("--n-layer", type=positive_int)
    g.add_argument("--n-head", type=positive_int)
    g.add_argument("--n-embd", type=positive_int)
    g.add_argument("--block-size", type=positive_int, help="context length in tokens")
    g.add_argument("--dropout", type=probability)
    g.add_argument("--bias", action=argparse.BooleanOptionalAction, help="biases in the Linear and LayerNorm layers")
    g = p.add_argument_group("tokenizer")
    g.add_argument("--tokenizer", choices=["char", "byte", "bpe"], help="characters of the text (default), UTF-8 "
                   "bytes, or byte-level BPE trained on the text")
    g.add_argument("--vocab-size", type=positive_int, help="BPE vocabulary size to train (default: 1024)")
    g.add_argument("--tokenizer-file", metavar="PATH", help="use a saved tokenizer instead: a tokenizer.json, a "
                   "directory with GPT-2's vocab.json and merges.txt, or a file from Tokenizer.save")
    g = p.add_argument_group("training (default: the preset's)")
    g.add_argument("--max-iters", type=positive_int, help="train until this step")
    g.add_argument("--batch-size", type=positive_int)
    g.add_argument("--lr", type=positive_float, help="peak learning rate")
    g.add_argument("--min-lr", type=non_negative_float, help="learning rate at the end of the cosine decay")
    g.add_argument("--warmup-iters", type=non_negative_int)
    g.add_argument("--lr-decay-iters", type=positive_int, help="step where the decay reaches --min-lr "
                   "(default: --max-iters)")
    g.add_argument("--weight-decay", type=non_negative_float)
    g.add_argument("--grad-clip", type=non_negative_float, help="clip the gradient norm to this (0: no clipping)")
    g.add_argument("--eval-interval", type=positive_int, help="evaluate and save every this many steps")
    g.add_argument("--eval-iters", type=positive_int, help="batches per split in each evaluation")
    g.add_argument("--val-fraction", type=fraction, help="the tail of the text kept for validation (default: 0.1)")
    g.add_argument("--seed", type=int, help="seed of the initialization and the batches (default: 1337)")
    p.add_argument("--threads", type=positive_int, help="bigcore threads (default: all cores)")


def settings_of(args, ck):
    """The run's settings: from the checkpoint when resuming (the options --resume may change applied), else
    the preset's with the explicit options over them."""
    given = {k: getattr(args, k) for k in SETTINGS if getattr(args, k, None) is not None}
    if ck is not None:
        settings = dict(ck["extra"]["train"])
        fixed = {k: v for k, v in given.items() if k not in RESUMABLE and v != settings.get(k)}
        if fixed:
            k, v = next(iter(fixed.items()))
            raise CLIError(f"--resume continues the run with its own settings: --{k.replace('_', '-')} is "
                           f"{settings.get(k)!r} there, not {v!r} (only --max-iters, --eval-interval and "
                           f"--eval-iters may change)")
        settings.update(given)
        return settings
    preset = args.preset or "baby"
    settings = dict(PRESETS[preset], preset=preset, lr_decay_iters=None, seed=1337, tokenizer="char", vocab_size=None,
                    tokenizer_file=None, val_fraction=0.1)
    settings.update(given)
    if settings["lr_decay_iters"] is None:
        settings["lr_decay_iters"] = settings["max_iters"]
    if settings["vocab_size"] is not None and (settings["tokenizer"] != "bpe" or settings["tokenizer_file"]):
        raise CLIError("--vocab-size is the size of a BPE vocabulary to train: use it with --tokenizer bpe")
    if settings["tokenizer"] == "bpe" and settings["vocab_size"] is None:
        settings["vocab_size"] = 1024
    if settings["n_embd"] % settings["n_head"]:
        raise CLIError(f"--n-embd {settings['n_embd']} must be a multiple of --n-head {settings['n_head']}")
    if settings["warmup_iters"] >= settings["lr_decay_iters"]:
        raise CLIError(f"--warmup-iters {settings['warmup_iters']} must be less than --lr-decay-iters "
                       f"{settings['lr_decay_iters']} (which defaults to --max-iters)")
    return settings


def make_tokenizer(settings, text):
    from ..tokenizers import BPETokenizer, ByteTokenizer, CharTokenizer, load

    if settings["tokenizer_file"]:
        try:
            return load(settings["tokenizer_file"])
        except (OSError, ValueError) as e:
            raise CLIError(f"--tokenizer-file: {e}") from None
    if settings["tokenizer"] == "byte":
        return ByteTokenizer()
    if settings["tokenizer"] == "bpe":
        try:
            return BPETokenizer.train(text, vocab_size=settings["vocab_size"])
        except ValueError as e:
            raise CLIError(f"--vocab-size: {e}") from None
    return CharTokenizer.from_text(text)


def get_batch(data, block_size, batch_size, rng):
    """``batch_size`` random windows of ``data`` and the same windows shifted by one, as int64 tensors."""
    import bigcore

    ix = rng.integers(0, len(data) - block_size, batch_size)
    x = np.stack([data[i:i + block_size] for i in ix])  # (B, T)
    y = np.stack([data[i + 1:i + 1 + block_size] for i in ix])  # (B, T)
    return bigcore.tensor(x), bigcore.tensor(y)


def estimate_loss(model, batches):
    """Mean loss over fixed batches per split, in eval mode, without gradients."""
    import bigcore

    model.eval()
    with bigcore.no_grad():
        out = {split: float(np.mean([model(x, y)[1].item() for x, y in bs])) for split, bs in batches.items()}
    model.train()
    return out


def run(args):
    import bigcore
    from tqdm import tqdm

    from ..models import GPT, GPTConfig
    from ..nn.parallel import DistributedDataParallel
    from ..nn.utils import clip_grad_norm_
    from ..optim.lr_scheduler import WarmupCosineLR

    _checkpoint.check_out_dir(args.out, resume=args.resume)
    ck = _checkpoint.read(args.out, "gpt") if args.resume else None
    s = settings_of(args, ck)
    if ck is not None and args.text_file is None:
        text_file = s["text_file"]
    else:
        text_file = args.text_file
    text = read_text(text_file)
    if ck is not None and sha256(text) != s["text_sha256"]:
        raise CLIError(f"--resume: {text_file or 'the bundled text'} is not the text this run was trained on "
                       f"({s['text_file'] or 'the bundled tinyshakespeare'})")
    set_threads(args.threads)
    rank, world = mpi_world()
    lead = rank == 0  # only rank 0 prints, evaluates and writes checkpoints

    tok = bigcore.tokenizers.from_state_dict(ck["tokenizer"]) if ck is not None else make_tokenizer(s, text)
    data = encode(tok, text, text_file or "the bundled text")
    n_val = int(round(len(data) * s["val_fraction"]))
    splits = {"train": data[:len(data) - n_val], "val": data[len(data) - n_val:]}
    for split, d in splits.items():
        if len(d) <= s["block_size"]:
            raise CLIError(f"{text_file or 'the text'} gives {len(data)} tokens; its {split} part ({len(d)}) must be "
                           f"longer than --block-size {s['block_size']}")

    config = GPTConfig(block_size=s["block_size"], vocab_size=tok.vocab_size, n_layer=s["n_layer"],
                       n_head=s["n_head"], n_embd=s["n_embd"], dropout=s["dropout"], bias=s["bias"])
    bigcore.manual_seed(s["seed"])
    rng = np.random.default_rng(s["seed"])
    model = GPT(config)
    optimizer = model.configure_optimizers(s["weight_decay"], s["lr"], (s["beta1"], s["beta2"]))
    scheduler = WarmupCosineLR(optimizer, s["warmup_iters"], s["lr_decay_iters"], eta_min=s["min_lr"])
    step = 0
    if ck is not None:
        try:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            scheduler.load_state_dict(ck["scheduler"])
            rng.bit_generator.state = ck["extra"]["data_rng"]
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CLIError(f"{_checkpoint.checkpoint_file(args.out)} is damaged: {str(e).splitlines()[0]}") from None
        bigcore.io.set_rng_state(ck["rng"])
        step = ck["step"]
        if step >= s["max_iters"]:
            say(f"{args.out} is at step {step}, at or past --max-iters {s['max_iters']}: nothing to do")
            return 0
    if ck is None:
        s.update(text_file=None if text_file is None else os.path.abspath(text_file), text_sha256=sha256(text))
    # data-parallel: the ranks draw the same global batch of batch_size * world windows and each takes its rows;
    # the averaged gradients are then those of the global batch, and the generator's state is every rank's
    net = DistributedDataParallel(model) if world > 1 else model
    if rank > 0:  # dropout masks: a stream of each rank's own (rank 0 keeps the one the checkpoint restores)
        bigcore.manual_seed((s["seed"] * 1_000_003 + step) * 1009 + rank)
    mine = slice(rank * s["batch_size"], (rank + 1) * s["batch_size"])

    if lead:
        say(f"{len(data):,} tokens ({type(tok).__name__}, vocabulary {tok.vocab_size}); train {len(splits['train']):,}, "
        f"val {len(splits['val']):,}; {model.num_params() / 1e6:.2f}M parameters; threads "
            f"{bigcore.get_num_threads()}; " + (f"resuming at step {step}" if step else f"preset {s['preset']}")
            + (f"; {world} ranks, global batch {s['batch_size'] * world}" if world > 1 else ""))
    eval_rng = np.random.default_rng(s["seed"] + 1)
    eval_batches = {split: [get_batch(d, s["block_size"], s["batch_size"], eval_rng) for _ in range(s["eval_iters"])]
                    for split, d in splits.items()}

    def checkpoint(losses):
        return _checkpoint.save(args.out, model, tok, optimizer, scheduler, step, kind="gpt", train=s,
                                data_rng=rng.bit_generator.state, val_loss=losses and losses["val"])

    def evaluate():
        losses = estimate_loss(model, eval_batches)
        tqdm.write(f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}", file=sys.stdout)
        sys.stdout.flush()
        return losses

    tokens_per_step = s["batch_size"] * s["block_size"] * world
    losses = None
    bar = tqdm(total=s["max_iters"], initial=step, unit="it", desc="training", disable=None if lead else True,
               dynamic_ncols=True)
    t0, done = time.perf_counter(), 0
    with StopOnInterrupt() as stop:
        while step < s["max_iters"] and not stopping(stop, world):
            x, y = get_batch(splits["train"], s["block_size"], s["batch_size"] * world, rng)
            _, loss = net(x[mine], y[mine])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if s["grad_clip"] > 0:
                clip_grad_norm_(model.parameters(), s["grad_clip"])
            optimizer.step()
            scheduler.step()
            step, done = step + 1, done + 1
            rate = tokens_per_step * done / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{loss.item():.4f}", tok_s=f"{rate:,.0f}", refresh=False)
            bar.update(1)
            if step % s["eval_interval"] == 0 and step < s["max_iters"] and lead:
                losses = evaluate()
                checkpoint(losses)
        bar.close()
        if step < s["max_iters"]:  # stopped by Ctrl-C (on any rank)
            if lead:
                file = checkpoint(losses)
                say(f"interrupted at step {step}: checkpoint written to {file}; continue with --resume")
            return 130
    if lead:
        losses = evaluate()
        file = checkpoint(losses)
        say(f"checkpoint: {file} (step {step}, {time.perf_counter() - t0:.1f} s)")
    return 0


def stopping(stop, world):
    """Whether to stop before the next step: Ctrl-C seen here, or (data-parallel) on any rank, so that every
    rank stops at the same step."""
    if world == 1:
        return stop.requested
    import bigcore
    from .. import distributed

    flag = bigcore.tensor([1.0 if stop.requested else 0.0])
    distributed.all_reduce(flag, op=distributed.ReduceOp.MAX)
    return flag.item() > 0
