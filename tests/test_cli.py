"""The ``bigcore`` command, run as a user runs it (a subprocess of ``python -m bigcore``): every subcommand
end to end at tiny sizes, resuming bit-identically, Ctrl-C, and bad input (one line on stderr, exit status 2,
no traceback, nothing overwritten)."""

import json
import math
import signal
import subprocess
import sys

import numpy as np
import pytest

import bigcore
from bigcore.cli import subcommands

# a model small enough that a step takes milliseconds; one thread, so runs repeat bit for bit
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
        "--eval-iters", "1", "--warmup-iters", "1", "--threads", "1"]


def bigcore_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "bigcore", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def ok(p):
    assert p.returncode == 0, p.stderr
    return p


def one_line_error(p, command, match):
    """The shape of every user mistake: status 2, one line on stderr naming the command, no traceback."""
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith(f"bigcore {command}: error: "), lines[0]
    assert match in lines[0], (match, lines[0])


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A directory with a small text file and a language-model checkpoint trained on it (``lm/``)."""
    d = tmp_path_factory.mktemp("cli")
    (d / "text.txt").write_text(bigcore.data.load_tinyshakespeare()[:20000], encoding="utf-8")
    p = ok(bigcore_cli("train", "text.txt", *TINY, "--max-iters", 6, "--eval-interval", 3, "--out", "lm", cwd=d))
    assert "step 3: train loss" in p.stdout and "step 6: train loss" in p.stdout
    return d


def checkpoint(path):
    return bigcore.io.load(path / "ckpt.safetensors")


def test_every_subcommand_has_help(work):
    names = set(subcommands())
    assert {"train", "finetune", "eval", "export", "sample"} <= names
    top = ok(bigcore_cli("--help", cwd=work)).stdout
    for name in names:
        assert name in top
        assert f"usage: bigcore {name}" in ok(bigcore_cli(name, "--help", cwd=work)).stdout


def test_console_script_is_declared():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "bigcore"]
    assert script.value == "bigcore.cli:main"


def test_train_writes_a_complete_checkpoint(work):
    ck = checkpoint(work / "lm")
    extra = ck["extra"]
    assert ck["step"] == 6 and extra["kind"] == "gpt" and extra["config"]["n_layer"] == 1
    assert extra["train"]["max_iters"] == 6 and extra["train"]["text_file"] == str(work / "text.txt")
    assert ck["optimizer"]["state"] and ck["scheduler"]["last_epoch"] == 6 and len(ck["rng"]) == 4
    assert extra["data_rng"]["bit_generator"] == "PCG64" and math.isfinite(extra["val_loss"])
    tok = bigcore.tokenizers.from_state_dict(ck["tokenizer"])
    assert tok.vocab_size == extra["config"]["vocab_size"] and tok.decode(tok.encode("ROMEO:")) == "ROMEO:"


def test_eval_is_the_mean_next_token_loss_over_windows(work):
    p = ok(bigcore_cli("eval", "--ckpt", "lm", "text.txt", "--max-tokens", 100, "--batch-size", 3, cwd=work))
    fields = dict(f.split("=") for f in p.stdout.split())
    # the same number computed here: 100 tokens are 99 predictions, in windows of 16 (the last one shorter)
    model, tok, _ = bigcore.cli._checkpoint.load_model(work / "lm")
    ids = np.array(tok.encode((work / "text.txt").read_text(encoding="utf-8")))[:100]
    losses = []
    for i in range(0, 99, 16):
        x = ids[i:min(i + 16, 99)]
        logits = model(bigcore.tensor(x[None]))[0].numpy()[0].astype(np.float64)  # (T, V)
        logp = logits - logits.max(-1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        losses += list(-logp[np.arange(len(x)), ids[i + 1:i + 1 + len(x)]])
    assert int(fields["tokens"]) == 99
    assert float(fields["loss"]) == pytest.approx(np.mean(losses), abs=1e-4)
    assert float(fields["perplexity"]) == pytest.approx(math.exp(float(fields["loss"])), rel=1e-3)


def test_export_writes_an_onnx_model_of_the_checkpoint(work):
    ort = pytest.importorskip("onnxruntime")
    p = ok(bigcore_cli("export", "--ckpt", "lm", "--out", "lm.onnx", cwd=work))
    assert "wrote lm.onnx" in p.stdout
    model, _, _ = bigcore.cli._checkpoint.load_model(work / "lm")
    ids = np.array([[1, 5, 9, 2, 7]])
    got = ort.InferenceSession(str(work / "lm.onnx"), providers=["CPUExecutionProvider"]).run(
        ["logits"], {"input_ids": ids})[0]
    np.testing.assert_allclose(got, model(bigcore.tensor(ids))[0].numpy(), rtol=1e-4, atol=1e-5)


def test_export_with_past_writes_the_cached_model(work):
    onnx = pytest.importorskip("onnx")
    p = ok(bigcore_cli("export", "--ckpt", "lm", "--out", "past.onnx", "--with-past", cwd=work))
    assert "with its key/value cache" in p.stdout
    names = [i.name for i in onnx.load(str(work / "past.onnx")).graph.input]
    assert names[:2] == ["input_ids", "position_ids"] and "past_key_values.0.key" in names


def test_sample_greedy_is_the_models_own_continuation(work):
    p = ok(bigcore_cli("sample", "--ckpt", "lm", "--prompt", "ROMEO:", "--max-new-tokens", 30, "--greedy", cwd=work))
    model, tok, _ = bigcore.cli._checkpoint.load_model(work / "lm")
    want = model.generate(bigcore.tensor([tok.encode("ROMEO:")]), 30, do_sample=False)[0].tolist()
    assert p.stdout == tok.decode(want) + "\n"


def test_sample_is_reproducible_with_a_seed_and_batches_samples(work):
    args = ("sample", "--ckpt", "lm", "--prompt", "MENENIUS", "--max-new-tokens", 25, "--temperature", 1.5,
            "--top-k", 20, "--top-p", 0.95, "--threads", 1)
    a = ok(bigcore_cli(*args, "--seed", 7, cwd=work)).stdout
    assert a == ok(bigcore_cli(*args, "--seed", 7, cwd=work)).stdout
    assert a != ok(bigcore_cli(*args, "--seed", 8, cwd=work)).stdout
    model, tok, _ = bigcore.cli._checkpoint.load_model(work / "lm")
    want = model.generate(bigcore.tensor([tok.encode("MENENIUS")]), 25, temperature=1.5, top_k=20, top_p=0.95,
                          generator=bigcore.Generator().manual_seed(7))
    assert a == tok.decode(want[0].tolist()) + "\n"
    three = ok(bigcore_cli(*args, "--seed", 7, "--num-samples", 3, cwd=work)).stdout
    samples = three.split("\n---------------\n")
    assert len(samples) == 4 and samples[3] == ""
    assert all(s.startswith("MENENIUS") and len(tok.encode(s)) == 33 for s in samples[:3])
    assert len(set(samples[:3])) > 1  # three draws, not one repeated
    assert samples[0] + "\n" == a  # the first of them is the single sample of the same seed


def test_sample_prints_multibyte_characters_whole_while_streaming():
    import io

    from bigcore.cli.sample import _Printer
    from bigcore.tokenizers import ByteTokenizer

    tok, out = ByteTokenizer(), io.StringIO()
    printer = _Printer(tok, out)
    text = "café ☃ ok"
    seen = []
    for b in text.encode("utf-8"):
        printer.add([b])
        seen.append(out.getvalue())
    printer.add([], final=True)
    assert out.getvalue() == text and not any("\ufffd" in s for s in seen)
    printer.add([0xE2], final=True)  # a sequence cut short stays visible at the end, as decode shows it
    assert out.getvalue() == text + "\ufffd"


def test_resume_continues_bit_identically(tmp_path):
    (tmp_path / "t.txt").write_text(bigcore.data.load_tinyshakespeare()[:5000], encoding="utf-8")
    # dropout on: the resumed run must also restore the generator that draws the masks
    run = ["train", "t.txt", *TINY, "--dropout", "0.1", "--eval-interval", 2]
    ok(bigcore_cli(*run, "--max-iters", 8, "--out", "straight", cwd=tmp_path))
    ok(bigcore_cli(*run, "--max-iters", 4, "--lr-decay-iters", 8, "--out", "halves", cwd=tmp_path))
    assert checkpoint(tmp_path / "halves")["step"] == 4
    ok(bigcore_cli("train", "--resume", "--max-iters", 8, "--out", "halves", "--threads", 1, cwd=tmp_path))
    a, b = checkpoint(tmp_path / "straight"), checkpoint(tmp_path / "halves")
    assert a["step"] == b["step"] == 8 and a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert np.array_equal(a["model"][k].numpy(), b["model"][k].numpy()), k
    for i, st in a["optimizer"]["state"].items():
        for k, v in st.items():
            other = b["optimizer"]["state"][i][k]
            assert np.array_equal(np.asarray(v), np.asarray(other)), (i, k)
    assert a["rng"] == b["rng"] and a["extra"]["data_rng"] == b["extra"]["data_rng"]
    # changing a setting of the run on --resume is refused; continuing past the end is a no-op
    one_line_error(bigcore_cli("train", "--resume", "--out", "halves", "--lr", "0.1", cwd=tmp_path), "train",
                   "--lr is 0.001 there, not 0.1")
    assert "nothing to do" in ok(bigcore_cli("train", "--resume", "--out", "halves", cwd=tmp_path)).stderr


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    (tmp_path / "t.txt").write_text(bigcore.data.load_tinyshakespeare()[:5000], encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "bigcore", "train", "t.txt", *TINY, "--max-iters", "100000",
                             "--eval-interval", "2", "--out", "run"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # the first evaluation line is printed from inside the training loop: Ctrl-C is handled from there on
        for line in proc.stdout:
            if line.startswith("step 2:"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted at step" in err and "--resume" in err
    step = checkpoint(tmp_path / "run")["step"]
    assert 2 <= step < 100000
    ok(bigcore_cli("train", "--resume", "--out", "run", "--max-iters", step + 2, cwd=tmp_path))
    assert checkpoint(tmp_path / "run")["step"] == step + 2


def test_byte_bpe_and_saved_tokenizers(tmp_path):
    (tmp_path / "t.txt").write_text(bigcore.data.load_tinyshakespeare()[:8000], encoding="utf-8")
    base = ["train", "t.txt", *TINY, "--max-iters", 2, "--eval-interval", 2]
    ok(bigcore_cli(*base, "--tokenizer", "bpe", "--vocab-size", 300, "--out", "bpe", cwd=tmp_path))
    ck = checkpoint(tmp_path / "bpe")
    tok = bigcore.tokenizers.from_state_dict(ck["tokenizer"])
    assert isinstance(tok, bigcore.tokenizers.BPETokenizer) and tok.vocab_size <= 300
    assert ck["extra"]["config"]["vocab_size"] == tok.vocab_size
    tok.save(tmp_path / "tokenizer.json")
    ok(bigcore_cli(*base, "--tokenizer-file", "tokenizer.json", "--out", "saved", cwd=tmp_path))
    assert checkpoint(tmp_path / "saved")["tokenizer"] == ck["tokenizer"]
    ok(bigcore_cli(*base, "--tokenizer", "byte", "--out", "byte", cwd=tmp_path))
    assert checkpoint(tmp_path / "byte")["extra"]["config"]["vocab_size"] == 256


def _speaker_lines(n):
    """``n`` (line, speaker) pairs of ROMEO and JULIET from the bundled text."""
    out = []
    for block in bigcore.data.load_tinyshakespeare().split("\n\n"):
        head, *lines = block.split("\n")
        if head in ("ROMEO:", "JULIET:"):
            out += [(line, head[:-1]) for line in lines if line.strip()]
    return out[:n]


def test_finetune_from_a_checkpoint_from_scratch_and_from_hugging_face(work):
    import csv

    pairs = _speaker_lines(120)
    with open(work / "lines.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *pairs])
    p = ok(bigcore_cli("finetune", "lines.csv", "--ckpt", "lm", "--epochs", 2, "--batch-size", 16, "--freeze", 1,
                       "--threads", 1, "--out", "clf", cwd=work))
    assert p.stdout.count("held-out accuracy") == 2 and "(majority class" in p.stdout
    ck = checkpoint(work / "clf")
    assert ck["extra"]["kind"] == "classifier" and ck["extra"]["labels"] == ["JULIET", "ROMEO"]
    assert ck["extra"]["pad_token_id"] == bigcore.tokenizers.from_state_dict(ck["tokenizer"]).encode("\n")[0]
    lm = checkpoint(work / "lm")["model"]
    for k in ("transformer.wte.weight", "transformer.h.0.attn.c_attn.weight"):  # frozen: --freeze 1 of 1 block
        assert np.array_equal(ck["model"][k].numpy(), lm[k].numpy()), k
    # JSON Lines, from random weights (the byte tokenizer)
    (work / "lines.jsonl").write_text("\n".join(json.dumps({"sentence": t, "who": s}) for t, s in pairs), "utf-8")
    ok(bigcore_cli("finetune", "lines.jsonl", "--text-column", "sentence", "--label-column", "who", "--preset",
                   "baby", "--tokenizer", "byte", "--epochs", 1, "--threads", 1, "--out", "scratch", cwd=work))
    assert checkpoint(work / "scratch")["extra"]["config"]["vocab_size"] == 256
    # a Hugging Face GPT-2 directory with its tokenizer.json
    tok = bigcore.tokenizers.BPETokenizer.train((work / "text.txt").read_text(encoding="utf-8"), vocab_size=300)
    gpt = bigcore.models.GPT(bigcore.models.GPTConfig(block_size=32, vocab_size=tok.vocab_size, n_layer=1, n_head=2,
                                                      n_embd=16))
    gpt.save_pretrained(work / "hf")
    tok.save(work / "hf" / "tokenizer.json")
    ok(bigcore_cli("finetune", "lines.csv", "--from-pretrained", "hf", "--epochs", 1, "--threads", 1, "--out",
                   "from-hf", cwd=work))
    assert checkpoint(work / "from-hf")["extra"]["pad_token_id"] == tok.encode("\n")[0]


@pytest.mark.parametrize("args, match", [
    (["missing.txt"], "no such file: missing.txt"),
    (["adir"], "adir is a directory"),
    (["latin1.txt"], "latin1.txt is not UTF-8 text"),
    (["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    (["--max-iters", "0"], "argument --max-iters: expected a positive integer, got '0'"),
    (["--lr", "-1"], "argument --lr: expected a positive number, got '-1'"),
    (["--lr", "nan"], "argument --lr: expected a positive number, got 'nan'"),
    (["--batch-size", "abc"], "argument --batch-size: expected a positive integer, got 'abc'"),
    (["--dropout", "1.5"], "argument --dropout: expected a number in [0, 1), got '1.5'"),
    (["--n-embd", "10", "--n-head", "4"], "--n-embd 10 must be a multiple of --n-head 4"),
    (["--tokenizer", "char", "--vocab-size", "300"], "--vocab-size is the size of a BPE vocabulary"),
    (["--warmup-iters", "50", "--max-iters", "10"], "--warmup-iters 50 must be less than --lr-decay-iters 10"),
    (["short.txt", "--block-size", "64"], "must be longer than --block-size 64"),
    (["--tokenizer-file", "nope.json"], "--tokenizer-file: no such tokenizer file"),
    (["--resume", "--out", "empty"], "--resume: no checkpoint in empty"),
    (["--out", "lm"], "lm already holds a checkpoint; continue it with --resume"),
    (["--out", "text.txt"], "--out text.txt is a file"),
    (["--resume", "--out", "clf"], "holds a classifier (bigcore finetune); this command needs a language model"),
    (["--resume", "--out", "foreign"], "is not a checkpoint written by bigcore train or bigcore finetune"),
    (["--resume", "--out", "corrupt"], "is not a readable bigcore checkpoint"),
])
def test_train_refuses_bad_input_in_one_line(errors_dir, args, match):
    before = {p: p.read_bytes() for p in errors_dir.rglob("*") if p.is_file()}
    one_line_error(bigcore_cli("train", *args, cwd=errors_dir), "train", match)
    assert {p: p.read_bytes() for p in errors_dir.rglob("*") if p.is_file()} == before  # nothing written


@pytest.fixture(scope="module")
def errors_dir(work):
    """``work`` plus the bad inputs: a directory, a Latin-1 file, a short file, a foreign and a corrupt
    checkpoint, a classifier checkpoint (``clf``, trained here if the finetune test has not)."""
    (work / "adir").mkdir(exist_ok=True)
    (work / "empty").mkdir(exist_ok=True)
    (work / "latin1.txt").write_bytes("café".encode("latin-1"))
    (work / "short.txt").write_text("too short for a block of 64 characters\n" * 2)
    (work / "foreign").mkdir(exist_ok=True)
    bigcore.save({"w": bigcore.zeros(2)}, work / "foreign" / "ckpt.safetensors")  # a plain state dict
    (work / "corrupt").mkdir(exist_ok=True)
    data = (work / "lm" / "ckpt.safetensors").read_bytes()
    (work / "corrupt" / "ckpt.safetensors").write_bytes(data[: len(data) // 3])
    (work / "bad.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "b", "label"\n')
    (work / "one.csv").write_text("text,label\nhello,a\nworld,a\nagain,a\n")
    (work / "cols.csv").write_text("sentence,who,when\nhello,a,1\n")
    (work / "notes.txt").write_text("ünïcödé ☃\n" * 20, encoding="utf-8")
    # letters the language model's vocabulary (the first 20,000 characters of the text) holds
    (work / "two.csv").write_text("text,label\n" + "".join(f"line {c},{'ab'[i % 2]}\n" for i, c in enumerate("abcdefghij")))
    if not (work / "clf").exists():  # the finetune test writes one; alone, these tests need their own
        ok(bigcore_cli("finetune", "two.csv", "--val-fraction", "0.5", "--ckpt", "lm", "--epochs", 1, "--out", "clf",
                       cwd=work))
    return work


@pytest.mark.parametrize("command, args, match", [
    ("eval", ["--ckpt", "nowhere"], "no checkpoint at nowhere"),
    ("eval", ["--ckpt", "corrupt"], "is not a readable bigcore checkpoint"),
    ("eval", ["--ckpt", "foreign"], "is not a checkpoint written by bigcore"),
    ("eval", ["--ckpt", "clf"], "holds a classifier"),
    ("eval", ["--ckpt", "lm", "notes.txt"], "is not in the vocabulary"),
    ("eval", ["--ckpt", "lm", "missing.txt"], "no such file: missing.txt"),
    ("eval", ["--ckpt", "lm", "--batch-size", "0"], "expected a positive integer"),
    ("export", ["--ckpt", "lm", "--out", "no/such/dir/m.onnx"], "no such directory"),
    ("export", ["--ckpt", "lm", "--out", "adir"], "is a directory"),
    ("export", ["--ckpt", "lm", "--out", "m.onnx", "--opset", "99"], "argument --opset: invalid choice"),
    ("export", ["--ckpt", "foreign", "--out", "m.onnx"], "is not a checkpoint written by bigcore"),
    ("sample", ["--ckpt", "clf"], "holds a classifier"),
    ("sample", ["--ckpt", "nowhere"], "no checkpoint at nowhere"),
    ("sample", ["--ckpt", "lm", "--prompt", "☃"], "is not in the vocabulary"),
    ("sample", ["--ckpt", "lm", "--prompt", ""], "--prompt is empty"),
    ("sample", ["--ckpt", "lm", "--prompt-file", "missing.txt"], "no such file: missing.txt"),
    ("sample", ["--ckpt", "lm", "--prompt", "a", "--prompt-file", "text.txt"], "not allowed with argument"),
    ("sample", ["--ckpt", "lm", "--top-p", "0"], "expected a number in (0, 1]"),
    ("sample", ["--ckpt", "lm", "--temperature", "-1"], "expected a number >= 0"),
    ("sample", ["--ckpt", "lm", "--top-p", "1.5"], "expected a number in (0, 1]"),
    ("sample", ["--ckpt", "lm", "--top-k", "0"], "expected a positive integer"),
    ("sample", ["--ckpt", "lm", "--max-new-tokens", "x"], "expected an integer >= 0"),
    ("finetune", ["missing.csv"], "no such file: missing.csv"),
    ("finetune", ["text.txt"], "expected a .csv, .tsv or .jsonl file"),
    ("finetune", ["bad.jsonl"], "bad.jsonl:2: not JSON"),
    ("finetune", ["one.csv", "--val-fraction", "0.5"], "1 distinct label(s); classifying needs 2"),
    ("finetune", ["one.csv"], "3 pairs cannot be split by --val-fraction 0.1"),
    ("finetune", ["cols.csv"], "no columns 'text' and 'label' in the header"),
    ("finetune", ["two.csv", "--ckpt", "lm", "--freeze", "5"], "--freeze 5: the model has 1 blocks"),
    ("finetune", ["two.csv", "--ckpt", "clf"], "holds a classifier"),
    ("finetune", ["two.csv", "--out", "clf"], "clf already holds a checkpoint"),
    ("finetune", ["two.csv", "--ckpt", "lm", "--from-pretrained", "x"], "not allowed with argument"),
])
def test_other_commands_refuse_bad_input_in_one_line(errors_dir, command, args, match):
    before = {p: p.read_bytes() for p in errors_dir.rglob("*") if p.is_file()}
    one_line_error(bigcore_cli(command, *args, cwd=errors_dir), command, match)
    assert {p: p.read_bytes() for p in errors_dir.rglob("*") if p.is_file()} == before  # nothing written


def test_unknown_command_is_one_line(tmp_path):
    p = bigcore_cli("sampel", cwd=tmp_path)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "invalid choice: 'sampel'" in p.stderr
