"""How each call into ``bigcore._core`` is recorded while exporting: the op's public name and its arguments under
PyTorch's argument names. One small function per engine function, with the engine function's name and signature.

An engine function not listed here is recorded as the op ``_core.<name>``, which has no emitter: exporting a
forward that calls it raises ``UnsupportedOperatorError`` naming it (``_core.gpt``, the fused GPT forward, is one).
``from_numpy`` and small ``full`` calls make constants, not ops; ``dropout`` is the identity (eval semantics).
"""

from .symint import SymInt

#: engine functions that are not ops of a forward pass: called through unrecorded
NOT_OPS = {"manual_seed", "get_rng_state", "set_rng_state", "set_num_threads", "get_num_threads",
           "set_grad_enabled", "is_grad_enabled", "simd_level", "default_generator_handle"}

CONSTANT = "constant"  # the op name of a call whose result is a constant of the graph
IDENTITY = "identity"  # the op name of a call that returns its first input unchanged while exporting


def unary(x, kind, min=None, max=None):
    if kind in ("gelu", "gelu_tanh"):
        return "gelu", {"input": x, "approximate": "tanh" if kind == "gelu_tanh" else "none"}
    if kind == "clamp":
        return "clamp", {"input": x, "min": min, "max": max}
    return kind, {"input": x}


def binary(a, b, kind):
    return kind, {"input": a, "other": b}


def compare(a, b, kind):
    return kind, {"input": a, "other": b}


def where_(cond, a, b):
    return "where", {"condition": cond, "input": a, "other": b}


def to_dtype(x, dt):
    return "to", {"input": x, "dtype": dt}


def sum(x, dims=None, keepdim=False):  # noqa: A001 - the engine function's name
    return "sum", {"input": x, "dim": dims, "keepdim": keepdim}


def mean(x, dims=None, keepdim=False):
    return "mean", {"input": x, "dim": dims, "keepdim": keepdim}


def max_dim(x, dim, keepdim, min):  # noqa: A002
    return ("min" if min else "max"), {"input": x, "dim": dim, "keepdim": keepdim}


def amax(x, dims, keepdim, min):  # noqa: A002
    return ("amin" if min else "amax"), {"input": x, "dim": dims, "keepdim": keepdim}


def argmax(x, dim, keepdim, min):  # noqa: A002
    return ("argmin" if min else "argmax"), {"input": x, "dim": dim, "keepdim": keepdim}


def reshape(x, shape):
    return "reshape", {"input": x, "shape": list(shape)}


def permute(x, dims):
    return "permute", {"input": x, "dims": list(dims)}


def transpose(x, d0, d1):
    return "transpose", {"input": x, "dim0": d0, "dim1": d1}


def expand(x, shape):
    return "expand", {"input": x, "size": list(shape)}


def slice(x, specs):  # noqa: A001
    return "slice", {"input": x, "specs": [tuple(s) for s in specs]}


def cat(xs, dim):
    return "cat", {"tensors": list(xs), "dim": dim}


def stack(xs, dim):
    return "stack", {"tensors": list(xs), "dim": dim}


def index_select(x, dim, idx):
    return "index_select", {"input": x, "dim": dim, "index": idx}


def triangle(x, k, upper):
    return ("triu" if upper else "tril"), {"input": x, "diagonal": k}


def unsqueeze(x, dim):
    return "unsqueeze", {"input": x, "dim": dim}


def squeeze(x, dims=None):
    return "squeeze", {"input": x, "dim": dims}


def flatten(x, start, end):
    return "flatten", {"input": x, "start_dim": start, "end_dim": end}


def repeat(x, repeats):
    return "repeat", {"input": x, "repeats": list(repeats)}


def matmul(a, b):
    return "matmul", {"input": a, "other": b}


def linear(x, w, b=None):
    return "linear", {"input": x, "weight": w, "bias": b}


def softmax(x, dim):
    return "softmax", {"input": x, "dim": dim}


def log_softmax(x, dim):
    return "log_softmax", {"input": x, "dim": dim}


