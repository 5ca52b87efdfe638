"""The specification's DNN, written exactly as for tf.keras, trained on the 1,797 handwritten digits.

    python examples/digits_dnn.py [--epochs 10]

80/20 train/test split; prints the Keras progress bar per epoch and the held-out accuracy.
"""

import argparse

import numpy as np

import bigcore
from bigcore import keras


class DNN(keras.Model):
    def __init__(self, hidden_units, output_units):
        super().__init__()
        self.flatten = keras.layers.Flatten()
        self.dense1 = keras.layers.Dense(hidden_units, activation="relu")
        self.dense2 = keras.layers.Dense(output_units, activation="softmax")

    def call(self, inputs):
        return self.dense2(self.dense1(self.flatten(inputs)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    bigcore.manual_seed(args.seed)
    x, y = bigcore.data.load_digits()
    x = x.reshape(-1, 8, 8)  # images, flattened by the model
    order = np.random.default_rng(args.seed).permutation(len(x))
    cut = int(0.8 * len(x))
    x_train, y_train, x_test, y_test = x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]

    model = DNN(hidden_units=128, output_units=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32)
    loss, acc = model.evaluate(x_test, y_test)
    print(f"held-out accuracy: {acc:.4f} (loss {loss:.4f}, {len(x_test)} digits)")
    return acc


if __name__ == "__main__":
    main()
