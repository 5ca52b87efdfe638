"""Regression tests for issue 13 (hardening), the engine's items: each test is one defect the adversarial run
found, named for the behaviour that now holds, with the issue's snippet in it. Grouped by the issue's items.

Cases that could abort or crash the interpreter on a regression (impossible allocations, wrapped offsets) run in a
subprocess under an address-space limit, so a failure is a failed test and not a dead pytest.
"""

import ast
import math
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F
from check import check_op, rand

GIB = 1 << 30


def _in_subprocess(body, extra_address_space=2 * GIB, timeout=120):
    """Run ``body`` in a fresh interpreter whose address space is capped at what it uses after importing bigcore
    plus ``extra_address_space`` (the body may call ``limit(extra)`` again to lower it after its setup). Returns
    (returncode, stdout, stderr)."""
    script = textwrap.dedent("""
        import resource
        import numpy as np
        import bigcore
        import bigcore.nn.functional as F

        def vm_bytes():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmSize:"):
                        return int(line.split()[1]) * 1024

        def limit(extra):
            cap = vm_bytes() + extra
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

        def expect(exc_type, fn):
            try:
                fn()
            except exc_type as e:
                print("raised", type(e).__name__, str(e)[:300])
            except BaseException as e:  # a PanicException is a BaseException
                print("wrong", type(e).__module__, type(e).__name__, str(e)[:300])
            else:
                print("no error")
    """) + f"limit({extra_address_space})\n" + textwrap.dedent(body)
    # mimalloc (the extension's allocator) reserves a 1 GiB arena up front by default; without it the address space
    # in use follows the allocations, so a limit above it is a budget for the code under test
    env = dict(os.environ, BIGCORE_NUM_THREADS="2", MIMALLOC_ARENA_RESERVE="0")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr


def _assert_raised(result, exc_name):
    code, out, err = result
    assert code == 0, f"the interpreter died (exit {code}): {err[-2000:]}"
    assert out.startswith(f"raised {exc_name}"), f"expected {exc_name}, got: {out} {err[-2000:]}"


# ---------------------------------------------------------------- item 2: impossible sizes never abort or panic

@pytest.mark.parametrize("n", [2**40, 2**62])
def test_randperm_of_an_impossible_size_is_a_memory_error(n):
    _assert_raised(_in_subprocess(f"expect(MemoryError, lambda: bigcore.randperm({n}))"), "MemoryError")


@pytest.mark.parametrize("n", [2**40, 2**62])
def test_set_num_threads_beyond_the_cap_is_a_value_error(n):
    result = _in_subprocess(f"expect(ValueError, lambda: bigcore.set_num_threads({n}))\n"
                            "assert bigcore.get_num_threads() == 2")
    _assert_raised(result, "ValueError")
    assert "at most" in result[1]


def test_lstm_of_an_impossible_sequence_is_a_memory_error():
    # the gates of 2**16 steps of hidden size 2**12 are 2**30 floats (4 GiB): more than the address space left
    body = """
        T, H = 2**16, 2**12
        x, h0 = bigcore.zeros(T, 1, 1), bigcore.zeros(1, H)
        w_ih, w_hh = bigcore.zeros(4 * H, 1), bigcore.zeros(4 * H, H)
        expect(MemoryError, lambda: bigcore._core.lstm(x._c, h0._c, h0._c, w_ih._c, w_hh._c, None))
    """
    _assert_raised(_in_subprocess(body, extra_address_space=3 * GIB), "MemoryError")


def test_dropout_temporaries_are_allocated_fallibly():
    # x is 256 MiB of float32; the uniform draws take 512 MiB (float64); a further infallible float64 mask of
    # 512 MiB used to abort where the limit leaves room for only part of it
    body = """
        x = bigcore.ones(2**26)
        limit(700 * 2**20)
        expect(MemoryError, lambda: F.dropout(x, 0.5))
    """
    _assert_raised(_in_subprocess(body, extra_address_space=8 * GIB), "MemoryError")


