"""save/load and checkpoints: round trips, standard safetensors for state dicts, atomic writes, clear errors on
bad files, and resumed training that is bit-identical to uninterrupted training."""

import os

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F
from bigcore.data import DataLoader, TensorDataset
from bigcore.optim import AdamW, lr_scheduler


def test_state_dict_round_trip_is_a_standard_safetensors_file(tmp_path):
    m = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    path = tmp_path / "model.safetensors"
    bigcore.save(m.state_dict(), path)
    from safetensors.numpy import load_file

    raw = load_file(str(path))
    assert set(raw) == {"0.weight", "0.bias", "1.weight", "1.bias"} and raw["0.weight"].dtype == np.float32
    back = bigcore.load(path)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(back[k].numpy(), v.numpy())
    m2 = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    m2.load_state_dict(back)
    np.testing.assert_array_equal(m2[0].weight.numpy(), m[0].weight.numpy())


def test_nested_structures_keep_types(tmp_path):
    obj = {"a": bigcore.tensor([1, 2]), "b": {0: (1.5, "x", None, True), "c": [bigcore.ones(2, dtype=bigcore.float64)]},
           "n": np.arange(3.0)}
    bigcore.save(obj, tmp_path / "x.bc")
    back = bigcore.load(tmp_path / "x.bc")
    assert back["a"].dtype is bigcore.int64 and back["a"].tolist() == [1, 2]
    assert back["b"][0] == (1.5, "x", None, True)
    assert back["b"]["c"][0].dtype is bigcore.float64
    assert isinstance(back["n"], np.ndarray)
    with pytest.raises(TypeError, match="cannot store"):
        bigcore.save({"f": object()}, tmp_path / "bad.bc")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "text", "empty"])
def test_corrupt_files_are_value_errors_naming_the_file(tmp_path, damage):
    path = tmp_path / "ck.safetensors"
    bigcore.save({"w": bigcore.ones(100)}, path)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": data[:8] + b"\xff" * 40 + data[48:],
                      "text": b"hello, not a checkpoint", "empty": b""}[damage])
    with pytest.raises(ValueError, match="ck.safetensors"):
        bigcore.load(path)


def test_missing_file_and_failed_save_keep_the_old_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        bigcore.load(tmp_path / "nope.safetensors")
    path = tmp_path / "keep.safetensors"
    bigcore.save({"w": bigcore.ones(3)}, path)
    with pytest.raises(TypeError):
        bigcore.save({"w": bigcore.ones(3), "bad": {"x": object()}}, path)
    assert bigcore.load(path)["w"].tolist() == [1, 1, 1]
    assert os.listdir(tmp_path) == ["keep.safetensors"]  # no temporary file left behind


def _setup():
    bigcore.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    opt = AdamW(model.parameters(), lr=0.01)
    sched = lr_scheduler.CosineAnnealingLR(opt, 20)
    rng = np.random.default_rng(0)
    ds = TensorDataset(rng.standard_normal((40, 8)).astype(np.float32), rng.integers(0, 3, 40))
    return model, opt, sched, DataLoader(ds, batch_size=8, shuffle=True)


def test_resumed_training_is_bit_identical(tmp_path):
    # uninterrupted: 12 steps (crossing an epoch boundary: 5 batches an epoch)
    model, opt, sched, loader = _setup()
    it = iter(_steps(model, opt, sched, loader))
    for _ in range(12):
        next(it)
    want = {k: v.numpy() for k, v in model.state_dict().items()}

    # interrupted after 5 steps (an epoch boundary), saved, restored into fresh objects, 7 more steps
    model, opt, sched, loader = _setup()
    it = iter(_steps(model, opt, sched, loader))
    for _ in range(5):
        next(it)
    bigcore.io.save_checkpoint(tmp_path / "ck", model, opt, sched, step=5, epoch=1)
    bigcore.manual_seed(123)  # disturb the generator: the checkpoint must restore it
    model2, opt2, sched2, loader2 = _setup()
    info = bigcore.io.load_checkpoint(tmp_path / "ck", model2, opt2, sched2)
    assert info == {"step": 5, "epoch": 1}
    it = iter(_steps(model2, opt2, sched2, loader2))
    for _ in range(7):
        next(it)
    for k, v in model2.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), want[k])


def _steps(model, opt, sched, loader):
    while True:
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
            yield


def test_checkpoint_errors(tmp_path):
    m = nn.Linear(2, 2)
    bigcore.save(m.state_dict(), tmp_path / "sd")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        bigcore.io.load_checkpoint(tmp_path / "sd", m)
    bigcore.io.save_checkpoint(tmp_path / "ck", m)
    with pytest.raises(ValueError, match="no optimizer state"):
        bigcore.io.load_checkpoint(tmp_path / "ck", m, AdamW(m.parameters()))
