"""Data parallelism over MPI: ``bigcore.distributed``'s collectives, ``DistributedDataParallel`` (gradients
equal to one process's on the whole batch, buckets, ``no_sync``, the broadcast at construction, a missing
gradient named), and ``DistributedSampler`` with PyTorch's semantics. The MPI cases run as ``mpirun -n 2``
subprocesses (MPI is never started in the test process); they need the ``mpi`` extra, which the test extras
include."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bigcore
import bigcore.distributed as dist
from bigcore.data import DataLoader, DistributedSampler, TensorDataset


def mpirun():
    here = os.path.join(os.path.dirname(sys.executable), "mpirun")
    return here if os.path.exists(here) else shutil.which("mpirun")


def launch(command, n=2, **kwargs):
    """``mpirun -n n command`` (as root too, more ranks than cores allowed, one bigcore thread a rank); skipped
    with the reason when the mpi extra is not installed (the test extras install it)."""
    pytest.importorskip("mpi4py")
    if mpirun() is None:
        pytest.skip("no mpirun (pip install \"bigcore[mpi]\")")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", BIGCORE_NUM_THREADS="1")
    return subprocess.run([mpirun(), "-n", str(n), "--oversubscribe", *map(str, command)], capture_output=True,
                          text=True, env=env, **{"timeout": 300, **kwargs})


def run_ranks(tmp_path, body, setup="", n=2):
    """Run ``setup`` then ``body`` (indented code) on ``n`` ranks; what each rank said, in rank order."""
    script = tmp_path / "ranks.py"
    script.write_text(COMMON + setup + textwrap.dedent(body), encoding="utf-8")
    p = launch([sys.executable, script, tmp_path], n)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    outs = [(tmp_path / f"rank{r}.txt").read_text() for r in range(n)]
    return outs


COMMON = """
import sys
import numpy as np
import bigcore
import bigcore.distributed as dist
from bigcore.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
out = open(f"{sys.argv[1]}/rank{rank}.txt", "w")
def say(*a):
    print(*a, file=out, flush=True)
"""


def test_collectives_on_two_ranks(tmp_path):
    outs = run_ranks(tmp_path, """
        t = bigcore.tensor([1.0, 2.0, 3.0]) * (rank + 1)                       # rank 0: 1 2 3, rank 1: 2 4 6
        dist.all_reduce(t)
        say("sum", t.tolist())
        t = bigcore.tensor([1.0, 2.0, 3.0]) * (rank + 1)
        dist.all_reduce(t, op=dist.ReduceOp.AVG)
        say("avg", t.tolist())
        for op in ("MAX", "MIN", "PRODUCT"):
            t = bigcore.tensor([3, -1, 5]) * (rank + 1)                      # int64
            dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
            say(op.lower(), t.tolist(), t.dtype.name)
        b = bigcore.tensor([[float(rank)] * 2] * 2, dtype=bigcore.float64)
        dist.broadcast(b, src=1)
        say("broadcast", b.tolist())
        got = [bigcore.zeros(3) for _ in range(world)]
        dist.all_gather(got, bigcore.arange(3).float() + 10 * rank)
        say("gather", [g.tolist() for g in got])
        out_t = bigcore.zeros(2)
        dist.reduce_scatter(out_t, [bigcore.tensor([1.0, 2.0]) * (rank + 1), bigcore.tensor([3.0, 4.0]) * (rank + 1)])
        say("scatter", out_t.tolist())
        w = bigcore.tensor([float(rank)])
        work = dist.all_reduce(w, async_op=True)
        say("async", work.wait(), w.tolist(), work.is_completed())
        p = bigcore.nn.Parameter(bigcore.ones(2))
        dist.all_reduce(p)                                                  # a leaf that requires grad: in place
        say("param", p.tolist(), p.requires_grad)
        for call in (lambda: dist.broadcast(bigcore.zeros(1), src=2),
                     lambda: dist.all_gather([bigcore.zeros(1)], bigcore.zeros(1)),
                     lambda: dist.all_gather([bigcore.zeros(2), bigcore.zeros(1)], bigcore.zeros(1)),
                     lambda: dist.all_reduce(bigcore.tensor([True])),
                     lambda: dist.all_reduce(bigcore.tensor([1]), op=dist.ReduceOp.AVG),
                     lambda: dist.init_process_group("mpi")):
            try:
                call()
                say("no error")
            except Exception as e:
                say("error", type(e).__name__, str(e).split(":")[0])
        dist.barrier()
        dist.destroy_process_group()
        say("initialized", dist.is_initialized())
    """)
    for rank, out in enumerate(outs):
        lines = out.splitlines()
        assert lines[:12] == [
            "sum [3.0, 6.0, 9.0]", "avg [1.5, 3.0, 4.5]", "max [6, -1, 10] int64", "min [3, -2, 5] int64",
            "product [18, 2, 50] int64", "broadcast [[1.0, 1.0], [1.0, 1.0]]",
            "gather [[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]]",
            f"scatter {[3.0, 6.0] if rank == 0 else [9.0, 12.0]}", "async True [1.0] True", "param [2.0, 2.0] True",
            "error ValueError broadcast", "error ValueError all_gather"], lines
        assert lines[12:] == ["error ShapeError all_gather", "error DTypeError all_reduce",
                              "error DTypeError all_reduce", "error RuntimeError trying to initialize the default "
                              "process group twice!", "initialized False"], lines


DDP_SETUP = """
from bigcore import nn

