"""The Keras-style API: the specification's DNN example, History, validation, evaluate/predict, callbacks,
losses and metrics by name, and clear errors."""

import numpy as np
import pytest

import bigcore
from bigcore import keras


def _digits():
    x, y = bigcore.data.load_digits()
    order = np.random.default_rng(0).permutation(len(x))
    cut = int(0.8 * len(x))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def test_specification_example_reaches_95_percent(capsys):
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location("digits_dnn", pathlib.Path(__file__).parent.parent / "examples" / "digits_dnn.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    acc = mod.main(["--epochs", "10"])
    assert acc >= 0.95
    out = capsys.readouterr().out
    assert "Epoch 10/10" in out and "accuracy:" in out and "loss:" in out


def test_history_validation_and_silence(capsys):
    bigcore.manual_seed(1)
    xtr, ytr, xte, yte = _digits()
    model = keras.Sequential([keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(xtr, ytr, epochs=3, batch_size=64, validation_split=0.2, verbose=0)
    assert capsys.readouterr().out == ""
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"} and h.epoch == [0, 1, 2]
    assert all(len(v) == 3 for v in h.history.values())
    assert h.history["loss"][-1] < h.history["loss"][0]
    h2 = model.fit(xtr, ytr, epochs=1, validation_data=(xte, yte), verbose=2)
    assert "val_accuracy" in h2.history and "Epoch 1/1" in capsys.readouterr().out
    loss, acc = model.evaluate(xte, yte)
    probs = model.predict(xte)
    assert probs.shape == (len(xte), 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert acc == pytest.approx((probs.argmax(1) == yte).mean())


def test_evaluate_matches_the_loss_formula():
    bigcore.manual_seed(2)
    x = np.random.default_rng(0).standard_normal((20, 5)).astype(np.float32)
    y = np.arange(20) % 3
    model = keras.Sequential([keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loss = model.evaluate(x, y, batch_size=7)
    p = model.predict(x).astype(np.float64)
    assert loss == pytest.approx(-np.log(np.clip(p[np.arange(20), y], 1e-7, 1 - 1e-7)).mean(), rel=1e-5)


@pytest.mark.parametrize("name,y_kind", [("categorical_crossentropy", "onehot"), ("binary_crossentropy", "binary"),
                                         ("mse", "real"), ("mae", "real")])
def test_losses_by_name(name, y_kind):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, (6, 3))
    y = {"onehot": np.eye(3)[rng.integers(0, 3, 6)], "binary": (rng.random((6, 3)) > 0.5).astype(float),
         "real": rng.standard_normal((6, 3))}[y_kind]
    got = keras.losses.get(name)(bigcore.tensor(y), bigcore.tensor(p)).item()
    want = {"categorical_crossentropy": -(y * np.log(p / p.sum(1, keepdims=True))).sum(1).mean(),
            "binary_crossentropy": -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(),
            "mse": ((p - y) ** 2).mean(), "mae": np.abs(p - y).mean()}[name]
    assert got == pytest.approx(want, rel=1e-9)


def test_from_logits_and_binary_accuracy():
    bigcore.manual_seed(3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)[:, None]
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=keras.losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    h = model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    assert h.history["accuracy"][-1] > 0.95


def test_callbacks(tmp_path):
    bigcore.manual_seed(4)
    xtr, ytr, xte, yte = _digits()
    model = keras.Sequential([keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.1), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seen_lr = []

    class Spy(keras.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen_lr.append(self.model.optimizer.param_groups[0]["lr"])

    stopper = keras.EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0, restore_best_weights=True)
    ck = keras.ModelCheckpoint(str(tmp_path / "w-{epoch:02d}.safetensors"))
    sched = keras.LearningRateScheduler(lambda epoch, lr: 0.01 * 0.5**epoch)
    h = model.fit(xtr, ytr, epochs=10, validation_data=(xte, yte), callbacks=[sched, Spy(), stopper, ck], verbose=0)
    assert len(h.epoch) == 2 and stopper.stopped_epoch == 1  # nothing improves by 10.0 after the first epoch
    assert seen_lr == [0.01, 0.005]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w-01.safetensors", "w-02.safetensors"]
    first = bigcore.load(tmp_path / "w-01.safetensors")
    for k, v in model.state_dict().items():  # restored to the best (first) epoch's weights
        np.testing.assert_array_equal(v.numpy(), first[k].numpy())


def test_save_best_only(tmp_path):
    bigcore.manual_seed(5)
    xtr, ytr, xte, yte = _digits()
    model = keras.Sequential([keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ck = keras.ModelCheckpoint(str(tmp_path / "best.safetensors"), monitor="val_accuracy", save_best_only=True)
    h = model.fit(xtr, ytr, epochs=3, validation_data=(xte, yte), callbacks=[ck], verbose=0)
    assert ck.best == max(h.history["val_accuracy"]) and (tmp_path / "best.safetensors").exists()


def test_layers_and_errors():
    x = bigcore.randn(4, 3, 2)
    assert keras.layers.Flatten()(x).shape == (4, 6)
    assert keras.layers.LayerNormalization()(x).shape == (4, 3, 2)
    assert keras.layers.Embedding(10, 5)(bigcore.tensor([[1, 2]])).shape == (1, 2, 5)
    assert keras.layers.Activation("tanh")(x).shape == x.shape
    with pytest.raises(ValueError, match="activation"):
        keras.layers.Dense(3, activation="swishy")
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.zeros((4, 3)), np.zeros(4, np.int64), verbose=0)
    with pytest.raises(ValueError, match="loss"):
        model.compile(optimizer="adam", loss="hinge-ish")
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="different numbers"):
        model.fit(np.zeros((4, 3)), np.zeros(5), verbose=0)


def test_compile_with_metrics_other_than_accuracy():
    # names, metric objects and weighted metrics are resolved at compile; their values match the predictions
    import numpy as np

    rng = np.random.default_rng(3)
    x, y = rng.random((20, 4), dtype=np.float32), rng.random((20, 3), dtype=np.float32)
    m = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3)])
    m.compile(loss="mse", metrics=["mae", keras.metrics.MeanSquaredError()], weighted_metrics=["mae"])
    m.fit(x, y, epochs=1, verbose=0)
    loss, mae, mse, wmae = m.evaluate(x, y, verbose=0)
    p = m.predict(x, verbose=0)
    np.testing.assert_allclose([mae, mse, wmae, loss], [np.abs(p - y).mean(), ((p - y) ** 2).mean(),
                                                        np.abs(p - y).mean(), ((p - y) ** 2).mean()], rtol=1e-5)
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        m.compile(loss="mse", metrics=["nope"])
