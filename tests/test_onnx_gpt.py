"""The GPT exported with ``export_gpt``: input ``input_ids`` (batch, sequence) and output ``logits`` both dynamic,
the tied embedding stored once, logits equal to the fused engine forward's at other batch and sequence sizes; with
past keys and values (Optimum's names), the prompt and every new token through one graph, equal to the uncached
forward and to ``generate``; and onnxruntime's transformer optimizer fusing the exported pattern while the
optimized model still matches."""

import io

import numpy as np
import pytest

from onnx_check import onnx, ort

import bigcore
from bigcore.models import GPT, GPTConfig


def _model(bias=True, **kw):
    bigcore.manual_seed(7)
    cfg = GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=8, bias=bias, **kw)
    return GPT(cfg).eval()


def _ids(B, T, V=11):
    return np.random.default_rng(B * 100 + T).integers(0, V, (B, T))


def _logits(model, ids):
    with bigcore.no_grad():
        return model(bigcore.tensor(ids))[0].numpy()  # the fused engine forward (the model's default)


@pytest.mark.parametrize("bias", [True, False])
def test_gpt_export_matches_the_fused_forward_at_other_sizes(bias):
    model = _model(bias)
    buf = io.BytesIO()
    bigcore.onnx.export_gpt(model, buf)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert (inp.name, dims(inp), out.name, dims(out)) == ("input_ids", ["batch", "sequence"], "logits",
                                                          ["batch", "sequence", 11])
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    for B, T in [(3, 7), (1, 1), (2, 16)]:  # traced at (2, 5); 16 is the block size
        ids = _ids(B, T)
        got = session.run(["logits"], {"input_ids": ids})[0]
        np.testing.assert_allclose(got, _logits(model, ids), rtol=1e-4, atol=1e-5)


def test_gpt_tied_embedding_is_stored_once():
    model = _model()
    buf = io.BytesIO()
    bigcore.onnx.export_gpt(model, buf)
    inits = {i.name: tuple(i.dims) for i in onnx.load_from_string(buf.getvalue()).graph.initializer}
    assert inits["transformer.wte.weight"] == (11, 8) and "lm_head.weight" not in inits
    assert (8, 11) not in inits.values()  # no transposed copy of the table either
    assert inits["transformer.h.0.attn.c_attn.weight.T"] == (8, 24)  # untied weights are stored transposed


@pytest.mark.parametrize("bias", [True, False])
def test_gpt_with_past_serves_the_prompt_and_each_new_token(bias):
    # one graph: the prompt with a past of length 0, then one token at a time with the presents fed back;
    # logits equal the uncached forward at every position, and the greedy tokens equal model.generate's
    model = _model(bias)
    buf = io.BytesIO()
    bigcore.onnx.export_gpt(model, buf, with_past=True)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    names = [i.name for i in proto.graph.input]
    assert names == ["input_ids", "position_ids"] + [f"past_key_values.{i}.{kv}" for i in range(2) for kv in ("key", "value")]
    outs = [o.name for o in proto.graph.output]
    assert outs == ["logits"] + [f"present.{i}.{kv}" for i in range(2) for kv in ("key", "value")]
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    B, prompt, n = 3, 4, 10
    ids = _ids(B, prompt)
    feeds = {"input_ids": ids, "position_ids": np.tile(np.arange(prompt), (B, 1))}
    feeds.update({n_: np.zeros((B, 2, 0, 4), np.float32) for n_ in names[2:]})
    tokens = ids
    for step in range(n):
        res = session.run(None, feeds)
        np.testing.assert_allclose(res[0][:, -1], _logits(model, tokens)[:, -1], rtol=1e-4, atol=1e-5,
                                   err_msg=f"step {step}")
        nxt = res[0][:, -1].argmax(-1)[:, None]  # (B, 1)
        pos = tokens.shape[1]
        tokens = np.concatenate([tokens, nxt], 1)
        feeds = {"input_ids": nxt, "position_ids": np.full((B, 1), pos)}
        feeds.update({p.replace("present", "past_key_values"): v for p, v in zip(outs[1:], res[1:])})
        assert res[1].shape == (B, 2, pos, 4)
    want = model.generate(bigcore.tensor(ids), n, do_sample=False).numpy()
    np.testing.assert_array_equal(tokens, want)


