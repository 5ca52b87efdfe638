"""Parity with real PyTorch: weights of PyTorch modules, converted to numpy, load into bigcore's modules with
``load_state_dict`` and give the same outputs and input gradients.

PyTorch is not a dependency and is not installed where CI runs, so this module runs only where it is installed
(it was run on the lent GPU host, which has PyTorch 2.11); everywhere else pytest reports it as skipped, with
this reason. The numpy references in the other test files check the same formulas without PyTorch.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed; parity with it is checked where it is")

import bigcore  # noqa: E402
import bigcore.nn as bnn  # noqa: E402


def _load(tm, bm):
    bm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})


def _compare(tm, bm, inputs, out_index=None, rtol=1e-9, atol=1e-10):
    """Run both on the same float64 inputs; compare outputs and the gradient of sum(out * g) per input."""
    t_in = [torch.tensor(a, requires_grad=a.dtype == np.float64) for a in inputs]
    b_in = [bigcore.tensor(a, requires_grad=a.dtype == np.float64) for a in inputs]
    t_out, b_out = tm(*t_in), bm(*b_in)
    if out_index is not None:
        t_out, b_out = t_out[out_index], b_out[out_index]
    np.testing.assert_allclose(b_out.numpy(), t_out.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(0).standard_normal(tuple(t_out.shape))
    (t_out * torch.tensor(g)).sum().backward()
    (b_out * bigcore.tensor(g)).sum().backward()
    for t, b in zip(t_in, b_in):
        if t.requires_grad:
            np.testing.assert_allclose(b.grad.numpy(), t.grad.numpy(), rtol=1e-7, atol=1e-9)
    for (name, tp), (bname, bp) in zip(tm.named_parameters(), bm.named_parameters()):
        assert name == bname
        np.testing.assert_allclose(bp.grad.numpy(), tp.grad.numpy(), rtol=1e-7, atol=1e-9, err_msg=name)


def test_basic_layers():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 7))
    for tm, bm in [(torch.nn.Linear(7, 4), bnn.Linear(7, 4)), (torch.nn.LayerNorm(7), bnn.LayerNorm(7))]:
        tm.double()
        bm.double()
        _load(tm, bm)
        _compare(tm, bm, [x])
    te, be = torch.nn.Embedding(9, 4, padding_idx=1).double(), bnn.Embedding(9, 4, padding_idx=1).double()
    _load(te, be)
    _compare(te, be, [rng.integers(0, 9, (2, 6))])


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention(batch_first):
    rng = np.random.default_rng(1)
    tm = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first).double()
    bm = bnn.MultiheadAttention(8, 2, batch_first=batch_first, dtype=bigcore.float64)
    _load(tm, bm)
    q, k = rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 5, 8))  # (N, L, E), (N, S, E)
    if not batch_first:
        q, k = q.transpose(1, 0, 2).copy(), k.transpose(1, 0, 2).copy()  # (L, N, E), (S, N, E)
    mask = np.triu(np.ones((3, 5), bool), 3)
    t_out, t_w = tm(torch.tensor(q), torch.tensor(k), torch.tensor(k), attn_mask=torch.tensor(mask))
    b_out, b_w = bm(bigcore.tensor(q), bigcore.tensor(k), bigcore.tensor(k), attn_mask=bigcore.tensor(mask))
    np.testing.assert_allclose(b_out.numpy(), t_out.detach().numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(b_w.numpy(), t_w.detach().numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_layers(norm_first):
    rng = np.random.default_rng(2)
    kw = dict(dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=norm_first, activation="gelu")
    te, be = torch.nn.TransformerEncoderLayer(8, 2, **kw).double(), bnn.TransformerEncoderLayer(8, 2, dtype=bigcore.float64, **kw)
    _load(te, be)
    _compare(te, be, [rng.standard_normal((2, 5, 8))])
    td, bd = torch.nn.TransformerDecoderLayer(8, 2, **kw).double(), bnn.TransformerDecoderLayer(8, 2, dtype=bigcore.float64, **kw)
    _load(td, bd)
    _compare(td, bd, [rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 5, 8))])


def test_full_transformer_state_dict_loads():
    tm = torch.nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16, dropout=0.0, batch_first=True).double()
    bm = bnn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16, dropout=0.0, batch_first=True, dtype=bigcore.float64)
    assert list(tm.state_dict()) == list(bm.state_dict())
    _load(tm, bm)
    rng = np.random.default_rng(3)
    src, tgt = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 4, 8))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    want = tm(torch.tensor(src), torch.tensor(tgt), tgt_mask=mask).detach().numpy()
    got = bm(bigcore.tensor(src), bigcore.tensor(tgt), tgt_mask=bnn.Transformer.generate_square_subsequent_mask(4, dtype=bigcore.float64))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kw", [dict(num_layers=1), dict(num_layers=2, bidirectional=True, batch_first=True)])
def test_lstm(kw):
    rng = np.random.default_rng(4)
    tm, bm = torch.nn.LSTM(3, 5, **kw).double(), bnn.LSTM(3, 5, dtype=bigcore.float64, **kw)
    assert list(tm.state_dict()) == list(bm.state_dict())
    _load(tm, bm)
    _compare(tm, bm, [rng.standard_normal((4, 6, 3))], out_index=0)


def test_optimizers_match_torch():
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(4)]
    for t_cls, b_cls, kw in [(torch.optim.AdamW, bigcore.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
                             (torch.optim.Adam, bigcore.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
                             (torch.optim.SGD, bigcore.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01))]:
        tp, bp = torch.nn.Parameter(torch.tensor(p0)), bnn.Parameter(bigcore.tensor(p0))
        to, bo = t_cls([tp], **kw), b_cls([bp], **kw)
        for g in grads:
            tp.grad, bp.grad = torch.tensor(g), bigcore.tensor(g)
            to.step()
            bo.step()
        np.testing.assert_allclose(bp.numpy(), tp.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=t_cls.__name__)


@pytest.mark.parametrize("case", ["plain", "causal T<S", "causal T>S", "bool mask, a query with no key", "additive (B, 1, T, S)",
                                  "additive, a query with no key", "scale", "gqa", "broadcast batch"])
def test_scaled_dot_product_attention(case):
    rng = np.random.default_rng(4)
    B, NH, T, S, HS, HV = 2, 3, 5, 7, 4, 6
    q, k, v = rng.standard_normal((B, NH, T, HS)), rng.standard_normal((B, NH, S, HS)), rng.standard_normal((B, NH, S, HV))
    kw, mask = {}, None
    if case == "causal T<S":
        kw["is_causal"] = True
    elif case == "causal T>S":
        q = rng.standard_normal((B, NH, 9, HS))
        kw["is_causal"] = True
    elif case == "bool mask, a query with no key":
        mask = rng.random((T, S)) > 0.4
        mask[2] = False
    elif case == "additive (B, 1, T, S)":
        mask = rng.standard_normal((B, 1, T, S))
    elif case == "additive, a query with no key":
        mask = np.where(rng.random((NH, T, S)) > 0.3, 0.0, -np.inf)
        mask[1, 3] = -np.inf
    elif case == "scale":
        kw["scale"] = 0.3
    elif case == "gqa":
        k, v = k[:, :1], v[:, :1]
        kw["enable_gqa"] = True
    elif case == "broadcast batch":
        k, v = k[:1], v[0]
    t_in = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    b_in = [bigcore.tensor(a, requires_grad=True) for a in (q, k, v)]
    t_out = torch.nn.functional.scaled_dot_product_attention(*t_in, attn_mask=None if mask is None else torch.tensor(mask), **kw)
    b_out = bigcore.nn.functional.scaled_dot_product_attention(*b_in, attn_mask=None if mask is None else bigcore.tensor(mask), **kw)
    np.testing.assert_allclose(b_out.numpy(), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(tuple(t_out.shape))
    (t_out * torch.tensor(g)).sum().backward()
    (b_out * bigcore.tensor(g)).sum().backward()
    for t, b in zip(t_in, b_in):
        np.testing.assert_allclose(b.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-11)
