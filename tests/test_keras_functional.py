"""The functional API: ``keras.Input``, layers called on symbolic tensors, ``keras.Model(inputs, outputs)`` with one
or several inputs and outputs (lists and dicts), merging layers, Sequential with an Input, ``build``, and the
errors of a graph that does not fit together."""

import numpy as np
import pytest

import bigcore
from bigcore import keras
from bigcore.keras import layers


def test_input_and_symbolic_shapes():
    x = keras.Input(shape=(28, 28), name="image")
    assert isinstance(x, keras.KerasTensor) and x.shape == (None, 28, 28) and x.dtype == bigcore.float32
    h = layers.Dense(16)(x)  # Dense on the last axis of a rank-3 input
    assert h.shape == (None, 28, 16)
    assert layers.Flatten()(h).shape == (None, 448)
    seq = keras.Input(shape=(None, 3))  # a sequence of any length: the unknown axis stays unknown
    out, state_h, _ = layers.LSTM(5, return_sequences=True, return_state=True)(seq)
    assert out.shape == (None, None, 5) and state_h.shape == (None, 5)
    ids = keras.Input(shape=(7,), dtype="int64")
    assert layers.Embedding(20, 4)(ids).shape == (None, 7, 4)
    assert keras.Input(batch_shape=(4, 2)).shape == (4, 2)
    with pytest.raises(ValueError, match="shape"):
        keras.Input()
    with pytest.raises(TypeError, match="symbolic"):
        np.asarray(x)


