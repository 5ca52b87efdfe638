"""The GPT (models/gpt.py), on both paths (fused engine, composed nn layers) wherever they compute: nanoGPT's
parameter names, shapes and tying; its initialization; logits and loss against a numpy float64 GPT written here
from the math; every parameter's gradient against central finite differences; float32 within rounding of
float64; nanoGPT-style numpy state dicts; the optimizer groups, cropping, dropout modes, and every bad input
named in issue 9. tests/test_gpt_fused.py compares the two paths with each other.

Sizes are awkward on purpose: n_head = 3, head size 5, vocabulary 97, T = 13 (a prime), B = 1."""

import math

import numpy as np
import pytest

import bigcore
from bigcore.models import GPT, GPTConfig

# n_embd 15 = 3 heads of 5; block 17 and T 13 are primes; vocabulary 97 is prime
ODD = dict(block_size=17, vocab_size=97, n_layer=2, n_head=3, n_embd=15)


def nanogpt_shapes(cfg):
    """The state-dict keys and shapes of nanoGPT's GPT for ``cfg``, in nanoGPT's order (its flash-attention
    path, which has no ``attn.bias`` mask buffer)."""
    C, V = cfg.n_embd, cfg.vocab_size
    out = {"transformer.wte.weight": (V, C), "transformer.wpe.weight": (cfg.block_size, C)}

    def ln(name):
        out[f"{name}.weight"] = (C,)
        if cfg.bias:
            out[f"{name}.bias"] = (C,)

    def linear(name, n_in, n_out):
        out[f"{name}.weight"] = (n_out, n_in)
        if cfg.bias:
            out[f"{name}.bias"] = (n_out,)

    for i in range(cfg.n_layer):
        p = f"transformer.h.{i}"
        ln(f"{p}.ln_1")
        linear(f"{p}.attn.c_attn", C, 3 * C)
        linear(f"{p}.attn.c_proj", C, C)
        ln(f"{p}.ln_2")
        linear(f"{p}.mlp.c_fc", C, 4 * C)
        linear(f"{p}.mlp.c_proj", 4 * C, C)
    ln("transformer.ln_f")
    out["lm_head.weight"] = (V, C)
    return out


# ----- the numpy float64 GPT, from the math -----

def np_layer_norm(x, w, b):
    # y = (x - mean) / sqrt(var + 1e-5) * w + b, biased variance over the last dim
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + 1e-5) * w
    return y if b is None else y + b


def np_linear(x, w, b):
    return x @ w.T if b is None else x @ w.T + b


def np_gelu_tanh(x):
    # GPT-2's GELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def np_gpt(sd, cfg, idx, targets=None):
    """Logits (B, T, V) and the mean cross-entropy over targets != -1 of a GPT with weights ``sd`` (numpy)."""
    sd = {k: np.asarray(v, np.float64) for k, v in sd.items()}
    B, T = idx.shape
    C, NH = cfg.n_embd, cfg.n_head
    HS = C // NH
    x = sd["transformer.wte.weight"][idx] + sd["transformer.wpe.weight"][:T]  # (B, T, C)
    future = np.triu(np.ones((T, T), bool), k=1)  # key after query
    for i in range(cfg.n_layer):
        p = f"transformer.h.{i}."
        h = np_layer_norm(x, sd[p + "ln_1.weight"], sd.get(p + "ln_1.bias"))
        qkv = np_linear(h, sd[p + "attn.c_attn.weight"], sd.get(p + "attn.c_attn.bias"))  # (B, T, 3C)
        q, k, v = (qkv[..., j * C:(j + 1) * C].reshape(B, T, NH, HS).transpose(0, 2, 1, 3) for j in range(3))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(HS)  # (B, NH, T, T)
        scores[..., future] = -np.inf
        att = np.exp(scores - scores.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, C)  # (B, T, C)
        x = x + np_linear(y, sd[p + "attn.c_proj.weight"], sd.get(p + "attn.c_proj.bias"))
        h = np_layer_norm(x, sd[p + "ln_2.weight"], sd.get(p + "ln_2.bias"))
        h = np_gelu_tanh(np_linear(h, sd[p + "mlp.c_fc.weight"], sd.get(p + "mlp.c_fc.bias")))  # (B, T, 4C)
        x = x + np_linear(h, sd[p + "mlp.c_proj.weight"], sd.get(p + "mlp.c_proj.bias"))
    x = np_layer_norm(x, sd["transformer.ln_f.weight"], sd.get("transformer.ln_f.bias"))
    logits = x @ sd["lm_head.weight"].T  # (B, T, V)
    if targets is None:
        return logits, None
    # loss = mean over kept positions of logsumexp(logits) - logits[target]
    m = logits.max(-1, keepdims=True)
    logp = logits - (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))
    keep = targets != -1
    picked = np.take_along_axis(logp, np.where(keep, targets, 0)[..., None], -1)[..., 0]
    return logits, -picked[keep].mean()


