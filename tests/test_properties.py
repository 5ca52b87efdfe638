"""Property tests (hypothesis): broadcasting and movement ops agree with numpy on generated shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bigcore

FAST = settings(max_examples=60, deadline=None)


@FAST
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=5), st.sampled_from(["add", "sub", "mul"]))
def test_binary_broadcasting_matches_numpy(shapes, op):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shapes.input_shapes[0]), rng.standard_normal(shapes.input_shapes[1])
    got = getattr(bigcore.tensor(a), op)(bigcore.tensor(b))
    assert got.shape == shapes.result_shape
    np.testing.assert_array_equal(got.numpy(), getattr(np, {"add": "add", "sub": "subtract", "mul": "multiply"}[op])(a, b))


@FAST
@given(hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=4), st.data())
def test_permute_and_sum_match_numpy(shape, data):
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    perm = data.draw(st.permutations(range(len(shape))))
    np.testing.assert_array_equal(bigcore.tensor(a).permute(*perm).numpy(), a.transpose(perm))
    dims = data.draw(st.lists(st.integers(0, len(shape) - 1), unique=True, max_size=len(shape)))
    keep = data.draw(st.booleans())
    if dims:
        np.testing.assert_allclose(bigcore.tensor(a).sum(tuple(dims), keep).numpy(), a.sum(tuple(dims), keepdims=keep))


@FAST
@given(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6), st.data())
def test_basic_indexing_matches_numpy(shape, data):
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    key = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    keys = key if isinstance(key, tuple) else (key,)
    if any(isinstance(k, slice) and k.step is not None and k.step < 0 for k in keys):
        # negative steps are refused with a clear error, as in PyTorch
        with pytest.raises(ValueError, match="step"):
            bigcore.tensor(a)[key]
        return
    np.testing.assert_array_equal(bigcore.tensor(a)[key].numpy(), a[key])


@FAST
@given(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), st.data())
def test_expand_and_reshape_match_numpy(shape, data):
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    target = tuple(data.draw(st.integers(1, 3)) if s == 1 else s for s in shape)
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    np.testing.assert_array_equal(bigcore.tensor(a).expand(*(lead + target)).numpy(), np.broadcast_to(a, lead + target))
    np.testing.assert_array_equal(bigcore.tensor(a).reshape(-1).numpy(), a.reshape(-1))
