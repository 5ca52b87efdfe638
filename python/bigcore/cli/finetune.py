"""Fine-tune a GPT to classify texts, from a CSV or JSON Lines file of text,label pairs.

  bigcore finetune lines.csv --ckpt out --out speakers          # from a language model of bigcore train
  bigcore finetune reviews.jsonl --from-pretrained gpt2/ --freeze 10 --out reviews
  bigcore finetune lines.csv --preset baby --out from-scratch    # the same network from random weights

The data: CSV with a header naming --text-column and --label-column (default text, label), or two columns and no
header; JSON Lines: one object per line with those two keys. Labels are any strings (or integers); the classes
are the distinct labels. Held out: --val-file, or a random --val-fraction of the file (default 0.1).

The model is bigcore's GPTForSequenceClassification (Hugging Face's GPT2ForSequenceClassification): the hidden
state of each text's last token goes through a bias-free linear head; texts are padded on the right with the
id of "\\n" (trailing whitespace is stripped from every text, so no text ends in it). --freeze N keeps the
embeddings and the first N transformer blocks fixed. After every epoch the held-out loss and accuracy are printed
beside the majority-class baseline; OUT/ckpt.safetensors (model, tokenizer, labels) is written at the end.
"""

import time

import numpy as np

from . import _checkpoint
from ._common import (CLIError, encode, fraction, non_negative_float, non_negative_int, positive_float, positive_int,
                      probability, say, set_threads)
from ._labeled_data import label_names, read_pairs

HELP = "fine-tune a GPT to classify texts (CSV / JSON Lines of text,label pairs)"


def add_arguments(p):
    from .train import PRESETS

    p.add_argument("data_file", metavar="DATA_FILE", help="a .csv, .tsv or .jsonl file of text,label pairs")
    p.add_argument("--text-column", default="text", help="the text's column or key (default: text)")
    p.add_argument("--label-column", default="label", help="the label's column or key (default: label)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--ckpt", metavar="DIR", help="start from this bigcore train checkpoint (its tokenizer too)")
    src.add_argument("--from-pretrained", metavar="DIR", help="start from a local Hugging Face GPT-2 directory "
                     "(config.json, model.safetensors, and its tokenizer.json or vocab.json + merges.txt)")
    src.add_argument("--preset", choices=sorted(PRESETS), help="start from random weights of this size (the default, "
                     "baby, when neither --ckpt nor --from-pretrained is given)")
    p.add_argument("--tokenizer", choices=["char", "byte"], default="char",
                   help="from random weights: the tokenizer, built on the data (default: char)")
    p.add_argument("--val-file", metavar="FILE", help="held-out pairs (default: a --val-fraction of DATA_FILE)")
    p.add_argument("--val-fraction", type=fraction, default=0.1, metavar="F", help="default: 0.1")
    p.add_argument("--epochs", type=positive_int, default=3, metavar="N", help="default: 3")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="default: 32")
    p.add_argument("--lr", type=positive_float, default=3e-4, metavar="LR",
                   help="peak learning rate; cosine decay to a tenth of it (default: 3e-4)")
    p.add_argument("--warmup-iters", type=non_negative_int, default=0, metavar="N", help="default: 0")
    p.add_argument("--weight-decay", type=non_negative_float, default=0.01, metavar="WD", help="default: 0.01")
    p.add_argument("--dropout", type=probability, default=0.0, metavar="P", help="default: 0")
    p.add_argument("--freeze", type=non_negative_int, default=None, metavar="N",
                   help="keep the embeddings and the first N blocks fixed")
    p.add_argument("--max-length", type=positive_int, metavar="N",
                   help="keep the first N tokens of each text (default and most: the model's block size)")
    p.add_argument("--out", default="out-finetune", metavar="DIR", help="checkpoint directory (default: out-finetune)")
    p.add_argument("--seed", type=int, default=1337, help="default: 1337")
    p.add_argument("--threads", type=positive_int, metavar="N", help="bigcore threads (default: all cores)")