def test_onnxruntime_transformer_optimizer_fuses_and_still_matches(tmp_path):
    # onnxruntime.transformers fuses Add + LayerNormalization into SkipLayerNormalization (two per block) and the
    # tanh GELU with the bias Add before it into FastGelu (one per block); its GPT-2 Attention fusion matches only
    # Hugging Face's graph (Gemm projections, a sliced mask buffer) and forms none with onnxruntime 1.32.
    # opt_level=0: its level 1 imports torch.
    pytest.importorskip("sympy")  # the optimizer's symbolic shape inference
    from onnxruntime.transformers.optimizer import optimize_model

    model = _model()
    path = tmp_path / "gpt.onnx"
    bigcore.onnx.export_gpt(model, path)
    opt = optimize_model(str(path), model_type="gpt2", num_heads=2, hidden_size=8, opt_level=0)
    stats = opt.get_fused_operator_statistics()
    assert (stats["SkipLayerNormalization"], stats["FastGelu"]) == (4, 2)
    opt.save_model_to_file(str(tmp_path / "opt.onnx"))
    session = ort.InferenceSession(str(tmp_path / "opt.onnx"), providers=["CPUExecutionProvider"])
    ids = _ids(3, 9)
    np.testing.assert_allclose(session.run(["logits"], {"input_ids": ids})[0], _logits(model, ids), rtol=1e-4, atol=1e-5)


def test_onnx_generate_example_runs_without_bigcore_and_matches_generate(tmp_path):
    # the example's greedy tokens equal model.generate's, past the block size (the past restarts on the crop),
    # and the script never imports bigcore
    import os
    import subprocess
    import sys

    chars = "\n !',.:;?abcdehilmnorstuwy"
    bigcore.manual_seed(3)
    model = GPT(GPTConfig(block_size=16, vocab_size=len(chars), n_layer=2, n_head=2, n_embd=8)).eval()
    bigcore.onnx.export_gpt(model, tmp_path / "gpt.onnx", with_past=True)
    (tmp_path / "chars.txt").write_text(chars, encoding="utf-8")
    prompt, n = "to be, or not", 25
    ids = bigcore.tensor([[chars.index(c) for c in prompt]])
    want = "".join(chars[i] for i in model.generate(ids, n, do_sample=False)[0].tolist())
    script = os.path.join(os.path.dirname(__file__), "..", "examples", "onnx_generate.py")
    code = ("import importlib.util as u, sys; spec = u.spec_from_file_location('g', sys.argv[1]); "
            "m = u.module_from_spec(spec); spec.loader.exec_module(m); rc = m.main(sys.argv[2:]); "
            "assert 'bigcore' not in sys.modules, 'the example imported bigcore'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, script, str(tmp_path / "gpt.onnx"), str(tmp_path / "chars.txt"),
                        "--prompt", prompt, "--max-new-tokens", str(n), "--greedy"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout[:-1] == want  # print() adds the newline


def test_readme_generation_loop_with_past_matches_generate(tmp_path, monkeypatch):
    # the loop in README.md's "Export to ONNX" section, run as written with its free names bound
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Export to ONNX"):]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[1]
    assert "past_key_values" in code and "range(100)" in code
    model = _model()
    cfg = model.config
    bigcore.onnx.export_gpt(model, tmp_path / "gpt-past.onnx", with_past=True)
    prompt = _ids(1, 5)
    steps = cfg.block_size - 5  # within the block: the README's loop does not crop
    new = []  # each token the loop picks, recorded before it moves on
    code = code.replace("range(100)", f"range({steps})")
    code = code.replace("    pos = pos", "    new.append(int(ids[0, 0]))\n    pos = pos")
    scope = dict(ort=ort, np=np, prompt=prompt, n_head=cfg.n_head, n_embd=cfg.n_embd, n_layer=cfg.n_layer, new=new)
    monkeypatch.chdir(tmp_path)  # the README opens "gpt-past.onnx"
    exec(compile(code, "README.md", "exec"), scope, scope)
    want = model.generate(bigcore.tensor(prompt), steps, do_sample=False).numpy()[0, 5:]
    assert new == want.tolist()
