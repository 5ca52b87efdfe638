"""The fused GPT path (one engine call for the forward, one for the backward) against the composed path it
replaces (models/gpt.py's nn layers, itself checked against numpy in test_gpt.py): logits, loss and every
parameter's gradient, float64 to 1e-10 relative and float32 within rounding, at odd sizes; training steps that
reuse the activation arena; shape changes; when the model falls back to the composed path."""

import copy
import pickle

import numpy as np
import pytest

import bigcore
from bigcore.models import GPT, GPTConfig

SIZES = [
    # (config, B, T): n_head 3, a prime vocabulary, T not a multiple of anything, B = 1
    (dict(block_size=17, vocab_size=97, n_layer=2, n_head=3, n_embd=15), 1, 13),
    (dict(block_size=17, vocab_size=97, n_layer=3, n_head=3, n_embd=24, bias=False), 3, 17),
    (dict(block_size=70, vocab_size=65, n_layer=1, n_head=4, n_embd=32), 2, 69),
    (dict(block_size=5, vocab_size=7, n_layer=0, n_head=1, n_embd=4), 2, 5),
]


def pair(cfg, dtype, rng, scale=0.3):
    """The two paths with the same weights, random enough that every term matters."""
    fused, composed = GPT(cfg, dtype=dtype, fused=True), GPT(cfg, dtype=dtype, fused=False)
    sd = {k: rng.standard_normal(v.shape) * scale for k, v in composed.state_dict().items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    for m in (fused, composed):
        m.load_state_dict(sd)
    return fused, composed


def run(model, idx, targets):
    model.zero_grad()
    logits, loss = model(bigcore.tensor(idx), bigcore.tensor(targets))
    loss.backward()
    return logits.numpy(), loss.item(), {n: p.grad.numpy() for n, p in model.named_parameters()}


@pytest.mark.parametrize("cfg,B,T", SIZES)
def test_fused_equals_composed_float64(cfg, B, T, rng):
    cfg = GPTConfig(**cfg)
    fused, composed = pair(cfg, bigcore.float64, rng)
    idx, targets = rng.integers(0, cfg.vocab_size, (B, T)), rng.integers(0, cfg.vocab_size, (B, T))
    targets[0, ::4] = -1
    (lf, sf, gf), (lc, sc, gc) = run(fused, idx, targets), run(composed, idx, targets)
    np.testing.assert_allclose(lf, lc, rtol=1e-10, atol=1e-10 * np.abs(lc).max())
    np.testing.assert_allclose(sf, sc, rtol=1e-10)
    assert gf.keys() == gc.keys()
    for name in gc:
        np.testing.assert_allclose(gf[name], gc[name], rtol=1e-10, atol=1e-10 * np.abs(gc[name]).max(), err_msg=name)


@pytest.mark.parametrize("cfg,B,T", SIZES[:3])
def test_fused_float32_is_within_rounding_of_composed(cfg, B, T, rng):
    cfg = GPTConfig(**cfg)
    fused, composed = pair(cfg, bigcore.float32, rng)
    idx, targets = rng.integers(0, cfg.vocab_size, (B, T)), rng.integers(0, cfg.vocab_size, (B, T))
    (lf, sf, gf), (lc, sc, gc) = run(fused, idx, targets), run(composed, idx, targets)
    # two float32 computations of a few dozen ops each from the same float32 weights
    np.testing.assert_allclose(lf, lc, rtol=0, atol=2e-5 * np.abs(lc).max())
    np.testing.assert_allclose(sf, sc, rtol=5e-6)
    for name in gc:
        np.testing.assert_allclose(gf[name], gc[name], rtol=0, atol=1e-4 * np.abs(gc[name]).max(), err_msg=name)


def test_training_steps_reuse_the_arena_and_track_the_composed_path(rng):
    # AdamW steps change every weight between forwards; shapes change in between (a new arena), then return
    cfg = GPTConfig(block_size=17, vocab_size=97, n_layer=2, n_head=3, n_embd=15)
    fused, composed = pair(cfg, bigcore.float64, rng)
    opts = [m.configure_optimizers(0.1, 1e-2, (0.9, 0.99)) for m in (fused, composed)]
    for step, (B, T) in enumerate([(2, 13), (2, 13), (3, 7), (2, 13), (1, 1)]):
        idx, targets = rng.integers(0, 97, (B, T)), rng.integers(0, 97, (B, T))
        outs = []
        for m, opt in zip((fused, composed), opts):
            opt.zero_grad()
            logits, loss = m(bigcore.tensor(idx), bigcore.tensor(targets))
            loss.backward()
            opt.step()
            outs.append((logits.numpy(), loss.item()))
        np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-9, atol=1e-9, err_msg=f"step {step}")
        np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-10, err_msg=f"step {step}")
    # Adam divides by sqrt(v): an element whose gradient is rounding noise moves by up to lr either way, so
    # parameters agree to 1e-8 of a step (lr = 1e-2), not to 1e-12
    for (n, a), b in zip(fused.named_parameters(), composed.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-10, err_msg=n)