def test_numpy_copy_is_allocated_fallibly():
    body = """
        x = bigcore.ones(2**26)  # 256 MiB
        limit(64 * 2**20)
        expect(MemoryError, lambda: x.numpy())
    """
    _assert_raised(_in_subprocess(body, extra_address_space=8 * GIB), "MemoryError")


def test_linear_of_huge_empty_operands_does_not_wrap_the_output_size():
    # rows * out_features = 2**66 wrapped to 0 in the output's allocation, and the product wrote past it
    body = """
        x, w = bigcore.zeros(2**33, 0), bigcore.zeros(2**33, 0)
        expect(MemoryError, lambda: F.linear(x, w))
    """
    _assert_raised(_in_subprocess(body), "MemoryError")


def test_private_slice_does_not_wrap_start_plus_steps():
    # start + (len - 1) * step = 1 + 2 * 2**63 wraps to 1, inside a dimension of 3
    body = """
        x = bigcore.arange(3.0)
        expect(IndexError, lambda: bigcore._core.slice(x._c, [(1, 2**63, 3)]))
    """
    _assert_raised(_in_subprocess(body), "OutOfRangeError")


def test_repeat_of_overflowing_sizes_is_a_memory_error():
    with pytest.raises(MemoryError, match="repeat"):
        bigcore.zeros(3, 0).repeat(2**63 - 1, 1)
    with pytest.raises(MemoryError, match="repeat"):
        bigcore.zeros(3).repeat(2**62)


# ---------------------------------------------------------------------------- item 4: no silent wrong numbers

def test_nll_loss_refuses_a_target_that_would_broadcast():
    x = bigcore.randn(4, 3).log_softmax(1)
    with pytest.raises(bigcore.ShapeError, match=r"nll_loss.*\(1,\).*\(4, 3\)"):
        F.nll_loss(x, bigcore.tensor([0]))
    with pytest.raises(bigcore.ShapeError):
        F.nll_loss(x, bigcore.tensor([[0, 1, 2, 0]]))
    with pytest.raises(bigcore.ShapeError):
        F.cross_entropy(bigcore.randn(3), bigcore.tensor([0, 1, 2]))


def test_pow_zero_has_gradient_zero_at_zero():
    # y = x ** 0 = 1: dy/dx = 0 everywhere, x = 0 included (PyTorch), not 0 * 0**-1 = NaN
    x = bigcore.tensor(0.0, requires_grad=True)
    (x**0).backward()
    assert x.grad.item() == 0.0
    x = bigcore.tensor([0.0, 1.5, -2.0], requires_grad=True)
    e = bigcore.tensor([0.0, 0.0, 2.0], requires_grad=True)
    (x**e).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, -4.0])


def test_narrow_refuses_a_dim_out_of_range_instead_of_wrapping():
    with pytest.raises(bigcore.OutOfRangeError, match="dimension 5"):
        bigcore.zeros(2, 3).narrow(5, 0, 1)
    with pytest.raises(bigcore.OutOfRangeError):
        bigcore.zeros(2, 3).narrow(-3, 0, 1)
    assert bigcore.zeros(2, 3).narrow(-1, 1, 2).shape == (2, 2)


def test_int64_arithmetic_with_python_ints_above_2_53_is_exact():
    big = 2**53 + 1  # not a float64
    assert (bigcore.tensor([0]) + big).item() == big
    assert (bigcore.tensor([big]) == big).item() is True
    assert (bigcore.tensor([big]) == big - 1).item() is False
    assert (bigcore.tensor([2**62]) + (2**62 - 1)).item() == 2**63 - 1
    assert (bigcore.tensor([2**63 - 1]) - big).item() == 2**63 - 1 - big
    assert bigcore.full((2,), big).tolist() == [big, big]
    assert bigcore.arange(2**53, 2**53 + 3).tolist() == [2**53, 2**53 + 1, 2**53 + 2]
    assert bigcore.arange(2**62, 2**62 - 7, -3).tolist() == [2**62, 2**62 - 3, 2**62 - 6]


