"""Random generators and sampling: ``bigcore.Generator`` (seeding, state, independence from the default
generator), ``generator=`` on every sampler, ``randint`` and ``multinomial`` (distributions checked with bounds of
several standard deviations, so a correct sampler fails them about never and a biased one at once)."""

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F

SAMPLERS = {
    "rand": lambda g: bigcore.rand(3, 4, generator=g),
    "randn": lambda g: bigcore.randn(5, generator=g, dtype=bigcore.float64),
    "randint": lambda g: bigcore.randint(-3, 9, (7,), generator=g),
    "randperm": lambda g: bigcore.randperm(9, generator=g),
    "multinomial": lambda g: bigcore.multinomial(bigcore.tensor([[0.2, 0.5, 0.3]] * 2), 4, True, generator=g),
    "dropout": lambda g: F.dropout(bigcore.ones(20), 0.5, True, generator=g),
    "init": lambda g: nn.init.kaiming_uniform_(bigcore.zeros(4, 3), generator=g),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_a_generator_repeats_its_draws_and_leaves_the_default_alone(name):
    draw = SAMPLERS[name]
    bigcore.manual_seed(1)
    default_before = bigcore.get_rng_state()
    g = bigcore.Generator().manual_seed(42)
    a = draw(g).numpy()
    assert bigcore.get_rng_state() == default_before  # the default generator did not move
    state = g.get_state()
    b = draw(g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(draw(g).numpy(), b)
    g.manual_seed(42)
    np.testing.assert_array_equal(draw(g).numpy(), a)
    # without generator=: the default one, seeded by manual_seed
    bigcore.manual_seed(42)
    first = draw(None).numpy()
    bigcore.manual_seed(42)
    np.testing.assert_array_equal(draw(None).numpy(), first)


def test_generator_api():
    g = bigcore.Generator()
    assert g.initial_seed() == 67280421310721 and g.device == "cpu"  # PyTorch's default seed
    assert g.manual_seed(7) is g and g.initial_seed() == 7
    assert bigcore.manual_seed(3) is bigcore.default_generator
    assert bigcore.default_generator.get_state() == bigcore.get_rng_state()
    s = g.seed()
    assert g.initial_seed() == s
    with pytest.raises(ValueError, match="all-zero"):
        g.set_state([0, 0, 0, 0])
    with pytest.raises(TypeError, match="bigcore.Generator"):
        bigcore.rand(2, generator=np.random.default_rng(0))
    with pytest.raises(TypeError):
        g.manual_seed(1.5)
    # two generators with one seed draw the same; different seeds differ
    a, b = bigcore.Generator().manual_seed(5), bigcore.Generator().manual_seed(5)
    assert bigcore.rand(4, generator=a).tolist() == bigcore.rand(4, generator=b).tolist()
    assert bigcore.rand(4, generator=a).tolist() != bigcore.rand(4, generator=bigcore.Generator().manual_seed(6)).tolist()


def test_randint_signatures_range_and_uniformity():
    g = bigcore.Generator().manual_seed(0)
    x = bigcore.randint(10, (60_000,), generator=g)
    assert x.dtype is bigcore.int64 and x.shape == (60_000,)
    counts = np.bincount(x.numpy(), minlength=10)
    # each count ~ Binomial(60000, 0.1): sd 73.5; 5 sd
    assert counts.size == 10 and np.all(np.abs(counts - 6000) < 5 * 73.5), counts
    y = bigcore.randint(-5, -2, size=(3, 4), generator=g)
    assert y.shape == (3, 4) and set(np.unique(y.numpy())) <= {-5, -4, -3}
    assert bigcore.randint(low=2, high=3, size=(2,)).tolist() == [2, 2]
    assert bigcore.randint(0, 2, (5,), dtype=bigcore.float32).dtype is bigcore.float32
    big = bigcore.randint(-2**62, 2**62, (1000,), generator=g).numpy()
    assert big.min() < -2**60 and big.max() > 2**60  # the whole range, not 53 bits of it
    with pytest.raises(ValueError, match="from=3 >= to=3"):
        bigcore.randint(3, 3, (1,))
    with pytest.raises(ValueError, match="negative dimension"):
        bigcore.randint(3, (-1,))
    with pytest.raises(TypeError):
        bigcore.randint(3)


def test_multinomial_with_replacement_follows_the_weights():
    # weights 1:0:3 (unnormalized): 40,000 draws give about 10,000 and 30,000 (sd 87), never category 1
    g = bigcore.Generator().manual_seed(1)
    s = bigcore.tensor([1.0, 0.0, 3.0]).multinomial(40_000, replacement=True, generator=g).numpy()
    counts = np.bincount(s, minlength=3)
    assert counts[1] == 0 and abs(counts[0] - 10_000) < 5 * 87 and abs(counts[2] - 30_000) < 5 * 87, counts


def test_multinomial_without_replacement_is_distinct_and_ordered_by_weight():
    # 2,000 rows of weights (0.05, 0, 0.9, 0.05), 3 samples each: always {0, 2, 3}; the heavy category first in
    # about 90% of rows (sd 13.4)
    probs = bigcore.tensor([[0.05, 0.0, 0.9, 0.05]] * 2000, dtype=bigcore.float64)
    s = bigcore.multinomial(probs, 3, generator=bigcore.Generator().manual_seed(2)).numpy()
    assert s.shape == (2000, 3) and s.dtype == np.int64
    assert (np.sort(s, 1) == [0, 2, 3]).all()
    assert abs((s[:, 0] == 2).sum() - 1800) < 5 * 13.4
    one = bigcore.multinomial(bigcore.tensor([0.0, 1.0]), 1)
    assert one.shape == (1,) and one.item() == 1


@pytest.mark.parametrize("probs,n,repl,match", [
    ([0.0, 0.0], 1, True, "sum of probabilities"),
    ([1.0, -1.0], 1, True, "element < 0"),
    ([1.0, float("inf")], 1, True, "inf, nan"),
    ([1.0, 0.0], 2, False, "not enough non-negative category"),
    ([1.0], 2, False, "without replacement"),
    ([1.0, 2.0], 0, True, "n_sample <= 0"),
])
def test_multinomial_errors(probs, n, repl, match):
    with pytest.raises(ValueError, match=match):
        bigcore.multinomial(bigcore.tensor(probs), n, repl)


def test_multinomial_shape_and_dtype_errors():
    with pytest.raises(bigcore.ShapeError, match="1 or 2 dim"):
        bigcore.multinomial(bigcore.ones(2, 2, 2), 1)
    with pytest.raises(bigcore.DTypeError):
        bigcore.multinomial(bigcore.tensor([1, 2]), 1)


def test_sampling_from_logits_the_way_generation_does():
    # top-k then softmax then multinomial: only the top 2 tokens are ever drawn
    logits = bigcore.tensor([[0.0, 3.0, 1.0, 2.5, -1.0]])
    v = logits.topk(2).values
    logits[logits < v[:, [-1]]] = float("-inf")
    probs = logits.softmax(-1)
    draws = probs.multinomial(500, replacement=True, generator=bigcore.Generator().manual_seed(0)).numpy()
    assert set(np.unique(draws)) == {1, 3}
