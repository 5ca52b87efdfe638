"""Tokenizers: text to token ids and back, with one interface for characters, UTF-8 bytes and byte-level BPE.

Every tokenizer has ``encode(str) -> list[int]``, ``decode(ids) -> str``, ``vocab_size``, ``save(path)`` and
``state_dict()``; :func:`load` reads any saved tokenizer back (and a Hugging Face ``tokenizer.json``, or GPT-2's
``vocab.json`` + ``merges.txt``), :func:`from_state_dict` rebuilds one from the plain dict a checkpoint stores.

BPE is the ``tokenizers`` library's (Hugging Face): trained on the user's text with GPT-2's byte-level
pre-tokenization, or read from GPT-2's files, so ids match GPT-2's own. bigcore does not implement BPE itself.
"""

import json
import numbers
import os

import numpy as np

from . import _atomic
from ._tensor import Tensor
from .errors import DTypeError, OutOfRangeError

_FORMAT_KEY = "bigcore_tokenizer"  # marks a JSON file written by Tokenizer.save (BPE writes tokenizer.json)


def _as_text(text, who):
    if not isinstance(text, str):
        raise TypeError(f"{who}.encode expects a str, got {type(text).__name__}")
    return text


def _as_ids(ids):
    """A list of Python ints from a 1-d list, numpy array or bigcore tensor of ids.

    Raises:
        TypeError (``bigcore.DTypeError``): an id that is not an integer (a float, a bool, a nested list), or
            ids that are not a sequence.
    """
    if isinstance(ids, (Tensor, np.ndarray)):
        ids = ids.tolist()
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise DTypeError(f"decode expects a sequence of integer token ids, got {type(ids).__name__}")
    out = []
    for i in ids:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, numbers.Integral):
            raise DTypeError(f"token ids must be integers, got {type(i).__name__} ({i!r})")
        out.append(int(i))
    return out


