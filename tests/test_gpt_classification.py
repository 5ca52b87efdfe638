"""GPTForSequenceClassification: Hugging Face's semantics (the score head on the hidden state of the last
non-padding token, against a numpy float64 GPT-2 from tests/gpt2_files.py), its three losses against numpy,
freezing with ``requires_grad_(False)`` (on the classifier and on the fused GPT), and the Hugging Face format."""

import json

import numpy as np
import pytest
from gpt2_files import TINY, gpt2_hidden, hf_config, hf_weights, write_hf_dir
from safetensors.numpy import load_file

import bigcore
from bigcore.models import GPT, GPTConfig, GPTForSequenceClassification

PAD = 0


@pytest.fixture
def hf_classifier(tmp_path, rng):
    """A GPT2ForSequenceClassification directory with 4 labels and pad id 0, and its weights."""
    weights = hf_weights(rng, **TINY)
    weights["score.weight"] = rng.normal(0, 0.5, (4, TINY["n_embd"])).astype(np.float32)  # Linear (out, in)
    config = {**hf_config(**TINY), "architectures": ["GPT2ForSequenceClassification"], "pad_token_id": PAD,
              "id2label": {str(i): f"L{i}" for i in range(4)}}
    return write_hf_dir(tmp_path / "clf", config, weights), weights


def _padded(rng, lengths, T, V=TINY["vocab_size"]):
    ids = np.full((len(lengths), T), PAD)
    for b, n in enumerate(lengths):
        ids[b, :n] = rng.integers(1, V, n)
    return ids


def test_logits_come_from_the_last_non_padding_token(hf_classifier, rng):
    path, weights = hf_classifier
    model = GPTForSequenceClassification.from_pretrained(path)
    assert model.num_labels == 4 and model.pad_token_id == PAD and not model.training
    lengths = [11, 1, 6, 3]
    ids = _padded(rng, lengths, 11)
    ids[2, 2] = PAD  # a pad id inside a sequence is a token like any other: the last non-pad one counts
    h = gpt2_hidden(weights, ids, n_head=3)  # (B, T, C)
    want = np.stack([h[b, n - 1] for b, n in enumerate(lengths)]) @ weights["score.weight"].astype(np.float64).T
    got, loss = model(bigcore.tensor(ids))
    assert loss is None and got.shape == (4, 4)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # right padding changes nothing: each sequence alone gives its row
    for b, n in enumerate(lengths):
        alone = model(bigcore.tensor(ids[b:b + 1, :n]))[0].numpy()
        np.testing.assert_allclose(alone[0], got.numpy()[b], rtol=1e-5, atol=1e-5)


def test_without_a_pad_token_only_single_sequences(rng):
    model = GPTForSequenceClassification(GPTConfig(block_size=8, vocab_size=13, n_layer=1, n_head=2, n_embd=6), 3)
    ids = rng.integers(0, 13, (2, 5))
    with pytest.raises(ValueError, match="batch sizes > 1 if no padding token"):
        model(bigcore.tensor(ids))
    one = model(bigcore.tensor(ids[:1]))[0].numpy()  # the last position
    model.pad_token_id = 99  # an id no sequence has: the last position again, now for every row
    np.testing.assert_allclose(model(bigcore.tensor(ids))[0].numpy()[:1], one, rtol=1e-5, atol=1e-7)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_losses_follow_hugging_faces_problem_types(rng):
    cfg = GPTConfig(block_size=9, vocab_size=13, n_layer=1, n_head=2, n_embd=6)
    ids = bigcore.tensor(_padded(rng, [9, 4, 7], 9, V=13))
    clf = GPTForSequenceClassification(cfg, 5, pad_token_id=PAD, dtype=bigcore.float64)
    labels = np.array([4, 0, 2])
    logits, loss = clf(ids, bigcore.tensor(labels))
    z = logits.numpy()
    assert np.isclose(loss.item(), -_log_softmax(z)[np.arange(3), labels].mean(), rtol=1e-12)  # cross-entropy
    multi = (rng.random((3, 5)) < 0.5).astype(np.float64)
    _, loss = clf(ids, bigcore.tensor(multi))  # float labels: multi-label, BCE on the logits
    bce = np.maximum(z, 0) - z * multi + np.log1p(np.exp(-np.abs(z)))
    assert np.isclose(loss.item(), bce.mean(), rtol=1e-12)
    reg = GPTForSequenceClassification(cfg, 1, pad_token_id=PAD, dtype=bigcore.float64)
    y = np.array([0.5, -1.0, 2.0])
    out, loss = reg(ids, bigcore.tensor(y))  # one label: regression, mean squared error
    assert out.shape == (3, 1) and np.isclose(loss.item(), ((out.numpy()[:, 0] - y) ** 2).mean(), rtol=1e-12)
    with pytest.raises(bigcore.ShapeError, match=r"int64 labels must be \(B,\) = \(3,\)"):
        clf(ids, bigcore.tensor(np.array([[1], [2], [3]])))
    with pytest.raises(bigcore.OutOfRangeError):
        clf(ids, bigcore.tensor(np.array([5, 0, 0])))
    with pytest.raises(ValueError, match="num_labels must be a positive integer"):
        GPTForSequenceClassification(cfg, 0)


