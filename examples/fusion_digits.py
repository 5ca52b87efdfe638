"""Cross-modal fusion on the bundled handwritten digits: two partial views of each 8x8 image, each alone and fused
by each of ``CrossModalFusion``'s modes, compared on held-out digits.

The two modalities are derived from the image, and neither contains it:

- **profiles**: the ink per row and per column (16 numbers; as tokens, a row-profile token and a column-profile
  token of 8 features each). They say where the ink is, but not which row's ink sits in which column.
- **spectrum**: the magnitudes of the image's 2-D Fourier transform at the 5x5 lowest frequencies (25 numbers;
  as tokens, one per vertical frequency). They describe the shape's strokes and are blind to where it sits.

Every model has the same head (``ReLU`` then ``Linear(64, 10)``) after a 64-wide representation: for one
modality a ``Linear(D, 64)``, for two a ``CrossModalFusion(.., 64, fusion=..)`` ("concat" and "gated" read the
flattened views, "attention" the tokens, each tagged with a one-hot of its position). Each is trained with Adam for the same number of epochs on 80% of the
digits and scored on the other 20%; the accuracies are averaged over ``--seeds`` splits and initializations.

    python examples/fusion_digits.py                    # the full run (about a minute on 2 cores)
    python examples/fusion_digits.py --epochs 2 --seeds 1   # a smoke run

The last line is machine-readable: ``profiles=… spectrum=… concat=… gated=… attention=… wall_s=…``.
"""

import argparse
import time

import numpy as np

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F
from bigcore.data import load_digits
from bigcore.models import CrossModalFusion

MODES = ("concat", "gated", "attention")


def modalities(x):
    """(N, 64) pixels -> profiles (N, 2, 8) and spectrum (N, 5, 5), each standardized later."""
    img = x.reshape(-1, 8, 8)
    profiles = np.stack([img.sum(2), img.sum(1)], 1)  # row ink, column ink
    spectrum = np.abs(np.fft.fft2(img))[:, :5, :5]
    return profiles.astype(np.float32), spectrum.astype(np.float32)


def standardize(train, test):
    mu, sd = train.mean(0), train.std(0) + 1e-6
    return (train - mu) / sd, (test - mu) / sd


def with_positions(tokens):
    """(N, L, D) -> (N, L, D + L): each token carries a one-hot of its index, since attention followed by an
    average cannot tell token order otherwise (which row of frequencies, row or column profile)."""
    n, L, _ = tokens.shape
    return np.concatenate([tokens, np.broadcast_to(np.eye(L, dtype=tokens.dtype), (n, L, L))], 2)


class Single(nn.Module):
    """One modality, flattened: Linear(D, 64) -> ReLU -> Linear(64, 10)."""

    def __init__(self, d, width=64):
        super().__init__()
        self.enc = nn.Linear(d, width)
        self.head = nn.Linear(width, 10)

    def forward(self, a):
        return self.head(F.relu(self.enc(a.flatten(1))))


class Fused(nn.Module):
    """Two modalities: CrossModalFusion(.., 64) -> ReLU -> Linear(64, 10)."""

    def __init__(self, shapes, fusion, width=64):
        super().__init__()
        self.tokens = fusion == "attention"
        dims = [s[-1] for s in shapes] if self.tokens else [int(np.prod(s)) for s in shapes]
        self.fuse = CrossModalFusion(dims, width, fusion=fusion, num_heads=4)
        self.head = nn.Linear(width, 10)

    def forward(self, a, b):
        if not self.tokens:
            a, b = a.flatten(1), b.flatten(1)
        return self.head(F.relu(self.fuse(a, b)))


def train_and_score(model, train, test, epochs, seed, batch_size=64, lr=3e-3):
    """Adam with a fixed number of epochs; returns the held-out accuracy."""
    *xs, y = train
    opt = bigcore.optim.Adam(model.parameters(), lr=lr)
    order = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        perm = order.permutation(len(y))
        for i in range(0, len(y), batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(model(*[bigcore.tensor(x[idx]) for x in xs]), bigcore.tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    *xt, yt = test
    with bigcore.no_grad():
        pred = model(*[bigcore.tensor(x) for x in xt]).numpy().argmax(1)
    return float((pred == yt).mean())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--seeds", type=int, default=3, help="splits and initializations to average over")
    args = p.parse_args(argv)
    t0 = time.time()
    x, y = load_digits()
    prof, spec = modalities(x)
    scores = {k: [] for k in ("profiles", "spectrum", *MODES)}
    for seed in range(args.seeds):
        bigcore.manual_seed(seed)
        perm = np.random.default_rng(seed).permutation(len(y))
        tr, te = perm[: int(0.8 * len(y))], perm[int(0.8 * len(y)):]
        a_tr, a_te = standardize(prof[tr], prof[te])
        b_tr, b_te = standardize(spec[tr], spec[te])
        runs = {
            "profiles": (Single(16), (a_tr,), (a_te,)),
            "spectrum": (Single(25), (b_tr,), (b_te,)),
            **{m: (Fused((a_tr.shape[1:], b_tr.shape[1:]), m), (a_tr, b_tr), (a_te, b_te)) for m in MODES[:2]},
            "attention": (Fused(((2, 10), (5, 10)), "attention"), (with_positions(a_tr), with_positions(b_tr)),
                          (with_positions(a_te), with_positions(b_te))),
        }
        for name, (model, xtr, xte) in runs.items():
            scores[name].append(train_and_score(model, (*xtr, y[tr]), (*xte, y[te]), args.epochs, seed))
    result = {k: float(np.mean(v)) for k, v in scores.items()}
    n_test = len(y) - int(0.8 * len(y))
    print(f"held-out accuracy over {args.seeds} split(s) of {n_test} digits, {args.epochs} epochs each:")
    for k, v in result.items():
        kind = "alone" if k in ("profiles", "spectrum") else "fused"
        print(f"  {k:10s} ({kind}): {v:.4f}  (per split: {', '.join(f'{s:.4f}' for s in scores[k])})")
    wall = time.time() - t0
    print(" ".join(f"{k}={v:.4f}" for k, v in result.items()) + f" wall_s={wall:.1f}")
    return result


if __name__ == "__main__":
    main()
