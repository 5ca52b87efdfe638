"""GPT-2 weights in and out: ``GPT.from_pretrained`` reads a Hugging Face GPT-2 directory (the tests write tiny
ones: tests/gpt2_files.py) and computes GPT-2's logits (against a numpy float64 GPT-2 that reads the files'
Conv1D layout as it is); ``save_pretrained`` writes the same layout, names and metadata; bad directories are named.
If ``transformers`` and ``torch`` are importable (neither is a dependency), the logits are also compared with
``GPT2LMHeadModel``'s, both ways."""

import json

import numpy as np
import pytest
from gpt2_files import TINY, gpt2_logits, hf_config, hf_weights, write_hf_dir
from safetensors import safe_open
from safetensors.numpy import save_file

import bigcore
from bigcore.models import GPT, GPTConfig


@pytest.fixture
def tiny(tmp_path, rng):
    weights = hf_weights(rng, **TINY)
    return write_hf_dir(tmp_path / "gpt2-tiny", hf_config(**TINY), weights), weights


def _ids(rng, B, T, V=TINY["vocab_size"]):
    return rng.integers(0, V, (B, T))


@pytest.mark.parametrize("fused", [True, False])
def test_from_pretrained_computes_gpt2s_logits(tiny, rng, fused):
    path, weights = tiny
    model = GPT.from_pretrained(path)
    model.fused = fused
    assert not model.training  # eval mode, as Hugging Face returns it
    c = model.config
    assert (c.block_size, c.vocab_size, c.n_layer, c.n_head, c.n_embd, c.bias) == (11, 29, 2, 3, 15, True)
    ids = _ids(rng, 3, 11)  # the whole context
    want = gpt2_logits(weights, ids, n_head=3)
    got = model(bigcore.tensor(ids))[0].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_from_pretrained_reads_files_without_prefix_with_lm_head_and_in_float64(tmp_path, rng):
    # the Hub's original gpt2 file: keys without "transformer.", and some files repeat the tied head
    weights = hf_weights(rng, **TINY)
    path = write_hf_dir(tmp_path / "old", hf_config(**TINY), {**weights, "lm_head.weight": weights["wte.weight"]},
                        prefix="")
    model = GPT.from_pretrained(path, dtype=bigcore.float64)
    ids = _ids(rng, 2, 7)
    want = gpt2_logits(weights, ids, n_head=3)
    np.testing.assert_allclose(model(bigcore.tensor(ids))[0].numpy(), want, rtol=1e-10, atol=1e-10)


def test_save_pretrained_writes_hugging_faces_layout(tmp_path, rng):
    bigcore.manual_seed(5)
    cfg = GPTConfig(block_size=11, vocab_size=29, n_layer=2, n_head=3, n_embd=15)
    model = GPT(cfg)
    for p in model.parameters():  # biases away from zero and layer norms away from one: a misplaced one shows
        if p.ndim == 1:
            bigcore.nn.init.normal_(p)
    model.save_pretrained(tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["model_type"] == "gpt2"
    assert (config["n_positions"], config["vocab_size"], config["n_layer"], config["n_head"], config["n_embd"]) == \
        (11, 29, 2, 3, 15)
    assert config["activation_function"] == "gelu_new" and config["layer_norm_epsilon"] == 1e-5
    assert config["eos_token_id"] is None  # a 29-token vocabulary has no GPT-2 <|endoftext|>
    with safe_open(str(tmp_path / "out" / "model.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}  # transformers refuses safetensors files without it
        files = {k: f.get_tensor(k) for k in f.keys()}
    assert all(k.startswith("transformer.") for k in files) and "lm_head.weight" not in files
    assert files["transformer.h.1.attn.c_attn.weight"].shape == (15, 45)  # Conv1D (in, out)
    assert files["transformer.h.0.mlp.c_proj.weight"].shape == (60, 15)
    # the written files, read as GPT-2 reads them, give the model's logits
    ids = _ids(rng, 2, 11)
    want = gpt2_logits({k[len("transformer."):]: v for k, v in files.items()}, ids, n_head=3)
    model.eval()
    np.testing.assert_allclose(model(bigcore.tensor(ids))[0].numpy(), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # and read back, every parameter is the same
    again = GPT.from_pretrained(tmp_path / "out")
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and np.array_equal(a.numpy(), b.numpy()), k


def test_save_pretrained_of_a_bias_free_model_writes_zero_biases(tmp_path, rng):
    model = GPT(GPTConfig(block_size=8, vocab_size=13, n_layer=1, n_head=2, n_embd=6, bias=False)).eval()
    model.save_pretrained(tmp_path / "nb")
    with safe_open(str(tmp_path / "nb" / "model.safetensors"), framework="numpy") as f:
        biases = {k: f.get_tensor(k) for k in f.keys() if k.endswith(".bias")}
    assert len(biases) == 7  # attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj, ln_1, ln_2 and ln_f
    assert all(not b.any() for b in biases.values()) and biases["transformer.h.0.attn.c_attn.bias"].shape == (18,)
    ids = bigcore.tensor(_ids(rng, 2, 8, V=13))
    np.testing.assert_allclose(GPT.from_pretrained(tmp_path / "nb")(ids)[0].numpy(), model(ids)[0].numpy(),
                               rtol=1e-5, atol=1e-6)


def test_sharded_checkpoints_load(tmp_path, rng):
    weights = hf_weights(rng, **TINY)
    path = tmp_path / "sharded"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(hf_config(**TINY)))
    names = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": names[:10], "model-00002-of-00002.safetensors": names[10:]}
    for file, keys in shards.items():
        save_file({k: weights[k] for k in keys}, str(path / file), metadata={"format": "pt"})
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {k: file for file, keys in shards.items() for k in keys}}))
    ids = _ids(rng, 1, 5)
    np.testing.assert_allclose(GPT.from_pretrained(path)(bigcore.tensor(ids))[0].numpy(),
                               gpt2_logits(weights, ids, 3), rtol=1e-4, atol=1e-4)


