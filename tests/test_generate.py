"""GPT.generate and GPT.stream: the key/value-cached path against whole forwards token by token (nanoGPT's loop,
written here), cropping past the block size, sampling options and their reproducibility, end tokens, errors."""

import numpy as np
import pytest

import bigcore
from bigcore.models import GPT, GPTConfig

CFG = dict(block_size=16, vocab_size=23, n_layer=2, n_head=3, n_embd=12)


def model_pair(rng, dtype=bigcore.float64, **cfg):
    cfg = GPTConfig(**{**CFG, **cfg})
    fused, composed = GPT(cfg, dtype=dtype), GPT(cfg, dtype=dtype, fused=False)
    sd = {k: rng.standard_normal(v.shape) * 0.5 for k, v in composed.state_dict().items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    for m in (fused, composed):
        m.load_state_dict(sd)
        m.eval()
    return fused, composed


def nanogpt_greedy(model, ids, n):
    """nanoGPT's generate loop with argmax: a whole forward of the cropped context for every token."""
    ids = ids.copy()
    for _ in range(n):
        context = ids[:, -model.config.block_size:]
        logits = model(bigcore.tensor(context))[0].numpy()[:, -1]  # (B, V)
        ids = np.concatenate([ids, logits.argmax(-1)[:, None]], axis=1)
    return ids


@pytest.mark.parametrize("B,T,n", [(1, 1, 30), (3, 5, 14), (2, 16, 5)])
def test_greedy_generation_equals_whole_forwards_past_the_block_size(B, T, n, rng):
    fused, composed = model_pair(rng)
    prompt = rng.integers(0, 23, (B, T))
    want = nanogpt_greedy(composed, prompt, n)
    for m in (fused, composed):
        got = m.generate(bigcore.tensor(prompt), n, do_sample=False)
        assert got.shape == (B, T + n) and got.dtype is bigcore.int64
        np.testing.assert_array_equal(got.numpy(), want)
    # temperature 0 is greedy too, and top_k=1 samples the arg-max
    np.testing.assert_array_equal(fused.generate(bigcore.tensor(prompt), n, temperature=0).numpy(), want)
    np.testing.assert_array_equal(fused.generate(bigcore.tensor(prompt), n, top_k=1).numpy(), want)


def test_the_cached_logits_equal_the_whole_forward_at_every_position(rng):
    # float32 end to end, over the block size: the cache restarts from the cropped window
    fused, composed = model_pair(rng, dtype=bigcore.float32)
    ids = rng.integers(0, 23, (2, 40))
    from bigcore.models.generation import _Logits

    source = _Logits(fused, 2)
    logits = source.first(ids[:, :3])
    for t in range(3, 40):
        want = composed(bigcore.tensor(ids[:, max(0, t - 16):t]))[0].numpy()[:, -1]
        np.testing.assert_allclose(logits.numpy(), want, rtol=0, atol=2e-5 * np.abs(want).max(), err_msg=f"t={t}")
        logits = source.next(ids[:, :t + 1], ids[:, t])


def test_sampling_is_reproducible_under_manual_seed_and_stream_matches(rng):
    fused, _ = model_pair(rng)
    prompt = bigcore.tensor(rng.integers(0, 23, (2, 4)))
    bigcore.manual_seed(11)
    a = fused.generate(prompt, 25, temperature=0.9, top_k=10, top_p=0.9)
    bigcore.manual_seed(11)
    b = fused.generate(prompt, 25, temperature=0.9, top_k=10, top_p=0.9)
    c = fused.generate(prompt, 25, temperature=0.9, top_k=10, top_p=0.9)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    bigcore.manual_seed(11)
    streamed = [t.numpy() for t in fused.stream(prompt, 25, temperature=0.9, top_k=10, top_p=0.9)]
    assert len(streamed) == 25 and all(t.shape == (2,) for t in streamed)
    np.testing.assert_array_equal(np.stack(streamed, 1), a.numpy()[:, 4:])


def test_a_generator_gives_its_own_reproducible_stream_and_leaves_the_default_alone(rng):
    fused, composed = model_pair(rng)
    prompt = bigcore.tensor(rng.integers(0, 23, (2, 4)))
    bigcore.manual_seed(5)
    state = bigcore.get_rng_state()
    a = fused.generate(prompt, 20, generator=bigcore.Generator().manual_seed(3))
    assert bigcore.get_rng_state() == state  # the default generator did not move
    b = composed.eval().generate(prompt, 20, generator=bigcore.Generator().manual_seed(3))
    c = fused.generate(prompt, 20, generator=bigcore.Generator().manual_seed(4))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    g = bigcore.Generator().manual_seed(3)
    streamed = np.stack([t.numpy() for t in fused.stream(prompt, 20, generator=g)], 1)
    np.testing.assert_array_equal(streamed, a.numpy()[:, 4:])
    with pytest.raises(TypeError, match="bigcore.Generator"):
        fused.generate(prompt, 2, generator=3)


def test_top_k_keeps_draws_inside_the_k_most_likely(rng):
    fused, _ = model_pair(rng)
    prompt = bigcore.tensor(rng.integers(0, 23, (1, 3)))
    bigcore.manual_seed(0)
    first = [fused.generate(prompt, 1, top_k=3).numpy()[0, -1] for _ in range(200)]
    logits = fused(prompt)[0].numpy()[0, -1]
    assert set(first) <= set(np.argsort(logits)[-3:]) and len(set(first)) > 1


def test_end_token_stops_rows_and_pads_the_finished_ones(rng):
    fused, _ = model_pair(rng)
    prompt = rng.integers(0, 23, (2, 3))
    greedy = fused.generate(bigcore.tensor(prompt), 20, do_sample=False).numpy()
    eos = int(greedy[0, 3])  # row 0's first new token: it ends at once
    got = fused.generate(bigcore.tensor(prompt), 20, do_sample=False, eos_token_id=eos).numpy()
    row1 = greedy[1, 3:]
    stop = int(np.argmax(row1 == eos)) + 1 if (row1 == eos).any() else 20
    assert got.shape == (2, 3 + stop)
    assert (got[0, 3:] == eos).all()
    np.testing.assert_array_equal(got[1], greedy[1, :3 + stop])


def test_zero_new_tokens_and_bad_arguments(rng):
    fused, _ = model_pair(rng)
    prompt = bigcore.tensor(rng.integers(0, 23, (2, 3)))
    np.testing.assert_array_equal(fused.generate(prompt, 0).numpy(), prompt.numpy())
    with pytest.raises(ValueError, match="temperature"):
        fused.generate(prompt, 3, temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        fused.generate(prompt, 3, top_p=1.5)
    with pytest.raises(ValueError, match="top_k"):
        fused.generate(prompt, 3, top_k=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        fused.generate(prompt, -1)
    with pytest.raises(IndexError, match="token id 23"):
        fused.generate(bigcore.tensor([[1, 23]]), 3)
    with pytest.raises(bigcore.ShapeError):
        fused.generate(bigcore.tensor([1, 2]), 3)
    with pytest.raises(bigcore.DTypeError):
        fused.generate(bigcore.tensor([[1.0, 2.0]]), 3)
