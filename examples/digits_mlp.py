"""Train a 64-128-10 MLP on the 1,797 handwritten digits (8x8 pixels) with bigcore's tensors and autograd, and
print the held-out accuracy.

    python examples/digits_mlp.py [--epochs 30] [--batch-size 32] [--lr 0.1] [--seed 0]

Data: the digits shipped with bigcore (`bigcore.data.load_digits()`), 64 pixels then the label. 80/20 split.
The parameters are plain tensors updated by SGD with momentum; the `nn`/`optim` modules package the same thing.
"""

import argparse
import math
import time

import numpy as np

import bigcore
import bigcore.data
import bigcore.nn.functional as F

def init_linear(fan_in, fan_out):
    """PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight (out, in) and bias."""
    bound = 1 / math.sqrt(fan_in)
    w = (bigcore.rand(fan_out, fan_in) * 2 - 1) * bound
    b = (bigcore.rand(fan_out) * 2 - 1) * bound
    return w.requires_grad_(), b.requires_grad_()


def forward(params, x):
    w1, b1, w2, b2 = params
    return F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)  # (B, 10) logits


def accuracy(params, x, y):
    with bigcore.no_grad():
        pred = forward(params, bigcore.tensor(x)).argmax(1).numpy()
    return float((pred == y).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    bigcore.manual_seed(args.seed)
    x, y = bigcore.data.load_digits()
    order = np.random.default_rng(args.seed).permutation(len(x))
    cut = int(0.8 * len(x))
    xtr, ytr, xte, yte = x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]

    params = [*init_linear(64, 128), *init_linear(128, 10)]
    velocity = [bigcore.zeros_like(p) for p in params]
    rng = np.random.default_rng(args.seed + 1)
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        perm = rng.permutation(len(xtr))
        total = 0.0
        for i in range(0, len(perm), args.batch_size):
            idx = perm[i : i + args.batch_size]
            loss = F.cross_entropy(forward(params, bigcore.tensor(xtr[idx])), bigcore.tensor(ytr[idx]))
            for p in params:
                p.grad = None
            loss.backward()
            with bigcore.no_grad():
                for j, p in enumerate(params):
                    velocity[j] = velocity[j] * args.momentum + p.grad
                    params[j] = (p - args.lr * velocity[j]).requires_grad_()
            total += loss.item() * len(idx)
        if epoch == 1 or epoch % 5 == 0 or epoch == args.epochs:
            print(f"epoch {epoch:3d}  loss {total / len(xtr):.4f}  test accuracy {accuracy(params, xte, yte):.4f}")
    acc = accuracy(params, xte, yte)
    print(f"held-out accuracy: {acc:.4f} ({len(xte)} digits, {time.perf_counter() - t0:.2f} s training)")
    return acc


if __name__ == "__main__":
    main()
