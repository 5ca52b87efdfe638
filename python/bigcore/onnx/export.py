"""``bigcore.onnx.export``: ``torch.onnx.export``'s signature and behaviour for bigcore modules.

One export: check the arguments, trace one forward pass (``trace.py``), emit ONNX (``build.py``), check the model
with onnx's checker and write it atomically (a temporary file in the target directory, then a rename).
"""

import errno
import os
import tempfile

from ..nn import Module
from .signature import (check_axes, distinct, flatten_outputs, input_tensors, name_all, normalize_dynamic_axes,
                        split_args)

#: the opsets the emitters target: LayerNormalization needs 17; Gelu is native from 20
MIN_OPSET, MAX_OPSET = 17, 23
_PROTO_LIMIT = 2**31 - 1  # protobuf's 2 GiB: larger models need external_data=True


def export(model, args, f, input_names=None, output_names=None, dynamic_axes=None, opset_version=18, kwargs=None,
           do_constant_folding=True, external_data=False):
    """Export a model to ONNX by tracing one run of its forward, as ``torch.onnx.export``.

    The forward runs once in eval mode (dropout off) whatever the model's mode, and every op it runs is recorded,
    with sizes read from ``.shape``/``.size()`` on dynamic axes traced, so a ``view(B, T, NH, HS)`` or a causal
    mask built from them follows the input's size. Parameters and buffers become initializers named by their
    ``state_dict`` keys (a tied weight is stored once).

    Args:
        model: a ``bigcore.nn.Module`` (a ``keras.Model`` too).
        args: the forward's positional arguments: a tuple, or one tensor; a dict as the last element holds
            keyword arguments. Tensors become graph inputs (numpy arrays are made tensors); other values are
            constants of the trace.
        f: a path (``str`` or ``os.PathLike``) or a binary file object.
        input_names: names of the graph inputs in order (default: forward's parameter names).
        output_names: names of the graph outputs in order (default: ``output``, or ``output_0``, ``output_1``...,
            or a returned dict's keys).
        dynamic_axes: ``{name: [axis, ...]}`` or ``{name: {axis: "dim_name"}}`` for inputs and outputs whose
            sizes vary (``{"input_ids": {0: "batch", 1: "sequence"}}``); other axes are fixed to the traced size.
        opset_version: the ONNX opset, 17 to 23 (default 18).
        kwargs: more keyword arguments of forward.
        do_constant_folding: fold subgraphs of constants into initializers (transposed weights, LSTM gates).
        external_data: store the weights in ``<f>.data`` beside the model (needed past 2 GiB; ``f`` a path).

    Returns:
        None.

    Raises:
        bigcore.onnx.UnsupportedOperatorError: an op without an ONNX emitter (its message names the op, the module
            path and the opset).
        ValueError: an opset out of range, ``dynamic_axes`` naming an unknown input or output or an axis out of
            range, more names than inputs or outputs, a model past 2 GiB without ``external_data``.
        TypeError: a model that is not a Module, or a forward returning something other than a tensor or a
            tuple/list/dict of tensors.
        OSError: the directory of ``f`` does not exist (``FileNotFoundError`` naming it); no file is left behind.

    Example::

        bigcore.onnx.export(model, (x,), "model.onnx", input_names=["x"], output_names=["y"],
                            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    """
    _export(model, args, f, input_names, output_names, dynamic_axes, opset_version, kwargs, do_constant_folding,
            external_data)


def _export(model, args, f, input_names=None, output_names=None, dynamic_axes=None, opset_version=18, kwargs=None,
            do_constant_folding=True, external_data=False, metadata=None):
    """:func:`export`, with ``metadata`` (str -> str) written into the model's ``metadata_props``."""
    import onnx

    from .build import build
    from .ops import MODULE_OPS
    from .trace import trace

    if not isinstance(model, Module):
        raise TypeError(f"bigcore.onnx.export: model must be a bigcore.nn.Module, got {type(model).__name__}")
    if isinstance(opset_version, bool) or not isinstance(opset_version, int) or not MIN_OPSET <= opset_version <= MAX_OPSET:
        raise ValueError(f"bigcore.onnx.export: opset_version must be an int from {MIN_OPSET} to {MAX_OPSET}, "
                         f"got {opset_version!r}")
    if external_data and not isinstance(f, (str, os.PathLike)):
        raise ValueError("bigcore.onnx.export: external_data=True needs f to be a path (the weights go beside it)")
    _check_directory(f)
    args, kwargs = distinct(*split_args(args, kwargs))
    found = input_tensors(model, args, kwargs)
    in_names = name_all(found, input_names, "input")
    axes = normalize_dynamic_axes(dynamic_axes)
    inputs = []
    for (t, _), name in zip(found, in_names):
        inputs.append((t, name, check_axes(name, axes.get(name, {}), t.ndim)))

    tracer, result = trace(model, args, kwargs, inputs, MODULE_OPS)

    returned = flatten_outputs(result)
    out_names = name_all(returned, output_names, "output")
    unknown = sorted(set(axes) - set(in_names) - set(out_names))
    if unknown:
        raise ValueError(f"bigcore.onnx.export: dynamic_axes names {unknown}, which are not inputs {in_names} or "
                         f"outputs {out_names}")
    dyn = {name: a for _, name, a in inputs}
    for (t, _), name in zip(returned, out_names):
        dyn[name] = check_axes(name, axes.get(name, {}), t.ndim)
    proto = build(
        tracer,
        [(tracer.values[t._c.id], name) for t, name, _ in inputs],
        [(tracer.value_of(t._c), name) for (t, _), name in zip(returned, out_names)],
        opset_version, dyn, do_constant_folding)
    if proto.ByteSize() > _PROTO_LIMIT and not external_data:
        raise ValueError(f"bigcore.onnx.export: the model is {proto.ByteSize() / 2**30:.1f} GiB, past protobuf's "
                         "2 GiB; export with external_data=True")
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    if not external_data:
        onnx.checker.check_model(proto)
    _save(proto, f, external_data)


def _check_directory(f):
    if isinstance(f, (str, os.PathLike)):
        d = os.path.dirname(os.path.abspath(os.fspath(f)))
        if not os.path.isdir(d):
            raise FileNotFoundError(errno.ENOENT, f"bigcore.onnx.export: the directory {d!r} does not exist",
                                    os.fspath(f))


def _save(proto, f, external_data):
    """Write atomically: temporary files in the target directory, renamed into place once complete."""
    if not isinstance(f, (str, os.PathLike)):
        f.write(proto.SerializeToString())
        return
    from onnx import external_data_helper

    path = os.path.abspath(os.fspath(f))
    d, base = os.path.split(path)
    tmp_dir = tempfile.mkdtemp(prefix=f".{base}.", dir=d)
    try:
        if external_data:
            data = base + ".data"
            external_data_helper.convert_model_to_external_data(proto, all_tensors_to_one_file=True, location=data,
                                                                size_threshold=1024)
            external_data_helper.write_external_data_tensors(proto, tmp_dir)
        with open(os.path.join(tmp_dir, base), "wb") as out:
            out.write(proto.SerializeToString())
        if external_data:
            os.replace(os.path.join(tmp_dir, base + ".data"), os.path.join(d, base + ".data"))
        os.replace(os.path.join(tmp_dir, base), path)
    finally:
        for name in os.listdir(tmp_dir):
            os.unlink(os.path.join(tmp_dir, name))
        os.rmdir(tmp_dir)