def _edit(tmp_path, rng, name, config=None, weights=None, **kw):
    w = hf_weights(rng, **TINY)
    if weights:
        weights(w)
    cfg = hf_config(**TINY)
    if config:
        cfg.update(config)
    return write_hf_dir(tmp_path / name, cfg, w, **kw)


@pytest.mark.parametrize("change, message", [
    ({"activation_function": "gelu"}, r"activation_function 'gelu' is not supported.*tanh GELU"),
    ({"layer_norm_epsilon": 1e-6}, r"layer_norm_epsilon=1e-06 is not supported"),
    ({"model_type": "llama"}, r"model_type is 'llama'"),
    ({"n_inner": 7}, r"n_inner=7 is not supported"),
    ({"scale_attn_by_inverse_layer_idx": True}, r"scale_attn_by_inverse_layer_idx=True"),
    ({"n_embd": 18, "n_head": 3}, r"wte.weight has shape \(29, 15\), the config's sizes give \(29, 18\)"),
])
def test_configs_and_tensors_bigcore_does_not_compute_are_named(tmp_path, rng, change, message):
    path = _edit(tmp_path, rng, "bad", config=change)
    with pytest.raises(ValueError, match=message):
        GPT.from_pretrained(path)


def test_bad_directories_are_named(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="no such model directory.*nothing is downloaded"):
        GPT.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        GPT.from_pretrained(tmp_path / "empty")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "config.json").write_text(json.dumps(hf_config(**TINY)))
    (tmp_path / "bin" / "pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(FileNotFoundError, match="pytorch_model.bin, a pickle bigcore does not read"):
        GPT.from_pretrained(tmp_path / "bin")
    path = _edit(tmp_path, rng, "missing", weights=lambda w: w.pop("h.1.mlp.c_fc.bias"))
    with pytest.raises(ValueError, match=r"missing 1 GPT-2 tensor\(s\): h.1.mlp.c_fc.bias"):
        GPT.from_pretrained(path)
    path = _edit(tmp_path, rng, "untied", weights=lambda w: w.update({"lm_head.weight": w["wte.weight"] + 1}))
    with pytest.raises(ValueError, match="lm_head.weight differs from wte.weight"):
        GPT.from_pretrained(path)
    path = _edit(tmp_path, rng, "extra", weights=lambda w: w.update({"h.0.attn.q_norm": w["ln_f.bias"]}))
    with pytest.raises(ValueError, match="unexpected tensor.*h.0.attn.q_norm"):
        GPT.from_pretrained(path)
    path = _edit(tmp_path, rng, "corrupt")
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="model.safetensors' is not a readable safetensors file"):
        GPT.from_pretrained(path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="is a file, not a directory"):
        GPT(GPTConfig(block_size=4, vocab_size=5, n_layer=1, n_head=1, n_embd=2)).save_pretrained(tmp_path / "afile")


def test_transformers_gives_the_same_logits_both_ways(tmp_path, rng):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_positions=16, n_embd=24, n_layer=2, n_head=3, vocab_size=37)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    hf.save_pretrained(tmp_path / "hf")
    ids = _ids(rng, 2, 16, V=37)
    with torch.no_grad():
        want = hf(torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(GPT.from_pretrained(tmp_path / "hf")(bigcore.tensor(ids))[0].numpy(), want,
                               rtol=1e-4, atol=1e-5)
    ours = GPT(GPTConfig(block_size=16, vocab_size=37, n_layer=2, n_head=3, n_embd=24, bias=False)).eval()
    ours.save_pretrained(tmp_path / "ours")
    with torch.no_grad():
        theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "ours").eval()(torch.tensor(ids)).logits
    np.testing.assert_allclose(theirs.numpy(), ours(bigcore.tensor(ids))[0].numpy(), rtol=1e-4, atol=1e-5)