class Tokenizer:
    """The interface every bigcore tokenizer has. Subclasses implement ``encode``, ``decode``, ``vocab_size``
    and ``state_dict``.

    Example::

        tok = bigcore.tokenizers.CharTokenizer.from_text("hello")
        tok.decode(tok.encode("hello"))  # 'hello'
    """

    kind = None  # the name in state dicts: "char", "byte" or "bpe"

    @property
    def vocab_size(self):
        raise NotImplementedError

    def encode(self, text):
        raise NotImplementedError

    def decode(self, ids):
        raise NotImplementedError

    def state_dict(self):
        """Everything needed to rebuild the tokenizer, as plain JSON values (``{"kind": ..., ...}``)."""
        raise NotImplementedError

    def save(self, path):
        """Write the tokenizer to ``path`` as JSON, readable with :func:`load`.

        Args:
            path: the file to write (replaced atomically).

        Example::

            tok.save("tok.json")
            tok = bigcore.tokenizers.load("tok.json")
        """
        _write_atomically(path, json.dumps({_FORMAT_KEY: 1, **self.state_dict()}, ensure_ascii=False))

    def __repr__(self):
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class CharTokenizer(Tokenizer):
    """Characters to ids: each character of the vocabulary is one token, its position the id.

    Args:
        chars: the vocabulary, a sequence of distinct single characters.
        unk_token: a character that unseen characters encode to, added at the end of the vocabulary when it is
            not in it; None (the default) makes an unseen character a ValueError.

    Example::

        tok = CharTokenizer.from_text("hello world", unk_token="?")
        tok.decode(tok.encode("hello, world"))  # 'hello? world'
    """

    kind = "char"

    def __init__(self, chars, unk_token=None):
        self.chars = list(chars)
        if any(not isinstance(c, str) or len(c) != 1 for c in self.chars):
            raise ValueError("CharTokenizer: the vocabulary must be single characters")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("CharTokenizer: the vocabulary has a character twice")
        if unk_token is not None:
            if not isinstance(unk_token, str) or len(unk_token) != 1:
                raise ValueError(f"CharTokenizer: unk_token must be a single character, got {unk_token!r}")
            if unk_token not in self.chars:
                self.chars.append(unk_token)
        self.unk_token = unk_token
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text, unk_token=None):
        """The sorted set of characters in ``text`` as the vocabulary.

        Example::

            CharTokenizer.from_text(bigcore.data.load_tinyshakespeare()).vocab_size  # 65
        """
        return cls(sorted(set(text)), unk_token=unk_token)

    @property
    def vocab_size(self):
        return len(self.chars)

    @property
    def unk_token_id(self):
        return None if self.unk_token is None else self.index[self.unk_token]

    def encode(self, text):
        """The id of every character of ``text``.

        Raises:
            ValueError: a character outside the vocabulary, without ``unk_token``.
        """
        text = _as_text(text, "CharTokenizer")
        index = self.index
        unk = self.unk_token_id
        if unk is not None:
            return [index.get(c, unk) for c in text]
        try:
            return [index[c] for c in text]
        except KeyError as e:
            c = e.args[0]
            raise ValueError(f"character {c!r} (U+{ord(c):04X}) at position {text.index(c)} is not in the vocabulary "
                             f"of {self.vocab_size} characters (build the tokenizer with unk_token= to map unseen "
                             f"characters to one id)") from None

    def decode(self, ids):
        """The characters of ``ids`` (a list, numpy array or tensor) joined.

        Raises:
            IndexError (``bigcore.OutOfRangeError``): an id outside ``[0, vocab_size)``.
        """
        ids = _as_ids(ids)
        bad = [i for i in ids if not 0 <= i < len(self.chars)]
        if bad:
            raise OutOfRangeError(f"token id {bad[0]} is out of range for a vocabulary of {self.vocab_size} characters")
        return "".join(self.chars[i] for i in ids)

    def state_dict(self):
        return {"kind": "char", "chars": "".join(self.chars), "unk_token": self.unk_token}


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as ids 0..255: every text encodes, and bytes that are not valid UTF-8 decode to U+FFFD.

    Example::

        tok = ByteTokenizer()
        tok.encode("hé")  # [104, 195, 169]
    """

    kind = "byte"

    @property
    def vocab_size(self):
        return 256

    def encode(self, text):
        """The UTF-8 bytes of ``text``; a lone surrogate (not encodable) is a ValueError."""
        return list(_as_text(text, "ByteTokenizer").encode("utf-8"))

    def decode(self, ids):
        """Raises IndexError (``bigcore.OutOfRangeError``) for an id outside 0..255."""
        ids = _as_ids(ids)
        bad = [i for i in ids if not 0 <= i < 256]
        if bad:
            raise OutOfRangeError(f"token id {bad[0]} is out of range for the 256 byte tokens")
        return bytes(ids).decode("utf-8", errors="replace")

    def state_dict(self):
        return {"kind": "byte"}


class BPETokenizer(Tokenizer):
    """Byte-level BPE (GPT-2's scheme) from the ``tokenizers`` library: every text encodes, no unknown tokens.

    Build one with :meth:`train` (on your text), :meth:`from_file` (a ``tokenizer.json``) or
    :meth:`from_vocab_merges` (GPT-2's ``vocab.json`` and ``merges.txt``); ``save`` writes a ``tokenizer.json``
    that the ``tokenizers`` library and ``transformers.PreTrainedTokenizerFast`` read.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` whose model is BPE.

    Example::

        tok = BPETokenizer.train(text, vocab_size=512)
        tok.decode(tok.encode("ROMEO: hello")) == "ROMEO: hello"  # True
    """

    kind = "bpe"
    EOS = "<|endoftext|>"  # GPT-2's one special token: end of text

    def __init__(self, tokenizer):
        model_type = json.loads(tokenizer.to_str())["model"].get("type")
        if model_type != "BPE":
            raise ValueError(f"BPETokenizer: the tokenizer's model is {model_type}, not BPE")
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, text, vocab_size, min_frequency=2, special_tokens=(EOS,)):
        """Learn merges on ``text`` until the vocabulary has ``vocab_size`` tokens (256 bytes, the special tokens
        and the merges), GPT-2's way: split on its pattern, work on bytes.

        Args:
            text: a string, or an iterable of strings (e.g. lines of a file).
            vocab_size: the size to reach; at least 256 plus the special tokens. Fewer when the text runs out of
                pairs seen ``min_frequency`` times.
            min_frequency: how often a pair must occur to be merged.
            special_tokens: tokens never split; they take the first ids (0, 1, ...), the bytes follow.

        Returns:
            BPETokenizer.

        Example::

            tok = BPETokenizer.train(bigcore.data.load_tinyshakespeare(), vocab_size=1024)
            len(tok.encode("First Citizen:"))  # fewer ids than characters
        """
        from tokenizers import Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, trainers

        special_tokens = list(special_tokens)
        if not isinstance(vocab_size, int) or vocab_size < 256 + len(special_tokens):
            raise ValueError(f"BPETokenizer.train: vocab_size must be at least {256 + len(special_tokens)} (the 256 "
                             f"bytes and {len(special_tokens)} special tokens), got {vocab_size}")
        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                      special_tokens=special_tokens,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator([text] if isinstance(text, str) else text, trainer=trainer)
        return cls(tok)

    @classmethod
    def from_file(cls, path):
        """Read a Hugging Face ``tokenizer.json`` (GPT-2's, or one written by :meth:`save`).

        Raises:
            FileNotFoundError: no such file.
            ValueError: not a tokenizer file, or its model is not BPE (the message names the file).
        """
        from tokenizers import Tokenizer as HFTokenizer

        path = os.fspath(path)
        _must_exist(path)
        try:
            tok = HFTokenizer.from_file(path)
        except Exception as e:  # the library raises a bare Exception for a malformed file
            raise ValueError(f"{path!r} is not a tokenizer.json the tokenizers library can read: {e}") from None
        try:
            return cls(tok)
        except ValueError as e:
            raise ValueError(f"{path!r}: {e}") from None

    @classmethod
    def from_vocab_merges(cls, vocab_path, merges_path):
        """GPT-2's tokenizer from its two files: ``vocab.json`` (token to id) and ``merges.txt`` (ranked merges).
        ``<|endoftext|>`` is a special token when the vocabulary has it.

        Example::

            tok = BPETokenizer.from_vocab_merges("gpt2/vocab.json", "gpt2/merges.txt")
            tok.encode("Hello world")  # [15496, 995] with GPT-2's files
        """
        from tokenizers import AddedToken, Tokenizer as HFTokenizer, decoders, models, pre_tokenizers

        vocab_path, merges_path = os.fspath(vocab_path), os.fspath(merges_path)
        _must_exist(vocab_path)
        _must_exist(merges_path)
        try:
            with open(vocab_path, encoding="utf-8") as f:
                vocab = json.load(f)
            if not isinstance(vocab, dict):
                raise ValueError("expected a JSON object of token to id")
            model = models.BPE.from_file(vocab_path, merges_path)
        except Exception as e:
            raise ValueError(f"{vocab_path!r} and {merges_path!r} are not a GPT-2 vocab.json and merges.txt: {e}") from None
        tok = HFTokenizer(model)
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        if cls.EOS in vocab:
            tok.add_special_tokens([AddedToken(cls.EOS, special=True)])
        return cls(tok)

    @property
    def vocab_size(self):
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    @property
    def eos_token_id(self):
        """The id of ``<|endoftext|>``, or None when the vocabulary has no such token."""
        return self.tokenizer.token_to_id(self.EOS)

    def encode(self, text):
        return self.tokenizer.encode(_as_text(text, "BPETokenizer"), add_special_tokens=False).ids

    def decode(self, ids):
        """Raises IndexError (``bigcore.OutOfRangeError``) for an id outside ``[0, vocab_size)``."""
        ids = _as_ids(ids)
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise OutOfRangeError(f"token id {bad[0]} is out of range for a BPE vocabulary of {self.vocab_size}")
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def state_dict(self):
        return {"kind": "bpe", "tokenizer_json": self.tokenizer.to_str()}

    def save(self, path):
        """Write a Hugging Face ``tokenizer.json`` (readable by :func:`load`, ``tokenizers.Tokenizer.from_file``
        and ``transformers.PreTrainedTokenizerFast(tokenizer_file=path)``)."""
        _write_atomically(path, self.tokenizer.to_str(pretty=True))


def from_state_dict(state):
    """Rebuild a tokenizer from :meth:`Tokenizer.state_dict`'s dict (as checkpoints store it).

    Example::

        tok2 = bigcore.tokenizers.from_state_dict(tok.state_dict())

    Raises:
        ValueError: not a tokenizer state, or a damaged one (a checkpoint's bytes changed).
    """
    from tokenizers import Tokenizer as HFTokenizer

    kind = state.get("kind") if isinstance(state, dict) else None
    if kind == "char":
        chars, unk = state.get("chars"), state.get("unk_token")
        if not isinstance(chars, str) or not (unk is None or isinstance(unk, str)):
            raise ValueError("a damaged char tokenizer state: 'chars' must be a string, 'unk_token' a string or None")
        return CharTokenizer(chars, unk_token=unk)
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        text = state.get("tokenizer_json")
        if not isinstance(text, str):
            raise ValueError("a damaged BPE tokenizer state: 'tokenizer_json' must be a string")
        try:
            tok = HFTokenizer.from_str(text)
        except Exception as e:  # the library raises a bare Exception for malformed JSON
            raise ValueError(f"a damaged BPE tokenizer state: {e}") from None
        return BPETokenizer(tok)
    raise ValueError(f"not a bigcore tokenizer state (kind {kind!r}; expected 'char', 'byte' or 'bpe')")


def load(path):
    """Read a tokenizer: a file written by :meth:`Tokenizer.save`, a Hugging Face ``tokenizer.json``, or a
    directory holding ``tokenizer.json`` or GPT-2's ``vocab.json`` and ``merges.txt``.

    Args:
        path: a file or a directory.

    Returns:
        CharTokenizer, ByteTokenizer or BPETokenizer.

    Raises:
        FileNotFoundError: no such file, or a directory without tokenizer files (the message says which).
        ValueError: a file that is not a tokenizer (the message names it).

    Example::

        tok = bigcore.tokenizers.load("gpt2/")      # GPT-2's tokenizer from a local Hugging Face directory
        tok.decode(tok.encode("Hello world"))        # 'Hello world'
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "tokenizer.json")):
            return load(os.path.join(path, "tokenizer.json"))
        vocab, merges = os.path.join(path, "vocab.json"), os.path.join(path, "merges.txt")
        if os.path.isfile(vocab) and os.path.isfile(merges):
            return BPETokenizer.from_vocab_merges(vocab, merges)
        raise FileNotFoundError(f"{path!r} has no tokenizer.json, nor vocab.json and merges.txt")
    _must_exist(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path!r} is not a tokenizer file (not JSON: {e})") from None
    if isinstance(data, dict) and _FORMAT_KEY in data:
        try:
            return from_state_dict(data)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path!r} is a damaged bigcore tokenizer file: {e}") from None
    if isinstance(data, dict) and "model" in data:
        return BPETokenizer.from_file(path)
    raise ValueError(f"{path!r} is JSON but not a tokenizer (neither bigcore's format nor a tokenizer.json)")


def _must_exist(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such tokenizer file: {path!r}")


def _write_atomically(path, text):
    data = text.encode("utf-8")
    _atomic.write_atomically(path, lambda fd: _atomic.write_all(fd, data))


__all__ = ["Tokenizer", "CharTokenizer", "ByteTokenizer", "BPETokenizer", "from_state_dict", "load"]
