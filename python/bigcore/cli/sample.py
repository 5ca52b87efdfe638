"""Sample text from a language-model checkpoint, printed as it is generated.

  bigcore sample --ckpt out                                   # 500 tokens after a newline, as nanoGPT's sample.py
  bigcore sample --ckpt out --prompt "ROMEO:" --max-new-tokens 200 --temperature 0.8 --top-k 40 --seed 7
  bigcore sample --ckpt out --prompt-file start.txt --num-samples 3
  bigcore sample --ckpt out --prompt "KING:" --greedy

The prompt is encoded with the checkpoint's tokenizer; the model continues it with its key/value cache
(``GPT.stream``), cropping the context to the block size as nanoGPT does. The text streams to stdout token by
token; several samples are drawn one after another, each followed by a line of dashes (nanoGPT's separator).
``--seed`` makes the draw reproducible (a run without it draws differently each time).
"""

import sys

from . import _checkpoint
from ._common import (CLIError, encode, non_negative_float, non_negative_int, positive_int, read_text, set_threads,
                      top_probability)

HELP = "generate text from a checkpoint"
SEPARATOR = "---------------"


def add_arguments(p):
    p.add_argument("--ckpt", required=True, metavar="DIR", help="a checkpoint directory from bigcore train")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--prompt", metavar="TEXT", help="the text to continue (default: a newline)")
    source.add_argument("--prompt-file", metavar="FILE", help="read the prompt from a UTF-8 file")
    p.add_argument("--max-new-tokens", type=non_negative_int, default=500, metavar="N",
                   help="tokens to generate per sample (default: 500)")
    p.add_argument("--num-samples", type=positive_int, default=1, metavar="N",
                   help="samples to draw, one after another (default: 1)")
    p.add_argument("--temperature", type=non_negative_float, default=0.8, metavar="T",
                   help="divides the logits; 0 is greedy (default: 0.8)")
    p.add_argument("--top-k", type=positive_int, default=200, metavar="K",
                   help="draw only among the K most likely tokens (default: 200)")
    p.add_argument("--top-p", type=top_probability, metavar="P", help="nucleus sampling: the most likely tokens whose "
                   "probability reaches P (default: off)")
    p.add_argument("--greedy", action="store_true", help="always take the most likely token (no sampling)")
    p.add_argument("--seed", type=non_negative_int, metavar="N", help="seed of the draw (default: a fresh one)")
    p.add_argument("--threads", type=positive_int, metavar="N", help="bigcore threads (default: all cores)")


class _Printer:
    """Writes the decoded text of a growing list of ids as it grows. Decoding the whole list each time and
    holding back a trailing replacement character keeps multi-byte characters whole across tokens."""

    def __init__(self, tokenizer, out):
        self.tokenizer, self.out = tokenizer, out
        self.ids, self.shown = [], 0

    def add(self, ids, final=False):
        self.ids.extend(ids)
        text = self.tokenizer.decode(self.ids)
        end = len(text) if final else len(text.rstrip("\ufffd"))
        if end > self.shown:
            self.out.write(text[self.shown:end])
            self.out.flush()
            self.shown = end


def run(args):
    import bigcore

    model, tok, _ = _checkpoint.load_model(args.ckpt, "gpt")
    if args.prompt_file is not None:
        prompt, where = read_text(args.prompt_file), args.prompt_file
    else:
        prompt, where = ("\n" if args.prompt is None else args.prompt), "--prompt"
    if not prompt:
        raise CLIError("--prompt is empty; give at least one character (the default is a newline)")
    ids = encode(tok, prompt, where)
    if len(ids) == 0:
        raise CLIError(f"{where}: the prompt encodes to no tokens")
    set_threads(args.threads)
    generator = bigcore.Generator()
    if args.seed is None:
        generator.seed()
    else:
        generator.manual_seed(args.seed)
    idx = bigcore.tensor(ids[None, :])
    options = dict(temperature=args.temperature, top_k=min(args.top_k, model.config.vocab_size), top_p=args.top_p,
                   do_sample=not args.greedy, generator=generator)
    for _ in range(args.num_samples):
        printer = _Printer(tok, sys.stdout)
        printer.add(ids.tolist())
        for new in model.stream(idx, args.max_new_tokens, **options):
            printer.add(new.tolist())
        printer.add([], final=True)
        sys.stdout.write("\n" if args.num_samples == 1 else "\n" + SEPARATOR + "\n")
    return 0
