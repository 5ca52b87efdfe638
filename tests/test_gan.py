"""The LSTM GAN: ``F.gumbel_softmax`` (forward against a numpy reference with the same noise, the Gumbel-max
distribution of its argmax, the straight-through gradient, finite differences), ``LSTMGenerator``,
``LSTMDiscriminator`` (shapes, the one-hot read through the embedding matrix, where gradients flow, bad sizes),
``SequenceGAN`` (pretraining, a measured training run on a toy distribution, determinism) and the
``examples/gan_shakespeare.py`` smoke run."""

import copy
import importlib.util
import io
import pathlib
import re

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F
from bigcore.models import LSTMDiscriminator, LSTMGenerator, SequenceGAN


def _seeded(seed):
    return bigcore.Generator().manual_seed(seed)


def _noise(shape, seed, dtype=bigcore.float64):
    """The uniform draws ``gumbel_softmax(..., generator=_seeded(seed))`` makes for ``shape``."""
    return bigcore.rand(*shape, dtype=dtype, generator=_seeded(seed)).numpy().astype(np.float64)


def _softmax(z, dim):
    e = np.exp(z - z.max(dim, keepdims=True))
    return e / e.sum(dim, keepdims=True)


def _gumbel_softmax_ref(logits, u, tau, hard, dim, eps=1e-10):
    # g = -log(eps - log(u + eps)) ~ Gumbel(0, 1); y = softmax((logits + g) / tau); hard: one-hot of argmax y
    g = -np.log(eps - np.log(u + eps))
    y = _softmax((logits + g) / tau, dim)
    if not hard:
        return y
    return (np.arange(y.shape[dim]).reshape([-1 if d == dim % y.ndim else 1 for d in range(y.ndim)])
            == np.expand_dims(y.argmax(dim), dim)).astype(np.float64)


# ----- F.gumbel_softmax -----
@pytest.mark.parametrize("dim", [-1, 0, 1])
@pytest.mark.parametrize("tau,hard", [(1.0, False), (0.3, False), (2.5, True), (0.7, True)])
def test_gumbel_softmax_matches_the_reference_with_the_same_noise(rng, dim, tau, hard):
    logits = rng.normal(0, 2, (3, 7, 5))
    y = F.gumbel_softmax(bigcore.tensor(logits), tau=tau, hard=hard, dim=dim, generator=_seeded(11))
    want = _gumbel_softmax_ref(logits, _noise(logits.shape, 11), tau, hard, dim)
    assert y.shape == logits.shape and y.dtype is bigcore.float64
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(y.numpy().sum(dim), 1.0, rtol=1e-12)


@pytest.mark.parametrize("hard,dim", [(False, -1), (True, 0)])
def test_argmax_is_distributed_as_softmax_of_the_logits(hard, dim):
    # the Gumbel-max trick: argmax(logits + g) ~ Categorical(softmax(logits)), whatever tau. Each category's
    # frequency over N draws is within 4.5 standard deviations sqrt(p (1 - p) / N) of p: a correct sampler misses
    # that about once in 30,000 seeds per category; noise of a wrong law (normal with Gumbel's variance, or
    # Gumbel scaled by 1.1) moves some frequency by 9 to 12 standard deviations at this N.
    logits = np.array([2.0, 1.0, 0.0, -1.0, 0.5, -3.0], np.float32)
    N = 20000
    rows = np.tile(logits, (N, 1)) if dim == -1 else np.tile(logits[:, None], (1, N))
    y = F.gumbel_softmax(bigcore.tensor(rows), tau=0.4, hard=hard, dim=dim, generator=_seeded(3))
    counts = np.bincount(y.numpy().argmax(dim), minlength=len(logits))
    p = _softmax(logits.astype(np.float64), 0)
    np.testing.assert_array_less(np.abs(counts / N - p), 4.5 * np.sqrt(p * (1 - p) / N))