def numpy_state_dict(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def random_ids(rng, cfg, B, T):
    return rng.integers(0, cfg.vocab_size, (B, T))


# ----- names, shapes, tying -----

@pytest.mark.parametrize("bias", [True, False])
def test_parameter_names_and_shapes_are_nanogpts(bias):
    cfg = GPTConfig(**ODD, bias=bias)
    model = GPT(cfg)
    want = nanogpt_shapes(cfg)
    sd = model.state_dict()
    assert list(sd) == list(want)
    assert {k: v.shape for k, v in sd.items()} == want
    # parameters() holds the tied weight once, named by its first place as in PyTorch
    names = [n for n, _ in model.named_parameters()]
    assert names == [k for k in want if k != "lm_head.weight"]


def test_lm_head_is_tied_to_the_token_embedding(rng):
    model = GPT(GPTConfig(**ODD))
    assert model.lm_head.weight is model.transformer.wte.weight
    params = list(model.parameters())
    assert len({id(p) for p in params}) == len(params)
    sd = model.state_dict()
    np.testing.assert_array_equal(sd["lm_head.weight"].numpy(), sd["transformer.wte.weight"].numpy())
    # one optimizer step moves both names alike; a dtype change keeps the tie
    opt = model.configure_optimizers(0.1, 1e-2, (0.9, 0.99))
    idx = bigcore.tensor(random_ids(rng, model.config, 2, 5))
    model(idx, idx)[1].backward()
    opt.step()
    sd = model.state_dict()
    np.testing.assert_array_equal(sd["lm_head.weight"].numpy(), sd["transformer.wte.weight"].numpy())
    model.double()
    assert model.lm_head.weight is model.transformer.wte.weight and model.lm_head.weight.dtype is bigcore.float64


def test_num_params_counts_the_tied_weight_once():
    cfg = GPTConfig(**ODD)
    model = GPT(cfg)
    shapes = nanogpt_shapes(cfg)
    total = sum(math.prod(s) for k, s in shapes.items() if k != "lm_head.weight")
    assert model.num_params(non_embedding=False) == total
    assert model.num_params() == total - cfg.block_size * cfg.n_embd
    # GPT-2 small with the padded vocabulary: nanoGPT prints 123.69M (non-embedding)
    assert sum(math.prod(s) for k, s in nanogpt_shapes(GPTConfig()).items() if k != "lm_head.weight") \
        - 1024 * 768 == 123_689_472


def test_initialization_statistics():
    # nanoGPT: N(0, 0.02) for Linear and Embedding weights, zero biases, LayerNorm at (1, 0), and the residual
    # projections c_proj.weight at N(0, 0.02 / sqrt(2 n_layer))
    bigcore.manual_seed(0)
    cfg = GPTConfig(block_size=64, vocab_size=257, n_layer=4, n_head=4, n_embd=64)
    model = GPT(cfg)
    resid_std = 0.02 / math.sqrt(2 * cfg.n_layer)
    for name, p in model.state_dict().items():
        a = p.numpy().astype(np.float64)
        if name.endswith("bias"):
            assert np.all(a == 0), name
        elif ".ln_" in name:
            assert np.all(a == 1), name
        else:
            std = resid_std if name.endswith("c_proj.weight") else 0.02
            # the sample std of n normal draws is within 5 standard errors (std / sqrt(2n)) of std
            assert abs(a.std() - std) < 5 * std / math.sqrt(2 * a.size), (name, a.std(), std)
            assert abs(a.mean()) < 5 * std / math.sqrt(a.size), (name, a.mean())
    w = model.state_dict()
    assert not np.array_equal(w["transformer.h.0.attn.c_proj.weight"].numpy(), w["transformer.h.1.attn.c_proj.weight"].numpy())


# ----- forward against numpy -----

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("B,T", [(1, 13), (3, 17), (2, 1)])
@pytest.mark.parametrize("fused", [True, False])
def test_logits_and_loss_match_numpy_float64(fused, rng, bias, B, T):
    cfg = GPTConfig(**ODD, bias=bias)
    model = GPT(cfg, dtype=bigcore.float64, fused=fused)
    idx, targets = random_ids(rng, cfg, B, T), random_ids(rng, cfg, B, T)
    targets[0, ::3] = -1  # ignored positions (ignore_index=-1)
    if T == 1:
        targets[0, 0] = 5
    logits, loss = model(bigcore.tensor(idx), bigcore.tensor(targets))
    want_logits, want_loss = np_gpt(numpy_state_dict(model), cfg, idx, targets)
    assert logits.shape == (B, T, cfg.vocab_size) and logits.dtype is bigcore.float64
    assert loss.shape == ()
    np.testing.assert_allclose(logits.numpy(), want_logits, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss.item(), want_loss, rtol=1e-12)
    # without targets: the same logits for every position, and no loss
    logits2, none = model(bigcore.tensor(idx))
    assert none is None
    np.testing.assert_allclose(logits2.numpy(), want_logits, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_weights_far_from_init_still_match_numpy(fused, rng):
    # init-sized weights make every block nearly the identity; large random ones exercise every term
    cfg = GPTConfig(**ODD)
    model = GPT(cfg, dtype=bigcore.float64, fused=fused)
    sd = {k: rng.standard_normal(s) * 0.5 for k, s in nanogpt_shapes(cfg).items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    model.load_state_dict(sd)
    idx, targets = random_ids(rng, cfg, 2, 11), random_ids(rng, cfg, 2, 11)
    logits, loss = model(bigcore.tensor(idx), bigcore.tensor(targets))
    want_logits, want_loss = np_gpt(sd, cfg, idx, targets)
    np.testing.assert_allclose(logits.numpy(), want_logits, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(loss.item(), want_loss, rtol=1e-12)


def test_numpy_state_dict_of_nanogpt_layout_loads_and_gives_identical_logits(rng):
    # what a nanoGPT state_dict converted to numpy looks like: float32 arrays, both tied names present
    cfg = GPTConfig(**ODD)
    source = GPT(cfg)
    sd = numpy_state_dict(source)
    assert set(sd) == set(nanogpt_shapes(cfg)) and all(a.dtype == np.float32 for a in sd.values())
    bigcore.manual_seed(12345)
    target = GPT(cfg)
    assert not np.array_equal(numpy_state_dict(target)["transformer.wpe.weight"], sd["transformer.wpe.weight"])
    result = target.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    idx = bigcore.tensor(random_ids(rng, cfg, 3, 13))
    np.testing.assert_array_equal(target(idx)[0].numpy(), source(idx)[0].numpy())
    assert target.lm_head.weight is target.transformer.wte.weight


# ----- gradients -----

@pytest.mark.parametrize("fused", [True, False])
def test_every_gradient_matches_finite_differences_float64(fused, rng):
    # d loss / d p for every element of every parameter, against (loss(p + h) - loss(p - h)) / 2h in float64;
    # the tied weight gets both of its uses (embedding and output head)
    cfg = GPTConfig(block_size=7, vocab_size=11, n_layer=2, n_head=3, n_embd=6)
    model = GPT(cfg, dtype=bigcore.float64, fused=fused)
    sd = {k: rng.standard_normal(s) * 0.3 for k, s in nanogpt_shapes(cfg).items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    model.load_state_dict(sd)
    idx = bigcore.tensor(random_ids(rng, cfg, 2, 7))
    t = random_ids(rng, cfg, 2, 7)
    t[1, 2] = -1
    targets = bigcore.tensor(t)
    model(idx, targets)[1].backward()
    h = 1e-5
    with bigcore.no_grad():
        for name, p in model.named_parameters():
            assert p.grad is not None and p.grad.shape == p.shape, name
            grad = p.grad.numpy()
            base = p.numpy()
            for pos in np.ndindex(base.shape):
                values = []
                for step in (h, -h):
                    x = base.copy()
                    x[pos] += step
                    model.load_state_dict({name: x}, strict=False)
                    values.append(model(idx, targets)[1].item())
                model.load_state_dict({name: base}, strict=False)
                numeric = (values[0] - values[1]) / (2 * h)
                np.testing.assert_allclose(grad[pos], numeric, rtol=1e-6, atol=1e-8, err_msg=f"{name}{pos}")


@pytest.mark.parametrize("fused", [True, False])
def test_float32_is_within_rounding_of_float64(fused, rng):
    cfg = GPTConfig(**ODD)
    m64 = GPT(cfg, dtype=bigcore.float64, fused=fused)
    m32 = GPT(cfg, fused=fused)
    m32.load_state_dict(numpy_state_dict(m64))
    assert m32.lm_head.weight.dtype is bigcore.float32
    idx, targets = bigcore.tensor(random_ids(rng, cfg, 3, 13)), bigcore.tensor(random_ids(rng, cfg, 3, 13))
    (l64, loss64), (l32, loss32) = m64(idx, targets), m32(idx, targets)
    assert l32.dtype is bigcore.float32
    # the weights themselves were rounded to float32: compare with float32 eps (1.2e-7) times a few dozen ops
    np.testing.assert_allclose(l32.numpy(), l64.numpy(), rtol=0, atol=2e-5 * np.abs(l64.numpy()).max())
    np.testing.assert_allclose(loss32.item(), loss64.item(), rtol=2e-6)
    loss64.backward()
    loss32.backward()
    g32 = dict(m32.named_parameters())
    for name, p in m64.named_parameters():
        want = p.grad.numpy()
        np.testing.assert_allclose(g32[name].grad.numpy(), want, rtol=0, atol=1e-4 * np.abs(want).max(), err_msg=name)


# ----- optimizer, cropping, modes -----

def test_configure_optimizers_decays_matrices_only():
    cfg = GPTConfig(**ODD)
    model = GPT(cfg)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=3e-4, betas=(0.9, 0.95))
    assert isinstance(opt, bigcore.optim.AdamW)
    decay, no_decay = opt.param_groups
    named = dict(model.named_parameters())
    assert [id(p) for p in decay["params"]] == [id(p) for n, p in named.items() if len(nanogpt_shapes(cfg)[n]) == 2]
    assert [id(p) for p in no_decay["params"]] == [id(p) for n, p in named.items() if len(nanogpt_shapes(cfg)[n]) == 1]
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(g["lr"] == 3e-4 and tuple(g["betas"]) == (0.9, 0.95) for g in opt.param_groups)
    assert len(decay["params"]) == 2 + 4 * cfg.n_layer  # wte (= lm_head), wpe, four matrices a block


def test_crop_block_size(rng):
    cfg = GPTConfig(**ODD)
    model = GPT(cfg)
    wpe = model.transformer.wpe.weight.numpy()
    idx = bigcore.tensor(random_ids(rng, cfg, 2, 5))
    before = model(idx)[0].numpy()
    model.crop_block_size(5)
    assert model.config.block_size == 5
    assert model.state_dict()["transformer.wpe.weight"].shape == (5, cfg.n_embd)
    np.testing.assert_array_equal(model.transformer.wpe.weight.numpy(), wpe[:5])
    assert model.transformer.wpe.weight.requires_grad
    np.testing.assert_array_equal(model(idx)[0].numpy(), before)
    with pytest.raises(ValueError, match="Cannot forward sequence of length 6, block size is only 5"):
        model(bigcore.tensor(random_ids(rng, cfg, 1, 6)))
    with pytest.raises(ValueError, match=r"block_size must be in \[1, 5\], got 6"):
        model.crop_block_size(6)
    with pytest.raises(ValueError, match="got 0"):
        model.crop_block_size(0)


def test_dropout_is_on_in_train_and_off_in_eval(rng):
    cfg = GPTConfig(**ODD, dropout=0.3)
    model = GPT(cfg)
    assert model.training
    idx = bigcore.tensor(random_ids(rng, cfg, 2, 13))
    a, b = model(idx)[0].numpy(), model(idx)[0].numpy()
    assert not np.allclose(a, b)  # two draws of the dropout masks
    model.eval()
    assert all(not m.training for m in model.modules())
    c, d = model(idx)[0].numpy(), model(idx)[0].numpy()
    np.testing.assert_array_equal(c, d)
    # eval is the model without dropout: the same as a dropout=0 model with the same weights
    plain = GPT(GPTConfig(**ODD))
    plain.load_state_dict(numpy_state_dict(model))
    np.testing.assert_array_equal(c, plain(idx)[0].numpy())
    assert not np.allclose(a, c)
    model.train()
    assert model.training and all(m.training for m in model.modules())


def test_attention_dropout_alone_changes_the_output(rng, monkeypatch):
    # dropout on the attention weights only: the other two Dropout modules are turned off
    cfg = GPTConfig(**ODD, dropout=0.3)
    model = GPT(cfg)
    model.transformer.drop.p = 0.0
    for block in model.transformer.h:
        block.attn.resid_dropout.p = 0.0
        block.mlp.dropout.p = 0.0
    idx = bigcore.tensor(random_ids(rng, cfg, 2, 13))
    a, b = model(idx)[0].numpy(), model(idx)[0].numpy()
    assert not np.allclose(a, b)
    model.eval()
    np.testing.assert_array_equal(model(idx)[0].numpy(), model(idx)[0].numpy())


# ----- bad input -----

def test_bad_configs_raise_value_errors_naming_the_sizes():
    with pytest.raises(ValueError, match=r"n_embd \(15\) must be divisible by n_head \(4\)"):
        GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=4, n_embd=15))
    with pytest.raises(ValueError, match="block_size must be a positive integer, got 0"):
        GPT(GPTConfig(block_size=0, vocab_size=11, n_layer=1, n_head=3, n_embd=15))
    with pytest.raises(ValueError, match="n_head must be a positive integer, got 0"):
        GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=0, n_embd=15))
    with pytest.raises(ValueError, match="vocab_size must be a positive integer, got 0"):
        GPT(GPTConfig(block_size=8, vocab_size=0, n_layer=1, n_head=3, n_embd=15))
    with pytest.raises(ValueError, match="n_layer must be a non-negative integer, got -1"):
        GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=-1, n_head=3, n_embd=15))
    with pytest.raises(ValueError, match="dropout must be in"):
        GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=3, n_embd=15, dropout=1.0))
    # sizes given as numpy integers are sizes too
    assert GPT(GPTConfig(block_size=np.int64(8), vocab_size=11, n_layer=1, n_head=3, n_embd=15)).config.block_size == 8
    with pytest.raises(TypeError, match="float32 or bigcore.float64"):
        GPT(GPTConfig(**ODD), dtype=bigcore.int64)


