"""Data loading: ``Dataset``, ``TensorDataset``, ``DataLoader`` (shuffled by the seeded generator), the bundled
handwritten digits and tinyshakespeare text, and text files as character or byte tokens for language models.
The tokenizers live in ``bigcore.tokenizers``; ``CharTokenizer`` and ``ByteTokenizer`` are importable from here
too, where they used to live."""

import gzip
import math
import os
import pathlib

import numpy as np

from . import _core
from ._creation import tensor
from ._tensor import Tensor, _wrap
from .errors import ShapeError
from .tokenizers import ByteTokenizer, CharTokenizer  # noqa: F401 - their home is bigcore.tokenizers

_DATA = pathlib.Path(__file__).resolve().parent / "_datasets"


class Dataset:
    """An indexable collection of samples: implement ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError


class TensorDataset(Dataset):
    """Samples are rows of equally long tensors (or arrays): ``TensorDataset(x, y)[i] == (x[i], y[i])``."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else tensor(t) for t in tensors)
        n = len(self.tensors[0])
        if any(len(t) != n for t in self.tensors):
            raise ShapeError(f"size mismatch between tensors: {[t.shape for t in self.tensors]}")

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return len(self.tensors[0])


def default_collate(batch):
    """Stack a list of samples: tensors and arrays along a new first dim, numbers into a tensor, tuples and dicts
    field by field."""
    first = batch[0]
    if isinstance(first, Tensor):
        from ._functions import stack

        return stack(batch)
    if isinstance(first, (np.ndarray, int, float, np.generic)):
        return tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(default_collate(list(f)) for f in zip(*batch)) if isinstance(first, tuple) else [default_collate(list(f)) for f in zip(*batch)]
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}")


class DataLoader:
    """Iterate over a dataset in batches.

    Args:
        dataset: a ``Dataset`` (a ``TensorDataset`` is batched with one gather per tensor).
        batch_size: samples per batch.
        shuffle: a new order every epoch from bigcore's seeded generator (``bigcore.manual_seed``).
        drop_last: drop the last incomplete batch.
        collate_fn: how to merge samples of a general dataset (default :func:`default_collate`).
        sampler: an iterable of dataset indices giving the order (e.g. a :class:`DistributedSampler`); not
            with ``shuffle``.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None, sampler=None):
        # PyTorch: an int (numpy ints too), never a float silently truncated nor a bool
        if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.collate_fn = collate_fn or default_collate
        self.sampler = sampler

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
        else:
            order = _wrap(_core.randperm(len(self.dataset))).numpy() if self.shuffle else np.arange(len(self.dataset))
        n = len(order)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            if isinstance(self.dataset, TensorDataset):
                yield tuple(t[idx] for t in self.dataset.tensors)
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in idx])


class DistributedSampler:
    """The indices of this rank's share of ``dataset``, PyTorch's ``DistributedSampler``: each epoch a
    permutation seeded by ``seed + epoch`` (the same on every rank), padded by repeating its start until it
    divides evenly (or cut, with ``drop_last``), then every ``num_replicas``-th index from ``rank`` on. Call
    ``set_epoch(epoch)`` before each epoch for a new order.

    Args:
        dataset: anything with ``len``.
        num_replicas, rank: default ``bigcore.distributed``'s world size and rank.
        shuffle: permute each epoch (default True); False keeps dataset order.
        seed: the shuffle's seed, the same on every rank.
        drop_last: drop the tail that does not divide evenly instead of padding.

    Example::

        sampler = DistributedSampler(dataset)
        loader = DataLoader(dataset, batch_size=32, sampler=sampler)
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            for x, y in loader: ...
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        from . import distributed

        if num_replicas is None:
            num_replicas = distributed.get_world_size()
        if rank is None:
            rank = distributed.get_rank()
        if int(num_replicas) < 1:
            raise ValueError(f"num_replicas must be at least 1, got {num_replicas}")
        if not 0 <= int(rank) < int(num_replicas):
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {int(num_replicas) - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last, self.epoch = bool(shuffle), int(seed), bool(drop_last), 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self):
        from ._random import Generator, randperm

        n = len(self.dataset)
        if self.shuffle:
            indices = randperm(n, generator=Generator().manual_seed(self.seed + self.epoch)).tolist()
        else:
            indices = list(range(n))
        if self.drop_last:
            indices = indices[:self.total_size]
        elif indices:
            pad = self.total_size - len(indices)
            indices += (indices * math.ceil(pad / len(indices)))[:pad]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Use the order of ``epoch`` (every rank must pass the same)."""
        self.epoch = int(epoch)


def load_digits(path=None):
    """The 1,797 handwritten digits shipped with bigcore: ``(x, y)`` with x float32 ``(1797, 64)`` (8x8 pixels
    scaled from 0..16 to 0..1) and y int64 ``(1797,)`` labels 0..9, as numpy arrays. ``path`` reads another CSV
    of the same layout (64 pixel columns, then the label; gzip if it ends in .gz)."""
    path = pathlib.Path(path) if path is not None else _DATA / "digits.csv.gz"
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    if table.shape[1] != 65:
        raise ValueError(f"{os.fspath(path)!r}: expected 65 columns (64 pixels and a label), got {table.shape[1]}")
    return (table[:, :64] / 16.0).astype(np.float32), table[:, 64].astype(np.int64)


def load_tinyshakespeare():
    """The tinyshakespeare corpus shipped with bigcore (Karpathy's char-rnn set: about 40,000 lines of
    Shakespeare's plays, 1,115,394 characters, 65 distinct), as one string.

    Returns:
        str: the whole text.

    Example::

        text = bigcore.data.load_tinyshakespeare()
        tok = bigcore.data.CharTokenizer.from_text(text)  # tok.vocab_size == 65
    """
    with gzip.open(_DATA / "tinyshakespeare.txt.gz", "rt", encoding="utf-8", newline="") as f:
        return f.read()


def load_text(path, level="char"):
    """A text file as ``(ids, tokenizer)``: int64 ids (numpy) and the ``CharTokenizer`` (vocabulary: the file's
    characters) or ``ByteTokenizer`` (``bigcore.tokenizers``)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if level == "char":
        tok = CharTokenizer.from_text(text)
    elif level == "byte":
        tok = ByteTokenizer()
    else:
        raise ValueError(f"level must be 'char' or 'byte', got {level!r}")
    return np.asarray(tok.encode(text), dtype=np.int64), tok


class TextDataset(Dataset):
    """Next-token prediction windows over a token sequence: sample ``i`` is ``(ids[i:i+block_size],
    ids[i+1:i+block_size+1])``."""

    def __init__(self, ids, block_size):
        self.ids = np.asarray(ids.numpy() if isinstance(ids, Tensor) else ids, dtype=np.int64)
        self.block_size = int(block_size)
        if self.block_size <= 0 or len(self.ids) <= self.block_size:
            raise ValueError(f"need more than block_size={block_size} tokens, got {len(self.ids)}")

    def __len__(self):
        return len(self.ids) - self.block_size

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} windows")
        i %= len(self)
        return self.ids[i : i + self.block_size], self.ids[i + 1 : i + 1 + self.block_size]
