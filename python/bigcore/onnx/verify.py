"""``bigcore.onnx.verify``: run an exported file in onnxruntime and the model in bigcore on the same inputs."""

import os

import numpy as np

from ..autograd import no_grad
from .signature import eval_mode, flatten_outputs, input_tensors, split_args


def verify(model, args, f, rtol=1e-4, atol=1e-5, kwargs=None):
    """Compare an exported model, run by onnxruntime's CPU provider, with the model run by bigcore.

    Both see the same inputs (the tensors among ``args``/``kwargs``, in the order ``export`` made them graph
    inputs); bigcore runs in eval mode under ``no_grad``.

    Args:
        model: the bigcore module that was exported.
        args: forward's arguments, as given to ``export`` (sizes may differ from the traced ones along dynamic axes).
        f: the ONNX file: a path, bytes, or a binary file object.
        rtol, atol: the tolerance, as ``numpy.allclose``: ``|onnx - bigcore| <= atol + rtol * |bigcore|``.
        kwargs: more keyword arguments of forward.

    Returns:
        dict: output name -> the largest absolute difference between onnxruntime's and bigcore's values.

    Raises:
        AssertionError: an output's shape differs, or its values differ beyond the tolerance (the message lists
            every output's largest difference).

    Example::

        bigcore.onnx.verify(model, (x,), "model.onnx")  # {'output': 2.4e-07}
    """
    import onnxruntime as ort

    if isinstance(f, (str, os.PathLike)):
        source = os.fspath(f)
    elif isinstance(f, (bytes, bytearray)):
        source = bytes(f)
    else:
        f.seek(0)
        source = f.read()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    args, kwargs = split_args(args, kwargs)
    tensors = [t for t, _ in input_tensors(model, args, kwargs)]
    names = [i.name for i in session.get_inputs()]
    if len(names) != len(tensors):
        raise AssertionError(f"bigcore.onnx.verify: the file has {len(names)} inputs {names}, the arguments give "
                             f"{len(tensors)} tensors")
    got = session.run(None, {n: t.numpy() for n, t in zip(names, tensors)})
    with eval_mode(model), no_grad():
        want = [t.numpy() for t, _ in flatten_outputs(model(*args, **kwargs))]
    report, bad = {}, []
    for o, a, b in zip(session.get_outputs(), got, want):
        if a.shape != b.shape:
            raise AssertionError(f"bigcore.onnx.verify: output {o.name!r} has shape {a.shape} in onnxruntime and "
                                 f"{b.shape} in bigcore")
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        report[o.name] = float(np.nanmax(diff)) if diff.size else 0.0
        if not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
            bad.append(o.name)
    if bad:
        raise AssertionError(f"bigcore.onnx.verify: outputs {bad} differ beyond rtol={rtol}, atol={atol}; largest "
                             f"differences: {report}")
    return report
