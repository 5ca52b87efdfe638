"""What ``fit`` / ``evaluate`` take: several inputs (a list or a dict by Input name), several outputs with their
losses and weights, a DataLoader, a generator with ``steps_per_epoch``, ``sample_weight`` and ``class_weight``
(against a hand-computed weighted loss and SGD step), and ``weighted_metrics``."""

import numpy as np
import pytest

import bigcore
from bigcore import keras
from bigcore.data import DataLoader, TensorDataset
from bigcore.keras import layers


def _softmax_model(d=4, c=3, lr=0.1):
    bigcore.manual_seed(7)
    model = keras.Sequential([keras.Input(shape=(d,)), layers.Dense(c, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], weighted_metrics=["accuracy"])
    return model


def test_sample_weight_is_keras_weighted_mean_and_gradient(rng):
    # Keras 3: loss = sum(w_i * l_i) / N (not / sum(w)); the accuracy in weighted_metrics is sum(w * hit) / sum(w)
    x = rng.standard_normal((10, 4)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    w = rng.uniform(0, 2, 10).astype(np.float32)
    model = _softmax_model()
    kernel, bias = (v.astype(np.float64) for v in model.get_weights())
    logits = x @ kernel + bias
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    losses = -np.log(p[np.arange(10), y])
    hits = (p.argmax(1) == y).astype(np.float64)
    loss, acc, weighted_acc = model.evaluate(x, y, sample_weight=w, batch_size=4, verbose=0)
    assert model.metrics_names == ["loss", "accuracy", "weighted_accuracy"]
    assert all(type(v) is float for v in (loss, acc, weighted_acc))
    assert loss == pytest.approx((w * losses).sum() / 10, rel=1e-5)
    assert acc == pytest.approx(hits.mean()) and weighted_acc == pytest.approx((w * hits).sum() / w.sum(), rel=1e-6)
    # one SGD step on the whole batch: d loss / d logits = w_i (p_i - onehot_i) / N
    h = model.fit(x, y, sample_weight=w, batch_size=10, epochs=1, shuffle=False, verbose=0)
    assert h.history["loss"][0] == pytest.approx((w * losses).sum() / 10, rel=1e-5)
    dlogits = w[:, None] * (p - np.eye(3)[y]) / 10
    new_kernel, new_bias = model.get_weights()
    np.testing.assert_allclose(new_kernel, kernel - 0.1 * x.T @ dlogits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_bias, bias - 0.1 * dlogits.sum(0), rtol=1e-5, atol=1e-6)


def test_class_weight_equals_the_matching_sample_weight(rng):
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    class_weight = {0: 0.5, 2: 3.0}  # class 1 absent: weight 1, as Keras
    a, b = _softmax_model(), _softmax_model()
    ha = a.fit(x, y, class_weight=class_weight, batch_size=5, epochs=2, shuffle=False, verbose=0)
    hb = b.fit(x, y, sample_weight=np.array([class_weight.get(int(c), 1.0) for c in y]), batch_size=5, epochs=2,
               shuffle=False, verbose=0)
    assert ha.history == hb.history
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    with pytest.raises(ValueError, match="`class_weight` and `sample_weight` at the same time"):
        a.fit(x, y, class_weight=class_weight, sample_weight=np.ones(16), verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight of shape \(5, 2\) does not fit the losses of shape \(5,\)"):
        a.fit(x, y, sample_weight=np.ones((16, 2)), batch_size=5, verbose=0)


def test_multi_input_fit_with_a_list_or_a_dict(rng):
    xa, xb = rng.standard_normal((40, 3)).astype(np.float32), rng.standard_normal((40, 2)).astype(np.float32)
    y = (xa.sum(1) - 2 * xb[:, 0]).astype(np.float32)[:, None]

    def model():
        bigcore.manual_seed(3)
        a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(2,), name="b")
        m = keras.Model([a, b], layers.Dense(1)(layers.Concatenate()([a, b])))
        m.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
        return m

    m1, m2 = model(), model()
    h1 = m1.fit([xa, xb], y, epochs=15, batch_size=8, shuffle=False, verbose=0)
    h2 = m2.fit({"b": xb, "a": xa}, y, epochs=15, batch_size=8, shuffle=False, verbose=0)
    assert h1.history == h2.history and h1.history["loss"][-1] < 0.1 * h1.history["loss"][0]
    with pytest.raises(ValueError, match="different numbers of samples.*'x' sizes: 40, 39"):
        m1.fit([xa, xb[:39]], y, verbose=0)


def test_two_outputs_with_losses_by_name_and_loss_weights(rng):
    x = rng.standard_normal((12, 3)).astype(np.float32)
    y_reg, y_cls = rng.standard_normal((12, 1)).astype(np.float32), rng.integers(0, 2, 12)
    inp = keras.Input(shape=(3,))
    model = keras.Model(inp, [layers.Dense(1, name="reg")(inp), layers.Dense(2, activation="softmax", name="cls")(inp)])
    model.compile(optimizer="sgd", loss={"reg": "mse", "cls": "sparse_categorical_crossentropy"},
                  loss_weights={"reg": 2.0, "cls": 0.5}, metrics={"cls": ["accuracy"]})
    logs = model.evaluate(x, {"reg": y_reg, "cls": y_cls}, return_dict=True, verbose=0)
    reg, cls = model.predict(x, verbose=0)
    want_reg = ((reg - y_reg) ** 2).mean()
    want_cls = -np.log(cls[np.arange(12), y_cls]).mean()
    assert logs["reg_loss"] == pytest.approx(want_reg, rel=1e-5) and logs["cls_loss"] == pytest.approx(want_cls, rel=1e-5)
    assert logs["loss"] == pytest.approx(2.0 * want_reg + 0.5 * want_cls, rel=1e-5)
    assert logs["cls_accuracy"] == pytest.approx((cls.argmax(1) == y_cls).mean())
    assert model.metrics_names == ["loss", "reg_loss", "cls_loss", "cls_accuracy"]
    h = model.fit(x, [y_reg, y_cls], epochs=2, verbose=0)
    assert set(h.history) == {"loss", "reg_loss", "cls_loss", "cls_accuracy"}
    with pytest.raises(ValueError, match="keys.*do not correspond to any model output"):
        model.compile(optimizer="sgd", loss={"nope": "mse"})
        model.evaluate(x, [y_reg, y_cls], verbose=0)


def test_dataloader_and_generator_train_as_arrays_do(rng):
    x = rng.standard_normal((30, 4)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    ref = _softmax_model()
    h_ref = ref.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    loader = DataLoader(TensorDataset(bigcore.tensor(x), bigcore.tensor(y)), batch_size=8)
    m = _softmax_model()
    same_lr = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr)  # reads the optimizer before any batch
    h = m.fit(loader, epochs=2, verbose=0, validation_data=loader, callbacks=[same_lr])
    assert h.history["loss"] == pytest.approx(h_ref.history["loss"], rel=1e-6)
    assert h.history["val_loss"][-1] == pytest.approx(m.evaluate(x, y, verbose=0)[0], rel=1e-6)
    for a, b in zip(ref.get_weights(), m.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    def batches():  # endless: steps_per_epoch makes the epochs
        while True:
            for s in range(0, 30, 8):
                yield x[s : s + 8], y[s : s + 8]

    g = _softmax_model()
    hg = g.fit(batches(), steps_per_epoch=4, epochs=2, verbose=0)
    assert hg.history["loss"] == pytest.approx(h_ref.history["loss"], rel=1e-6)
    with pytest.raises(ValueError, match="batch_size must not be given"):
        g.fit(batches(), batch_size=8, steps_per_epoch=1, verbose=0)
    with pytest.raises(ValueError, match="y and sample_weight must be None"):
        g.fit(loader, y, verbose=0)


def test_a_finite_generator_runs_out_with_a_warning(rng):
    x = rng.standard_normal((12, 4)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    model = _softmax_model()
    gen = ((x[s : s + 4], y[s : s + 4], np.ones(4)) for s in range(0, 12, 4))  # (x, y, sample_weight) batches
    with pytest.warns(UserWarning, match="ran out of data"):
        h = model.fit(gen, epochs=3, verbose=0)
    assert h.epoch == [0]  # the second epoch found nothing left
    preds = model.predict(((x[s : s + 5],) for s in range(0, 12, 5)), verbose=0)
    np.testing.assert_allclose(preds, model.predict(x, verbose=0), rtol=1e-6)


def test_progress_bar_with_unknown_length(rng, capsys):
    x = rng.standard_normal((8, 4)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    model = _softmax_model()
    model.fit(((x[s : s + 4], y[s : s + 4]) for s in range(0, 8, 4)), epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "2/2" in out and "loss:" in out
