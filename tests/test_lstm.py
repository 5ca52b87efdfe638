"""LSTM against a numpy implementation of PyTorch's equations (gate order i, f, g, o): outputs and final
states for 1 and 2 layers, batch-first or not, with and without an initial state, bidirectional; gradients of
every input and weight against central differences of the numpy forward, in float64."""

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
from bigcore import keras


def sig(x):
    return 1 / (1 + np.exp(-x))


def np_lstm(p, x, h0, c0, num_layers, bidirectional):
    """x (T, B, I); p: parameter name -> array; h0, c0 (L*D, B, H). Returns output, h_n, c_n."""
    d = 2 if bidirectional else 1
    hn, cn = [], []
    inp = x
    for layer in range(num_layers):
        outs = []
        for direction in range(d):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            W, U = p["weight_ih" + sfx], p["weight_hh" + sfx]
            b = p.get("bias_ih" + sfx, 0) + p.get("bias_hh" + sfx, 0)
            h, c = h0[layer * d + direction], c0[layer * d + direction]
            seq = inp[::-1] if direction else inp
            hs = []
            for xt in seq:
                z = xt @ W.T + h @ U.T + b
                i, f, g, o = np.split(z, 4, axis=-1)
                c = sig(f) * c + sig(i) * np.tanh(g)
                h = sig(o) * np.tanh(c)
                hs.append(h)
            hs = np.stack(hs)
            outs.append(hs[::-1] if direction else hs)
            hn.append(h)
            cn.append(c)
        inp = np.concatenate(outs, -1)
    return inp, np.stack(hn), np.stack(cn)


CASES = [dict(num_layers=1), dict(num_layers=2), dict(num_layers=1, bidirectional=True),
         dict(num_layers=2, bidirectional=True, bias=False)]


@pytest.mark.parametrize("kw", CASES)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_forward_matches_numpy(kw, batch_first, with_state, rng):
    T, B, I, H = 5, 3, 4, 6
    m = nn.LSTM(I, H, batch_first=batch_first, dtype=bigcore.float64, **kw)
    p = {k: v.numpy() for k, v in m.state_dict().items()}
    d = 2 if kw.get("bidirectional") else 1
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((kw["num_layers"] * d, B, H)) if with_state else np.zeros((kw["num_layers"] * d, B, H))
    c0 = rng.standard_normal(h0.shape) if with_state else np.zeros(h0.shape)
    xin = x.transpose(1, 0, 2) if batch_first else x
    hx = (bigcore.tensor(h0), bigcore.tensor(c0)) if with_state else None
    out, (hn, cn) = m(bigcore.tensor(xin), hx)
    want, whn, wcn = np_lstm(p, x, h0, c0, kw["num_layers"], kw.get("bidirectional", False))
    got = out.numpy().transpose(1, 0, 2) if batch_first else out.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hn.numpy(), whn, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cn.numpy(), wcn, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(num_layers=1), dict(num_layers=2, bidirectional=True)])
def test_gradients_match_numpy_finite_differences(kw, rng):
    T, B, I, H = 4, 2, 3, 2
    m = nn.LSTM(I, H, dtype=bigcore.float64, **kw)
    d = 2 if kw.get("bidirectional") else 1
    L = kw["num_layers"]
    x, h0, c0 = rng.standard_normal((T, B, I)), rng.standard_normal((L * d, B, H)), rng.standard_normal((L * d, B, H))
    go, gh, gc = rng.standard_normal((T, B, d * H)), rng.standard_normal((L * d, B, H)), rng.standard_normal((L * d, B, H))
    tx, th, tc = (bigcore.tensor(a, requires_grad=True) for a in (x, h0, c0))
    out, (hn, cn) = m(tx, (th, tc))
    ((out * bigcore.tensor(go)).sum() + (hn * bigcore.tensor(gh)).sum() + (cn * bigcore.tensor(gc)).sum()).backward()

    params = {k: v.numpy() for k, v in m.state_dict().items()}

    def loss(xx, hh, cc, pp):
        o, a, b = np_lstm(pp, xx, hh, cc, L, kw.get("bidirectional", False))
        return (o * go).sum() + (a * gh).sum() + (b * gc).sum()

    def numeric(arr, f):
        g = np.zeros_like(arr)
        for j in np.ndindex(arr.shape):
            old = arr[j]
            arr[j] = old + 1e-6
            up = f()
            arr[j] = old - 1e-6
            down = f()
            arr[j] = old
            g[j] = (up - down) / 2e-6
        return g

    for arr, t in ((x, tx), (h0, th), (c0, tc)):
        np.testing.assert_allclose(t.grad.numpy(), numeric(arr, lambda: loss(x, h0, c0, params)), rtol=1e-5, atol=1e-7)
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), numeric(params[name], lambda: loss(x, h0, c0, params)),
                                   rtol=1e-5, atol=1e-7, err_msg=name)


def test_unbatched_dropout_init_and_errors(rng):
    m = nn.LSTM(3, 5, num_layers=2, dropout=0.5)
    bound = 1 / np.sqrt(5)
    assert all(np.abs(p.numpy()).max() <= bound for p in m.parameters())
    out, (h, c) = m(bigcore.randn(7, 3))
    assert out.shape == (7, 5) and h.shape == (2, 5) and c.shape == (2, 5)
    x = bigcore.randn(6, 2, 3)
    bigcore.manual_seed(0)
    a = m(x)[0].numpy()
    m.eval()
    b1, b2 = m(x)[0].numpy(), m(x)[0].numpy()
    np.testing.assert_array_equal(b1, b2)  # no dropout in eval
    assert not np.array_equal(a, b1)  # dropout between the layers while training
    with pytest.raises(bigcore.ShapeError, match="input_size"):
        m(bigcore.randn(6, 2, 4))
    with pytest.raises(bigcore.ShapeError, match="hidden states"):
        m(x, (bigcore.zeros(1, 2, 5), bigcore.zeros(1, 2, 5)))
    with pytest.raises(ValueError):
        nn.LSTM(3, 5, proj_size=2)


def test_keras_lstm_layer_learns_a_sequence_task(rng):
    # label = whether the sum of a sequence is positive: needs the whole sequence
    bigcore.manual_seed(0)
    x = rng.standard_normal((400, 6, 1)).astype(np.float32)
    y = (x.sum((1, 2)) > 0).astype(np.int64)
    model = keras.Sequential([keras.layers.LSTM(8), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert h.history["accuracy"][-1] > 0.9
    seq = keras.layers.LSTM(4, return_sequences=True, return_state=True)
    out, hh, cc = seq(bigcore.randn(2, 5, 3))
    assert out.shape == (2, 5, 4) and hh.shape == (2, 4) and cc.shape == (2, 4)