@pytest.mark.parametrize("make", [
    lambda: bigcore.full((1,), 2**63),
    lambda: bigcore.full((1,), -2**63 - 1),
    lambda: bigcore.tensor([0]) + 2**63,
    lambda: bigcore.tensor([0]) == 2**64,
    lambda: bigcore.arange(0, 2**63, 2**62),
    lambda: bigcore.full((1,), 1e19, dtype=bigcore.int64),
    lambda: bigcore.full((1,), float("nan"), dtype=bigcore.int64),
])
def test_ints_beyond_int64_raise_overflow_error(make):
    with pytest.raises(OverflowError):
        make()


def test_ints_at_the_int64_limits_are_kept():
    assert bigcore.full((1,), 2**63 - 1).item() == 2**63 - 1
    assert bigcore.full((1,), -2**63).item() == -2**63
    assert (bigcore.tensor([1.0]) + 2**64).item() == pytest.approx(2.0**64)  # a float tensor takes any int


@pytest.mark.parametrize("np_dtype", [">f8", np.longdouble])
def test_big_endian_float64_and_longdouble_arrays_keep_float64(np_dtype):
    a = np.array([1 + 2.0**-40, -3.25], dtype=np_dtype)
    t = bigcore.tensor(a)
    assert t.dtype is bigcore.float64
    assert t.tolist() == [1 + 2.0**-40, -3.25]


def test_masked_fill_mask_must_broadcast_to_the_input():
    with pytest.raises(bigcore.ShapeError, match=r"masked_fill.*\(2, 1\).*\(3,\)"):
        bigcore.zeros(3).masked_fill(bigcore.ones(2, 1, dtype=bigcore.bool), 1.0)
    out = bigcore.zeros(2, 3).masked_fill(bigcore.tensor([True, False, True]), 1.0)
    np.testing.assert_array_equal(out.numpy(), [[1, 0, 1], [1, 0, 1]])


def test_int64_attn_mask_is_refused():
    q = bigcore.randn(1, 2, 3, 4)
    with pytest.raises(bigcore.DTypeError, match="bool or float"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=bigcore.ones(3, 3, dtype=bigcore.int64))
    with pytest.raises(TypeError, match="bool or float"):
        nn.MultiheadAttention(4, 2, batch_first=True)(q[0], q[0], q[0], attn_mask=bigcore.zeros(3, 3, dtype=bigcore.int64))


def test_binary_cross_entropy_refuses_nan_input():
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(bigcore.tensor([float("nan"), 0.5]), bigcore.tensor([0.0, 1.0]))


@pytest.mark.parametrize("ls", [1.5, -0.5, float("nan")])
@pytest.mark.parametrize("path", ["indices", "weighted", "probabilities"])
def test_label_smoothing_outside_0_1_is_refused_on_every_path(path, ls):
    x = bigcore.randn(4, 3)
    y = bigcore.tensor([0, 2, 1, 0]) if path != "probabilities" else bigcore.tensor(np.full((4, 3), 1 / 3))
    w = bigcore.tensor([1.0, 2.0, 0.5]) if path == "weighted" else None
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, y, weight=w, label_smoothing=ls)


@pytest.mark.parametrize("args", [(2.5, 5), (2, 5.0)])
def test_linear_refuses_sizes_that_are_not_ints(args):
    with pytest.raises(TypeError, match="must be an int"):
        nn.Linear(*args)
    assert nn.Linear(np.int64(2), 5).weight.shape == (5, 2)


# ------------------------------------------------------------------ item 6: the right exception, the right result

def test_linear_with_zero_in_features_works_as_pytorch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns too: initializing zero-element tensors is a no-op
        m = nn.Linear(0, 5)
    assert m.weight.shape == (5, 0)
    out = m(bigcore.zeros(3, 0))
    np.testing.assert_array_equal(out.numpy(), np.broadcast_to(m.bias.numpy(), (3, 5)))


