"""Saving Keras models: ``.keras`` archives (Sequential, functional, subclassed), weights files and their suffix
rule, ``get_weights`` / ``set_weights`` in Keras's layouts, loading into models not built yet, and clear errors for
files that are not archives."""

import json
import zipfile

import numpy as np
import pytest

import bigcore
from bigcore import keras
from bigcore.keras import layers


class DNN(keras.Model):
    """The specification's model, as a user writes it (no get_config: its arguments are plain values)."""

    def __init__(self, hidden_units, output_units):
        super().__init__()
        self.flatten = layers.Flatten()
        self.dense1 = layers.Dense(hidden_units, activation="relu")
        self.dense2 = layers.Dense(output_units, activation="softmax")

    def call(self, inputs):
        return self.dense2(self.dense1(self.flatten(inputs)))


def _data(rng, n=24):
    return rng.standard_normal((n, 4, 3)).astype(np.float32), rng.integers(0, 5, n)


def _same_model(a, b, x):
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_sequential_round_trip_with_compile_settings(tmp_path, rng):
    x, y = _data(rng)
    model = keras.Sequential([keras.Input(shape=(4, 3)), layers.Flatten(), layers.Dense(8, activation="relu"),
                              layers.Dropout(0.25), layers.Dense(5, activation="softmax")], name="seq")
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.5),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.safetensors"]
        config = json.loads(zf.read("config.json"))
    assert config["class_name"] == "Sequential" and config["config"]["layers"][0]["class_name"] == "InputLayer"
    back = keras.models.load_model(tmp_path / "m.keras")
    assert back.name == "seq" and [type(la).__name__ for la in back.layers] == ["Flatten", "Dense", "Dropout", "Dense"]
    _same_model(model, back, x)
    assert isinstance(back.optimizer, bigcore.optim.RMSprop) and back.optimizer.param_groups[0]["momentum"] == 0.5
    assert back.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)  # loss and metrics restored


def test_functional_round_trip_with_two_inputs_and_outputs(tmp_path, rng):
    a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(2,), name="b")
    h = layers.Concatenate()([layers.Dense(4, activation="tanh")(a), b])
    model = keras.Model([a, b], {"y": layers.Dense(1, name="y")(h), "p": layers.Dense(3, activation="softmax", name="p")(h)})
    xs = [rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((5, 2)).astype(np.float32)]
    keras.saving.save_model(model, tmp_path / "f.keras")
    back = keras.saving.load_model(tmp_path / "f.keras")
    assert [la.name for la in back.layers] == [la.name for la in model.layers] and back.input_names == ["a", "b"]
    out, want = back.predict(xs, verbose=0), model.predict(xs, verbose=0)
    assert set(out) == {"y", "p"}
    for k in out:
        np.testing.assert_array_equal(out[k], want[k])


def test_subclassed_model_needs_its_class(tmp_path, rng):
    x, y = _data(rng)
    model = DNN(6, 5)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.get_config() == {"hidden_units": 6, "output_units": 5}  # recorded from the constructor
    model.save(tmp_path / "dnn.keras")
    with pytest.raises(TypeError, match=r"Could not locate class 'DNN'.*custom_objects"):
        keras.models.load_model(tmp_path / "dnn.keras")
    back = keras.models.load_model(tmp_path / "dnn.keras", custom_objects={"DNN": DNN})
    assert isinstance(back, DNN) and back.built
    _same_model(model, back, x)

    class Opaque(keras.Model):  # an argument JSON cannot hold, and no get_config
        def __init__(self, layer):
            super().__init__()
            self.layer = layer

        def call(self, inputs):
            return self.layer(inputs)

    with pytest.raises(NotImplementedError, match="must define get_config"):
        Opaque(layers.Dense(2)).save(tmp_path / "opaque.keras")
    assert not (tmp_path / "opaque.keras").exists()


