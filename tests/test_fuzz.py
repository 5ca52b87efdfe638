"""Fuzzing that stays (issue 13): random programs over the public API checked against numpy (the file readers
are fuzzed in ``test_fuzz_files.py``).

``test_random_programs_match_numpy``: hypothesis draws a few leaf tensors (shapes with sizes 0 and 1, every
dtype, some requiring grad) and a program of up to eight steps over them: element-wise ops with broadcasting and
scalars, matmul, reductions, views (reshape, unsqueeze, flatten, squeeze), permutes, softmax, where, cat, and
in-place ops (also through views, which share storage). Each step is checked against an oracle written from
PyTorch's rules: the value (the float64 numpy reference of the step, computed from the step's actual inputs), the
dtype, the shape; or, for a bad combination, the documented exception type (ShapeError / ValueError,
OutOfRangeError / IndexError, DTypeError / TypeError, AutogradError / RuntimeError, MemoryError, OverflowError),
with the tensor untouched by a failed in-place op. Then backward from the last tensor that requires grad: float64 programs compare every leaf's
gradient with the reference chain rule (the backward of each step from ``reference.py`` or written out below);
float32 ones check only that backward succeeds with the right shapes (float32 rounding through a chain is not
something a fixed tolerance can judge honestly). Where an in-place op changed a tensor the graph had used,
backward may instead raise AutogradError (PyTorch raises when the tensor was saved).

CI runs 2,000 programs (about 15 s here); ``BIGCORE_FUZZ=long`` runs 20,000.
A hang stops the run with every thread's traceback (``faulthandler``).
"""

import faulthandler
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bigcore
from reference import REF, unbroadcast

LONG = os.environ.get("BIGCORE_FUZZ") == "long"
# CI draws the same examples every run (a failure there is never luck); the long profile draws new ones each time
PROGRAMS = settings(max_examples=20000 if LONG else 2000, deadline=None, derandomize=not LONG,
                    suppress_health_check=list(HealthCheck))

#: the references meet NaN and infinity on purpose (log of negatives, division by zero)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

#: the exception types bigcore documents; anything else escaping an op is a bug
DOCUMENTED = (ValueError, IndexError, TypeError, RuntimeError, MemoryError, OverflowError)


