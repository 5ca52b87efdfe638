"""``export_gpt``: the GPT with the input and output names and dynamic axes that ONNX runtimes expect.

With ``with_past=True`` (not yet: it needs the GPT's KV cache, issue 10) the same function will wrap the model in
a small module whose forward takes ``input_ids``, ``position_ids`` and ``past_key_values.{i}.key``/``.value``
(batch, n_head, past_sequence, head_dim) and returns ``logits`` and ``present.{i}.key``/``.value``, Hugging Face
Optimum's names: the tracer already keeps the ``cat`` of past and new keys and positions built from traced sizes
dynamic, so that wrapper and its names are all that is missing.
"""

from .._creation import zeros
from .._dtype import int64
from .export import export

#: the traced example: batch 2, and up to 5 positions (any sizes work: both axes are dynamic)
_TRACE_B, _TRACE_T = 2, 5


def export_gpt(model, f, opset_version=18, with_past=False, do_constant_folding=True, external_data=False):
    """Export a ``bigcore.models.GPT`` (its composed path) with input ``input_ids`` and output ``logits``.

    Args:
        model: a ``GPT``.
        f: a path or a binary file object.
        opset_version: the ONNX opset, 17 to 23.
        with_past: also take and return the attention keys and values of earlier positions (not available yet).
        do_constant_folding, external_data: as :func:`bigcore.onnx.export`.

    Returns:
        None.

    Shape: ``input_ids`` (batch, sequence) int64, both dynamic, sequence up to ``block_size``; ``logits``
    (batch, sequence, vocab_size) float.

    Example::

        bigcore.onnx.export_gpt(model, "gpt.onnx")
        logits = onnxruntime.InferenceSession("gpt.onnx").run(["logits"], {"input_ids": ids})[0]
    """
    if with_past:
        raise NotImplementedError("export_gpt(with_past=True) needs the GPT's KV cache (issue 10); export without "
                                  "it for now")
    ids = zeros(_TRACE_B, min(_TRACE_T, model.config.block_size), dtype=int64)
    axes = {0: "batch", 1: "sequence"}
    export(model, (ids,), f, input_names=["input_ids"], output_names=["logits"],
           dynamic_axes={"input_ids": axes, "logits": axes}, opset_version=opset_version,
           do_constant_folding=do_constant_folding, external_data=external_data)
