"""Data loading: TensorDataset, DataLoader batching and seeded shuffling, digits, text tokenizers and windows."""

import numpy as np
import pytest

import bigcore
from bigcore.data import ByteTokenizer, CharTokenizer, DataLoader, Dataset, TensorDataset, TextDataset, load_text


def test_tensor_dataset_and_loader_batches():
    x, y = np.arange(20.0).reshape(10, 2).astype(np.float32), np.arange(10)
    ds = TensorDataset(x, y)
    assert len(ds) == 10 and ds[3][1].item() == 3
    batches = list(DataLoader(ds, batch_size=4))
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    assert len(DataLoader(ds, batch_size=4)) == 3 and len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    assert [b[1].shape[0] for b in DataLoader(ds, batch_size=4, drop_last=True)] == [4, 4]
    with pytest.raises(bigcore.ShapeError):
        TensorDataset(x, y[:5])
    with pytest.raises(ValueError):
        DataLoader(ds, batch_size=0)


def test_shuffle_is_a_permutation_and_follows_the_seed():
    ds = TensorDataset(np.arange(50))
    bigcore.manual_seed(7)
    a = np.concatenate([b[0].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True)])
    b = np.concatenate([b[0].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True)])
    assert sorted(a) == list(range(50)) and not np.array_equal(a, np.arange(50)) and not np.array_equal(a, b)
    bigcore.manual_seed(7)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True)]), a)


def test_general_dataset_uses_collate():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {"x": np.array([i, i * i], np.float32), "y": i}

    (b0, b1) = list(DataLoader(Squares(), batch_size=3))
    assert b0["x"].shape == (3, 2) and b0["y"].tolist() == [0, 1, 2] and b1["y"].tolist() == [3, 4]


def test_digits_loader_reads_the_bundled_set():
    x, y = bigcore.data.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).min() >= 170  # about 180 of each digit


def test_tinyshakespeare_is_the_whole_bundled_corpus():
    import hashlib

    text = bigcore.data.load_tinyshakespeare()
    assert len(text) == 1_115_394 and text.startswith("First Citizen:\nBefore we proceed any further")
    # the MD5 of the source text it was gzipped from: the bundled copy is byte for byte the corpus
    assert hashlib.md5(text.encode("utf-8")).hexdigest() == "6fb458f1232090904fb40fe944165e91"
    tok = CharTokenizer.from_text(text)
    assert tok.vocab_size == 65 and tok.decode(tok.encode(text[:500])) == text[:500]


def test_text_tokenizers_and_windows(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("hello world\nhé", encoding="utf-8")
    ids, tok = load_text(path)
    assert isinstance(tok, CharTokenizer) and tok.decode(ids) == "hello world\nhé"
    assert tok.vocab_size == len(set("hello world\nhé"))
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("z")
    bids, btok = load_text(path, level="byte")
    assert isinstance(btok, ByteTokenizer) and btok.decode(bids) == "hello world\nhé" and bids.max() < 256
    ds = TextDataset(ids, 4)
    x, y = ds[2]
    np.testing.assert_array_equal(x[1:], y[:-1])
    assert len(ds) == len(ids) - 4
    xb, yb = next(iter(DataLoader(ds, batch_size=3)))
    assert xb.shape == (3, 4) and xb.dtype is bigcore.int64
    with pytest.raises(ValueError):
        TextDataset(ids[:3], 4)