def test_hard_output_is_exactly_one_hot_with_the_soft_gradient(rng):
    # y_hard - y_soft.detach() + y_soft: forward the one-hot of the soft sample's argmax, backward y_soft's gradient
    logits = rng.normal(0, 1.5, (6, 9))
    w = bigcore.tensor(rng.normal(size=(6, 9)))
    soft_x, hard_x = bigcore.tensor(logits, requires_grad=True), bigcore.tensor(logits, requires_grad=True)
    for dtype in (bigcore.float64, bigcore.float32):
        y_soft = F.gumbel_softmax(soft_x.to(dtype), tau=0.6, generator=_seeded(8))
        y_hard = F.gumbel_softmax(hard_x.to(dtype), tau=0.6, hard=True, generator=_seeded(8))
        h = y_hard.numpy()
        assert set(np.unique(h)) == {0.0, 1.0} and np.all(h.sum(1) == 1.0)
        np.testing.assert_array_equal(h.argmax(1), y_soft.numpy().argmax(1))
    (y_soft * w).sum().backward()
    (y_hard * w).sum().backward()
    assert np.abs(soft_x.grad.numpy()).max() > 1e-3  # float32 and float64 passes both reached the logits
    np.testing.assert_allclose(hard_x.grad.numpy(), soft_x.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dim", [-1, 0])
def test_gradient_matches_finite_differences_with_the_noise_fixed(rng, dim):
    # y = softmax(z / tau), z = logits + g; d sum(w y) / d logits = y (w - sum(w y)) / tau along dim
    tau = 0.8
    logits, w = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))

    def f(x):
        return (F.gumbel_softmax(x, tau=tau, dim=dim, generator=_seeded(21)) * bigcore.tensor(w)).sum()

    x = bigcore.tensor(logits, requires_grad=True)
    f(x).backward()
    y = _gumbel_softmax_ref(logits, _noise(logits.shape, 21), tau, False, dim)
    np.testing.assert_allclose(x.grad.numpy(), y * (w - (w * y).sum(dim, keepdims=True)) / tau, rtol=1e-10,
                               atol=1e-12)
    h, num = 1e-6, np.zeros_like(logits)
    for j in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[j] += h
        down[j] -= h
        num[j] = (f(bigcore.tensor(up)).item() - f(bigcore.tensor(down)).item()) / (2 * h)
    np.testing.assert_allclose(x.grad.numpy(), num, rtol=1e-6, atol=1e-8)


def test_tau_sharpens_or_flattens_the_same_draw(rng):
    # same noise: y_tau = softmax(log(y_1) / tau). tau -> 0 gives one-hot rows, tau -> inf uniform ones
    logits = bigcore.tensor(rng.normal(size=(200, 8)))
    y = {tau: F.gumbel_softmax(logits, tau=tau, generator=_seeded(4)).numpy() for tau in (0.01, 0.5, 1.0, 2.0, 100.0)}
    for tau in (0.01, 0.5, 2.0, 100.0):
        np.testing.assert_allclose(y[tau], _softmax(np.log(y[1.0]) / tau, -1), rtol=1e-9, atol=1e-12)
    peaks = [y[tau].max(1).mean() for tau in (0.01, 0.5, 1.0, 2.0, 100.0)]
    assert all(a > b for a, b in zip(peaks, peaks[1:])) and peaks[0] > 0.99 and peaks[-1] < 1 / 8 + 0.01


def test_gumbel_softmax_bad_arguments():
    x = bigcore.randn(2, 3)
    for tau in (0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="tau must be a positive number"):
            F.gumbel_softmax(x, tau=tau)
    with pytest.raises(bigcore.DTypeError, match="float32 or float64.*int64"):
        F.gumbel_softmax(bigcore.tensor([[1, 2]]))
    with pytest.raises(bigcore.ShapeError, match="0-d"):
        F.gumbel_softmax(bigcore.tensor(1.0))
    with pytest.raises(bigcore.OutOfRangeError):
        F.gumbel_softmax(x, dim=2)
    with pytest.raises(TypeError, match="bigcore.Generator"):
        F.gumbel_softmax(x, generator=np.random.default_rng(0))


