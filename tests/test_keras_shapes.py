"""Keras labels against outputs: the shape rules of the losses and metrics (a ValueError naming both shapes, never a
silent broadcast), per-step labels for sequence outputs, Dense on any rank, losses by class name, and
``keras.utils.to_categorical``."""

import numpy as np
import pytest

import bigcore
from bigcore import keras


def _model(*layers, loss="sparse_categorical_crossentropy", metrics=("accuracy",)):
    bigcore.manual_seed(0)
    model = keras.Sequential(list(layers))
    model.compile(optimizer="sgd", loss=loss, metrics=list(metrics))
    return model


def test_images_without_flatten_raise_naming_both_shapes(rng):
    # the case: (N, 28, 28) inputs and no Flatten give (32, 28, 10) outputs for (32,) labels
    x = rng.random((40, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 40)
    model = _model(keras.layers.Dense(8, activation="relu"), keras.layers.Dense(10, activation="softmax"))
    with pytest.raises(ValueError, match=r"target.shape=\(32,\), output.shape=\(32, 28, 10\).*Flatten"):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"target.shape=\(40,\), output.shape=\(40, 28, 10\)"):
        model.evaluate(x, y, batch_size=40, verbose=0)
    with pytest.raises(ValueError, match=r"sparse_categorical_accuracy.*target.shape=\(3,\), output.shape=\(3, 4, 5\)"):
        keras.metrics.sparse_categorical_accuracy(np.zeros(3), np.zeros((3, 4, 5)))


def test_per_step_labels_give_the_mean_over_every_position(rng):
    # (N, T) labels against (N, T, C) outputs: Keras's sequence case, the loss and accuracy over all N*T positions
    x = rng.standard_normal((12, 5, 4)).astype(np.float32)
    y = rng.integers(0, 3, (12, 5))
    model = _model(keras.layers.Dense(3, activation="softmax"))
    loss, acc = model.evaluate(x, y, batch_size=5, verbose=0)
    p = model.predict(x, verbose=0).astype(np.float64)
    assert p.shape == (12, 5, 3)
    picked = np.take_along_axis(p, y[..., None], -1)[..., 0]
    assert loss == pytest.approx(-np.log(np.clip(picked, 1e-7, 1 - 1e-7)).mean(), rel=1e-5)
    assert acc == pytest.approx((p.argmax(-1) == y).mean())
    # (N, T, 1) labels read the same; from_logits takes the fused path to the same value
    assert model.evaluate(x, y[..., None], batch_size=5, verbose=0)[0] == pytest.approx(loss, rel=1e-6)
    logits = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, np.log(p))
    assert logits.item() == pytest.approx(-np.log(picked).mean(), rel=1e-5)


@pytest.mark.parametrize("loss,y_shape,p_shape", [
    ("sparse_categorical_crossentropy", (6, 2), (6, 3)),      # labels with a stray axis
    ("sparse_categorical_crossentropy", (5,), (6, 3)),        # one label too few
    ("categorical_crossentropy", (6,), (6, 3)),               # sparse labels given to the one-hot loss
    ("categorical_crossentropy", (6, 4), (6, 3)),
    ("binary_crossentropy", (6, 2), (6, 3)),
    ("mse", (6,), (6, 3)),                                    # would broadcast to (6, 6) silently
    ("mae", (18,), (6, 3)),                                   # would reshape silently
])
def test_mismatched_labels_are_a_value_error_naming_both_shapes(loss, y_shape, p_shape):
    y = np.zeros(y_shape)
    p = np.full(p_shape, 1.0 / p_shape[-1])
    with pytest.raises(ValueError, match=rf"target.shape={tuple(y_shape)}, output.shape={tuple(p_shape)}".replace("(", r"\(").replace(")", r"\)")):
        keras.losses.get(loss)(y, p)


def test_trailing_axis_of_one_is_accepted_where_keras_accepts_it(rng):
    p = bigcore.tensor(rng.uniform(0.1, 0.9, (6, 1)))  # float64 tensors: the loss computes in float64
    y = bigcore.tensor((rng.random(6) > 0.5).astype(float))
    pn, yn = p.numpy()[:, 0], y.numpy()
    want = -(yn * np.log(pn) + (1 - yn) * np.log(1 - pn)).mean()
    assert keras.losses.get("binary_crossentropy")(y, p).item() == pytest.approx(want, rel=1e-12)
    assert keras.losses.get("mse")(y[:, None], p[:, 0]).item() == pytest.approx(((pn - yn) ** 2).mean(), rel=1e-12)


