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