def test_gumbel_softmax_generator_leaves_the_default_alone_and_repeats():
    x = bigcore.randn(3, 4)
    before = bigcore.get_rng_state()
    a = F.gumbel_softmax(x, generator=_seeded(5)).numpy()
    assert bigcore.get_rng_state() == before
    np.testing.assert_array_equal(F.gumbel_softmax(x, generator=_seeded(5)).numpy(), a)
    bigcore.manual_seed(9)
    b = F.gumbel_softmax(x).numpy()
    bigcore.manual_seed(9)
    np.testing.assert_array_equal(F.gumbel_softmax(x).numpy(), b)
    assert not np.array_equal(a, b)


def test_gumbel_softmax_has_no_onnx_form():
    class Noisy(nn.Module):
        def forward(self, x):
            return F.gumbel_softmax(x, hard=True)

    with pytest.raises(bigcore.onnx.UnsupportedOperatorError, match="'gumbel_softmax'.*'Noisy'"):
        bigcore.onnx.export(Noisy(), (bigcore.randn(2, 3),), io.BytesIO())


# ----- LSTMGenerator, LSTMDiscriminator -----
V = 7


def test_generator_and_discriminator_shapes():
    G = LSTMGenerator(V, 5, 12, num_layers=2, start_token=3)
    ids = bigcore.randint(V, (4, 6))
    logits, (h, c) = G(ids)
    assert logits.shape == (4, 6, V) and h.shape == c.shape == (2, 4, 12)
    s = G.sample(3, 9, temperature=0.7, generator=_seeded(0))
    assert s.shape == (3, 9) and s.dtype is bigcore.int64 and 0 <= s.numpy().min() and s.numpy().max() < V
    y = G.rsample(3, 9, tau=0.5, generator=_seeded(0))
    assert y.shape == (3, 9, V) and set(np.unique(y.numpy())) == {0.0, 1.0} and np.all(y.numpy().sum(-1) == 1)
    assert G.rsample(2, 4, hard=False).shape == (2, 4, V)
    for D in (LSTMDiscriminator(V, 4, 6), LSTMDiscriminator(V, 4, 6, num_layers=2, bidirectional=True)):
        p = D(ids).numpy()
        assert p.shape == (4, 1) and np.all((p > 0) & (p < 1))
        assert D(y).shape == (3, 1)


def test_sample_and_rsample_draw_from_the_logits_after_the_start_token():
    # the first token is drawn from softmax(logits / temperature) of the model after reading the start token
    # alone (rsample: temperature 1); frequencies over N draws within 4.5 standard deviations, as above.
    # start: None means start_token (2); an int, or (B,) ids
    G = LSTMGenerator(V, 5, 8, start_token=2)
    with bigcore.no_grad():
        G.head.weight.mul_(8.0)  # logits far from uniform, so that the start token matters
    N = 4000
    draws = [(2, 0.5, G.sample(N, 1, temperature=0.5, generator=_seeded(0)).numpy()[:, 0]),
             (2, 1.0, G.rsample(N, 1, generator=_seeded(0)).numpy()[:, 0].argmax(-1)),
             (6, 1.0, G.sample(N, 1, start=6, generator=_seeded(0)).numpy()[:, 0]),
             (4, 2.0, G.sample(N, 1, 2.0, bigcore.full((N,), 4, dtype=bigcore.int64), _seeded(0)).numpy()[:, 0])]
    for start, temperature, first in draws:
        logits = G(bigcore.full((1, 1), start, dtype=bigcore.int64))[0].numpy()[0, 0].astype(np.float64)  # (V,)
        p = _softmax(logits / temperature, 0)
        freq = np.bincount(first, minlength=V) / N
        np.testing.assert_array_less(np.abs(freq - p), 4.5 * np.sqrt(p * (1 - p) / N) + 1e-12)
    with pytest.raises(bigcore.ShapeError, match=r"\(3,\)"):
        G.sample(3, 2, start=bigcore.tensor([1, 4]))
    with pytest.raises(ValueError, match="temperature"):
        G.sample(2, 2, temperature=0)
    with pytest.raises(ValueError, match="start_token 7 is out of range for vocab_size 7"):
        LSTMGenerator(V, 5, 8, start_token=7)