def test_labels_out_of_range_or_fractional_are_refused():
    p = np.full((2, 3), 1 / 3)
    with pytest.raises(bigcore.OutOfRangeError, match="label 3 is out of range for 3 classes"):
        keras.losses.sparse_categorical_crossentropy(np.array([0, 3]), p)
    with pytest.raises(ValueError, match="whole class numbers"):
        keras.losses.sparse_categorical_crossentropy(np.array([0.0, 1.5]), p)


def test_dense_works_on_the_last_axis_of_any_rank(rng):
    dense = keras.layers.Dense(4)
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    out = dense(bigcore.tensor(x))
    kernel, bias = dense.get_weights()
    assert out.shape == (2, 3, 5, 4) and kernel.shape == (6, 4)
    np.testing.assert_allclose(out.numpy(), x @ kernel + bias, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"last axis 6, got shape \(2, 7\)"):
        dense(bigcore.zeros(2, 7))


def test_losses_by_class_name_and_get():
    for name in ["SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy", "MeanSquaredError",
                 "MeanAbsoluteError"]:
        loss = keras.losses.get(name)
        assert type(loss).__name__ == name
    model = _model(keras.layers.Dense(3, activation="softmax"), loss="SparseCategoricalCrossentropy")
    assert isinstance(model.compiled_loss.loss, str)
    with pytest.raises(ValueError, match="unknown loss 'hinge-ish'"):
        keras.losses.get("hinge-ish")
    with pytest.raises(ValueError, match="reduction"):
        keras.losses.SparseCategoricalCrossentropy(reduction="avg")


def test_accuracy_is_chosen_from_the_shapes(rng):
    # Keras 3: one output column -> binary, fewer label axes -> sparse, otherwise categorical
    assert isinstance(keras.metrics.accuracy_for((8,), (8, 1)), keras.metrics.BinaryAccuracy)
    assert isinstance(keras.metrics.accuracy_for((8,), (8, 4)), keras.metrics.SparseCategoricalAccuracy)
    assert isinstance(keras.metrics.accuracy_for((8, 1), (8, 4)), keras.metrics.SparseCategoricalAccuracy)
    assert isinstance(keras.metrics.accuracy_for((8, 4), (8, 4)), keras.metrics.CategoricalAccuracy)
    x = rng.standard_normal((30, 4)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    model = _model(keras.layers.Dense(3, activation="softmax"), loss="categorical_crossentropy")
    onehot = keras.utils.to_categorical(y, 3)
    _, acc = model.evaluate(x, onehot, verbose=0)
    assert acc == pytest.approx((model.predict(x, verbose=0).argmax(1) == y).mean())


def test_to_categorical():
    np.testing.assert_array_equal(keras.utils.to_categorical([0, 2, 1], 3), np.eye(3, dtype=np.float32)[[0, 2, 1]])
    out = keras.utils.to_categorical(np.array([[1], [0]]))
    assert out.shape == (2, 2) and out.dtype == np.float32
    assert keras.utils.to_categorical(np.array([[0, 1], [2, 2]])).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="label 3 is out of range for num_classes=3"):
        keras.utils.to_categorical([0, 3], num_classes=3)
    with pytest.raises(ValueError, match="whole numbers"):
        keras.utils.to_categorical([0.5])


def test_validation_split_without_validation_samples_is_a_clear_error():
    model = _model(keras.layers.Dense(2, activation="softmax"))
    # Keras's split point floor(n * (1 - split)): 10 * (1 - 1e-17) rounds to 10, leaving no validation sample
    for n, split in [(10, 1e-17), (1, 0.5)]:
        with pytest.raises(ValueError, match=rf"Training data contains {n} samples.*validation_split={split}"):
            model.fit(np.zeros((n, 4), np.float32), np.zeros(n, np.int64), validation_split=split, verbose=0)
    with pytest.raises(ValueError, match="only supported for arrays"):
        model.fit(iter([(np.zeros((2, 4), np.float32), np.zeros(2, np.int64))]), validation_split=0.5, verbose=0)
