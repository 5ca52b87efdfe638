"""``models.MLP`` (torchvision.ops.MLP's layout, against a numpy forward) and ``models.DNN`` (the specification's
model as a keras.Model: compile / fit, a PyTorch-style loop, save / load without custom_objects)."""

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
from bigcore import keras
from bigcore.models import DNN, MLP


def test_mlp_has_torchvisions_layout_and_forward(rng):
    mlp = MLP(5, [7, 6, 3], norm_layer=nn.LayerNorm, activation_layer=nn.Tanh, dropout=0.2)
    assert [type(m).__name__ for m in mlp] == ["Linear", "LayerNorm", "Tanh", "Dropout", "Linear", "LayerNorm", "Tanh",
                                             "Dropout", "Linear", "Dropout"]
    assert sorted(mlp.state_dict()) == sorted(f"{i}.{p}" for i in (0, 1, 4, 5, 8) for p in ("weight", "bias"))
    mlp.eval()  # dropout off
    x = rng.standard_normal((4, 2, 5))
    sd = {k: v.numpy().astype(np.float64) for k, v in mlp.state_dict().items()}
    h = x
    for lin, norm in ((0, 1), (4, 5)):
        h = h @ sd[f"{lin}.weight"].T + sd[f"{lin}.bias"]
        h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5) * sd[f"{norm}.weight"] + sd[f"{norm}.bias"]
        h = np.tanh(h)
    want = h @ sd["8.weight"].T + sd["8.bias"]
    np.testing.assert_allclose(mlp(bigcore.tensor(x.astype(np.float32))).numpy(), want, rtol=1e-4, atol=1e-5)
    plain = MLP(3, [4], bias=False)
    assert [type(m).__name__ for m in plain] == ["Linear", "Dropout"] and plain[0].bias is None
    for bad in ([], [4, 0], [2.5]):
        with pytest.raises(ValueError, match="hidden_channels"):
            MLP(3, bad)


def test_dnn_trains_with_keras_and_saves_without_custom_objects(tmp_path):
    bigcore.manual_seed(0)
    x, y = bigcore.data.load_digits()
    x = x.reshape(-1, 8, 8)[:600].astype(np.float32)
    y = y[:600]
    model = DNN(32, 10)
    assert [n for n, _ in model.named_children()] == ["flatten", "dense1", "dense2"]  # the specification's names
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert h.history["accuracy"][-1] > 0.85
    model.save(tmp_path / "dnn.keras")
    back = keras.models.load_model(tmp_path / "dnn.keras")  # registered as "bigcore>DNN"
    assert isinstance(back, DNN) and back.hidden_units == [32]
    np.testing.assert_array_equal(back.predict(x[:50], verbose=0), model.predict(x[:50], verbose=0))
    deep = DNN([16, 8], 3, activation="tanh", output_activation=None)
    assert [n for n, _ in deep.named_children()] == ["flatten", "dense1", "dense2", "dense3"]
    with pytest.raises(ValueError, match="hidden_units"):
        DNN([], 3)


def test_dnn_in_a_pytorch_style_loop(rng):
    bigcore.manual_seed(1)
    model = DNN([8], 3, output_activation=None, input_shape=(2, 3))  # built at once: parameters exist
    assert [tuple(p.shape) for p in model.parameters()] == [(8, 6), (8,), (3, 8), (3,)]
    opt = bigcore.optim.SGD(model.parameters(), lr=0.5)
    x = bigcore.tensor(rng.standard_normal((32, 2, 3)).astype(np.float32))
    y = bigcore.tensor((x.numpy().reshape(32, -1).sum(1) > 0).astype(np.int64))
    losses = []
    for _ in range(20):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