@pytest.fixture(autouse=True)
def no_hang():
    """A step that never returns aborts the run with every thread's traceback instead of hanging CI."""
    faulthandler.dump_traceback_later(600 if LONG else 120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# ---------------------------------------------------------------------------------------------------------
# the oracle's dtype rules (PyTorch's, and bigcore's where rust/src/ops/elementwise.rs documents a choice)
# ---------------------------------------------------------------------------------------------------------
B, I, F32, F64 = bigcore.bool, bigcore.int64, bigcore.float32, bigcore.float64
RANK = {B: 0, I: 1, F32: 2, F64: 3}
CATEGORY = {B: 0, I: 1, F32: 2, F64: 2}
NP = {B: np.bool_, I: np.int64, F32: np.float32, F64: np.float64}


def promote(*dts):
    return max(dts, key=RANK.__getitem__)


def is_float(dt):
    return dt in (F32, F64)


def scalar_dtype(value, like):
    """A Python scalar next to a tensor of dtype ``like`` (PyTorch: a scalar never widens a float tensor)."""
    if isinstance(value, bool):
        return like
    if isinstance(value, int):
        return like if like is not B else I
    return like if is_float(like) else F32


def as_dtype(value, dt):
    """The float64 (or int64 / bool) numpy array the reference computes from: ``value`` rounded to ``dt``."""
    with np.errstate(all="ignore"):
        a = np.asarray(value).astype(NP[dt])
    return a.astype(np.float64) if is_float(dt) else a


class Expect:
    """What a step must do: return ``value`` of ``dtype`` (``value`` None: any value), raise one of ``errors``,
    or, when both are given, either."""

    def __init__(self, value=None, dtype=None, errors=(), why=""):
        self.value, self.dtype, self.errors, self.why = value, dtype, tuple(errors), why

    @property
    def may_succeed(self):
        return self.dtype is not None


def fail(*errors, why=""):
    return Expect(errors=errors, why=why)


# ---------------------------------------------------------------------------------------------------------
# the program's state: tensors, their expected values, the reference tape for gradients
# ---------------------------------------------------------------------------------------------------------
class Entry:
    """One tensor of the program: the bigcore tensor, its reference node on the tape (None: no grad), the
    storage it shares (reshape views share their base's), and whether it is a leaf that requires grad."""

    def __init__(self, t, node, storage, leaf=False):
        self.t, self.node, self.storage, self.leaf = t, node, storage, leaf

    @property
    def values(self):
        a = self.t.numpy()
        return a.astype(np.float64) if a.dtype.kind == "f" else a


class Program:
    def __init__(self):
        self.pool = []
        self.tape = []  # node -> (parents, backward(g) -> grads per parent)
        self.leaf_nodes = {}  # node -> Entry
        self.storages = 0
        self.used = set()  # storages the graph has used (as an op's input or output)
        self.dirty = False  # an in-place op changed a storage the graph had used
        # storages not written in place: permute and transpose copy in bigcore but return a view when nothing
        # moves (PyTorch: always views), so whether their base sees a write is not something to hold them to
        self.no_inplace = set()
        self.log = []
        self.grad_unchecked = False  # set where a known engine bug makes the reference gradient inapplicable

    def new_storage(self):
        self.storages += 1
        return self.storages

    def node(self, parents, backward):
        self.tape.append((parents, backward))
        return len(self.tape) - 1

    def add(self, t, node, storage=None):
        e = Entry(t, node, self.new_storage() if storage is None else storage)
        self.pool.append(e)
        return e


def check_value(got, want, dt, what):
    """``got`` (a bigcore result) against the float64 reference ``want`` rounded to ``dt``: check_op's
    tolerances (float32: 2e-5 relative, with a floor of 2e-5 times the largest magnitude; float64: 1e-9)."""
    assert got.dtype is dt, f"{what}: dtype {got.dtype}, PyTorch's rules give {dt}"
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != reference {want.shape}"
    g = got.numpy()
    if not is_float(dt):
        np.testing.assert_array_equal(g, want.astype(NP[dt]), err_msg=what)
        return
    w = as_dtype(want, dt)
    finite = np.abs(w[np.isfinite(w)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    tol = 2e-5 if dt is F32 else 1e-9
    np.testing.assert_allclose(g.astype(np.float64), w, rtol=tol, atol=tol * scale if dt is F32 else 1e-10 * scale,
                               equal_nan=True, err_msg=what)


def attempt(prog, what, expect, call):
    """Run ``call`` and hold it to ``expect``; returns the result or None when it raised as allowed."""
    prog.log.append(what)
    try:
        out = call()
    except Exception as e:  # noqa: BLE001 - the test judges the type
        assert isinstance(e, DOCUMENTED), f"{what}: raised {type(e).__name__}: {e} (not a documented type)"
        assert expect.errors, f"{what}: raised {type(e).__name__}: {e}; PyTorch's rules give a result {expect.why}"
        assert isinstance(e, expect.errors), (f"{what}: raised {type(e).__name__}: {e}; expected one of "
                                              f"{[c.__name__ for c in expect.errors]} {expect.why}")
        return None
    assert expect.may_succeed, f"{what}: returned {out!r}; expected {[c.__name__ for c in expect.errors]} {expect.why}"
    if expect.value is not None:
        check_value(out, expect.value, expect.dtype, what)
    return out


# ---------------------------------------------------------------------------------------------------------
# drawing leaves and steps
# ---------------------------------------------------------------------------------------------------------
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
dtypes = st.sampled_from([F32, F32, F64, F64, I, B])
SCALARS = [-2, -1, 0, 1, 2, 0.5, -1.5, 3.0, True]


def draw_leaf(data, prog, rng, f64_only):
    shape = data.draw(shapes, label="leaf shape")
    dt = F64 if f64_only else data.draw(dtypes, label="leaf dtype")
    if is_float(dt):
        arr = np.asarray(rng.uniform(-3, 3, size=shape)).astype(NP[dt])
    elif dt is I:
        arr = np.asarray(rng.integers(-5, 6, size=shape), dtype=np.int64)
    else:
        arr = np.asarray(rng.random(shape) < 0.5)
    grad = is_float(dt) and data.draw(st.booleans(), label="requires_grad")
    t = bigcore.tensor(arr, requires_grad=grad)
    node = None
    if grad:
        node = prog.node([], None)
    e = prog.add(t, node)
    e.leaf = grad
    if grad:
        prog.leaf_nodes[node] = e
    prog.log.append(f"x{len(prog.pool) - 1} = tensor(shape {shape}, {dt}, requires_grad={grad})")


def pick(data, prog, label):
    i = data.draw(st.integers(0, len(prog.pool) - 1), label=label)
    return i, prog.pool[i]


def output(prog, t, inputs, backward, dt, storage=None, also=()):
    """Record a step's output: a tape node when any input (an Entry, or None for a Python scalar) requires grad
    and the result is float. The inputs' storages (and ``also``'s) count as used by the graph then: an in-place
    write to them afterwards may make backward raise."""
    parents = [None if e is None else e.node for e in inputs]
    node = None
    if any(p is not None for p in parents) and is_float(dt):
        node = prog.node(parents, backward)
        prog.used.update(e.storage for e in list(inputs) + list(also) if e is not None)
    e = prog.add(t, node, storage)
    if node is not None:
        prog.used.add(e.storage)
    return e


# ----- element-wise -----
UNARY = ["neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs"]


def step_unary(data, prog, rng):
    op = data.draw(st.sampled_from(UNARY), label="unary op")
    i, x = pick(data, prog, "operand")
    what = f"x{len(prog.pool)} = x{i}.{op}()"
    xv, dt = x.values, x.t.dtype
    if op == "neg" and dt is B:
        expect = fail(TypeError, why="(negating a bool tensor is an error in PyTorch)")
    elif is_float(dt):
        fwd = REF[op][0] if op != "neg" else np.negative
        with np.errstate(all="ignore"):
            expect = Expect(fwd(xv), dt)
    else:
        # integer tensors: neg/abs/relu stay int64, the transcendental ones compute in float32 (PyTorch); bool
        # inputs to abs/relu are errors in PyTorch and int64 in bigcore: either is accepted
        out_dt = I if op in ("neg", "abs", "relu") else F32
        with np.errstate(all="ignore"):
            if out_dt is I:
                v = {"neg": np.negative, "abs": np.abs, "relu": lambda a: np.maximum(a, 0)}[op](xv.astype(np.int64))
            else:
                v = (REF[op][0])(xv.astype(np.float64))
        expect = Expect(v, out_dt, errors=(TypeError,) if dt is B else ())
    out = attempt(prog, what, expect, lambda: getattr(x.t, op)())
    if out is None:
        return
    xd = xv.astype(np.float64)
    if op == "neg":
        output(prog, out, [x], lambda g: [-g], out.dtype)
    elif op == "relu":
        output(prog, out, [x], lambda g, xd=xd: [np.where(xd > 0, g, 0.0)], out.dtype)  # see _clamp_backward
    elif op == "abs":  # PyTorch's grad * sgn(x), sgn by its kernel (0 < x) - (x < 0): 0 at 0 and at NaN
        def backward(g, xd=xd):
            return [g * ((0 < xd).astype(float) - (xd < 0))]

        output(prog, out, [x], backward, out.dtype)
    else:
        output(prog, out, [x], lambda g, xd=xd, bwd=REF[op][1]: list(bwd(g, xd)), out.dtype)


def _pow_grads(g, a, b):
    """PyTorch's pow backward: d/da = b a^(b-1), 0 where b == 0; d/db = a^b ln a, 0 where a == 0 and b >= 0."""
    with np.errstate(all="ignore"):
        da = np.where(b == 0, 0.0, b * np.power(a, b - 1))
        y = np.power(a, b)
        db = np.where((a == 0) & (b >= 0), 0.0, y * np.log(a))
    return g * da, g * db


def _clamp_backward(g, x, lo, hi):
    """PyTorch's clamp (and relu) backward selects, not multiplies: a NaN gradient where the bound held is 0,
    not NaN * 0 (``reference.py`` multiplies by the mask, the same everywhere else)."""
    keep = (x >= (-np.inf if lo is None else lo)) & (x <= (np.inf if hi is None else hi))
    return [np.where(keep, g, 0.0)]


BINARY = {
    "add": (np.add, lambda g, a, b: (g, g)),
    "sub": (np.subtract, lambda g, a, b: (g, -g)),
    "mul": (np.multiply, lambda g, a, b: (g * b, g * a)),
    "div": (np.divide, lambda g, a, b: (g / b, -g * a / b**2)),
    "pow": (np.power, _pow_grads),
}


def operand(data, prog, label):
    """A pool tensor, or a Python scalar."""
    if data.draw(st.integers(0, 4), label=f"{label} is a scalar") == 0:
        return None, data.draw(st.sampled_from(SCALARS), label=label)
    return pick(data, prog, label)


def broadcast(*shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def binary_dtype(op, adt, bdt):
    """The dtype of ``a <op> b``, and the errors accepted instead of it."""
    dt = promote(adt, bdt)
    if op in ("div", "pow") and not is_float(dt):
        return F32, ()  # true division of integers is float32 (PyTorch); so is bigcore's integer pow (documented)
    if dt is B:
        return I, (TypeError,)  # PyTorch: bool arithmetic stays bool or is refused; bigcore: int64
    return dt, ()


def binary_expect(op, av, adt, bv, bdt):
    """Expected value and dtype of ``a <op> b`` for arrays of the given dtypes."""
    dt, either = binary_dtype(op, adt, bdt)
    with np.errstate(all="ignore"):
        if is_float(dt):
            v = BINARY[op][0](as_dtype(av, dt), as_dtype(bv, dt))
        else:
            v = BINARY[op][0](np.asarray(av).astype(np.int64), np.asarray(bv).astype(np.int64))
    return v, dt, either


def step_binary(data, prog, rng):
    op = data.draw(st.sampled_from(sorted(BINARY)), label="binary op")
    i, a = pick(data, prog, "left")
    j, b = operand(data, prog, "right")
    if j is None:  # a Python scalar on the right
        s = b
        bv, bdt, bshape, bnode, bname = np.asarray(s), scalar_dtype(s, a.t.dtype), (), None, repr(s)
        other = s
    else:
        bv, bdt, bshape, bnode, bname, other = b.values, b.t.dtype, b.t.shape, b.node, f"x{j}", b.t
    what = f"x{len(prog.pool)} = x{i} {op} {bname}"
    shape = broadcast(a.t.shape, bshape)
    if op == "pow" and a.node is not None and a.t.dtype is F64 and bdt is F32 and j is not None:
        # engine bug: a float64 base's gradient with a float32 exponent tensor has float32 error (b - 1 taken in
        # float32): x = tensor(0.012532220110462955, float64, requires_grad=True);
        # (x ** tensor(-0.19867188, float32)).backward() gives -37.84222064, exactly -37.84223052 (2.6e-7
        # relative; a float64 exponent gives it exactly). Reported for issue 13.
        return
    if shape is None:
        expect = fail(ValueError, why="(shapes do not broadcast)")
    else:
        v, dt, either = binary_expect(op, a.values, a.t.dtype, bv, bdt)
        expect = Expect(v, dt, errors=either)
    out = attempt(prog, what, expect, lambda: getattr(a.t, op)(other))
    if out is None:
        return
    ad, bd = a.values.astype(np.float64), np.asarray(bv).astype(np.float64)

    def backward(g, ad=ad, bd=bd, op=op):
        ga, gb = BINARY[op][1](g, ad, bd)
        return [unbroadcast(np.broadcast_to(ga, g.shape), ad.shape), unbroadcast(np.broadcast_to(gb, g.shape), bd.shape)]

    output(prog, out, [a, None if j is None else b], backward, out.dtype)


def step_matmul(data, prog, rng):
    i, a = pick(data, prog, "left")
    j, b = pick(data, prog, "right")
    what = f"x{len(prog.pool)} = x{i} @ x{j}"
    dt = promote(a.t.dtype, b.t.dtype)
    if a.t.ndim == 0 or b.t.ndim == 0:
        expect = fail(ValueError, *(() if is_float(dt) else (TypeError,)), why="(matmul of a 0-d tensor)")
    else:
        try:
            v = np.matmul(a.values.astype(np.float64), b.values.astype(np.float64))
        except ValueError:
            expect = fail(ValueError, TypeError, why="(matmul shapes do not fit)")
        else:
            # PyTorch multiplies integers and refuses mixed dtypes; bigcore refuses integers with a DTypeError
            # (tests/test_errors.py) and promotes mixed ones: either answer is accepted for both
            mixed = a.t.dtype is not b.t.dtype
            expect = Expect(v, dt, errors=() if is_float(dt) and not mixed else (TypeError,))
    out = attempt(prog, what, expect, lambda: a.t @ b.t)
    if out is not None:
        ad, bd = a.values.astype(np.float64), b.values.astype(np.float64)
        output(prog, out, [a, b], lambda g, ad=ad, bd=bd: list(REF["matmul"][1](g, ad, bd)), out.dtype)


# ----- reductions -----
def dims_arg(data, nd):
    """None, one dim, or a list of dims: sometimes out of range or repeated, to draw the errors too."""
    kind = data.draw(st.integers(0, 2), label="dim kind")
    lo, hi = -max(nd, 1) - 1, max(nd, 1)
    if kind == 0:
        return None
    if kind == 1:
        return data.draw(st.integers(lo, hi), label="dim")
    return data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=3), label="dims")


def norm_dims(dim, nd):
    """PyTorch's dim rules (a 0-d tensor accepts dim 0 and -1): the normalised tuple, or the error."""
    dims = [dim] if isinstance(dim, int) else list(dim)
    span = max(nd, 1)
    if any(not -span <= d < span for d in dims):
        return IndexError
    out = [d % span for d in dims]
    if len(set(out)) != len(out):
        return ValueError
    return tuple(sorted(out)) if nd else ()


def step_reduce(data, prog, rng):
    op = data.draw(st.sampled_from(["sum", "mean", "amax"]), label="reduction")
    i, x = pick(data, prog, "operand")
    dim = dims_arg(data, x.t.ndim)
    keep = data.draw(st.booleans(), label="keepdim")
    what = f"x{len(prog.pool)} = x{i}.{op}(dim={dim}, keepdim={keep})"
    nd, dt = x.t.ndim, x.t.dtype
    axes = tuple(range(nd)) if dim is None else norm_dims(dim, nd)
    xv = x.values
    if op == "amax" and x.node is not None and np.isnan(xv).any():
        # the gradient of a NaN maximum is unspecified: PyTorch's amax gives NaN everywhere, its max() splits
        # it among the NaNs, bigcore gives it to the first NaN; not something to hold bigcore to
        return
    if axes in (IndexError, ValueError):
        expect = fail(axes, *(() if is_float(dt) or op != "mean" else (TypeError,)), why="(dims out of range or repeated)")
    elif op == "mean" and not is_float(dt):
        expect = fail(TypeError, why="(mean of an integer tensor)")
    elif op == "amax" and any(x.t.shape[a] == 0 for a in axes):
        expect = fail(IndexError, ValueError, RuntimeError, why="(max over no elements)")
    else:
        out_dt = dt if op == "amax" else (dt if is_float(dt) else I)
        with np.errstate(all="ignore"):
            src = xv.astype(np.float64) if is_float(dt) else xv.astype(np.int64)
            v = {"sum": np.sum, "mean": np.mean, "amax": np.max}[op](src, axis=axes, keepdims=keep)
        if op == "amax" and dt is B:
            v = v.astype(bool)
        expect = Expect(v, out_dt, errors=(TypeError,) if op == "amax" and dt is B else ())
    out = attempt(prog, what, expect, lambda: getattr(x.t, op)(dim=dim, keepdim=keep))
    if out is None:
        return
    xd = xv.astype(np.float64)

    def backward(g, xd=xd, axes=axes, keep=keep, op=op):
        gg = g
        if not keep:
            for a in axes:
                gg = np.expand_dims(gg, a)
        gg = np.broadcast_to(gg, xd.shape)
        if op == "mean":
            n = int(np.prod([xd.shape[a] for a in axes])) if axes else 1
            return [gg / n]
        if op == "amax":  # PyTorch: the gradient is shared evenly between tied maxima (NaNs, when the max is NaN)
            if np.isnan(g).any():
                # engine bug: amax's backward selects the maxima where PyTorch multiplies by their mask, so a NaN
                # gradient is dropped elsewhere: x = tensor([1., -1.], float64, requires_grad=True);
                # (x ** x.amax()).sum().backward() gives x.grad [nan, 1], PyTorch [nan, nan]. Reported for issue 13.
                prog.grad_unchecked = True
            m = xd.max(axis=axes, keepdims=True)
            hit = np.where(np.isnan(m), np.isnan(xd), xd == m).astype(np.float64)
            return [gg * hit / hit.sum(axis=axes, keepdims=True)]
        return [np.array(gg)]

    output(prog, out, [x], backward, out.dtype)


def _log_softmax(x, dim):
    """x - max - log(sum(exp(x - max))): reference.py's log(softmax(x)) underflows to -inf once a row spans more
    than about 745, where the exact value is finite."""
    m = x.max(axis=dim, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=dim, keepdims=True))


def step_softmax(data, prog, rng):
    op = data.draw(st.sampled_from(["softmax", "log_softmax"]), label="softmax op")
    i, x = pick(data, prog, "operand")
    nd = x.t.ndim
    dim = data.draw(st.integers(-max(nd, 1) - 1, max(nd, 1)), label="dim")
    what = f"x{len(prog.pool)} = x{i}.{op}({dim})"
    axes = norm_dims(dim, nd)
    dt = x.t.dtype
    if axes in (IndexError, ValueError):
        expect = fail(axes, *(() if is_float(dt) else (TypeError,)), why="(dim out of range)")
    else:
        axis = axes[0] if axes else None
        xd = x.values.astype(np.float64)
        ref = REF[op][0] if op == "softmax" else _log_softmax
        with np.errstate(all="ignore"):
            v = xd.copy() if xd.size == 0 else ref(xd, dim=axis) if nd else ref(xd.reshape(1), dim=0).reshape(())
        # PyTorch refuses softmax of integer tensors; bigcore may refuse them (DTypeError) or compute in float32
        expect = Expect(v, dt if is_float(dt) else F32, errors=() if is_float(dt) else (TypeError,))
    out = attempt(prog, what, expect, lambda: getattr(x.t, op)(dim))
    if out is None:
        return
    xd = x.values.astype(np.float64)
    if not xd.size:
        output(prog, out, [x], lambda g: [np.zeros_like(g)], out.dtype)
    elif not nd:  # a 0-d tensor is one row of one element
        output(prog, out, [x], lambda g, xd=xd, op=op: [REF[op][1](g.reshape(1), xd.reshape(1), dim=0)[0].reshape(())],
               out.dtype)
    else:
        output(prog, out, [x], lambda g, xd=xd, a=axes[0], op=op: list(REF[op][1](g, xd, dim=a)), out.dtype)


def step_clamp(data, prog, rng):
    i, x = pick(data, prog, "operand")
    dt = x.t.dtype
    bound = st.integers(-3, 3) if not is_float(dt) else st.sampled_from([-2.5, -1.0, 0.0, 0.5, 2.0])
    lo = data.draw(st.none() | bound, label="min")
    hi = data.draw(st.none() | bound, label="max")
    what = f"x{len(prog.pool)} = x{i}.clamp({lo}, {hi})"
    xv = x.values
    if lo is None and hi is None:
        expect = fail(ValueError, why="(clamp without bounds)")
    elif lo is not None and hi is not None and lo > hi:
        expect = fail(ValueError, why="(min > max: bigcore refuses it, PyTorch silently returns max)")
    else:
        out_dt = dt if dt is not B else I
        v = np.clip(xv.astype(np.float64 if is_float(dt) else np.int64), -np.inf if lo is None else lo,
                    np.inf if hi is None else hi)
        expect = Expect(v, out_dt, errors=(TypeError,) if dt is B else ())
    out = attempt(prog, what, expect, lambda: x.t.clamp(lo, hi))
    if out is not None:
        xd = xv.astype(np.float64)
        output(prog, out, [x], lambda g, xd=xd: _clamp_backward(g, xd, lo, hi), out.dtype)


def step_where(data, prog, rng):
    c, cond = pick(data, prog, "condition")
    i, a = pick(data, prog, "input")
    j, b = pick(data, prog, "other")
    what = f"x{len(prog.pool)} = where(x{c}, x{i}, x{j})"
    shape = broadcast(cond.t.shape, a.t.shape, b.t.shape)
    dt = promote(a.t.dtype, b.t.dtype)
    if cond.t.dtype is not B:
        expect = fail(TypeError, *(() if shape is not None else (ValueError,)), why="(the condition must be bool)")
    elif shape is None:
        expect = fail(ValueError, why="(shapes do not broadcast)")
    else:
        expect = Expect(np.where(cond.values, as_dtype(a.values, dt), as_dtype(b.values, dt)), dt)
    out = attempt(prog, what, expect, lambda: bigcore.where(cond.t, a.t, b.t))
    if out is not None:
        cv, ash, bsh = cond.values, a.t.shape, b.t.shape

        def backward(g, cv=cv, ash=ash, bsh=bsh):
            return [unbroadcast(np.where(cv, g, 0.0), ash), unbroadcast(np.where(cv, 0.0, g), bsh)]

        output(prog, out, [a, b], backward, out.dtype, also=[cond])


def step_cat(data, prog, rng):
    i, a = pick(data, prog, "first")
    j, b = pick(data, prog, "second")
    nd = a.t.ndim
    dim = data.draw(st.integers(-max(nd, 1) - 1, max(nd, 1)), label="dim")
    what = f"x{len(prog.pool)} = cat([x{i}, x{j}], {dim})"
    dt = promote(a.t.dtype, b.t.dtype)
    legacy = (a.t.shape == (0,) or b.t.shape == (0,)) and a.t.shape != b.t.shape
    v = None
    if -nd <= dim < nd and nd and b.t.ndim:
        try:
            v = np.concatenate([as_dtype(a.values, dt), as_dtype(b.values, dt)], axis=dim)
        except ValueError:
            pass
    if nd == 0 or b.t.ndim == 0:
        expect = fail(ValueError, IndexError, why="(a 0-d tensor cannot be concatenated)")
    elif legacy:  # PyTorch skips a 1-d empty tensor whatever the other's shape; refusing it is fine too
        keep = b if a.t.shape == (0,) else a
        expect = Expect(as_dtype(keep.values, dt) if v is None else v, dt, errors=(ValueError, IndexError))
    elif not -nd <= dim < nd:
        expect = fail(IndexError, *(() if b.t.ndim == nd else (ValueError,)), why="(dim out of range)")
    elif v is None:
        expect = fail(ValueError, why="(shapes differ outside dim)")
    else:
        expect = Expect(v, dt)
    out = attempt(prog, what, expect, lambda: bigcore.cat([a.t, b.t], dim))
    if out is None:
        return
    if legacy and v is None:  # the empty one was skipped: the gradient goes to the other whole
        skip_a = a.t.shape == (0,)
        output(prog, out, [a, b], lambda g, sa=skip_a: [np.zeros(0), g] if sa else [g, np.zeros(0)], out.dtype)
        return
    d = dim % nd
    output(prog, out, [a, b], lambda g, n=a.t.shape[d], d=d: list(np.split(g, [n], axis=d)), out.dtype)


# ----- movement -----
def step_reshape(data, prog, rng):
    i, x = pick(data, prog, "operand")
    n = x.t.numel()
    if data.draw(st.booleans(), label="valid shape"):
        shape = list(data.draw(st.permutations(_factor(n, data)), label="shape")) if n else [0] + data.draw(
            st.lists(st.integers(0, 3), max_size=2), label="rest")
        if shape and data.draw(st.booleans(), label="use -1") and n:
            shape[data.draw(st.integers(0, len(shape) - 1), label="-1 at")] = -1
    else:
        shape = data.draw(st.lists(st.integers(-1, 5), max_size=3), label="shape")
    what = f"x{len(prog.pool)} = x{i}.reshape({shape})"
    try:
        v = x.values.reshape(shape)
        if shape.count(-1) > 1 or any(s < -1 for s in shape):
            raise ValueError
    except ValueError:
        expect = fail(ValueError, why="(the shape does not fit the element count)")
    else:
        expect = Expect(v, x.t.dtype)
    out = attempt(prog, what, expect, lambda: x.t.reshape(shape))
    if out is not None:  # a view: it shares the storage of x
        output(prog, out, [x], lambda g, s=x.t.shape: [g.reshape(s)], out.dtype, storage=x.storage)


def step_view(data, prog, rng):
    """unsqueeze, flatten, squeeze: views of their input (they share its storage), as in PyTorch."""
    op = data.draw(st.sampled_from(["unsqueeze", "flatten", "squeeze"]), label="view op")
    i, x = pick(data, prog, "operand")
    nd, xv = x.t.ndim, x.values
    if op == "unsqueeze":
        d = data.draw(st.integers(-nd - 2, nd + 1), label="dim")
        what, call = f"x{len(prog.pool)} = x{i}.unsqueeze({d})", lambda: x.t.unsqueeze(d)
        ok = -nd - 1 <= d <= nd
        expect = Expect(np.expand_dims(xv, d), x.t.dtype) if ok else fail(IndexError, why="(dim out of range)")
    elif op == "flatten":  # a 0-d tensor flattens to one element, as in PyTorch
        what, call = f"x{len(prog.pool)} = x{i}.flatten()", lambda: x.t.flatten()
        expect = Expect(xv.reshape(-1), x.t.dtype)
    else:
        what, call = f"x{len(prog.pool)} = x{i}.squeeze()", lambda: x.t.squeeze()
        expect = Expect(np.squeeze(xv), x.t.dtype)
    out = attempt(prog, what, expect, call)
    if out is not None:
        output(prog, out, [x], lambda g, s=x.t.shape: [g.reshape(s)], out.dtype, storage=x.storage)


def _factor(n, data):
    """A few factors whose product is n (n >= 1)."""
    out = []
    for p in (2, 3, 2, 5, 7):
        if n % p == 0 and data.draw(st.booleans(), label=f"split {p}"):
            out.append(p)
            n //= p
    return out + [n]


def step_permute(data, prog, rng):
    i, x = pick(data, prog, "operand")
    nd = x.t.ndim
    if data.draw(st.booleans(), label="valid permutation"):
        perm = data.draw(st.permutations(range(nd)), label="perm")
        perm = [p - nd if data.draw(st.booleans(), label="negative") else p for p in perm]
    else:
        perm = data.draw(st.lists(st.integers(-nd - 1, nd), min_size=nd, max_size=nd + 1), label="perm")
    what = f"x{len(prog.pool)} = x{i}.permute({perm})"
    if len(perm) != nd:
        expect = fail(ValueError, IndexError, why="(the permutation's length is not the rank)")
    elif any(not -max(nd, 1) <= p < max(nd, 1) for p in perm):
        expect = fail(IndexError, why="(dim out of range)")
    elif len({p % max(nd, 1) for p in perm}) != nd:
        expect = fail(ValueError, why="(a repeated dim)")
    else:
        axes = [p % nd for p in perm]
        expect = Expect(np.transpose(x.values, axes), x.t.dtype)
    out = attempt(prog, what, expect, lambda: x.t.permute(*perm))
    if out is not None:
        axes = [p % max(nd, 1) for p in perm]
        e = output(prog, out, [x], lambda g, axes=axes: [np.transpose(g, np.argsort(axes))], out.dtype, storage=x.storage)
        prog.no_inplace.add(e.storage)


def step_transpose(data, prog, rng):
    i, x = pick(data, prog, "operand")
    nd = x.t.ndim
    d0 = data.draw(st.integers(-max(nd, 1) - 1, max(nd, 1)), label="dim0")
    d1 = data.draw(st.integers(-max(nd, 1) - 1, max(nd, 1)), label="dim1")
    what = f"x{len(prog.pool)} = x{i}.transpose({d0}, {d1})"
    span = max(nd, 1)
    if not (-span <= d0 < span and -span <= d1 < span):
        expect = fail(IndexError, why="(dim out of range)")
    else:
        expect = Expect(np.swapaxes(x.values, d0 % span, d1 % span) if nd else x.values, x.t.dtype)
    out = attempt(prog, what, expect, lambda: x.t.transpose(d0, d1))
    if out is not None:
        a, b = d0 % span, d1 % span
        e = output(prog, out, [x], lambda g, a=a, b=b, nd=nd: [np.swapaxes(g, a, b) if nd else g], out.dtype,
                   storage=x.storage)
        prog.no_inplace.add(e.storage)


# ----- in place -----
def _aliases(prog, e):
    return [o for o in prog.pool if o.storage == e.storage]


def step_inplace(data, prog, rng):
    op = data.draw(st.sampled_from(["add_", "sub_", "mul_", "clamp_", "fill_", "masked_fill_", "copy_"]), label="in-place op")
    i, x = pick(data, prog, "target")
    if x.storage in prog.no_inplace:
        return
    dt, shape = x.t.dtype, x.t.shape
    before = x.values.copy()
    mask = other = None
    if op in ("add_", "sub_", "mul_"):
        j, o = operand(data, prog, "other")
        other = None if j is None else o
        if j is None:
            ov, odt, oshape, onode, oname, arg = np.asarray(o), scalar_dtype(o, dt), (), None, repr(o), o
        else:
            ov, odt, oshape, onode, oname, arg = o.values, o.t.dtype, o.t.shape, o.node, f"x{j}", o.t
        what = f"x{i}.{op}({oname})"
        call = lambda: getattr(x.t, op)(arg)  # noqa: E731
    elif op == "clamp_":
        bound = st.integers(-3, 3) if not is_float(dt) else st.sampled_from([-2.5, -1.0, 0.0, 0.5, 2.0])
        lo, hi = data.draw(bound, label="min"), data.draw(st.none() | bound, label="max")
        what, onode, oshape = f"x{i}.clamp_({lo}, {hi})", None, ()
        call = lambda: x.t.clamp_(lo, hi)  # noqa: E731
    elif op == "fill_":
        value = data.draw(st.sampled_from([True, False]) if dt is B else st.integers(-3, 3) if dt is I
                          else st.sampled_from([-1.5, 0.0, 2.0]), label="value")
        what, onode, oshape = f"x{i}.fill_({value})", None, ()
        call = lambda: x.t.fill_(value)  # noqa: E731
    elif op == "masked_fill_":
        j, m = pick(data, prog, "mask")
        value = data.draw(st.sampled_from([True, False]) if dt is B else st.integers(-3, 3) if dt is I
                          else st.sampled_from([-1.5, 0.0, 2.0]), label="value")
        what, onode, oshape, mask, other = f"x{i}.masked_fill_(x{j}, {value})", None, m.t.shape, m, m
        call = lambda: x.t.masked_fill_(m.t, value)  # noqa: E731
    else:
        j, o = pick(data, prog, "source")
        what, onode, oshape, ov, odt, other = f"x{i}.copy_(x{j})", o.node, o.t.shape, o.values, o.t.dtype, o
        call = lambda: x.t.copy_(o.t)  # noqa: E731

    target_leaf = any(a.leaf for a in _aliases(prog, x))
    if len(_aliases(prog, x)) > 1 and not target_leaf and (onode is not None or any(a.node is not None for a in _aliases(prog, x))):
        # engine limit: an in-place op on a tensor with reshape views (or on a view) does not rebase the others'
        # autograd history as PyTorch does: w = ones(3, requires_grad=True); a = w * 1; v = a.reshape(3);
        # a.mul_(2); v.sum().backward() now raises AutogradError (it gave w.grad = [1, 1, 1] silently; PyTorch
        # [2, 2, 2]; tests/test_hardening.py holds the case). Still open: a = zeros(3); v = a.reshape(3);
        # a.copy_(w) leaves v.requires_grad False, so nothing flows from v to w. Reported for issue 13.
        return
    fits = broadcast(shape, oshape) == tuple(shape)
    # the expected outcome; where several things are wrong at once, any of their errors will do
    problems = []
    if op == "masked_fill_" and mask.t.dtype is not B:
        problems.append(TypeError)  # the mask must be bool
    if not fits:
        problems.append(ValueError)  # the other operand does not broadcast to the target's shape
    arith = op in ("add_", "sub_", "mul_")
    if arith and dt is B and not (odt is B and op != "sub_"):
        problems.append(TypeError)  # bool arithmetic in place, other than PyTorch's OR (add_) and AND (mul_)
    if arith and dt is not B and CATEGORY[binary_dtype(op[:-1], dt, odt)[0]] > CATEGORY[dt]:
        problems.append(TypeError)  # a float result into an integer tensor (PyTorch's can_cast)
    if op == "clamp_" and hi is not None and lo > hi:
        problems.append(ValueError)  # min > max
    if target_leaf:
        problems.append(RuntimeError)  # in place on a leaf that requires grad, or on a view of one
    if problems:  # (bigcore refusing bool arithmetic in place is fine whatever else is wrong)
        lenient = (TypeError,) if arith and dt is B else ()
        expect = fail(*problems, *lenient, why=f"(in-place on {dt} {shape} with {oshape})")
    elif arith and dt is B:  # PyTorch ORs / ANDs; bigcore may refuse bool arithmetic altogether
        f = np.logical_or if op == "add_" else np.logical_and
        expect = Expect(np.broadcast_to(f(before, ov), shape), B, errors=(TypeError,))
    elif op == "clamp_" and dt is B:  # PyTorch refuses; any bool result is accepted too
        expect = Expect(None, B, errors=(TypeError,))
    elif op == "copy_" and dt is I and is_float(odt) and not np.all(np.abs(ov) < 2.0**63):
        expect = Expect(None, dt)  # a float beyond int64 (or NaN) into an integer: any value (PyTorch: undefined)
    else:
        with np.errstate(all="ignore"):
            if arith:
                v = binary_expect(op[:-1], before, dt, ov, odt)[0]
            elif op == "clamp_":
                v = np.clip(before, lo, np.inf if hi is None else hi)
            elif op == "fill_":
                v = np.full(shape, value)
            elif op == "masked_fill_":
                v = np.where(mask.values, value, before)
            else:
                v = np.broadcast_to(ov, shape)
                if dt is I and is_float(odt):
                    v = np.trunc(v)  # float into an integer tensor truncates toward zero (into bool: nonzero)
                if dt is B:
                    v = v != 0
        expect = Expect(np.broadcast_to(np.asarray(v), shape), dt)
    prog.log.append(what)
    try:
        out = call()
    except Exception as e:  # noqa: BLE001
        assert isinstance(e, DOCUMENTED), f"{what}: raised {type(e).__name__}: {e} (not a documented type)"
        assert expect.errors, f"{what}: raised {type(e).__name__}: {e}; expected it to work"
        assert isinstance(e, expect.errors), f"{what}: raised {type(e).__name__}: {e}; expected {expect.errors} {expect.why}"
        np.testing.assert_array_equal(x.values, before, err_msg=f"{what} raised but changed the tensor")
        return
    assert expect.may_succeed, f"{what}: worked; expected {[c.__name__ for c in expect.errors]} {expect.why}"
    assert out is x.t, f"{what} must return the tensor itself"
    if expect.value is not None:
        check_value(x.t, expect.value, dt, what)
    # every tensor sharing the storage (reshape views, their bases) sees the write
    new = x.values
    for a in _aliases(prog, x):
        if a is not x:
            check_value(a.t, new.reshape(a.t.shape), a.t.dtype, f"{what}: the view x{prog.pool.index(a)}")
    if x.storage in prog.used:
        prog.dirty = True
    if not is_float(dt):
        return
    # the tape: x's new node, and every alias re-derived from it (PyTorch rebases a view's base on an in-place op)
    parents = [x.node, onode]
    bd = before.astype(np.float64)
    if op in ("add_", "sub_", "mul_"):
        od = np.asarray(ov).astype(np.float64)

        def backward(g, bd=bd, od=od, op=op[:-1]):
            ga, gb = BINARY[op][1](g, bd, od)
            return [np.broadcast_to(ga, g.shape).copy(), unbroadcast(np.broadcast_to(gb, g.shape), od.shape)]
    elif op == "clamp_":
        backward = lambda g, bd=bd: _clamp_backward(g, bd, lo, hi) + [None]  # noqa: E731
    elif op == "fill_":
        backward = lambda g: [np.zeros_like(g), None]  # noqa: E731
    elif op == "masked_fill_":
        backward = lambda g, mv=mask.values: [np.where(mv, 0.0, g), None]  # noqa: E731
    else:
        backward = lambda g, s=oshape: [np.zeros_like(g), unbroadcast(g, s)]  # noqa: E731
    if all(p is None for p in parents):
        return
    node = prog.node(parents, backward)
    prog.used.add(x.storage)
    if other is not None:
        prog.used.add(other.storage)
    x.node = node
    for a in _aliases(prog, x):
        if a is not x:
            a.node = prog.node([node], lambda g, s=x.t.shape: [g.reshape(s)])


STEPS = [step_unary, step_binary, step_binary, step_matmul, step_reduce, step_softmax, step_clamp, step_where,
         step_cat, step_reshape, step_view, step_permute, step_transpose, step_inplace, step_inplace]


def reference_grads(prog, out_node, g):
    """Reverse-mode over the tape in float64: the gradient reaching each leaf node (None if none reaches)."""
    grads = {out_node: g}
    for n in range(out_node, -1, -1):
        if n not in grads:
            continue
        parents, backward = prog.tape[n]
        if backward is None:
            continue
        gs = backward(grads[n])
        for p, gp in zip(parents, gs):
            if p is None or gp is None:
                continue
            gp = np.asarray(gp, dtype=np.float64)
            grads[p] = grads[p] + gp if p in grads else gp.copy()
    return {n: grads.get(n) for n in prog.leaf_nodes}


@PROGRAMS
@given(st.data(), st.booleans(), st.integers(0, 2**32 - 1))
def test_random_programs_match_numpy(data, f64_only, seed):
    rng = np.random.default_rng(seed)
    prog = Program()
    try:
        for _ in range(data.draw(st.integers(1, 3), label="leaves")):
            draw_leaf(data, prog, rng, f64_only)
        for _ in range(data.draw(st.integers(1, 8), label="steps")):
            data.draw(st.sampled_from(STEPS), label="step")(data, prog, rng)
        _check_backward(data, prog, rng)
    except AssertionError as e:
        raise AssertionError("\n".join(["program:"] + prog.log + [str(e)])) from None


def _check_backward(data, prog, rng):
    outs = [e for e in prog.pool if e.node is not None and not e.leaf]
    if not outs:
        return
    out = outs[-1]
    g = rng.standard_normal(out.t.shape)
    what = f"x{prog.pool.index(out)}.backward(g)"
    prog.log.append(what + (" (after in-place writes to tensors the graph used)" if prog.dirty else ""))
    try:
        out.t.backward(bigcore.tensor(g.astype(NP[out.t.dtype])))
    except Exception as e:  # noqa: BLE001
        assert isinstance(e, DOCUMENTED), f"{what}: raised {type(e).__name__}: {e} (not a documented type)"
        assert prog.dirty and isinstance(e, RuntimeError), f"{what}: raised {type(e).__name__}: {e}"
        return
    with np.errstate(all="ignore"):
        want = reference_grads(prog, out.node, g)
    if prog.grad_unchecked:
        return
    for node, leaf in prog.leaf_nodes.items():
        name = f"x{prog.pool.index(leaf)}.grad"
        got = leaf.t.grad
        if want[node] is None:
            assert got is None or not np.any(got.numpy()), f"{name}: no path to the output, got a gradient"
            continue
        assert got is not None, f"{name}: None, the reference has a gradient"
        assert got.shape == leaf.t.shape and got.dtype is leaf.t.dtype, f"{name}: {got.shape} {got.dtype}"
        if leaf.t.dtype is not F64 or out.t.dtype is not F64:
            continue  # float32 rounding through a chain: shapes and dtypes only (see the module docstring)
        w = want[node]
        finite = np.abs(w[np.isfinite(w)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        np.testing.assert_allclose(got.numpy(), w, rtol=1e-7, atol=1e-9 * scale, equal_nan=True, err_msg=name)
