"""Every functional op and Tensor method exports and runs in onnxruntime with bigcore's values, at sizes other than
the traced ones: each case is an expression of inputs whose batch (B) and sequence (T) axes are dynamic, traced at
B=2, T=5 and run at B=3, T=7 and at B=1, T=1."""

import io
import math

import numpy as np
import pytest

from onnx_check import Fn, export_and_check, op_types

import bigcore
import bigcore.nn.functional as F

TRACED, RUNS = (2, 5), [(3, 7), (1, 1)]


def rnd(*shape):
    return bigcore.randn(*shape)


def ids(high, *shape):
    return bigcore.tensor(np.random.default_rng(sum(shape)).integers(0, high, shape))


# (name, fn, inputs(B, T), dynamic axes per input)
BT = {0: "B", 1: "T"}
CASES = [
    # elementwise: x (B, T, 6), y (B, T, 6) or broadcast (6,)
    ("neg_exp_tanh", lambda x: (-x).exp().tanh(), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("log_sqrt_abs", lambda x: (x.abs() + 1).log() + x.abs().sqrt(), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("sigmoid_relu", lambda x: F.sigmoid(x) * F.relu(x) + F.tanh(x), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("clamp", lambda x: x.clamp(-0.5, 0.7) + x.clamp(min=0.1) + x.clip(max=0.2), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("arith_broadcast", lambda x, y: (x + y) * (x - 2) / (y * y + 1) + 3 - x ** 2 + 2 ** y,
     lambda B, T: (rnd(B, T, 6), rnd(6)), [BT, {}]),
    ("scalar_left", lambda x: 1 - x + 2 * x - 1 / (x.abs() + 1), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("int_arith", lambda i: i * 3 + 1 - i + (i > 4).long() * 7, lambda B, T: (ids(9, B, T),), [BT]),
    ("int_div_is_float", lambda i: i / 2, lambda B, T: (ids(9, B, T),), [BT]),
    ("compare_where", lambda x, y: bigcore.where(x > y, x, y) + (x <= 0).float() + (x == y).float(),
     lambda B, T: (rnd(B, T, 6), rnd(B, T, 6)), [BT, BT]),
    ("ne_lt_ge", lambda x: (x != 0).long() + (x < 0.5).long() * 2 + (x >= -0.5).long() * 4,
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("masked_fill_logic", lambda x: x.masked_fill(~(x > 0) & (x > -1) | (x > 1.5), -7.0),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("where_scalars", lambda x: bigcore.where(x > 0, 1.0, -2.0) * x, lambda B, T: (rnd(B, T, 6),), [BT]),
    ("casts", lambda x: x.double().float() + x.long().float() + x.bool().float(), lambda B, T: (rnd(B, T, 6) * 3,), [BT]),
    ("float64", lambda x: (x * 2).exp().sum(-1), lambda B, T: (rnd(B, T, 6).double(),), [BT]),
    # reductions
    ("sum_mean", lambda x: (x.sum(-1), x.mean(1, keepdim=True), x.sum((0, 2), keepdim=True), x.mean((2, 1))),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("all_reductions", lambda x: x.sum() + x.mean() + x.amax() + x.amin(), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("max_min_dim", lambda x: (x.max(-1).values, x.max(1, keepdim=True).indices, x.min(2)[0], x.min(2)[1]),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("amax_dims", lambda x: (x.amax((1, 2)), x.amin(-1, keepdim=True)), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("argmax_argmin", lambda x: (x.argmax(-1), x.argmin(1, keepdim=True), x.argmax(), x.argmin()),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    # movement, with sizes read from the input
    ("view_from_sizes", lambda x: x.view(x.size(0), x.size(1), 2, 3).transpose(1, 2).reshape(x.shape[0], -1),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("view_product", lambda x: x.view(x.shape[0] * x.shape[1], 6) * 2, lambda B, T: (rnd(B, T, 6),), [BT]),
    ("permute_T_mT", lambda x: (x.permute(2, 0, 1), x.permute(2, 0, 1).T, x.mT, x[0].T), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("expand", lambda x, y: y.expand(x.shape[0], -1, 6) + x + y.expand_as(x),
     lambda B, T: (rnd(B, T, 6), rnd(1, T, 6)), [BT, {1: "T"}]),
    ("squeeze_unsqueeze", lambda x: (x.unsqueeze(1).unsqueeze(-1).squeeze(-1).squeeze(1), x[:, :, :1].squeeze(-1), x.unsqueeze(0).squeeze(0)),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("flatten", lambda x: (x.flatten(1), x.flatten(), x.flatten(0, 1), x.flatten(-1)), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("repeat", lambda x: (x.repeat(1, 2, 3), x.repeat(2, 1, 1, 1)),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("split_chunk", lambda x: x.split(2, -1) + x.chunk(4, 2) + x.split([1, 4, 1], 2),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("narrow", lambda x: x.narrow(2, 1, 3) + x.narrow(-1, -3, 3) + x.narrow(1, 0, x.size(1)).narrow(2, 2, 3),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("cat_stack", lambda x, y: bigcore.cat([x, y, x], 1).sum(1) + bigcore.stack([x, y], -1).sum((1, 3)),
     lambda B, T: (rnd(B, T, 6), rnd(B, T, 6)), [BT, BT]),
    ("index_select", lambda x, i: x.index_select(2, i) + x.index_select(-1, i).exp(),
     lambda B, T: (rnd(B, T, 6), bigcore.tensor([5, 0, 0, 3])), [BT, {}]),
    ("tril_triu", lambda x: x.tril() + x.triu(1) * 2 + x.tril(-1), lambda B, T: (rnd(B, T, T),), [{0: "B", 1: "T", 2: "T"}]),
    # indexing
    ("getitem_last_and_slices", lambda x: (x[:, -1], x[..., 1:4], x[:, 0, ::2], x[0], x[-1, -2:, -4:-1:2]),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("getitem_none_ellipsis", lambda x: (x[None, ..., 2:], x[:, :, None, -3:], x[..., None], x[:, None, -1, None]),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("getitem_traced_bound", lambda x: (x[:, : x.size(1) - 1], x[:, 1:], x[:, x.size(1) // 2 :]), lambda B, T: (rnd(B, T + 1, 6),), [BT]),
    ("getitem_index_tensor", lambda x, i: (x[:, :, i], x[:, i.clamp(max=0)], x[..., i[1]]), lambda B, T: (rnd(B, T, 6), ids(6, 4)), [BT, {}]),
    ("getitem_index_list", lambda x: (x[:, :, [0, -1, 2]], x[..., 3], x[:, np.array([0, 0])]), lambda B, T: (rnd(B, T, 6),), [BT]),
    # creation from traced sizes
    ("causal_from_sizes", lambda x: x.masked_fill(bigcore.ones(x.size(1), x.size(1), dtype=bigcore.bool).tril().logical_not(), 0.0),
     lambda B, T: (rnd(B, T, T),), [{0: "B", 1: "T", 2: "T"}]),
    ("arange_positions", lambda i: i + bigcore.arange(i.size(1)) * 10 + bigcore.arange(1, i.size(1) + 1, 1).unsqueeze(0),
     lambda B, T: (ids(9, B, T),), [BT]),
    ("arange_float", lambda x: x + bigcore.arange(0.5, x.size(1), 1.0).unsqueeze(-1), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("like_and_full", lambda x: x + bigcore.ones_like(x) + bigcore.zeros_like(x) + bigcore.full((x.size(0), x.size(1), 1), 2.5)
     + bigcore.zeros(x.shape).sum(), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("clone_contiguous", lambda x: x.clone().contiguous() * 1.5, lambda B, T: (rnd(B, T, 6),), [BT]),
    # nn.functional
    ("linear_3d_2d_1d", lambda x, w, b: (F.linear(x, w, b), F.linear(x[:, 0], w), F.linear(x[0, 0], w, b)),
     lambda B, T: (rnd(B, T, 6), rnd(4, 6), rnd(4)), [BT, {}, {}]),
    ("matmul_batch_1d", lambda x, y: (x @ y, bigcore.matmul(x, y[0, :, 0]), x[0, 0] @ y[0], x[0, 0] @ x[0, -1]),
     lambda B, T: (rnd(B, T, 6), rnd(1, 6, 3)), [BT, {}]),
    ("softmax_family", lambda x: F.softmax(x, -1) + F.log_softmax(x, 1) + x.softmax(0) + F.softmax(x, 2, dtype=bigcore.float64).float(),
     lambda B, T: (rnd(B, T, 6),), [BT]),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (6,), w, b) + F.layer_norm(x, [6], eps=1e-3)
     + F.layer_norm(x.view(x.size(0), x.size(1), 2, 3), (2, 3)).view(x.size(0), x.size(1), 6),
     lambda B, T: (rnd(B, T, 6), rnd(6), rnd(6)), [BT, {}, {}]),
    ("gelu_erf_tanh", lambda x: F.gelu(x) + F.gelu(x, approximate="tanh"), lambda B, T: (rnd(B, T, 6) * 3,), [BT]),
    ("embedding", lambda i, w: (F.embedding(i, w) + F.embedding(i, w, padding_idx=2), F.embedding([[1, 0, 6]], w)),
     lambda B, T: (ids(7, B, T), rnd(7, 4)), [BT, {}]),
    ("dropout_eval", lambda x: F.dropout(x, 0.5, training=False) + F.dropout(x * 2, 0.1, False), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("sdpa_causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     lambda B, T: (rnd(B, 2, T, 4), rnd(B, 2, T, 4), rnd(B, 2, T, 3)), [{0: "B", 2: "T"}] * 3),
    ("sdpa_bool_mask_scale", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.3),
     lambda B, T: (rnd(B, 2, T, 4), rnd(B, 2, T + 2, 4), rnd(B, 2, T + 2, 3), bigcore.rand(T, T + 2) > 0.3),
     [{0: "B", 2: "T"}, {0: "B", 2: "S"}, {0: "B", 2: "S"}, {0: "T", 1: "S"}]),
    ("sdpa_float_mask", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
     lambda B, T: (rnd(B, T, 4), rnd(B, T, 4), rnd(B, T, 4), rnd(T, T)), [BT, BT, BT, {0: "T", 1: "T"}]),
    ("mse_bce_losses", lambda x, y: (F.mse_loss(x, y), F.mse_loss(x, y, reduction="none"), F.binary_cross_entropy(x.sigmoid(), y.sigmoid()),
                                     F.binary_cross_entropy_with_logits(x, y.sigmoid(), reduction="sum")),
     lambda B, T: (rnd(B, T, 6), rnd(B, T, 6)), [BT, BT]),
    ("cross_entropy_3d", lambda x, t: (F.cross_entropy(x.transpose(1, 2), t), F.cross_entropy(x.transpose(1, 2), t, reduction="none")),
     lambda B, T: (rnd(B, T, 6), ids(6, B, T)), [BT, BT]),
    ("cross_entropy_options", lambda x, t, w: (F.cross_entropy(x, t, weight=w), F.cross_entropy(x, t, ignore_index=1, reduction="sum"),
                                             F.cross_entropy(x, t, label_smoothing=0.2, weight=w, ignore_index=3),
                                             F.cross_entropy(x, t, label_smoothing=0.1, reduction="none")),
     lambda B, T: (rnd(B * T, 6), ids(6, B * T), bigcore.rand(6) + 0.5), [{0: "N"}, {0: "N"}, {}]),
    ("cross_entropy_probs", lambda x, p: F.cross_entropy(x, p.softmax(-1), label_smoothing=0.1),
     lambda B, T: (rnd(B, 6), rnd(B, 6)), [{0: "B"}, {0: "B"}]),
    ("nll_loss", lambda x, t: (F.nll_loss(x.log_softmax(1), t), F.nll_loss(x.log_softmax(1), t, reduction="none", ignore_index=0)),
     lambda B, T: (rnd(B * T, 6), ids(6, B * T)), [{0: "N"}, {0: "N"}]),
    # sorting, running sums, indexing along a dim
    ("topk_sort", lambda x: (x.topk(3), x.topk(2, largest=False), x.topk(4, sorted=False), x.topk(3, dim=2).values,
                             x.sort(-1), x.sort(1, descending=True), x.argsort(1), bigcore.sort(x.long(), 2).values),
     lambda B, T: (rnd(B, T, 6) * 4,), [BT]),
    ("cumsum", lambda x, i: (x.cumsum(1), x.cumsum(-1), i.cumsum(1), (x > 0).cumsum(2), x.double().cumsum(0)),
     lambda B, T: (rnd(B, T, 6), ids(9, B, T)), [BT, BT]),
    ("gather_scatter", lambda x: _gather_scatter(x), lambda B, T: (rnd(B, T, 6),), [BT]),
    ("put_one_hot", lambda x, i: (x.put(i[0, :1].clamp(max=5), x[0, 0, :1] * 5), x.put(bigcore.tensor([0, -1]), bigcore.tensor([7.0, 8.0]), accumulate=True),
                                  F.one_hot(i, 9), F.one_hot(i[:, :1].clamp(max=2), 3)),
     lambda B, T: (rnd(B, T, 6), ids(9, B, T)), [BT, BT]),
    # in place: each written tensor's later reads see the written values
    ("inplace_ops", lambda x, y: _inplace(x, y), lambda B, T: (rnd(B, T, 6), rnd(6)), [BT, {}]),
    ("setitem", lambda x, i: _setitem(x, i), lambda B, T: (rnd(B, T, 6), ids(6, 3)), [BT, {}]),
]


def _gather_scatter(x):
    # distinct targets per row (argsort), so scatter's result does not depend on the order of writes
    i = x.argsort(-1)[..., :4]
    return (x.gather(2, i), x.gather(2, i[:, :1, :2]), x.scatter(2, i, x[..., :4] * 2), x.scatter(2, i[..., :2], 3.0),
            x.scatter_add(2, i, x), x.scatter_add(2, i * 0, x))  # the last: every row's values added at place 0


def _inplace(x, y):
    a = x.clone()
    a.add_(y, alpha=2)
    a *= 1.5
    a -= y
    a /= 2
    b = x.clone().clamp_(-0.5, 0.5)
    c = x.clone().masked_fill_(x > 0.3, -1.0)
    d = x.clone().fill_(0.25) + x.clone().zero_() + x.clone().copy_(y)
    e = x.clone().scatter_(2, x.argsort(-1)[..., :2], 9.0).scatter_add_(2, x.argsort(-1)[..., :3], x)
    return a, b, c, d, e, x.long().clamp_(min=0).add_(3)


def _setitem(x, i):
    y = x.clone()
    y[:, 0] = 1.0
    y[..., 1:3] = y[..., 3:5] * 2
    y[y > 1.5] = 0.0
    y[:, :, [0, 5]] = -1.0
    y[0] = y[0] + 1
    y[:, -1, i] = bigcore.tensor([4.0, 5.0, 6.0])
    z = x.clone()
    z[x[..., 0] > 0] = 7.0  # a mask over the leading dims
    z[:, :, 2::3] += 1
    return y, z



@pytest.mark.parametrize("name,fn,make,axes", CASES, ids=[c[0] for c in CASES])
def test_functional_op_exports(name, fn, make, axes, rng):
    traced = make(*TRACED)
    names = [f"xs_{i}" for i in range(len(traced))]
    dynamic = {n: a for n, a in zip(names, axes) if a}
    runs = [make(B, T) for B, T in RUNS] if dynamic else []
    export_and_check(Fn(fn), traced, runs, dynamic_axes=dynamic)


def test_gelu_is_one_node_from_opset_20(rng):
    # y = x Phi(x): ONNX Gelu (both forms) at opset >= 20, the erf and tanh formulas before
    x = rnd(3, 4)
    f = Fn(lambda x: F.gelu(x) * F.gelu(x, approximate="tanh"))
    new = export_and_check(f, (x,), [(rnd(5, 4),)], {"xs_0": {0: "B"}}, opset_version=20)
    old = export_and_check(f, (x,), [(rnd(5, 4),)], {"xs_0": {0: "B"}}, opset_version=18)
    assert op_types(new).count("Gelu") == 2
    assert "Gelu" not in op_types(old) and {"Erf", "Tanh"} <= set(op_types(old))


@pytest.mark.parametrize("opset", [17, 18, 21, 23])
def test_every_supported_opset_runs(opset, rng):
    # ReduceMean takes its axes as an attribute before opset 18, as an input from 18
    f = Fn(lambda x: F.layer_norm(x, (6,)).mean(-1) + x.amax(1).sum(-1, keepdim=True))
    export_and_check(f, (rnd(2, 5, 6),), [(rnd(3, 7, 6),)], {"xs_0": BT}, opset_version=opset)


SDPA = [c for c in CASES if c[0].startswith("sdpa")]


@pytest.mark.parametrize("name,fn,make,axes", SDPA, ids=[c[0] for c in SDPA])
def test_sdpa_is_one_attention_node_at_opset_23(name, fn, make, axes, rng):
    dynamic = {f"xs_{i}": a for i, a in enumerate(axes) if a}
    proto = export_and_check(Fn(fn), make(*TRACED), [make(B, T) for B, T in RUNS], dynamic, opset_version=23)
    assert op_types(proto).count("Attention") == 1 and "Softmax" not in op_types(proto)


def test_sdpa_causal_mask_follows_the_sequence_length(rng):
    # softmax(q k^T / sqrt(4) masked above the diagonal) v: at T=11 the mask is 11 x 11, built in the graph
    f = Fn(lambda q: F.scaled_dot_product_attention(q, q, q, is_causal=True))
    proto = export_and_check(f, (rnd(1, 3, 4),), [(rnd(2, 11, 4),)], {"xs_0": {0: "B", 1: "T"}})
    assert "Trilu" in op_types(proto)
    assert all(math.prod(i.dims) < 9 for i in proto.graph.initializer)  # no traced-size mask stored


def test_setitem_exports_what_it_can_and_names_what_it_cannot(rng):
    # one mask (a tensor or an array) over the leading dims with one value is a Where; a mask beside other keys is not
    # exported (the positions it picks depend on the values)
    def masked(x):
        y = x.clone()
        y[np.array([True, False, True])] = 2.0
        return y

    export_and_check(Fn(masked), (rnd(3, 4),), [(rnd(3, 4),)])
    def mixed(x):
        y = x.clone()
        y[..., np.array([True, False, False, True])] = 0.5
        return y

    with pytest.raises(bigcore.onnx.UnsupportedOperatorError, match="setitem"):
        bigcore.onnx.export(Fn(mixed), (rnd(2, 4),), io.BytesIO())