def test_zeros_with_a_zero_dim_is_empty_whatever_the_other_dims():
    t = bigcore.zeros(2**50, 0)
    assert t.shape == (2**50, 0) and t.numel() == 0
    assert bigcore.ones(0, 2**50).numpy().shape == (0, 2**50)
    with pytest.raises(MemoryError):  # the other sizes must still multiply without overflow
        bigcore.zeros(2**40, 0, 2**40)
    # ops on it finish at once: nothing loops over the 2**50 empty rows
    assert bigcore.cat([t, t], 1).shape == (2**50, 0)
    assert bigcore.cat([t, t], 0).shape == (2**51, 0)
    assert (t + 1).exp().softmax(1).sum().item() == 0.0
    with pytest.raises(MemoryError, match=rf"sum: cannot allocate {4 * 2**50} bytes .* shape \[{2**50}, 1\]"):
        t.sum(1)  # 2**50 sums of nothing: too many to allocate, and the message names the result


def test_nll_loss_with_float_targets_is_a_dtype_error():
    with pytest.raises(bigcore.DTypeError, match="nll_loss.*int64"):
        F.nll_loss(bigcore.randn(4, 3), bigcore.tensor([0.0, 1.0, 2.0, 0.0]))


def test_set_grad_of_the_wrong_dtype_is_a_dtype_error():
    p = bigcore.zeros(2, 3, requires_grad=True)
    with pytest.raises(bigcore.DTypeError, match="float64.*float32"):
        p.grad = bigcore.zeros(2, 3, dtype=bigcore.float64)
    with pytest.raises(bigcore.ShapeError):
        p.grad = bigcore.zeros(3, 2)


# ------------------------------------------------------------------------------ item 7: smaller review defects

@pytest.mark.parametrize("dtype,size", [(bigcore.float64, 8), (bigcore.float32, 4), (bigcore.bool, 1)])
def test_shape_error_reports_bytes_with_the_element_size(dtype, size):
    with pytest.raises(MemoryError, match=f"cannot allocate {size * 2**80} bytes"):
        bigcore.zeros(2**40, 2**40, dtype=dtype)


def test_nan_clamp_bound_on_an_int_tensor_gives_nan():
    # PyTorch: an int tensor clamped with a NaN bound is float32 NaN, not some integer
    for kw in ({"min": float("nan")}, {"max": float("nan")}):
        out = bigcore.tensor([1, 2, 3]).clamp(**kw)
        assert out.dtype is bigcore.float32 and np.isnan(out.numpy()).all()
        assert np.isnan(bigcore.tensor([1.0, 2.0]).clamp(**kw).numpy()).all()
    with pytest.raises(bigcore.DTypeError):
        bigcore.tensor([1, 2, 3]).clamp_(min=float("nan"))
    assert bigcore.tensor([1, 5]).clamp(min=2, max=4).tolist() == [2, 4]


def test_optimizer_refuses_a_gradient_sharing_storage_with_a_moment_buffer():
    body = """
        p, m, v = bigcore.zeros(4), bigcore.zeros(4), bigcore.zeros(4)
        g = m.reshape(4)  # shares m's storage
        c = bigcore._core
        expect(ValueError, lambda: c.adam_step([p._c], [g._c], [m._c], [v._c], 0.1, 0.9, 0.99, 1e-8, 0.0, True, False, 1))
        expect(ValueError, lambda: c.sgd_step([p._c], [g._c], [m._c], 0.1, 0.9, 0.0, 0.0, False, False, False))
    """
    code, out, err = _in_subprocess(body, timeout=60)
    assert code == 0, err
    assert out.splitlines() == [line for line in out.splitlines() if line.startswith("raised ValueError")], out
    assert len(out.splitlines()) == 2


def _stub_names():
    path = os.path.join(os.path.dirname(bigcore.__file__), "_core.pyi")
    tree = ast.parse(open(path).read())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    return names


def test_core_stubs_list_every_bound_name():
    bound = {n for n in dir(bigcore._core) if not n.startswith("__")}
    stubs = _stub_names() - {"__version__"}
    assert isinstance(bigcore._core.__version__, str)
    assert bound - stubs == set(), f"bound in _core but not in _core.pyi: {sorted(bound - stubs)}"
    assert stubs - bound == set(), f"in _core.pyi but not bound: {sorted(stubs - bound)}"