def _model_and_tokenizer(args, texts, num_labels):
    """The classifier (training mode) and its tokenizer, from --ckpt, --from-pretrained or random weights."""
    import bigcore
    from ..models import GPT, GPTConfig, GPTForSequenceClassification
    from ..tokenizers import ByteTokenizer, CharTokenizer
    from .train import PRESETS

    if args.ckpt:
        ck = _checkpoint.read(args.ckpt, "gpt")
        gpt, tok = _checkpoint.build(ck, _checkpoint.checkpoint_file(args.ckpt))
        if args.dropout:
            config = GPTConfig(**{**ck["extra"]["config"], "dropout": args.dropout})
            state, gpt = gpt.state_dict(), GPT(config)
            gpt.load_state_dict(state)
        return GPTForSequenceClassification.from_gpt(gpt, num_labels, _pad_id(tok)), tok
    if args.from_pretrained:
        try:
            tok = bigcore.tokenizers.load(args.from_pretrained)
        except FileNotFoundError:
            raise CLIError(f"--from-pretrained {args.from_pretrained}: no tokenizer.json, nor vocab.json and "
                           f"merges.txt, beside the model") from None
        except ValueError as e:
            raise CLIError(f"--from-pretrained: {e}") from None
        try:
            model = GPTForSequenceClassification.from_pretrained(args.from_pretrained, num_labels, _pad_id(tok),
                                                                 dropout=args.dropout)
        except (OSError, ValueError) as e:
            raise CLIError(f"--from-pretrained: {e}") from None
        return model, tok
    s = PRESETS[args.preset or "baby"]
    tok = ByteTokenizer() if args.tokenizer == "byte" else CharTokenizer.from_text("\n" + "".join(texts))
    config = GPTConfig(block_size=s["block_size"], vocab_size=tok.vocab_size, n_layer=s["n_layer"],
                       n_head=s["n_head"], n_embd=s["n_embd"], dropout=args.dropout, bias=s["bias"])
    return GPTForSequenceClassification(config, num_labels, _pad_id(tok)), tok


def _pad_id(tok):
    from ..tokenizers import CharTokenizer

    ids = [] if isinstance(tok, CharTokenizer) and "\n" not in tok.index else tok.encode("\n")
    if len(ids) == 1:
        return ids[0]
    eos = getattr(tok, "eos_token_id", None)
    if eos is None:
        raise CLIError("the tokenizer has no single token for '\\n' nor an end-of-text token to pad with")
    return eos


def _encode_all(tok, texts, where, max_length):
    return [encode(tok, t, f"{where}, text {i + 1}")[:max_length] for i, t in enumerate(texts)]


def _batch(seqs, labels, idx, pad):
    import bigcore

    T = max(len(seqs[i]) for i in idx)
    x = np.full((len(idx), T), pad, np.int64)
    for r, i in enumerate(idx):
        x[r, :len(seqs[i])] = seqs[i]
    return bigcore.tensor(x), bigcore.tensor(np.asarray([labels[i] for i in idx], np.int64))


def evaluate(model, seqs, labels, batch_size):
    """``(mean loss, accuracy)`` over held-out pairs, in eval mode."""
    import bigcore

    model.eval()
    total, correct = 0.0, 0
    with bigcore.no_grad():
        for i in range(0, len(seqs), batch_size):
            idx = list(range(i, min(i + batch_size, len(seqs))))
            x, y = _batch(seqs, labels, idx, model.pad_token_id)
            logits, loss = model(x, y)
            total += loss.item() * len(idx)
            correct += int((logits.numpy().argmax(-1) == y.numpy()).sum())
    model.train()
    return total / len(seqs), correct / len(seqs)