def test_two_inputs_two_outputs_match_a_numpy_forward(rng):
    a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(5,), name="b")
    da = layers.Dense(4, activation="relu", name="da")
    h = layers.Concatenate(name="cat")([da(a), b])
    out1 = layers.Dense(2, name="out1")(h)
    out2 = layers.Add(name="add")([layers.Dense(5, name="proj")(h), b])
    model = keras.Model(inputs=[a, b], outputs=[out1, out2], name="two")
    assert model.name == "two" and [la.name for la in model.layers] == ["a", "b", "da", "cat", "out1", "proj", "add"]
    assert model.output_names == ["out1", "add"] and model.input_names == ["a", "b"]
    assert sorted(model.state_dict()) == ["da.linear.bias", "da.linear.weight", "out1.linear.bias",
                                          "out1.linear.weight", "proj.linear.bias", "proj.linear.weight"]
    xa, xb = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal((6, 5)).astype(np.float32)
    w = {la.name: la.get_weights() for la in model.layers if la.get_weights()}
    hn = np.concatenate([np.maximum(xa @ w["da"][0] + w["da"][1], 0), xb], 1)
    p1, p2 = model.predict([xa, xb], verbose=0)
    np.testing.assert_allclose(p1, hn @ w["out1"][0] + w["out1"][1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p2, hn @ w["proj"][0] + w["proj"][1] + xb, rtol=1e-5, atol=1e-5)
    q1, q2 = model.predict({"b": xb, "a": xa}, verbose=0)  # a dict by Input name
    np.testing.assert_array_equal(p1, q1)
    np.testing.assert_array_equal(p2, q2)


def test_dict_outputs_and_a_shared_layer(rng):
    x = keras.Input(shape=(4,), name="x")
    shared = layers.Dense(4, activation="tanh", name="shared")
    y = shared(shared(x))  # the same layer called twice: one set of weights
    model = keras.Model(x, {"y": y, "z": layers.Dense(1, name="z")(y)})
    out = model.predict(rng.standard_normal((3, 4)).astype(np.float32), verbose=0)
    assert set(out) == {"y", "z"} and out["y"].shape == (3, 4) and out["z"].shape == (3, 1)
    assert len(model.get_weights()) == 4 and model.output_names == ["y", "z"]


def test_nested_functional_model_and_sequential_with_input(rng):
    inner_in = keras.Input(shape=(6,))
    inner = keras.Model(inner_in, layers.Dense(3, name="inner_dense")(inner_in), name="inner")
    outer_in = keras.Input(shape=(6,))
    outer = keras.Model(outer_in, layers.Activation("softmax")(inner(outer_in)))
    x = rng.standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_allclose(outer.predict(x, verbose=0).sum(1), np.ones(4), rtol=1e-6)
    # Sequential built at once from a leading Input, or from input_shape on the first layer
    for first in ([keras.Input(shape=(6,))], []):
        kw = {} if first else {"input_shape": (6,)}
        seq = keras.Sequential(first + [layers.Dense(5, **kw), layers.Dense(2)])
        assert seq.built and [w.shape for w in seq.get_weights()] == [(6, 5), (5,), (5, 2), (2,)]
        assert len(seq.layers) == 2
    with pytest.raises(ValueError, match="only as its first element"):
        keras.Sequential([layers.Dense(2), keras.Input(shape=(3,))])


def test_build_creates_the_weights_of_a_subclassed_model():
    class Two(keras.Model):
        def __init__(self):
            super().__init__()
            self.d1, self.d2 = layers.Dense(8), layers.Dense(2)

        def call(self, inputs):
            return self.d2(self.d1(inputs))

    model = Two()
    assert model.get_weights() == [] and not model.built
    with pytest.raises(ValueError, match="input_shape"):
        model.build()
    model.build((None, 5))
    assert model.built and [w.shape for w in model.get_weights()] == [(5, 8), (8,), (8, 2), (2,)]


def test_graph_errors():
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(3,))
    h = layers.Add()([a, b])
    with pytest.raises(ValueError, match="Graph disconnected"):
        keras.Model(a, h)
    with pytest.raises(TypeError, match="must be KerasTensors"):
        keras.Model(a, bigcore.zeros(2, 3))
    with pytest.raises(ValueError, match="keras.Input"):
        keras.Model(h, layers.Dense(1)(h))
    with pytest.raises(ValueError, match="used 2 times"):
        keras.Model(a, layers.Dense(1, name="same")(layers.Dense(3, name="same")(a)))
    with pytest.raises(ValueError, match=r"(?s)incompatible shapes.*symbolic inputs of shapes \[\(None, 3\), \(None, 4\)\]"):
        layers.Add()([a, keras.Input(shape=(4,))])
    with pytest.raises(ValueError, match="matching shapes except for the concatenation axis"):
        layers.Concatenate(axis=1)([keras.Input(shape=(2, 3)), keras.Input(shape=(2, 4))])
    with pytest.raises(ValueError, match="at least 2 inputs"):
        layers.Add()(a)
    model = keras.Model([a, b], h)
    with pytest.raises(ValueError, match=r"expected shape=\(None, 3\), found shape=\(2, 4\)"):
        model.predict([np.zeros((2, 3)), np.zeros((2, 4))], verbose=0)
    with pytest.raises(ValueError, match="expects 2 input"):
        model.predict(np.zeros((2, 3)), verbose=0)
    with pytest.raises(ValueError, match="inputs named"):
        model.predict({"nope": np.zeros((2, 3))}, verbose=0)


def test_summary_lists_layers_and_shapes():
    x = keras.Input(shape=(4,), name="inp")
    model = keras.Model(x, layers.Dense(3, name="head")(x), name="tiny")
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert 'Model: "tiny"' in text and "head (Dense)" in text and "(None, 3)" in text and "Total params: 15" in text


def test_functional_model_with_two_inputs_exports_to_onnx(tmp_path, rng):
    import onnxruntime as ort

    a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(5,), name="b")
    h = layers.Concatenate()([layers.Dense(4, activation="relu")(a), layers.LayerNormalization()(b)])
    model = keras.Model([a, b], layers.Dense(2, activation="softmax")(h))
    xa, xb = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal((6, 5)).astype(np.float32)
    model.export(str(tmp_path / "f.onnx"), input_signature=[xa, xb], verbose=False)
    session = ort.InferenceSession(str(tmp_path / "f.onnx"), providers=["CPUExecutionProvider"])
    xa, xb = xa[:4] + 1, xb[:4] - 1  # another batch size and values than traced
    got = session.run(None, {"inputs_0": xa, "inputs_1": xb})[0]
    np.testing.assert_allclose(got, model.predict([xa, xb], verbose=0), rtol=1e-5, atol=1e-6)