# the untested loss paths, forward and gradient against the numpy reference (tests/reference.py)

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ls", [0.0, 0.2, 1.0])
def test_weighted_cross_entropy_with_label_smoothing(reduction, ls, rng):
    x, y, w = rand(rng, (7, 5)), np.array([0, 4, 2, -100, 1, 4, 3]), rng.uniform(0.2, 2.0, 5)
    # the reference takes the weight as its third input
    check_op("cross_entropy_weighted", lambda a, b, c: F.cross_entropy(
        a, b, weight=c, ignore_index=-100, label_smoothing=ls, reduction=reduction), [x, y, w], diff=[0],
        kwargs={"ignore_index": -100, "label_smoothing": ls, "reduction": reduction})


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_probability_targets_with_label_smoothing(reduction, weighted, rng):
    x, t = rand(rng, (6, 4)), rng.dirichlet(np.ones(4), 6)
    w = rng.uniform(0.2, 2.0, 4)

    def fn(a, b, *c):  # the weight, when given, is the third input of both
        return F.cross_entropy(a, b, weight=c[0] if c else None, label_smoothing=0.3, reduction=reduction)
    check_op("cross_entropy_probs", fn, [x, t] + ([w] if weighted else []), diff=[0, 1],
             kwargs={"label_smoothing": 0.3, "reduction": reduction})


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_with_weight_ignore_index_and_reductions(reduction, weighted, rng):
    x, y, w = rand(rng, (6, 4)), np.array([3, 1, 7, 0, 7, 2]), rng.uniform(0.2, 2.0, 4)

    def fn(a, b, *c):  # the weight, when given, is the third input of both
        return F.nll_loss(a, b, weight=c[0] if c else None, ignore_index=7, reduction=reduction)
    check_op("nll_loss", fn, [x, y] + ([w] if weighted else []), diff=[0],
             kwargs={"ignore_index": 7, "reduction": reduction})


def test_nll_loss_over_spatial_dims_matches_the_flat_form(rng):
    x, y = rand(rng, (2, 4, 3)), rng.integers(0, 4, (2, 3))
    got = F.nll_loss(bigcore.tensor(x), bigcore.tensor(y), reduction="none")
    flat = x.transpose(0, 2, 1).reshape(-1, 4)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got.numpy().ravel(), -flat[np.arange(6), y.ravel()], rtol=1e-12)
    assert math.isclose(F.nll_loss(bigcore.tensor(x), bigcore.tensor(y)).item(), -flat[np.arange(6), y.ravel()].mean())


# ----- found by tests/test_fuzz.py -----
def test_a_0d_tensor_takes_dims_0_and_minus_1_as_pytorch():
    x = bigcore.tensor(2.0, dtype=bigcore.float64, requires_grad=True)
    for y in (x.sum(0), x.sum(-1), x.mean(0), x.amax(-1), x.sum((0,), keepdim=True), x.transpose(0, -1)):
        assert y.shape == () and y.item() == 2.0
    (x.sum(0) * 3).backward()
    assert x.grad.item() == 3.0
    for bad in (lambda: x.sum(1), lambda: x.mean(-2), lambda: x.amax(2), lambda: x.transpose(0, 1)):
        with pytest.raises(bigcore.OutOfRangeError, match="0-d tensor, which takes dims 0 and -1"):
            bad()


def test_backward_through_a_view_written_through_its_base_raises_instead_of_a_wrong_gradient():
    # bigcore does not rebase views as PyTorch does; it used to give w.grad = [1, 1, 1] here (PyTorch [2, 2, 2])
    def made():
        w = bigcore.ones(3, requires_grad=True)
        return w, w * 1

    w, a = made()
    v = a.reshape(3)
    a.mul_(2)
    with pytest.raises(bigcore.AutogradError, match="modified in place through another tensor sharing its storage"):
        v.sum().backward()
    w, a = made()  # and through the view into the base
    a.reshape(3).mul_(2)
    with pytest.raises(bigcore.AutogradError, match="does not rebase views"):
        a.sum().backward()
    w, a = made()  # the written handle itself differentiates as before
    a.mul_(2)
    a.add_(1)
    a.sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]