def make(seed):
    bigcore.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.GELU(), nn.Linear(7, 3)).double()

rng = np.random.default_rng(0)                        # the same data on every rank
x = bigcore.tensor(rng.standard_normal((8, 5)))
y = bigcore.tensor(rng.integers(0, 3, 8))
share = slice(4 * rank, 4 * rank + 4)                 # this rank's half of the batch
loss_fn = nn.CrossEntropyLoss()

def grads(model):
    return [p.grad.numpy() for p in model.parameters()]
"""


def test_ddp_gradients_are_the_whole_batch_gradients(tmp_path):
    outs = run_ranks(tmp_path, setup=DDP_SETUP, body="""
        model = DDP(make(seed=100 + rank), bucket_cap_mb=1e-4)    # different inits: rank 0's are broadcast
        say("buckets", len(model._buckets))
        reference = make(seed=100)                                # rank 0's init, one process, whole batch
        params = [p.numpy() for p in model.parameters()]
        say("broadcast", all(np.array_equal(a, p.numpy()) for a, p in zip(params, reference.parameters())))
        loss_fn(model(x[share]), y[share]).backward()
        loss_fn(reference(x), y).backward()
        say("grads", max(float(np.abs(a - b).max()) for a, b in zip(grads(model), grads(reference))) < 1e-12)
        opt = bigcore.optim.AdamW(model.parameters(), lr=0.01)
        ref_opt = bigcore.optim.AdamW(reference.parameters(), lr=0.01)
        opt.step()
        ref_opt.step()
        worst_loss = 0.0
        for step in range(3):  # a few more steps: losses and parameters stay those of one process
            for o in (opt, ref_opt):
                o.zero_grad()
            loss = loss_fn(model(x[share]), y[share])
            loss.backward()
            ref_loss = loss_fn(reference(x), y)
            ref_loss.backward()
            both = [bigcore.zeros(1, dtype=bigcore.float64) for _ in range(world)]
            dist.all_gather(both, loss.detach().reshape(1))
            worst_loss = max(worst_loss, abs(np.mean([b.item() for b in both]) - ref_loss.item()))
            opt.step()
            ref_opt.step()
        say("losses", worst_loss < 1e-12)
        say("params", max(float(np.abs(a.numpy() - b.numpy()).max() / np.abs(b.numpy()).max())
                          for a, b in zip(model.parameters(), reference.parameters())) < 1e-12)
        mine = np.concatenate([p.numpy().ravel() for p in model.parameters()])
        both = [bigcore.zeros(len(mine), dtype=bigcore.float64) for _ in range(world)]
        dist.all_gather(both, bigcore.tensor(mine))
        say("same after step", np.array_equal(both[0].numpy(), both[1].numpy()))
        say("state_dict keys", list(model.state_dict())[:1], list(model.module.state_dict())[:1])
    """)
    for out in outs:
        assert out.splitlines() == ["buckets 4", "broadcast True", "grads True", "losses True", "params True",
                                    "same after step True",
                                    "state_dict keys ['module.0.weight'] ['0.weight']"], out


def test_ddp_no_sync_accumulates_and_the_next_backward_reduces(tmp_path):
    outs = run_ranks(tmp_path, setup=DDP_SETUP, body="""
        model, reference = DDP(make(seed=3)), make(seed=3)
        quarter = [slice(4 * rank, 4 * rank + 2), slice(4 * rank + 2, 4 * rank + 4)]
        with model.no_sync():
            loss_fn(model(x[quarter[0]]), y[quarter[0]]).backward()
        local = grads(model)                                  # not reduced: differs between the ranks
        loss_fn(model(x[quarter[1]]), y[quarter[1]]).backward()
        for q in (slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)):
            loss_fn(reference(x[q]), y[q]).backward()         # the sum of 4 micro-batch means...
        want = [g / 2 for g in grads(reference)]              # ...averaged over 2 ranks
        say("accumulated", max(float(np.abs(a - b).max()) for a, b in zip(grads(model), want)) < 1e-12)
        got = [bigcore.zeros(1, dtype=bigcore.float64) for _ in range(world)]
        dist.all_gather(got, bigcore.tensor([float(local[0].sum())], dtype=bigcore.float64))
        say("local differed", got[0].item() != got[1].item())
    """)
    for out in outs:
        assert out.splitlines() == ["accumulated True", "local differed True"], out


def test_ddp_names_a_parameter_without_a_gradient(tmp_path):
    outs = run_ranks(tmp_path, setup=DDP_SETUP, body="""
        model = DDP(make(seed=1))
        h = model.module[0](x[share])                     # the last Linear never takes part
        h.sum().backward()
        try:
            model(x[share])
        except RuntimeError as e:
            say("error", "2.weight" in str(e), "2.bias" in str(e))
        loss_fn(model(x[share]), y[share]).backward()     # after the error the next step works
        say("recovered", all(p.grad is not None for p in model.parameters()))
    """)
    for out in outs:
        assert out.splitlines() == ["error True True", "recovered True"], out


def test_wrapping_a_module_again_reduces_its_gradients_once(tmp_path):
    outs = run_ranks(tmp_path, setup=DDP_SETUP, body="""
        first = DDP(make(seed=4))
        second = DDP(first.module, bucket_cap_mb=1e-4)    # the newer wrapper takes over the reduction
        reference = make(seed=4)
        loss_fn(second(x[share]), y[share]).backward()
        loss_fn(reference(x), y).backward()
        say("once", max(float(np.abs(a - b).max()) for a, b in zip(grads(second), grads(reference))) < 1e-12)
        first(x[share])                                   # the old wrapper has nothing pending either
        say("old wrapper idle", True)
    """)
    assert outs == ["once True\nold wrapper idle True\n"] * 2


def test_ddp_refuses_models_that_differ_between_ranks(tmp_path):
    outs = run_ranks(tmp_path, """
        from bigcore import nn
        model = nn.Sequential(nn.Linear(4, 3 + rank), nn.Linear(3 + rank, 2))
        try:
            DDP(model)
        except RuntimeError as e:
            say("error", "0.weight" in str(e), "(3, 4)" in str(e), "(4, 4)" in str(e))
    """)
    assert outs == ["error True True True\n"] * 2


def test_an_uncaught_error_on_one_rank_ends_the_job_with_its_message(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(textwrap.dedent("""
        import bigcore, bigcore.distributed as dist
        dist.init_process_group("mpi")
        if dist.get_rank() == 1:
            raise ValueError("boom on rank 1")
        dist.all_reduce(bigcore.zeros(3))          # rank 0 would wait here forever
    """), encoding="utf-8")
    p = launch([sys.executable, script], timeout=120)
    assert p.returncode != 0 and "ValueError: boom on rank 1" in p.stderr, p.stderr[-2000:]


def test_ddp_of_the_fused_gpt_matches_one_process(tmp_path):
    outs = run_ranks(tmp_path, """
        from bigcore.models import GPT, GPTConfig
        cfg = GPTConfig(block_size=16, vocab_size=23, n_layer=2, n_head=2, n_embd=8)
        def make():
            bigcore.manual_seed(5)
            return GPT(cfg, dtype=bigcore.float64)
        rng = np.random.default_rng(1)
        idx, tgt = (bigcore.tensor(rng.integers(0, 23, (4, 9))) for _ in range(2))
        model, reference = DDP(make(), bucket_cap_mb=0.001), make()
        model(idx[2 * rank:2 * rank + 2], tgt[2 * rank:2 * rank + 2])[1].backward()
        reference(idx, tgt)[1].backward()
        worst = max(float(np.abs(a.grad.numpy() - b.grad.numpy()).max())
                    for a, b in zip(model.parameters(), reference.parameters()))
        say("gpt grads", worst < 1e-12, len(model._buckets) > 2)
        opt, ref_opt = model.module.configure_optimizers(0.1, 1e-2, (0.9, 0.95)), reference.configure_optimizers(
            0.1, 1e-2, (0.9, 0.95))
        gap = 0.0
        for step in range(3):  # a few AdamW steps: the same losses and parameters as one process
            opt.step()
            ref_opt.step()
            opt.zero_grad()
            ref_opt.zero_grad()
            loss = model(idx[2 * rank:2 * rank + 2], tgt[2 * rank:2 * rank + 2])[1]
            loss.backward()
            ref_loss = reference(idx, tgt)[1]
            ref_loss.backward()
            both = [bigcore.zeros(1, dtype=bigcore.float64) for _ in range(world)]
            dist.all_gather(both, loss.detach().reshape(1))
            gap = max(gap, abs(np.mean([b.item() for b in both]) - ref_loss.item()) / abs(ref_loss.item()))
        rel = max(float(np.abs(a.numpy() - b.numpy()).max() / np.abs(b.numpy()).max())
                  for a, b in zip(model.parameters(), reference.parameters()))
        say("gpt steps", gap < 1e-12, rel < 1e-12)
    """)
    for out in outs:
        assert out.splitlines() == ["gpt grads True True", "gpt steps True True"], out


def test_not_initialized_and_other_backends_are_errors():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="has not been initialized"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="has not been initialized"):
        dist.all_reduce(bigcore.zeros(2))
    with pytest.raises(ValueError, match="backend='mpi'"):
        dist.init_process_group("nccl")
    with pytest.raises(RuntimeError, match="has not been initialized"):
        bigcore.nn.parallel.DistributedDataParallel(bigcore.nn.Linear(2, 2))


def test_distributed_sampler_splits_pads_and_shuffles_as_pytorch():
    data = list(range(10))
    parts = [list(DistributedSampler(data, num_replicas=3, rank=r, shuffle=False)) for r in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]  # padded with the start to 12
    parts = [list(DistributedSampler(data, num_replicas=3, rank=r, shuffle=False, drop_last=True)) for r in range(3)]
    assert parts == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    samplers = [DistributedSampler(data, num_replicas=4, rank=r, seed=7) for r in range(4)]
    first = [list(s) for s in samplers]
    assert all(len(p) == len(s) == 3 for p, s in zip(first, samplers))
    every = [i for p in first for i in p]
    assert len(every) == 12 and set(every) == set(data)  # every index; two of them twice (the padding)
    assert first == [list(s) for s in samplers]  # the same epoch, the same order
    for s in samplers:
        s.set_epoch(1)
    second = [list(s) for s in samplers]
    assert second != first and set(i for p in second for i in p) == set(data)
    assert list(DistributedSampler(data, 4, 0, seed=8)) != first[0]
    with pytest.raises(ValueError, match="Invalid rank 3"):
        DistributedSampler(data, num_replicas=3, rank=3)
    assert list(DistributedSampler([], num_replicas=2, rank=1)) == []


def test_dataloader_takes_a_sampler():
    ds = TensorDataset(bigcore.arange(10), bigcore.arange(10) * 2)
    sampler = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    loader = DataLoader(ds, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    assert [x.tolist() for x, _ in loader] == [[1, 3], [5, 7], [9]]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=sampler, shuffle=True)


def test_bigcore_train_under_mpirun_equals_one_process_with_the_global_batch(tmp_path):
    (tmp_path / "t.txt").write_text(bigcore.data.load_tinyshakespeare()[:20000], encoding="utf-8")
    tiny = ["t.txt", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--eval-iters", "1",
            "--warmup-iters", "1", "--threads", "1", "--max-iters", "4", "--eval-interval", "2"]
    two = launch([sys.executable, "-m", "bigcore", "train", *tiny, "--batch-size", "4", "--out", "two"], cwd=tmp_path)
    assert two.returncode == 0, two.stdout + two.stderr
    assert two.stdout.count("step 2: train loss") == 1 and two.stdout.count("step 4: train loss") == 1  # rank 0
    assert "2 ranks, global batch 8" in two.stderr
    one = subprocess.run([sys.executable, "-m", "bigcore", "train", *tiny, "--batch-size", "8", "--out", "one"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    a, b = (bigcore.io.load(tmp_path / d / "ckpt.safetensors") for d in ("two", "one"))
    assert a["step"] == b["step"] == 4
    for k in b["model"]:
        np.testing.assert_allclose(a["model"][k].numpy(), b["model"][k].numpy(), rtol=1e-4, atol=1e-6, err_msg=k)
    # the two-rank run resumes in one process
    more = subprocess.run([sys.executable, "-m", "bigcore", "train", "--out", "two", "--resume", "--max-iters", "6"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert more.returncode == 0 and "step 6: train loss" in more.stdout, more.stderr


def test_without_mpirun_the_world_is_one_process(tmp_path):
    pytest.importorskip("mpi4py")
    code = textwrap.dedent("""
        import bigcore, bigcore.distributed as dist
        from bigcore.nn.parallel import DistributedDataParallel as DDP
        dist.init_process_group("mpi")
        t = bigcore.tensor([1.0, 2.0])
        dist.all_reduce(t)
        model = DDP(bigcore.nn.Linear(3, 2))
        model(bigcore.ones(4, 3)).sum().backward()
        print(dist.get_rank(), dist.get_world_size(), t.tolist(), model.module.weight.grad.tolist()[0])
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI", "PMIX"))}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == "0 1 [1.0, 2.0] [4.0, 4.0, 4.0]"


