"""The examples run end to end on the bundled data and reach their stated results."""

import importlib.util
import pathlib
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_digits_mlp_reaches_95_percent(monkeypatch, capsys):
    mod = _load("digits_mlp")
    monkeypatch.setattr(sys, "argv", ["digits_mlp.py", "--epochs", "10"])
    acc = mod.main()
    assert acc >= 0.95
    assert "held-out accuracy" in capsys.readouterr().out


def test_digits_data_is_the_real_set():
    import bigcore.data

    x, y = bigcore.data.load_digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert set(y.tolist()) == set(range(10)) and 0.0 <= x.min() and x.max() <= 1.0


def test_shakespeare_char_smoke_run_learns_and_saves(tmp_path, capsys):
    # a short, small run of the recipe: the loss falls well below uniform guessing (ln 65 = 4.17), the last
    # line is the one machine-readable line, and the checkpoint restores into a GPT built from its config
    import re

    import bigcore
    from bigcore.models import GPT, GPTConfig

    mod = _load("shakespeare_char")
    ck = tmp_path / "ck.safetensors"
    val = mod.main(["--max-iters", "20", "--eval-interval", "10", "--eval-iters", "2", "--warmup-iters", "5",
                    "--n-layer", "2", "--n-embd", "64", "--batch-size", "8", "--sample-len", "20",
                    "--checkpoint", str(ck)])
    assert val < 3.6
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"val_loss=\d+\.\d{4} wall_s=\d+\.\d", lines[-1])
    assert float(lines[-1].split()[0].split("=")[1]) == round(val, 4)
    assert sum(line.startswith("val_loss=") for line in lines) == 1
    model = GPT(GPTConfig(**bigcore.io.load(ck)["extra"]["config"]))
    info = bigcore.io.load_checkpoint(ck, model)
    assert info["step"] == 20 and info["tokenizer"].vocab_size == 65 == model.config.vocab_size
    assert info["tokenizer"].decode(info["tokenizer"].encode("ROMEO:")) == "ROMEO:"


def test_finetune_speakers_smoke_run(capsys):
    # a short run of the whole pipeline (pretraining, both fine-tunings, the three accuracies); the full run's
    # numbers are in README.md. The held-out lines and the baseline are checked, not who wins at this size.
    import re

    mod = _load("finetune_speakers")
    res = mod.main(["--pretrain-iters", "10", "--epochs", "1", "--max-lines", "200", "--ft-batch-size", "50"])
    out = capsys.readouterr().out
    assert re.search(r"^speakers: GLOUCESTER, DUKE VINCENTIO, KING RICHARD II, LEONTES, CORIOLANUS, ROMEO, "
                     r"MENENIUS, PETRUCHIO$", out, re.M)
    assert all(0.0 <= res[k] <= 1.0 for k in ("pretrained", "scratch", "majority"))
    assert re.fullmatch(r"pretrained_acc=\d\.\d{4} scratch_acc=\d\.\d{4} majority_acc=\d\.\d{4} wall_s=\d+\.\d",
                        out.strip().splitlines()[-1])


def test_speaker_split_holds_out_whole_speeches_and_hides_them_from_pretraining():
    import numpy as np

    import bigcore

    mod = _load("finetune_speakers")
    text = bigcore.data.load_tinyshakespeare()
    names, train, test, pretrain_text = mod.split_task(text, 8, 0.15, np.random.default_rng(0))
    assert len(names) == 8 and len(train) + len(test) == 5592  # every line of the 8 speakers, once
    assert 0.1 < len(test) / (len(train) + len(test)) < 0.2
    # a held-out line that occurs once in the whole corpus occurs nowhere in the pretraining text
    unique = [line for line, _ in test if len(line) > 20 and text.count(line) == 1]
    assert len(unique) > 400
    assert not [line for line in unique if line in pretrain_text]
    assert all(line in pretrain_text for line, _ in train[:200] if text.count(line) == 1)


def test_readme_gpt_in_python_runs_as_written(capsys):
    # the README's "A GPT in Python" block, with 3 training steps and 5 new tokens instead of 2000 and 200
    import re

    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A GPT in Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    short = code.replace("range(2000)", "range(3)").replace(", 200", ", 5")
    assert short.count("range(3)") == 1 and short.count(", 5") == 2  # the substitutions found their targets
    exec(compile(short, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("ROMEO:") and len(out) == len("ROMEO:") + 5 + 1 + 5  # generate's line, then the stream


def test_fusion_digits_fused_beats_each_modality_alone(capsys):
    # the full default run (about 15 s): concatenation and the gate beat both views alone by about two points or
    # more over three splits; cross-attention (whose margin over the better view is about one point, within what
    # a different SIMD path's rounding can move) is held to beating the weaker view
    import re

    mod = _load("fusion_digits")
    r = mod.main([])
    best_alone = max(r["profiles"], r["spectrum"])
    assert r["concat"] > best_alone and r["gated"] > best_alone
    assert r["attention"] > min(r["profiles"], r["spectrum"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"profiles=\S+ spectrum=\S+ concat=\S+ gated=\S+ attention=\S+ wall_s=\S+", last)


def test_attention_from_scratch_agrees_with_the_module(capsys):
    mod = _load("attention_from_scratch")
    for seed in (0, 1):
        d = mod.compare(seed=seed)
        assert max(d["unmasked"], d["causal"], d["padding"]) < 1e-5
        assert d["naive_view"] > 1e-2  # the bare view really is wrong, not a different rounding
    mod.main([])
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("unmasked=")


def test_readme_specification_models_run_as_written(tmp_path, monkeypatch):
    # every block of the README's "The specification's models", in order in one namespace, with fewer epochs and
    # steps; the shapes its comments promise are checked on the names it leaves behind
    import re

    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The specification's models"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 5
    code = "\n".join(blocks)
    subs = {"epochs=10": "epochs=1", "epochs=5": "epochs=1", "(lambda: real, 200)": "(lambda: real, 3)",
            "(lambda: real, 100, log_every=20)": "(lambda: real, 4, log_every=2)"}
    for a, b in subs.items():
        assert code.count(a) == 1, a
        code = code.replace(a, b)
    monkeypatch.chdir(tmp_path)  # dnn.keras is written there
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["logits"].shape == (8, 13, 40) and scope["pred"].shape[0] == 8 and scope["pred"].shape[1] <= 20
    assert scope["out"].shape == (2, 10, 64) and scope["weights"].shape == (2, 10, 10) and scope["z"].shape == (32, 64)
    assert scope["ids"].shape == (4, 50) and scope["p_real"].shape == (4, 1)
    assert set(scope["history"]) >= {"d_loss", "g_loss", "d_acc"}