@pytest.mark.parametrize("fused", [True, False])
def test_bad_inputs_raise_named_errors(fused, rng):
    cfg = GPTConfig(**ODD)
    model = GPT(cfg, fused=fused)
    ok = random_ids(rng, cfg, 2, 5)
    with pytest.raises(ValueError, match="Cannot forward sequence of length 18, block size is only 17"):
        model(bigcore.tensor(random_ids(rng, cfg, 1, 18)))
    for bad in (97, 1000, -1):
        ids = ok.copy()
        ids[1, 3] = bad
        with pytest.raises(IndexError, match=f"token id {bad} is out of range for vocab_size 97") as e:
            model(bigcore.tensor(ids))
        assert isinstance(e.value, bigcore.OutOfRangeError)
    with pytest.raises(bigcore.ShapeError, match=r"targets of shape \(2, 4\) do not match idx of shape \(2, 5\)"):
        model(bigcore.tensor(ok), bigcore.tensor(ok[:, :4]))
    with pytest.raises(bigcore.ShapeError, match=r"targets of shape \(10,\) do not match idx of shape \(2, 5\)"):
        model(bigcore.tensor(ok), bigcore.tensor(ok.reshape(-1)))
    with pytest.raises(bigcore.ShapeError, match=r"idx must be \(B, T\) token ids, got shape \(5,\)"):
        model(bigcore.tensor(ok[0]))
    with pytest.raises(bigcore.DTypeError, match="int64"):
        model(bigcore.tensor(ok.astype(np.float32)))
    with pytest.raises(bigcore.DTypeError, match="targets must hold int64"):
        model(bigcore.tensor(ok), bigcore.tensor(ok.astype(np.float64)))
    with pytest.raises(TypeError, match="bigcore.Tensor"):
        model(ok)
    # a target id out of range is the loss's error, naming the id and the classes
    t = ok.copy()
    t[0, 0] = 97
    with pytest.raises(IndexError, match="target 97 is out of bounds for 97 classes"):
        model(bigcore.tensor(ok), bigcore.tensor(t))
