"""Files keep what they are given (issue 13, items 5 and 6): 0-d tensors stay 0-d, tensors at paths that read
the same are all kept, saves are atomic under threads and SIGKILL with one temporary-name scheme whose leftovers
the next save removes, a failed save or load is the OSError naming the file; Keras's validation_split refuses
too few samples before training; token ids out of range are IndexErrors."""

import json
import os
import re
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
from bigcore import keras
from bigcore.tokenizers import BPETokenizer, ByteTokenizer, CharTokenizer

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
TEMP = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.\d+\.\d+\.bigcore-tmp$")  # bigcore._atomic's scheme


def _temps(folder):
    return sorted(e for e in os.listdir(folder) if TEMP.match(e))


# ----- item 5: 0-d tensors -----


def test_zero_dim_tensors_round_trip_as_zero_dim(tmp_path):
    scalar = bigcore.tensor(3.5)
    bigcore.save({"s": scalar, "v": bigcore.ones(2)}, tmp_path / "flat.safetensors")  # flat: a state dict
    back = bigcore.load(tmp_path / "flat.safetensors")
    assert back["s"].shape == () and back["s"].item() == 3.5 and back["v"].shape == (2,)
    obj = {"t": bigcore.tensor(7), "n": np.array(2.5), "nested": [bigcore.tensor(True)], "step": 3}
    bigcore.save(obj, tmp_path / "nested.bc")
    back = bigcore.load(tmp_path / "nested.bc")
    assert back["t"].shape == () and back["t"].dtype is bigcore.int64 and back["t"].item() == 7
    assert isinstance(back["n"], np.ndarray) and back["n"].shape == () and back["n"] == 2.5
    assert back["nested"][0].shape == () and back["nested"][0].item() is True


def test_a_module_with_a_scalar_buffer_loads_its_own_checkpoint(tmp_path):
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.register_buffer("scale", bigcore.tensor(0.5))

    m = Scaled()
    bigcore.save(m.state_dict(), tmp_path / "m.safetensors")
    m2 = Scaled()
    m2.load_state_dict(bigcore.load(tmp_path / "m.safetensors"))
    assert m2.scale.shape == () and m2.scale.item() == 0.5
    bigcore.io.save_checkpoint(tmp_path / "ck", m, step=1)
    assert bigcore.io.load_checkpoint(tmp_path / "ck", Scaled())["step"] == 1


def test_big_endian_arrays_keep_their_values(tmp_path):
    a = np.arange(4, dtype=">f8")
    bigcore.save({"a": a, "meta": 1}, tmp_path / "be.bc")
    back = bigcore.load(tmp_path / "be.bc")["a"]
    assert back.dtype == np.float64 and back.tolist() == [0.0, 1.0, 2.0, 3.0]


# ----- item 5: names that read the same -----


@pytest.mark.parametrize("make", [lambda a, b: {"w/0": a, "w": [b]}, lambda a, b: {1: a, "1": b},
                                  lambda a, b: {"x": {"y": a}, "x/y": b, "n": 1}])
def test_tensors_at_paths_that_read_the_same_are_all_kept(tmp_path, make):
    a, b = bigcore.tensor([1.0, 2.0]), bigcore.tensor([3.0, 4.0, 5.0])
    obj = make(a, b)
    bigcore.save(obj, tmp_path / "c.bc")
    back = bigcore.load(tmp_path / "c.bc")

    def same(x, y):
        if isinstance(x, bigcore.Tensor):
            return isinstance(y, bigcore.Tensor) and x.shape == y.shape and x.tolist() == y.tolist()
        if isinstance(x, dict):
            return isinstance(y, dict) and list(x) == list(y) and all(same(x[k], y[k]) for k in x)
        if isinstance(x, (list, tuple)):
            return type(x) is type(y) and len(x) == len(y) and all(map(same, x, y))
        return x == y and type(x) is type(y)

    assert same(obj, back)


def test_files_written_before_unique_names_still_load(tmp_path):
    # the layout of format 1 before names were made unique: tensors named by their path, the structure in JSON
    from safetensors.numpy import save_file

    root = {"__dict__": [["model", {"__dict__": [["w", {"__tensor__": "model/w", "numpy": False}]]}], ["step", 4]]}
    save_file({"model/w": np.arange(3, dtype=np.float32)}, str(tmp_path / "old.bc"),
              metadata={"bigcore": json.dumps({"format": 1, "root": root})})
    back = bigcore.load(tmp_path / "old.bc")
    assert back["step"] == 4 and back["model"]["w"].tolist() == [0.0, 1.0, 2.0]


# ----- item 5: temporary files -----


