"""Export a language-model checkpoint to ONNX (``bigcore.onnx.export_gpt``): input ``input_ids`` (batch,
sequence) int64, output ``logits`` (batch, sequence, vocab_size), both axes dynamic. With ``--with-past`` the
model also takes ``position_ids`` and the key/value cache and returns the new cache, with Hugging Face
Optimum's names (``past_key_values.N.key``/``.value`` in, ``present.N.key``/``.value`` out), so a generation loop in any
onnxruntime language costs one position per token (``examples/onnx_generate.py`` is such a loop).

  bigcore export --ckpt out --out gpt.onnx
  bigcore export --ckpt out --out gpt-past.onnx --with-past
  python -c "import onnxruntime as ort, numpy as np; s = ort.InferenceSession('gpt.onnx'); \\
             print(s.run(['logits'], {'input_ids': np.array([[1, 2, 3]])})[0].shape)"

Needs the onnx package (pip install "bigcore[onnx]"). The tokenizer is not part of the ONNX file: save it with
``bigcore.tokenizers`` (``tok.save("tokenizer.json")``) if the runtime side needs it.
"""

import os

from . import _checkpoint
from ._common import CLIError

HELP = "export a checkpoint to ONNX"


def add_arguments(p):
    p.add_argument("--ckpt", required=True, metavar="DIR", help="a checkpoint directory from bigcore train")
    p.add_argument("--out", required=True, metavar="FILE", help="the .onnx file to write (replaced atomically)")
    p.add_argument("--opset", type=int, choices=range(17, 24), default=18, metavar="{17..23}",
                   help="ONNX opset version (default: 18)")
    p.add_argument("--with-past", action="store_true",
                   help="take and return the key/value cache (for generation loops)")


def run(args):
    import bigcore

    try:
        import onnx  # noqa: F401 - checked first, so that a missing package is one line
    except ImportError:
        raise CLIError("exporting needs the onnx package: pip install \"bigcore[onnx]\"") from None
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):
        raise CLIError(f"--out {args.out}: no such directory {parent}")
    if os.path.isdir(args.out):
        raise CLIError(f"--out {args.out} is a directory; give the .onnx file to write")
    model, _, _ = _checkpoint.load_model(args.ckpt, "gpt")
    bigcore.onnx.export_gpt(model, args.out, opset_version=args.opset, with_past=args.with_past)
    cache = ", with its key/value cache" if args.with_past else ""
    print(f"wrote {args.out} (opset {args.opset}; input_ids (batch, sequence) -> logits (batch, sequence, "
          f"{model.config.vocab_size}){cache})")
    return 0