def test_one_hot_read_equals_the_id_read():
    D = LSTMDiscriminator(V, 5, 9, bidirectional=True)
    ids = bigcore.randint(V, (3, 11))
    one_hot = F.one_hot(ids, V).float()  # (B, T, V)
    np.testing.assert_array_equal((one_hot @ D.embedding.weight).numpy(), D.embedding(ids).numpy())
    np.testing.assert_array_equal(D(one_hot).numpy(), D(ids).numpy())
    G = LSTMGenerator(V, 5, 9)
    np.testing.assert_array_equal(G(one_hot)[0].numpy(), G(ids)[0].numpy())


def test_gradient_reaches_the_generator_through_the_soft_path_only():
    G, D = LSTMGenerator(V, 5, 8, num_layers=2), LSTMDiscriminator(V, 4, 6)
    fake = G.rsample(3, 5, tau=0.7, generator=_seeded(1))
    D.logit(fake).sum().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and np.abs(p.grad.numpy()).max() > 0, name
    G.zero_grad()
    ids = G.rsample(3, 5, tau=0.7, generator=_seeded(1)).argmax(-1)  # the same tokens, as ids
    D.logit(ids).sum().backward()
    assert all(p.grad is None for p in G.parameters()) and D.fc.weight.grad is not None


def test_wrong_vocabulary_or_layout_is_a_clear_error():
    G, D = LSTMGenerator(V, 5, 8), LSTMDiscriminator(V, 4, 6)
    for model, name in ((D, "LSTMDiscriminator"), (G, "LSTMGenerator")):
        with pytest.raises(bigcore.ShapeError, match=f"{name}: one-hot input has 9 categories .*vocab_size=7"):
            model(bigcore.zeros(2, 3, 9))
        with pytest.raises(bigcore.ShapeError, match=r"shape \(B, T\), got \(6,\)"):
            model(bigcore.randint(V, (6,)))
        with pytest.raises(bigcore.ShapeError, match=r"\(B, T, V=7\), got \(2, 3\)"):
            model(bigcore.zeros(2, 3))
        with pytest.raises(bigcore.DTypeError, match="int64"):
            model(bigcore.zeros(2, 3, dtype=bigcore.bool))
        with pytest.raises(bigcore.OutOfRangeError):
            model(bigcore.tensor([[0, 7]]))
    with pytest.raises(bigcore.ShapeError, match="vocab_size 7 differs from the discriminator's 8"):
        SequenceGAN(G, LSTMDiscriminator(8, 4, 6))
    with pytest.raises(bigcore.DTypeError, match="real sequences: token ids must be int64, got .*float32"):
        SequenceGAN(G, D).train_step(bigcore.zeros(2, 3))
    with pytest.raises(bigcore.ShapeError, match=r"real sequences: token ids must have shape \(B, T\), got \(4,\)"):
        SequenceGAN(G, D).pretrain_step(np.arange(4))
    with pytest.raises(bigcore.ShapeError, match=r"nll: token ids must have shape \(B, T\), got \(2, 3, 1\)"):
        G.nll(bigcore.zeros(2, 3, 1, dtype=bigcore.int64))


# ----- SequenceGAN -----
P = np.array([0.4, 0.3, 0.15, 0.1, 0.05, 0.0])  # a toy unigram distribution over 6 tokens


def _toy(seed, B=32, T=8):
    rng = np.random.default_rng(seed)
    return lambda: bigcore.tensor(rng.choice(len(P), size=(B, T), p=P))


