"""Tokenizers: one interface (encode, decode, vocab_size, save/load, state dicts) for characters, bytes and
byte-level BPE; GPT-2's vocab.json + merges.txt read with GPT-2's rules; tokenizers saved in checkpoints."""

import json

import numpy as np
import pytest

import bigcore
from bigcore.models import GPT, GPTConfig
from bigcore.tokenizers import BPETokenizer, ByteTokenizer, CharTokenizer, from_state_dict, load

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20


def _bytes_to_unicode():
    """GPT-2's table (its encoder.py) from bytes to the printable characters its vocab.json spells them with:
    printable Latin-1 bytes stand for themselves, the rest are shifted to 256 + n."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def test_every_tokenizer_round_trips_through_encode_decode_and_save_load(tmp_path):
    text = "héllo wörld 🙂\n"
    toks = [CharTokenizer.from_text(TEXT + text), ByteTokenizer(), BPETokenizer.train(TEXT, vocab_size=300)]
    for i, tok in enumerate(toks):
        ids = tok.encode(text)
        assert type(ids) is list and all(type(t) is int and 0 <= t < tok.vocab_size for t in ids)
        assert tok.decode(ids) == text
        assert tok.decode(np.array(ids)) == text and tok.decode(bigcore.tensor(np.array(ids))) == text
        tok.save(tmp_path / f"tok{i}.json")
        for again in (load(tmp_path / f"tok{i}.json"), from_state_dict(json.loads(json.dumps(tok.state_dict())))):
            assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
            assert again.encode(TEXT) == tok.encode(TEXT)


def test_char_tokenizer_unknown_characters():
    tok = CharTokenizer.from_text("abc")
    assert tok.encode("cab") == [2, 0, 1]
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 2 is not in the vocabulary of 3"):
        tok.encode("abz")
    unk = CharTokenizer.from_text("abc", unk_token="?")
    # '?' is not in the text: it is added at the end, and the known characters keep their ids
    assert unk.vocab_size == 4 and unk.unk_token_id == 3
    assert unk.encode("azb€") == [0, 3, 1, 3] and unk.decode(unk.encode("azb")) == "a?b"
    assert CharTokenizer.from_text("ab?", unk_token="?").vocab_size == 3  # already in it: not added twice
    with pytest.raises(ValueError, match="single character"):
        CharTokenizer.from_text("abc", unk_token="<unk>")
    with pytest.raises(bigcore.OutOfRangeError, match="token id 3 is out of range for a vocabulary of 3"):
        tok.decode([0, 3])
    with pytest.raises(bigcore.OutOfRangeError):
        ByteTokenizer().decode([256])


def test_byte_tokenizer_is_utf8():
    tok = ByteTokenizer()
    assert tok.vocab_size == 256 and tok.encode("hé") == [104, 195, 169]
    assert tok.decode([104, 195]) == "h\ufffd"  # half a character decodes to the replacement character


def test_bpe_training_compresses_and_keeps_its_special_token():
    tok = BPETokenizer.train(TEXT, vocab_size=320)
    # 256 bytes + <|endoftext|> + merges, never more than asked for
    assert 257 < tok.vocab_size <= 320
    ids = tok.encode(TEXT)
    assert len(ids) < len(TEXT.encode("utf-8")) / 2  # the repeated text collapses into few tokens
    eos = tok.eos_token_id
    assert eos is not None and tok.encode("<|endoftext|>") == [eos]
    assert tok.decode(tok.encode("a<|endoftext|>b")) == "a<|endoftext|>b"
    with pytest.raises(ValueError, match="at least 257"):
        BPETokenizer.train(TEXT, vocab_size=100)


def test_gpt2_vocab_and_merges_follow_gpt2s_rules(tmp_path):
    # a tiny GPT-2-format vocabulary: the 256 byte symbols, four merges, <|endoftext|> last (as in GPT-2)
    b2u = _bytes_to_unicode()
    symbols = [b2u[b] for b in range(256)]
    merges = ["h e", "l l", "he ll", "Ġ w"]  # ranked: earlier merges apply first; Ġ is the space byte
    vocab = {s: i for i, s in enumerate(symbols + ["he", "ll", "hell", "Ġw", "<|endoftext|>"])}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    tok = load(tmp_path)
    assert isinstance(tok, BPETokenizer) and tok.vocab_size == 261 and tok.eos_token_id == 260
    # "hello world" splits (GPT-2's pattern) into "hello" and " world"; h+e, l+l, he+ll merge; " w" merges
    want = [vocab["hell"], vocab["o"], vocab["Ġw"], vocab["o"], vocab["r"], vocab["l"], vocab["d"]]
    assert tok.encode("hello world") == want and tok.decode(want) == "hello world"
    assert tok.encode("é") == [vocab[b2u[0xC3]], vocab[b2u[0xA9]]]  # bytes, spelled GPT-2's way
    # written as tokenizer.json, read back as one
    tok.save(tmp_path / "tokenizer.json")
    again = load(tmp_path / "tokenizer.json")
    assert again.encode("hello world<|endoftext|>") == want + [260]


def test_load_names_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such tokenizer file"):
        load(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match="no tokenizer.json, nor vocab.json and merges.txt"):
        load(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json.*not a tokenizer file"):
        load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="JSON but not a tokenizer"):
        load(tmp_path / "other.json")
    with pytest.raises(ValueError, match="kind 'word'"):
        from_state_dict({"kind": "word"})


def test_checkpoints_carry_their_tokenizer(tmp_path):
    tok = BPETokenizer.train(TEXT, vocab_size=300)
    model = GPT(GPTConfig(block_size=8, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=8))
    bigcore.io.save_checkpoint(tmp_path / "ck.safetensors", model, step=3, tokenizer=tok)
    info = bigcore.io.load_checkpoint(tmp_path / "ck.safetensors", model)
    assert info["step"] == 3 and isinstance(info["tokenizer"], BPETokenizer)
    assert info["tokenizer"].encode(TEXT) == tok.encode(TEXT)
    bigcore.io.save_checkpoint(tmp_path / "none.safetensors", model)
    assert "tokenizer" not in bigcore.io.load_checkpoint(tmp_path / "none.safetensors", model)