def run(args):
    import bigcore
    from tqdm import tqdm

    from ..nn.utils import clip_grad_norm_
    from ..optim.lr_scheduler import WarmupCosineLR

    _checkpoint.check_out_dir(args.out)
    texts, labels = read_pairs(args.data_file, args.text_column, args.label_column)
    rng = np.random.default_rng(args.seed)
    if args.val_file:
        val_texts, val_labels = read_pairs(args.val_file, args.text_column, args.label_column)
    else:
        order = rng.permutation(len(texts))
        n_val = int(round(len(texts) * args.val_fraction))
        if n_val < 1 or n_val == len(texts):
            raise CLIError(f"{args.data_file}: {len(texts)} pairs cannot be split by --val-fraction {args.val_fraction}")
        val_texts, val_labels = [texts[i] for i in order[:n_val]], [labels[i] for i in order[:n_val]]
        texts, labels = [texts[i] for i in order[n_val:]], [labels[i] for i in order[n_val:]]
    names = label_names(labels)
    if len(names) < 2:
        raise CLIError(f"{args.data_file}: the training pairs have {len(names)} distinct label(s); classifying needs 2")
    unseen = sorted(set(val_labels) - set(names))
    if unseen:
        raise CLIError(f"{args.val_file or args.data_file}: held-out label {unseen[0]!r} is not among the training labels")
    set_threads(args.threads)
    bigcore.manual_seed(args.seed)

    model, tok = _model_and_tokenizer(args, texts, len(names))
    block = model.config.block_size
    if args.max_length and args.max_length > block:
        raise CLIError(f"--max-length {args.max_length} is longer than the model's block size {block}")
    if args.freeze is not None:
        if args.freeze > model.config.n_layer:
            raise CLIError(f"--freeze {args.freeze}: the model has {model.config.n_layer} blocks")
        for m in [model.transformer.wte, model.transformer.wpe, *list(model.transformer.h)[:args.freeze]]:
            m.requires_grad_(False)
    max_length = args.max_length or block
    ids_of = {n: i for i, n in enumerate(names)}
    seqs = _encode_all(tok, texts, args.data_file, max_length)
    val_seqs = _encode_all(tok, val_texts, args.val_file or args.data_file, max_length)
    y, val_y = [ids_of[v] for v in labels], [ids_of[v] for v in val_labels]
    majority = max(np.bincount(y, minlength=len(names)))
    baseline = float(np.mean(np.asarray(val_y) == int(np.argmax(np.bincount(y, minlength=len(names))))))

    steps_per_epoch = -(-len(seqs) // args.batch_size)
    total = steps_per_epoch * args.epochs
    optimizer = model.configure_optimizers(args.weight_decay, args.lr, (0.9, 0.99))
    if args.warmup_iters >= total:
        raise CLIError(f"--warmup-iters {args.warmup_iters} must be less than the {total} steps of training")
    scheduler = WarmupCosineLR(optimizer, args.warmup_iters, total, eta_min=args.lr / 10)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    say(f"{len(seqs):,} training and {len(val_seqs):,} held-out texts, {len(names)} labels (the most frequent "
        f"{majority / len(seqs):.1%} of training); {trainable / 1e6:.2f}M trainable parameters; {total} steps")
    model.train()
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(seqs))
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}", unit="it", disable=None, dynamic_ncols=True)
        running = []
        for b in bar:
            x, t = _batch(seqs, y, order[b * args.batch_size:(b + 1) * args.batch_size], model.pad_token_id)
            _, loss = model(x, t)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            scheduler.step()
            running.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(running[-20:]):.4f}", refresh=False)
        bar.close()
        val_loss, acc = evaluate(model, val_seqs, val_y, args.batch_size)
        print(f"epoch {epoch}: train loss {np.mean(running):.4f}, held-out loss {val_loss:.4f}, held-out accuracy "
              f"{acc:.4f} (majority class {baseline:.4f})", flush=True)
    file = _checkpoint.save(args.out, model.eval(), tok, step=total, kind="classifier", labels=names,
                            pad_token_id=model.pad_token_id, val_accuracy=acc)
    say(f"checkpoint: {file} ({time.perf_counter() - t0:.1f} s)")
    return 0