def _unigram_tv(ids):
    q = np.bincount(ids.numpy().ravel(), minlength=len(P)) / ids.numel()
    return 0.5 * np.abs(q - P).sum()


def test_pretraining_lowers_the_nll_toward_the_entropy():
    bigcore.manual_seed(0)
    G = LSTMGenerator(len(P), 8, 16)
    gan = SequenceGAN(G, LSTMDiscriminator(len(P), 4, 8), g_optimizer=bigcore.optim.Adam(G.parameters(), lr=1e-2))
    held_out = _toy(1, B=256)()
    entropy = -(P[P > 0] * np.log(P[P > 0])).sum()  # 1.39 nats, the best NLL any model can reach
    before = G.nll(held_out).item()
    hist = gan.pretrain(_toy(2), 150, log_every=50)
    after = G.nll(held_out).item()
    assert hist["step"] == [50, 100, 150] and len(hist["nll"]) == 3
    assert before > np.log(6) - 0.1  # a fresh model is near uniform (ln 6 = 1.79)
    assert after < entropy + 0.05 and after < before - 0.3


def _fresh_discriminator_accuracy(gen, seed):
    """How well a new discriminator, trained 150 steps against ``gen``, then tells real from ``gen``'s samples:
    its mean accuracy over 30 more steps (1,920 classifications; about 0.011 of sampling noise)."""
    bigcore.manual_seed(seed)
    gan = SequenceGAN(gen, LSTMDiscriminator(len(P), 8, 16), seed=seed)
    data = _toy(seed)
    for _ in range(150):
        gan.discriminator_step(data())
    return np.mean([gan.discriminator_step(data())["d_acc"] for _ in range(30)])


def test_adversarial_training_moves_the_generator_toward_the_data():
    # no pretraining: the generator starts near uniform, the discriminator soon tells its samples apart, and the
    # generator's samples move toward the real distribution: their unigram total variation from it halves (on
    # 2048 x 8 tokens its sampling noise is about 0.01), and a fresh discriminator tells them from real sequences
    # clearly less well than it tells the initial generator's (measured: about 0.9 against 0.65)
    bigcore.manual_seed(0)
    G, D = LSTMGenerator(len(P), 8, 16), LSTMDiscriminator(len(P), 8, 16)
    G0 = copy.deepcopy(G)
    gan = SequenceGAN(G, D, seed=0)
    tv_before = _unigram_tv(G.sample(2048, 8, generator=_seeded(1)))
    hist = gan.fit(_toy(0), 300, log_every=50)
    tv_after = _unigram_tv(G.sample(2048, 8, generator=_seeded(1)))
    assert hist["step"] == [50, 100, 150, 200, 250, 300]
    assert set(hist) == {"step", "d_loss", "d_acc", "g_loss"}
    # D learns first: over the first 50 steps (3,200 classifications; chance is 0.5 +- 0.009) it beats chance
    assert hist["d_acc"][0] > 0.5 + 4 * np.sqrt(0.25 / 3200)
    # then G catches up: D ends near chance, and G's loss -log D(G(z)) near ln 2 (at D(G(z)) = 1/2)
    assert abs(hist["d_acc"][-1] - 0.5) < 0.15 and abs(hist["g_loss"][-1] - np.log(2)) < 0.15
    assert tv_after < 0.5 * tv_before
    assert _fresh_discriminator_accuracy(G, 1) < _fresh_discriminator_accuracy(G0, 1) - 0.1


def _run(seed, mle_weight):
    bigcore.manual_seed(seed)
    G, D = LSTMGenerator(len(P), 6, 10), LSTMDiscriminator(len(P), 6, 8)
    gan = SequenceGAN(G, D, tau=0.8, mle_weight=mle_weight, grad_clip=1.0, seed=seed)
    gan.pretrain(_toy(seed), 6, log_every=3)
    gan.fit(_toy(seed + 1), 6, log_every=3)
    return gan.pretrain_history, gan.history, [p.numpy() for p in list(G.parameters()) + list(D.parameters())]