def test_stale_temporary_files_of_ours_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "ck.safetensors"
    stale = tmp_path / ".ck.safetensors.999999.1.0.bigcore-tmp"  # a writer killed mid-save (no one holds it)
    stale.write_bytes(b"half a file")
    keep = [".other.safetensors.999999.1.0.bigcore-tmp",  # another target's
            "ck.safetensors.tmp-123", ".ck.safetensors.x.1.0.bigcore-tmp", "notes.txt"]  # not our naming
    for name in keep:
        (tmp_path / name).write_bytes(b"not ours to remove")
    bigcore.save({"w": bigcore.ones(2)}, path)
    assert sorted(os.listdir(tmp_path)) == sorted(keep + ["ck.safetensors"])
    # tokenizers share the scheme
    (tmp_path / ".tok.json.999999.1.0.bigcore-tmp").write_text("{")
    ByteTokenizer().save(tmp_path / "tok.json")
    assert ".tok.json.999999.1.0.bigcore-tmp" not in os.listdir(tmp_path)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="flock is POSIX")
def test_a_temporary_file_in_use_is_not_removed(tmp_path):
    import fcntl

    path = tmp_path / "ck.safetensors"
    busy = tmp_path / ".ck.safetensors.999999.1.0.bigcore-tmp"  # another writer, still writing: it holds the lock
    with open(busy, "wb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        bigcore.save({"w": bigcore.ones(2)}, path)
        assert busy.exists()
    bigcore.save({"w": bigcore.ones(2)}, path)  # released: now it is stale
    assert not busy.exists()


def test_six_threads_saving_to_one_path_all_succeed(tmp_path):
    path = tmp_path / "shared.safetensors"
    start = threading.Barrier(6)
    errors = []

    def work(i):
        start.wait()
        try:
            for _ in range(5):
                bigcore.save({"who": bigcore.full((1000,), float(i)), "step": i}, path)
        except BaseException as e:  # noqa: BLE001 - the test reports whatever a thread raised
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    back = bigcore.load(path)  # the last writer's file, whole
    assert back["who"].tolist() == [float(back["step"])] * 1000
    assert os.listdir(tmp_path) == ["shared.safetensors"]


_SAVER = """
import sys
import bigcore
path = sys.argv[1]
for step in range(1, 10**6):
    w = bigcore.full((1 << 23,), float(step))  # 32 MiB: a save takes long enough to be killed in the middle
    print("saving", step, flush=True)
    bigcore.save({"step": step, "w": w, "b": bigcore.full((3,), float(step))}, path)
    print("saved", step, flush=True)
"""


def test_sigkill_during_saves_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ck.bc"
    script = tmp_path / "saver.py"
    script.write_text(_SAVER)
    for run in range(6):
        child = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        try:
            last = 0
            while True:  # let it finish one or two saves, then kill it during the next one
                word, step = child.stdout.readline().split()
                if word == "saved":
                    last = int(step)
                    # the dead writers' temporary files are gone once this child has saved (it cleaned them)
                    assert [e for e in _temps(tmp_path) if int(TEMP.match(e)["pid"]) != child.pid] == []
                elif int(step) > 1 + run % 2:
                    break
            # kill it at some point of that save (where the kill lands varies; nothing below depends on it)
            threading.Event().wait(0.02 * run)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        back = bigcore.load(path)  # a whole checkpoint: the last one reported saved, or a later one
        assert back["step"] >= last
        assert np.all(back["w"].numpy() == back["step"]) and back["b"].tolist() == [float(back["step"])] * 3
    bigcore.save({"step": 0}, path)  # the next save removes whatever the killed ones left
    assert sorted(os.listdir(tmp_path)) == ["ck.bc", "saver.py"]


# ----- item 6: failed saves and loads say which file and why -----


def test_save_to_a_missing_directory_is_an_oserror_naming_the_target(tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "ck.safetensors"
    for save in (lambda: bigcore.save({"w": bigcore.ones(2)}, target),
                 lambda: bigcore.save({"w": bigcore.ones(2), "step": 1}, target),
                 lambda: ByteTokenizer().save(target)):
        with pytest.raises(FileNotFoundError) as info:
            save()
        assert info.value.filename == str(target) and str(target) in str(info.value)
        assert "bigcore-tmp" not in str(info.value)
    folder = tmp_path / "a-directory"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as info:  # the target exists and is a directory
        bigcore.save({"w": bigcore.ones(2)}, folder)
    assert info.value.filename == str(folder) and os.listdir(tmp_path) == ["a-directory"]


@pytest.mark.skipif(ROOT, reason="root may write anywhere")
def test_save_to_a_read_only_directory_is_a_permission_error_naming_the_target(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as info:
            bigcore.save({"w": bigcore.ones(2)}, folder / "ck.safetensors")
        assert info.value.filename == str(folder / "ck.safetensors")
    finally:
        folder.chmod(0o755)


def test_load_of_a_directory_says_so(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        bigcore.load(tmp_path)
    assert info.value.filename == str(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        bigcore.load(tmp_path / "missing.bc")
    assert info.value.filename == str(tmp_path / "missing.bc")


@pytest.mark.skipif(ROOT, reason="root may read anything")
def test_load_of_an_unreadable_file_says_permission_denied(tmp_path):
    path = tmp_path / "secret.bc"
    bigcore.save({"w": bigcore.ones(2)}, path)
    path.chmod(0)
    try:
        with pytest.raises(PermissionError) as info:
            bigcore.load(path)
        assert info.value.filename == str(path)
    finally:
        path.chmod(0o644)


# ----- item 6: Keras's validation_split -----


def test_five_samples_with_a_tenth_held_out_train_on_four_and_validate_on_one():
    # issue 13's case: it trained an epoch, then divided by zero validating on no samples. Keras 3 trains on
    # floor(5 * 0.9) = 4 samples and validates on 1.
    model = keras.Sequential([keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    h = model.fit(np.ones((5, 3), np.float32), np.ones((5, 2), np.float32), validation_split=0.1, epochs=2,
                  batch_size=1, verbose=0)
    assert len(h.history["val_loss"]) == 2 and h.params["steps"] == 4


@pytest.mark.parametrize("n,split", [(1, 0.5), (3, 0.99), (2, 1e-17)])
def test_validation_split_without_enough_samples_is_refused_before_training(n, split, capsys):
    # Keras 3: floor(n * (1 - split)) samples train; 0 or n of them is a ValueError, raised before any epoch
    model = keras.Sequential([keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((n, 3), np.float32), np.ones((n, 2), np.float32)
    with pytest.raises(ValueError, match=f"contains {n} samples"):
        model.fit(x, y, validation_split=split, verbose=1)
    assert "Epoch" not in capsys.readouterr().out


def test_validation_split_follows_keras_split_point():
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.zeros((10, 1), np.float32)
    seen = []

    class Spy(keras.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(batch)

    model.fit(x, y, validation_split=0.25, batch_size=1, shuffle=False, verbose=0, callbacks=[Spy()])
    assert len(seen) == 7  # floor(10 * 0.75) train, 3 validate


def test_empty_validation_data_is_refused_before_training():
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), verbose=0,
                  validation_data=(np.ones((0, 2), np.float32), np.ones((0, 1), np.float32)))


# ----- tokenizers: ids out of range or not ids -----


def _tokenizers():
    text = "abc hello world " * 30
    return [CharTokenizer.from_text("abc"), ByteTokenizer(), BPETokenizer.train(text, vocab_size=270)]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_decode_of_ids_out_of_range_is_an_index_error(which):
    tok = _tokenizers()[which]
    for bad in ([-1], [0, -1], [tok.vocab_size], [2**70], np.array([-1]), bigcore.tensor([-1])):
        with pytest.raises(bigcore.OutOfRangeError, match="out of range"):
            tok.decode(bad)
    for bad in ([1.5], [True], [[0]], np.array([0.0]), 5, "ab"):
        with pytest.raises(TypeError):
            tok.decode(bad)
    assert tok.decode([]) == ""
    assert tok.encode("") == []
    for bad in (None, b"abc", ["a", "b"]):
        with pytest.raises(TypeError):
            tok.encode(bad)


@pytest.mark.parametrize("bad", [0, -1, 2.5, 2.0, True, None, "4"])
def test_data_loader_batch_size_must_be_a_positive_int(bad):
    ds = bigcore.data.TensorDataset(np.zeros((6, 2), np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        bigcore.data.DataLoader(ds, batch_size=bad)
    assert len(bigcore.data.DataLoader(ds, batch_size=np.int64(4))) == 2


def test_a_checkpoint_missing_a_section_is_a_value_error_naming_it(tmp_path):
    # found by tests/test_fuzz_files.py: a damaged key name made load_checkpoint raise KeyError: 'optimizer'
    m = nn.Linear(2, 2)
    opt = bigcore.optim.AdamW(m.parameters())
    bigcore.save({"model": m.state_dict(), "rng": bigcore.get_rng_state(), "step": 1, "extra": {}}, tmp_path / "ck")
    with pytest.raises(ValueError, match="ck.*no optimizer state"):
        bigcore.io.load_checkpoint(tmp_path / "ck", m, opt)
    bigcore.save({"model": m.state_dict(), "rng": [1, 2], "step": 1, "extra": {}}, tmp_path / "ck")
    with pytest.raises(ValueError, match="damaged training checkpoint.*'rng'"):
        bigcore.io.load_checkpoint(tmp_path / "ck", m)
