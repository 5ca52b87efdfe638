"""Fuzzing the file readers (issue 13): ``bigcore.load``, ``bigcore.io.load_checkpoint`` and
``bigcore.tokenizers.load`` read truncated, bit-flipped, spliced and header-damaged copies of valid files, in this
process (a crash would end the run): each raises ValueError or OSError, or loads; nothing else. The one other
answer allowed is ``load_checkpoint``'s RuntimeError for a state dict whose keys or shapes do not fit the model
(PyTorch's ``load_state_dict`` error): a damaged name is indistinguishable from another model's checkpoint.
The Keras API has no model archive of its own (``ModelCheckpoint`` writes ``bigcore.save`` files, covered here).

CI runs a bounded number of examples (1,500, a few seconds); ``BIGCORE_FUZZ=long`` runs 20,000.
"""

import faulthandler
import json
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bigcore
import bigcore.nn as nn
from bigcore.tokenizers import BPETokenizer, ByteTokenizer, CharTokenizer

LONG = os.environ.get("BIGCORE_FUZZ") == "long"
# CI draws the same examples every run; the long profile draws new ones each time
FILES = settings(max_examples=20000 if LONG else 1500, deadline=None, derandomize=not LONG,
                 suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def no_hang():
    """A read that never returns aborts the run with every thread's traceback instead of hanging CI."""
    faulthandler.dump_traceback_later(600 if LONG else 120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# ---------------------------------------------------------------------------------------------------------
# file readers over mutated valid files
# ---------------------------------------------------------------------------------------------------------
def _valid_files(folder):
    """One valid file of each kind a reader takes, as ``{name: (bytes, reader)}``."""
    bigcore.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    opt = bigcore.optim.AdamW(model.parameters(), lr=0.01)
    model(bigcore.randn(2, 3)).sum().backward()
    opt.step()
    text = "hello world, hello bigcore " * 20
    files = {}
    bigcore.save(model.state_dict(), folder / "sd.safetensors")
    bigcore.save({"a": [bigcore.tensor(1.5), {"b": np.arange(3)}], 1: (True, None, "x")}, folder / "nested.bc")
    bigcore.io.save_checkpoint(folder / "ck.bc", model, opt, step=7, tokenizer=CharTokenizer.from_text(text), note="n")
    CharTokenizer.from_text(text, unk_token="?").save(folder / "char.json")
    ByteTokenizer().save(folder / "byte.json")
    BPETokenizer.train(text, vocab_size=270).save(folder / "bpe.json")

    def load_checkpoint(path):
        m = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
        return bigcore.io.load_checkpoint(path, m, bigcore.optim.AdamW(m.parameters(), lr=0.01))

    readers = {"sd.safetensors": bigcore.load, "nested.bc": bigcore.load, "ck.bc": load_checkpoint,
               "char.json": bigcore.tokenizers.load, "byte.json": bigcore.tokenizers.load,
               "bpe.json": bigcore.tokenizers.load}
    for name, reader in readers.items():
        files[name] = ((folder / name).read_bytes(), reader)
    return files


_FILES = {}


def _files(tmp_path_factory):
    if not _FILES:
        _FILES.update(_valid_files(tmp_path_factory.mktemp("valid")))
    return _FILES


def _mutate(data, raw):
    """Truncate, flip bits, overwrite bytes, or damage the JSON header of a valid file."""
    kind = data.draw(st.sampled_from(["truncate", "flip", "overwrite", "header", "json", "splice"]), label="damage")
    b = bytearray(raw)
    if kind == "truncate":
        return bytes(b[: data.draw(st.integers(0, max(len(b) - 1, 0)), label="keep")])
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            k = data.draw(st.integers(0, len(b) - 1), label="at")
            b[k] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        return bytes(b)
    if kind == "overwrite":
        k = data.draw(st.integers(0, len(b) - 1), label="at")
        chunk = data.draw(st.binary(min_size=1, max_size=16), label="bytes")
        b[k : k + len(chunk)] = chunk
        return bytes(b)
    if kind == "splice":  # a piece of the file repeated or dropped
        k = data.draw(st.integers(0, len(b)), label="from")
        m = data.draw(st.integers(k, min(len(b), k + 64)), label="to")
        return bytes(b[:k] + (b[k:m] * 2 if data.draw(st.booleans(), label="repeat") else b"") + b[m:])
    # the JSON: a safetensors header (after its 8-byte length) or a whole JSON file; edit one token
    is_st = raw[:1] != b"{"
    start = 8 if is_st else 0
    end = 8 + struct.unpack("<Q", raw[:8])[0] if is_st else len(raw)
    text = raw[start:end].decode("utf-8", errors="replace")
    edits = ['"', "{", "}", "[", "]", ",", ":", "0", "-1", "1e400", "null", "true", '"__tensor__"', '"x"', "99999999999999999999"]
    k = data.draw(st.integers(0, max(len(text) - 1, 0)), label="at")
    cut = data.draw(st.integers(0, 8), label="remove")
    new = text[:k] + data.draw(st.sampled_from(edits), label="insert") + text[k + cut :]
    if kind == "header" and is_st:  # keep the declared length consistent, so the JSON itself is what is wrong
        body = new.encode("utf-8")
        return struct.pack("<Q", len(body)) + body + raw[end:]
    return raw[:start] + new.encode("utf-8") + raw[end:]


@FILES
@given(st.data())
def test_mutated_files_raise_value_or_os_errors(tmp_path_factory, data):
    files = _files(tmp_path_factory)
    name = data.draw(st.sampled_from(sorted(files)), label="file")
    raw, reader = files[name]
    bad = _mutate(data, raw)
    path = tmp_path_factory.getbasetemp() / f"mutated-{name}"
    path.write_bytes(bad)
    try:
        reader(path)
    except (ValueError, OSError):
        pass
    except RuntimeError as e:  # see the module docstring: the model does not fit the (renamed) state dict
        assert name == "ck.bc" and "Error(s) in loading state_dict" in str(e), f"{name}: RuntimeError: {e}"
    except BaseException as e:  # noqa: BLE001 - anything else (a PanicException is a BaseException) is the bug
        raise AssertionError(f"{name} damaged ({len(raw)} -> {len(bad)} bytes) raised {type(e).__name__}: {e}") from None


@pytest.mark.parametrize("size", [0, 7, 8, 9, 10])
def test_tiny_and_absurd_headers(tmp_path, size):
    # the 8-byte header length says more than the file holds (2**64 - 1, a terabyte), or the file ends inside it
    path = tmp_path / "h.safetensors"
    for head in (struct.pack("<Q", 2**64 - 1), struct.pack("<Q", 10**12)):
        path.write_bytes((head + b"{}")[:size])
        with pytest.raises(ValueError, match="h.safetensors"):
            bigcore.load(path)
    path.write_bytes(struct.pack("<Q", 2) + b"{}")  # the smallest valid file: no tensors
    assert bigcore.load(path) == {}


def test_json_bombs_are_value_errors(tmp_path):
    deep = "[" * 100000 + "]" * 100000
    path = tmp_path / "deep.json"
    path.write_text(deep)
    with pytest.raises(ValueError, match="deep.json"):
        bigcore.tokenizers.load(path)
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(1, np.float32)}, str(tmp_path / "deep.bc"),
              metadata={"bigcore": json.dumps({"format": 1}).replace("}", ', "root": ' + deep + "}")})
    with pytest.raises(ValueError, match="deep.bc"):
        bigcore.load(tmp_path / "deep.bc")
