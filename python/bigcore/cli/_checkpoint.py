"""The checkpoint the command line writes and reads: ``DIR/ckpt.safetensors``, a ``bigcore.io`` training
checkpoint (model, optimizer, scheduler, step, generator state, tokenizer) whose extra values say what it holds:

- ``kind``: ``"gpt"`` (``bigcore train``) or ``"classifier"`` (``bigcore finetune``);
- ``config``: the ``GPTConfig`` as a dict; for a classifier also ``labels`` (names in id order) and
  ``pad_token_id``;
- for ``gpt``: ``train`` (every setting of the run, so ``--resume`` continues it) and ``data_rng`` (the batch
  sampler's numpy generator state).

Every subcommand that takes ``--ckpt`` reads it with :func:`load_model`, which turns a missing, corrupt or foreign
file into a one-line ``CLIError``.
"""

import os
from dataclasses import asdict

from ._common import CLIError

CKPT_FILE = "ckpt.safetensors"
KINDS = {"gpt": "a language model (bigcore train)", "classifier": "a classifier (bigcore finetune)"}


def checkpoint_file(path):
    """``path`` itself when it is a file, else ``path/ckpt.safetensors``."""
    path = os.fspath(path)
    return path if os.path.isfile(path) else os.path.join(path, CKPT_FILE)


def read(path, kind):
    """The raw checkpoint at ``path`` (a directory or the file), checked to be a bigcore CLI checkpoint of
    ``kind``.

    Raises:
        CLIError: no such checkpoint, a file that is not one, or one of another kind.
    """
    import bigcore

    file = checkpoint_file(path)
    if not os.path.exists(file):
        raise CLIError(f"no checkpoint at {path}" + (f" (looked for {file})" if file != os.fspath(path) else ""))
    try:
        ck = bigcore.io.load(file)
    except ValueError as e:
        raise CLIError(str(e)) from None
    except OSError as e:
        raise CLIError(f"cannot read {file}: {e.strerror or e}") from None
    extra = ck.get("extra") if isinstance(ck, dict) else None
    if not isinstance(extra, dict) or extra.get("kind") not in KINDS or not isinstance(extra.get("config"), dict) \
            or "model" not in ck:
        raise CLIError(f"{file} is not a checkpoint written by bigcore train or bigcore finetune")
    if extra["kind"] != kind:
        raise CLIError(f"{file} holds {KINDS[extra['kind']]}; this command needs {KINDS[kind]}")
    if ck.get("tokenizer") is None:
        raise CLIError(f"{file} has no tokenizer")
    return ck


def build(ck, file):
    """The model and tokenizer of a checkpoint from :func:`read`, the weights loaded, in eval mode."""
    from ..models import GPT, GPTConfig, GPTForSequenceClassification
    from ..tokenizers import from_state_dict

    extra = ck["extra"]
    try:
        config = GPTConfig(**extra["config"])
        if extra["kind"] == "gpt":
            model = GPT(config)
        else:
            model = GPTForSequenceClassification(config, len(extra["labels"]), pad_token_id=extra["pad_token_id"])
        model.load_state_dict(ck["model"])
        tokenizer = from_state_dict(ck["tokenizer"])
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CLIError(f"{file} is damaged: {first}") from None
    return model.eval(), tokenizer


def load_model(path, kind="gpt"):
    """``(model, tokenizer, checkpoint)`` from a checkpoint directory (or file), for sampling, evaluation,
    export or fine-tuning; the model in eval mode.

    Example::

        model, tok, ck = load_model("out")  # in a subcommand's run(); errors are CLIErrors
        ids = tok.encode("ROMEO:")
    """
    ck = read(path, kind)
    model, tokenizer = build(ck, checkpoint_file(path))
    return model, tokenizer, ck


def save(out_dir, model, tokenizer, optimizer=None, scheduler=None, step=0, **extra):
    """Write ``out_dir/ckpt.safetensors`` atomically (the directory is created); returns its path."""
    import bigcore

    os.makedirs(out_dir, exist_ok=True)
    file = os.path.join(out_dir, CKPT_FILE)
    bigcore.io.save_checkpoint(file, model, optimizer, scheduler, step=step, tokenizer=tokenizer,
                               config=asdict(model.config), **extra)
    return file


def check_out_dir(out_dir, resume=False):
    """Refuse an ``--out`` that is a file, or that already holds a checkpoint (unless resuming it): nothing is
    overwritten by a run that was not asked to continue it."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise CLIError(f"--out {out_dir} is a file, not a directory")
    exists = os.path.exists(os.path.join(out_dir, CKPT_FILE))
    if exists and not resume:
        raise CLIError(f"{out_dir} already holds a checkpoint; continue it with --resume, or choose another --out")
    if resume and not exists:
        raise CLIError(f"--resume: no checkpoint in {out_dir} ({os.path.join(out_dir, CKPT_FILE)} is missing)")