def test_two_graphs_alive_at_once_keep_their_own_activations(rng):
    # a second forward before the first backward must not overwrite the first one's saved activations
    cfg = GPTConfig(block_size=9, vocab_size=11, n_layer=1, n_head=2, n_embd=8)
    fused, composed = pair(cfg, bigcore.float64, rng)
    a, b = rng.integers(0, 11, (2, 9)), rng.integers(0, 11, (2, 9))
    _, loss_a = fused(bigcore.tensor(a), bigcore.tensor(b))
    _, loss_b = fused(bigcore.tensor(b), bigcore.tensor(a))
    loss_a.backward()
    got = {n: p.grad.numpy().copy() for n, p in fused.named_parameters()}
    _, want_a = composed(bigcore.tensor(a), bigcore.tensor(b))
    want_a.backward()
    for n, p in composed.named_parameters():
        np.testing.assert_allclose(got[n], p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)
    loss_b.backward()  # still valid


def test_eval_and_no_grad_forwards_are_fused_too(rng):
    cfg = GPTConfig(block_size=9, vocab_size=11, n_layer=2, n_head=2, n_embd=8, dropout=0.2)
    fused, composed = pair(cfg, bigcore.float64, rng)
    fused.eval()
    composed.eval()
    idx = bigcore.tensor(rng.integers(0, 11, (3, 9)))
    with bigcore.no_grad():
        lf, _ = fused(idx)
    lc, _ = composed(idx)
    assert not lf.requires_grad
    np.testing.assert_allclose(lf.numpy(), lc.numpy(), rtol=1e-10, atol=1e-12)


def test_the_composed_path_runs_where_the_fused_one_does_not_apply(rng):
    cfg = GPTConfig(block_size=9, vocab_size=11, n_layer=1, n_head=2, n_embd=8)
    model = GPT(cfg)
    assert model._fused_params() is not None
    model.lm_head.weight = bigcore.nn.Parameter(model.lm_head.weight.detach() * 2)  # an untied head
    assert model._fused_params() is None
    model = GPT(cfg)
    model.transformer.h[0].mlp = bigcore.nn.Identity()  # a replaced module
    assert model._fused_params() is None
    model = GPT(GPTConfig(block_size=9, vocab_size=11, n_layer=1, n_head=2, n_embd=8, dropout=0.3))
    assert model._fused_params() is not None
    model.transformer.h[0].attn.resid_dropout.p = 0.0  # one site's probability changed
    assert model._fused_params() is None


def test_fused_dropout_is_reproducible_and_off_in_eval(rng):
    cfg = GPTConfig(block_size=9, vocab_size=11, n_layer=2, n_head=2, n_embd=8, dropout=0.3)
    model = GPT(cfg, dtype=bigcore.float64)
    assert model._fused_params() is not None  # dropout in training runs fused too
    idx, targets = bigcore.tensor(rng.integers(0, 11, (2, 9))), bigcore.tensor(rng.integers(0, 11, (2, 9)))
    bigcore.manual_seed(7)
    a, loss_a = model(idx, targets)
    bigcore.manual_seed(7)
    b, _ = model(idx, targets)
    c, _ = model(idx, targets)
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # same seed, same masks
    assert not np.array_equal(a.numpy(), c.numpy())  # the generator moved on: new masks
    loss_a.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    composed = GPT(cfg, dtype=bigcore.float64, fused=False)
    composed.load_state_dict(model.state_dict())
    composed.eval()
    np.testing.assert_allclose(model(idx)[0].numpy(), composed(idx)[0].numpy(), rtol=1e-10, atol=1e-12)


def test_copies_and_pickles_get_their_own_arena(rng):
    cfg = GPTConfig(block_size=9, vocab_size=11, n_layer=1, n_head=2, n_embd=8)
    model = GPT(cfg, dtype=bigcore.float64)
    idx = bigcore.tensor(rng.integers(0, 11, (2, 9)))
    want = model(idx)[0].numpy()
    for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert other._arena is not model._arena
        np.testing.assert_array_equal(other(idx)[0].numpy(), want)