def test_training_is_deterministic_under_a_seed():
    a, b, c = _run(5, 0.5), _run(5, 0.5), _run(6, 0.5)
    assert a[0] == b[0] and a[1] == b[1] and set(a[1]) == {"step", "d_loss", "d_acc", "g_loss", "nll"}
    for x, y in zip(a[2], b[2]):
        np.testing.assert_array_equal(x, y)
    assert a[1] != c[1]


def test_generator_step_leaves_the_discriminator_alone():
    G, D = LSTMGenerator(len(P), 5, 8), LSTMDiscriminator(len(P), 4, 6)
    D.fc.bias.requires_grad_(False)  # frozen by the user: stays frozen
    gan = SequenceGAN(G, D)
    real = _toy(0)()
    gan.discriminator_step(real)
    d_grads = [None if p.grad is None else p.grad.numpy().copy() for p in D.parameters()]
    d_params = [p.numpy().copy() for p in D.parameters()]
    g_params = [p.numpy().copy() for p in G.parameters()]
    out = gan.generator_step(real, G.rsample(32, 8))
    assert set(out) == {"g_loss"}
    for before, p in zip(d_grads, D.parameters()):
        assert (before is None and p.grad is None) or np.array_equal(before, p.grad.numpy())
    assert all(np.array_equal(x, p.numpy()) for x, p in zip(d_params, D.parameters()))
    assert not any(np.array_equal(x, p.numpy()) for x, p in zip(g_params, G.parameters()))
    assert [p.requires_grad for p in D.parameters()] == [n != "fc.bias" for n, _ in D.named_parameters()]


def test_fit_takes_a_dataloader():
    data = bigcore.data.DataLoader(bigcore.data.TensorDataset(_toy(0, B=40)()), batch_size=16)  # 3 batches a pass
    gan = SequenceGAN(LSTMGenerator(len(P), 4, 6), LSTMDiscriminator(len(P), 4, 6))
    assert gan.fit(data, 5, log_every=5)["step"] == [5]
    assert gan.pretrain(data, 4, log_every=2)["step"] == [2, 4]
    with pytest.raises(ValueError, match="no batches"):
        gan.fit([], 2)


# ----- the example -----
def test_gan_shakespeare_smoke_run(capsys):
    path = pathlib.Path(__file__).resolve().parent.parent / "examples" / "gan_shakespeare.py"
    spec = importlib.util.spec_from_file_location("gan_shakespeare", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--judge-iters", "15", "--mle-steps", "15", "--d-warmup-steps", "3", "--gan-steps", "3",
                    "--eval-samples", "16", "--seq-len", "16", "--g-hidden", "32", "--batch-size", "8"])
    lines = capsys.readouterr().out.strip().splitlines()
    names = ("real", "mle", "gan", "control", "uniform")
    m = re.fullmatch(" ".join(rf"nll_{k}=(\d+\.\d{{4}})" for k in names) + r" wall_s=\d+\.\d", lines[-1])
    assert m and [float(v) for v in m.groups()] == [round(res[k], 4) for k in names]
    # even a judge trained for 15 steps finds held-out Shakespeare likelier than random characters
    assert res["real"] < res["uniform"]
    assert any(line.startswith("samples, after adversarial training:") for line in lines)


def test_a_one_shot_iterator_that_runs_out_is_named():
    from bigcore.models.gan import _batches

    it = _batches(iter([1, 2]))
    assert [next(it), next(it)] == [1, 2]
    with pytest.raises(ValueError, match=r"ran out after 1 pass\(es\): a one-shot iterator"):
        next(it)
    with pytest.raises(ValueError, match="data yielded no batches"):
        next(_batches([]))
    again = _batches([7])
    assert [next(again) for _ in range(3)] == [7, 7, 7]  # a list is passed over again and again