def test_files_that_are_not_archives(tmp_path):
    model = keras.Sequential([keras.Input(shape=(2,)), layers.Dense(1)])
    model.save(tmp_path / "good.keras")
    good = (tmp_path / "good.keras").read_bytes()
    cases = {
        "random.keras": np.random.default_rng(0).bytes(300),
        "truncated.keras": good[: len(good) // 2],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    with zipfile.ZipFile(tmp_path / "noconfig.keras", "w") as zf:
        zf.writestr("hello.txt", "hi")
    for name in ["random.keras", "truncated.keras", "noconfig.keras"]:
        with pytest.raises(ValueError, match=name):
            keras.models.load_model(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        keras.models.load_model(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match=r"\.keras"):
        model.save(tmp_path / "m.zip")
    with pytest.raises(ValueError, match="HDF5"):
        model.save(tmp_path / "m.h5")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "good.keras", overwrite=False)


def test_weights_files_and_their_suffix_rule(tmp_path, rng):
    x, _ = _data(rng, 6)
    model = DNN(7, 3)
    model.predict(x, verbose=0)  # built by its first call, which records the input shape
    model.save_weights(tmp_path / "w.weights.safetensors")
    fresh = DNN(7, 3)
    fresh.load_weights(tmp_path / "w.weights.safetensors")  # builds itself from the shape in the file
    _same_model(model, fresh, x)
    plain = bigcore.load(tmp_path / "w.weights.safetensors")  # a plain state dict for any safetensors reader
    assert sorted(plain) == sorted(model.state_dict())
    with pytest.raises(ValueError, match=r"no HDF5.*\.weights\.safetensors"):
        model.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match=r"must end in `\.weights\.safetensors`"):
        model.save_weights(tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="not built yet"):
        DNN(7, 3).save_weights(tmp_path / "empty.weights.safetensors")
    with pytest.raises(ValueError, match=r"(?s)do not fit.*size mismatch"):
        DNN(8, 3).load_weights(tmp_path / "w.weights.safetensors")
    (tmp_path / "bad.weights.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(ValueError, match="bad.weights.safetensors"):
        DNN(7, 3).load_weights(tmp_path / "bad.weights.safetensors")


def test_load_state_dict_into_a_model_not_built_yet(rng):
    x, _ = _data(rng, 4)
    model = DNN(5, 2)
    model.predict(x, verbose=0)
    fresh = DNN(5, 2)
    with pytest.raises(ValueError, match=r"not built yet.*model.build\(input_shape\)"):
        fresh.load_state_dict(model.state_dict())
    fresh.build((None, 4, 3))
    fresh.load_state_dict(model.state_dict())
    _same_model(model, fresh, x)


def test_get_and_set_weights_in_keras_layout(rng):
    model = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(4), layers.LayerNormalization(),
                              layers.Dense(2, use_bias=False)])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(3, 4), (4,), (4,), (4,), (4, 2)]  # kernel (in, units), bias, gamma, beta, kernel
    kernel = model.layers[0].get_weights()[0]
    np.testing.assert_array_equal(kernel, model.layers[0].linear.weight.numpy().T)
    new = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    h = x @ new[0] + new[1]
    h = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + 1e-3) * new[2] + new[3]
    np.testing.assert_allclose(model.predict(x, verbose=0), h @ new[4], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="weight list of length 4, but it was expecting 5"):
        model.set_weights(new[:4])
    with pytest.raises(ValueError, match=r"weight 0 has shape \(3, 4\).*provided weight shape \(4, 3\)"):
        model.set_weights([new[0].T] + new[1:])


def test_lstm_weights_in_keras_layout(rng):
    lstm = layers.LSTM(3)
    lstm(bigcore.zeros(1, 2, 5))
    kernel, recurrent, bias = lstm.get_weights()
    assert kernel.shape == (5, 12) and recurrent.shape == (3, 12) and bias.shape == (12,)
    np.testing.assert_allclose(bias, lstm.lstm.bias_ih_l0.numpy() + lstm.lstm.bias_hh_l0.numpy())
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    before = lstm(bigcore.tensor(x)).numpy()
    lstm.set_weights([kernel, recurrent, bias])  # all of the bias in bias_ih: the same outputs
    np.testing.assert_allclose(lstm(bigcore.tensor(x)).numpy(), before, rtol=1e-5, atol=1e-6)
    assert not lstm.lstm.bias_hh_l0.numpy().any()


def test_model_checkpoint_writes_keras_archives(tmp_path, rng):
    x, y = _data(rng)
    model = keras.Sequential([keras.Input(shape=(4, 3)), layers.Flatten(), layers.Dense(5, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(str(tmp_path / "ck-{epoch}.keras"))])
    back = keras.models.load_model(tmp_path / "ck-2.keras")
    _same_model(model, back, x)
    with pytest.raises(ValueError, match="save_weights_only"):
        keras.callbacks.ModelCheckpoint(str(tmp_path / "x.keras"), save_weights_only=True)