def test_frozen_trunk_gets_no_gradient_and_does_not_move(rng):
    cfg = GPTConfig(block_size=9, vocab_size=13, n_layer=2, n_head=2, n_embd=6)
    clf = GPTForSequenceClassification(cfg, 3, pad_token_id=PAD)
    clf.transformer.requires_grad_(False)
    clf.score.requires_grad_(True)
    opt = clf.configure_optimizers(0.1, 1e-2, (0.9, 0.99))
    assert [p for g in opt.param_groups for p in g["params"]] == [clf.score.weight]
    before = {k: v.numpy() for k, v in clf.state_dict().items()}
    _, loss = clf(bigcore.tensor(_padded(rng, [9, 3], 9, V=13)), bigcore.tensor(np.array([2, 0])))
    loss.backward()
    assert all(p.grad is None for p in clf.transformer.parameters()) and clf.score.weight.grad is not None
    opt.step()
    after = clf.state_dict()
    assert all(np.array_equal(before[k], after[k].numpy()) for k in before if k != "score.weight")
    assert not np.array_equal(before["score.weight"], after["score.weight"].numpy())


@pytest.mark.parametrize("fused", [True, False])
def test_freezing_layers_of_a_gpt(rng, fused):
    model = GPT(GPTConfig(block_size=8, vocab_size=13, n_layer=2, n_head=2, n_embd=6, bias=False), fused=fused)
    model.transformer.h[0].requires_grad_(False)
    model.transformer.wpe.requires_grad_(False)
    frozen = {id(p) for p in model.transformer.h[0].parameters()} | {id(model.transformer.wpe.weight)}
    ids = bigcore.tensor(rng.integers(0, 13, (2, 8)))
    _, loss = model(ids, ids)
    loss.backward()
    for name, p in model.named_parameters():
        assert (p.grad is None) == (id(p) in frozen), name
    opt = model.configure_optimizers(0.1, 1e-2, (0.9, 0.99))
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters())) - len(frozen)


def test_from_gpt_shares_the_trunk(rng):
    gpt = GPT(GPTConfig(block_size=8, vocab_size=13, n_layer=1, n_head=2, n_embd=6))
    clf = GPTForSequenceClassification.from_gpt(gpt, 2, pad_token_id=PAD)
    assert clf.transformer.h[0].attn.c_attn.weight is gpt.transformer.h[0].attn.c_attn.weight
    assert [k for k in clf.state_dict() if not k.startswith("transformer.")] == ["score.weight"]
    assert len(clf.transformer.h) == 1 and clf.config.n_layer == 1


def test_save_pretrained_round_trip_and_hugging_face_config(tmp_path, hf_classifier, rng):
    path, weights = hf_classifier
    clf = GPTForSequenceClassification.from_pretrained(path)
    clf.save_pretrained(tmp_path / "again", id2label=["a", "b", "c", "d"])
    config = json.loads((tmp_path / "again" / "config.json").read_text())
    assert config["architectures"] == ["GPT2ForSequenceClassification"] and config["pad_token_id"] == PAD
    assert config["id2label"] == {"0": "a", "1": "b", "2": "c", "3": "d"} and config["label2id"]["c"] == 2
    files = load_file(str(tmp_path / "again" / "model.safetensors"))
    np.testing.assert_array_equal(files["score.weight"], weights["score.weight"])
    np.testing.assert_array_equal(files["transformer.h.1.mlp.c_fc.weight"], weights["h.1.mlp.c_fc.weight"])
    again = GPTForSequenceClassification.from_pretrained(tmp_path / "again")
    ids = bigcore.tensor(_padded(rng, [5, 11], 11))
    np.testing.assert_array_equal(again(ids)[0].numpy(), clf(ids)[0].numpy())
    # a language model's directory: the trunk is read, score is new, num_labels must be given
    lm = write_hf_dir(tmp_path / "lm", hf_config(**TINY), hf_weights(rng, **TINY))
    with pytest.raises(ValueError, match="is not a classifier: pass num_labels"):
        GPTForSequenceClassification.from_pretrained(lm)
    fresh = GPTForSequenceClassification.from_pretrained(lm, num_labels=3, pad_token_id=PAD)
    assert fresh.score.weight.shape == (3, 15)
    with pytest.raises(ValueError, match=r"score.weight has shape \(4, 15\), expected \(2, 15\)"):
        GPTForSequenceClassification.from_pretrained(path, num_labels=2)