def test_gradient_buckets_pack_and_unpack_in_place():
    from bigcore import _core

    a, b = bigcore.tensor([[1.0, 2.0], [3.0, 4.0]]), bigcore.tensor([5.0])
    buf = np.zeros(5, np.float32)
    _core.pack([a._c, b._c], buf)
    np.testing.assert_array_equal(buf, [1, 2, 3, 4, 5])
    version = a._version
    _core.unpack(buf * 2, [a._c, b._c], 0.25)
    assert a.tolist() == [[0.5, 1.0], [1.5, 2.0]] and b.tolist() == [2.5] and a._version == version + 1
    with pytest.raises(bigcore.ShapeError, match="holds 4 elements, the tensors 5"):
        _core.pack([a._c, b._c], np.zeros(4, np.float32))
    with pytest.raises(bigcore.DTypeError, match="1-D numpy array"):
        _core.pack([a._c, b._c], np.zeros(5, np.float64))
    with pytest.raises(bigcore.DTypeError, match="in one buffer"):
        _core.pack([a._c, bigcore.tensor([1])._c], np.zeros(5, np.float32))


def test_keras_fit_distribute_equals_one_process(tmp_path):
    # 2 ranks, a global batch of 7 (rows split 4/3, the last batch 2 rows: 1/1) against the same fit in one process
    outs = run_ranks(tmp_path, """
        from bigcore import keras
        rng = np.random.default_rng(0)
        x = rng.standard_normal((23, 6)).astype(np.float32)
        y = rng.integers(0, 3, 23)
        def model():
            bigcore.manual_seed(11)
            m = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
            m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
            return m
        a = model()
        h = a.fit(x, y, batch_size=7, epochs=3, shuffle=False, verbose=0, distribute=True,
                  callbacks=[keras.callbacks.ModelCheckpoint(f"{sys.argv[1]}/ck-rank{rank}-{{epoch}}.safetensors")])
        dist.destroy_process_group()
        b = model()
        g = b.fit(x, y, batch_size=7, epochs=3, shuffle=False, verbose=0)
        say("loss", np.allclose(h.history["loss"], g.history["loss"], rtol=1e-5),
            np.allclose(h.history["accuracy"], g.history["accuracy"]))
        say("weights", max(float(np.abs(p.numpy() - q.numpy()).max()) for p, q in zip(a.parameters(), b.parameters())) < 1e-5)
        h2 = a.fit(x, y, batch_size=7, epochs=1, shuffle=True, verbose=0, distribute=True)
        say("shuffled", np.isfinite(h2.history["loss"][0]))
    """)
    assert outs == ["loss True True\nweights True\nshuffled True\n"] * 2
    written = sorted(p.name for p in tmp_path.glob("ck-*"))
    assert written == ["ck-rank0-1.safetensors", "ck-rank0-2.safetensors", "ck-rank0-3.safetensors"]
