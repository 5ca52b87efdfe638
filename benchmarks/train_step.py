"""Training speed of a small MLP (64-128-10, the digits DNN) for 10 epochs at batch 32 with Adam:
bigcore's Keras ``fit``, a bigcore ``nn``/``optim`` loop, a hand-written numpy loop (the peer that always runs)
and PyTorch when installed, on the same data in one run. Prints the median seconds and ratios.

    python benchmarks/train_step.py [--repeats 5] [--threads 1]
"""

import argparse
import statistics
import time

import numpy as np

import bigcore
import bigcore.nn as nn
from bigcore import keras

try:
    import torch
except ImportError:
    torch = None


def data():
    x, y = bigcore.data.load_digits()
    return x[:1437], y[:1437]


def bigcore_fit(x, y, epochs):
    bigcore.manual_seed(0)
    m = keras.Sequential([keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, epochs=epochs, batch_size=32, verbose=0)


def bigcore_loop(x, y, epochs):
    bigcore.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = bigcore.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = bigcore.tensor(x), bigcore.tensor(y)
    for _ in range(epochs):
        for idx in np.array_split(bigcore.randperm(len(x)).numpy(), -(-len(x) // 32)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()


def numpy_loop(x, y, epochs):
    rng = np.random.default_rng(0)
    w1 = rng.uniform(-0.125, 0.125, (64, 128)).astype(np.float32)
    b1 = np.zeros(128, np.float32)
    w2 = rng.uniform(-0.09, 0.09, (128, 10)).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    params = [w1, b1, w2, b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = 0
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(x)), -(-len(x) // 32)):
            xb, yb = x[idx], y[idx]
            h = np.maximum(xb @ w1 + b1, 0)
            logits = h @ w2 + b2
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1
            d = p / len(yb)
            dh = (d @ w2.T) * (h > 0)
            grads = [xb.T @ dh, dh.sum(0), h.T @ d, d.sum(0)]
            t += 1
            for i, g in enumerate(grads):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                params[i] -= 1e-3 / (1 - 0.9**t) * m[i] / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)


def torch_loop(x, y, epochs):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        bigcore.set_num_threads(args.threads)
        if torch:
            torch.set_num_threads(args.threads)
    x, y = data()
    runs = {"bigcore keras fit": bigcore_fit, "bigcore nn loop": bigcore_loop, "numpy loop": numpy_loop}
    if torch:
        runs["torch loop"] = torch_loop
    times = {k: [] for k in runs}
    for _ in range(args.repeats):  # interleaved, so noise hits every contender alike
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn(x, y, args.epochs)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"MLP 64-128-10, {args.epochs} epochs of {len(x)} digits at batch 32, Adam; median of {args.repeats}, "
          f"bigcore threads={bigcore.get_num_threads()}")
    for name, t in med.items():
        print(f"  {name:<18} {t:7.3f} s   bigcore fit / this = {med['bigcore keras fit'] / t:5.2f}")


if __name__ == "__main__":
    main()