def layer_norm(x, normalized_shape, w=None, b=None, eps=1e-5):
    return "layer_norm", {"input": x, "normalized_shape": list(normalized_shape), "weight": w, "bias": b, "eps": eps}


def cross_entropy(logits, target, ignore_index, label_smoothing, reduction):
    return "cross_entropy", {"input": logits, "target": target, "weight": None, "ignore_index": ignore_index,
                             "reduction": reduction, "label_smoothing": label_smoothing}


def embedding(ids, weight):
    return "embedding", {"input": ids, "weight": weight}


def dropout(x, p, training, generator=None):
    return IDENTITY, {"input": x}


def full(shape, value, dt):
    small = len(shape) <= 1 and all(type(s) is int for s in shape) and (not shape or shape[0] <= 16)
    if small and not isinstance(value, SymInt):  # a traced size as the value stays in the graph
        return CONSTANT, {}
    return "full", {"size": list(shape), "fill_value": value, "dtype": dt}


def arange(start, end, step, dt):
    return "arange", {"start": start, "end": end, "step": step, "dtype": dt}


def from_numpy(a):
    return CONSTANT, {}


def rand(shape, dt, generator=None):
    return "rand", {"size": list(shape), "dtype": dt}


def randn(shape, dt, generator=None):
    return "randn", {"size": list(shape), "dtype": dt}


def randint(low, high, shape, dt, generator=None):
    return "randint", {"low": low, "high": high, "size": list(shape), "dtype": dt}


def multinomial(probs, num_samples, replacement, generator=None):
    return "multinomial", {"input": probs, "num_samples": num_samples, "replacement": replacement}


# ----- indexing along a dim, sorting, running sums -----
def gather(x, dim, index):
    return "gather", {"input": x, "dim": dim, "index": index}


def scatter(x, dim, index, src):
    return "scatter", {"input": x, "dim": dim, "index": index, "src": src}


def scatter_add(x, dim, index, src):
    return "scatter_add", {"input": x, "dim": dim, "index": index, "src": src}


def put(x, index, source, accumulate):
    return "put", {"input": x, "index": index, "source": source, "accumulate": accumulate}


def one_hot(x, num_classes):
    return "one_hot", {"tensor": x, "num_classes": num_classes}


def sort(x, dim, descending, stable):
    return "sort", {"input": x, "dim": dim, "descending": descending, "stable": stable}


def topk(x, k, dim, largest, sorted):  # noqa: A002 - PyTorch's name
    return "topk", {"input": x, "k": k, "dim": dim, "largest": largest, "sorted": sorted}


def cumsum(x, dim):
    return "cumsum", {"input": x, "dim": dim}


# ----- in place: recorded as the op, whose output stands for the written tensor from then on -----
def add_(x, other, alpha):
    return "add_", {"input": x, "other": other, "alpha": alpha}


def sub_(x, other, alpha):
    return "sub_", {"input": x, "other": other, "alpha": alpha}


def mul_(x, other):
    return "mul_", {"input": x, "other": other}


def div_(x, other):
    return "div_", {"input": x, "other": other}


def clamp_(x, min=None, max=None):  # noqa: A002
    return "clamp_", {"input": x, "min": min, "max": max}


def fill_(x, value):
    return "fill_", {"input": x, "value": value}


def zero_(x):
    return "zero_", {"input": x}


def copy_(x, src):
    return "copy_", {"input": x, "src": src}


def masked_fill_(x, mask, value):
    return "masked_fill_", {"input": x, "mask": mask, "value": value}


def scatter_(x, dim, index, src):
    return "scatter_", {"input": x, "dim": dim, "index": index, "src": src}


def scatter_add_(x, dim, index, src):
    return "scatter_add_", {"input": x, "dim": dim, "index": index, "src": src}


def put_(x, index, source, accumulate):
    return "put_", {"input": x, "index": index, "source": source, "accumulate": accumulate}


ADAPTERS = {name: fn for name, fn in dict(globals()).items() if callable(fn) and not name.startswith("_")}
