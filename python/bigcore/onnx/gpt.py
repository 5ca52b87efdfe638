"""``export_gpt``: the GPT with the input and output names and dynamic axes that ONNX runtimes expect.

With ``with_past=True`` the model is wrapped in :class:`_GptWithPast`, whose forward takes ``input_ids``,
``position_ids`` and ``past_key_values.{i}.key``/``.value`` (batch, n_head, past_sequence, head_dim) and returns
``logits`` and ``present.{i}.key``/``.value`` (the past with the new positions appended): Hugging Face Optimum's
names, so generation loops written for its GPT-2 exports run the file. One graph serves the prompt (a past of
length 0) and every new token; the causal mask is built in the graph from the traced sizes, aligned so that query
``i`` sees the past and the new positions up to its own.
"""

from .. import nn
from .._creation import arange, zeros
from .._dtype import int64
from .._functions import cat
from ..nn import functional as F
from .export import _export

#: the traced example: batch 2, and up to 5 positions (any sizes work: both axes are dynamic)
_TRACE_B, _TRACE_T = 2, 5


def export_gpt(model, f, opset_version=18, with_past=False, do_constant_folding=True, external_data=False):
    """Export a ``bigcore.models.GPT`` (its composed path) with input ``input_ids`` and output ``logits``.

    Args:
        model: a ``GPT``.
        f: a path or a binary file object.
        opset_version: the ONNX opset, 17 to 23.
        with_past: also take ``position_ids`` and the attention keys and values of earlier positions
            (``past_key_values.{i}.key``/``.value``), and return the keys and values with the new positions
            appended (``present.{i}.key``/``.value``), Hugging Face Optimum's names.
        do_constant_folding, external_data: as :func:`bigcore.onnx.export`.

    Returns:
        None.

    Shape: ``input_ids`` (batch, sequence) int64, both dynamic, sequence up to ``block_size``; ``logits``
    (batch, sequence, vocab_size) float. With past: ``position_ids`` like ``input_ids``; past and present keys and
    values (batch, n_head, past_sequence, head_dim) and (batch, n_head, past_sequence + sequence, head_dim).

    The file's metadata (``metadata_props``) holds ``block_size``, ``vocab_size``, ``n_layer``, ``n_head`` and
    ``n_embd``, so a runtime can crop the context and shape the past without bigcore
    (``examples/onnx_generate.py``).

    Example::

        bigcore.onnx.export_gpt(model, "gpt.onnx")
        logits = onnxruntime.InferenceSession("gpt.onnx").run(["logits"], {"input_ids": ids})[0]
    """
    if with_past:
        _export_with_past(model, f, opset_version, do_constant_folding, external_data)
        return
    ids = zeros(_TRACE_B, min(_TRACE_T, model.config.block_size), dtype=int64)
    axes = {0: "batch", 1: "sequence"}
    _export(model, (ids,), f, input_names=["input_ids"], output_names=["logits"],
            dynamic_axes={"input_ids": axes, "logits": axes}, opset_version=opset_version,
            do_constant_folding=do_constant_folding, external_data=external_data, metadata=_metadata(model))


def _metadata(model):
    """The sizes a runtime needs to drive the graph (read with onnxruntime's ``get_modelmeta()``)."""
    cfg = model.config
    return {"model": "gpt", "block_size": cfg.block_size, "vocab_size": cfg.vocab_size, "n_layer": cfg.n_layer,
            "n_head": cfg.n_head, "n_embd": cfg.n_embd}


class _GptWithPast(nn.Module):
    """The GPT's composed forward for new positions given the keys and values of earlier ones."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, position_ids, *past):
        m = self.model
        t, cfg = m.transformer, m.config
        B, T = input_ids.shape  # batch, new positions
        C, NH = cfg.n_embd, cfg.n_head
        HS = C // NH
        P = past[0].shape[2]  # earlier positions
        S = P + T
        x = t.wte(input_ids) + t.wpe(position_ids)  # (B, T, C)
        # new position i (absolute P + i) sees keys 0 .. P + i
        mask = arange(S, dtype=int64).view(1, S) <= arange(T, dtype=int64).view(T, 1) + P  # (T, S)
        present = []
        for i, block in enumerate(t.h):
            q, k, v = block.attn.c_attn(block.ln_1(x)).split(C, dim=2)  # 3 x (B, T, C)
            q, k, v = (z.view(B, T, NH, HS).transpose(1, 2) for z in (q, k, v))  # (B, NH, T, HS)
            k = cat([past[2 * i], k], dim=2)  # (B, NH, S, HS)
            v = cat([past[2 * i + 1], v], dim=2)  # (B, NH, S, HS)
            present += [k, v]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, NH, T, HS)
            x = x + block.attn.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))  # (B, T, C)
            x = x + block.mlp(block.ln_2(x))  # (B, T, C)
        return (m.lm_head(t.ln_f(x)), *present)  # (B, T, V), 2 x L x (B, NH, S, HS)


def _export_with_past(model, f, opset_version, do_constant_folding, external_data):
    cfg = model.config
    B, T, P = _TRACE_B, 2, 3  # traced with a past, so no size is specialized to 0
    HS = cfg.n_embd // cfg.n_head
    ids = zeros(B, T, dtype=int64)
    pos = arange(P, P + T, dtype=int64).view(1, T).expand(B, T).contiguous()
    dtype = model.transformer.wte.weight.dtype
    past = [zeros(B, cfg.n_head, P, HS, dtype=dtype) for _ in range(2 * cfg.n_layer)]
    names = [f"past_key_values.{i}.{kv}" for i in range(cfg.n_layer) for kv in ("key", "value")]
    outs = ["logits"] + [f"present.{i}.{kv}" for i in range(cfg.n_layer) for kv in ("key", "value")]
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "position_ids": {0: "batch", 1: "sequence"},
            "logits": {0: "batch", 1: "sequence"}}
    axes.update({n: {0: "batch", 2: "past_sequence"} for n in names})
    axes.update({n: {0: "batch", 2: "total_sequence"} for n in outs[1:]})
    was_training = model.training
    model.eval()
    try:
        _export(_GptWithPast(model), (ids, pos, *past), f, input_names=["input_ids", "position_ids", *names],
                output_names=outs, dynamic_axes=axes, opset_version=opset_version,
                do_constant_folding=do_constant_folding, external_data=external_data, metadata=_metadata(model))
    finally:
        model.train(was_training)
