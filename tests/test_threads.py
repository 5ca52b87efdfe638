"""Threads: the pool size API, and several Python threads computing at once (the GIL is released inside every
op) giving the same answers as one thread."""

import os
import subprocess
import sys
import threading

import numpy as np

import bigcore
import bigcore.nn.functional as F


def test_set_and_get_num_threads():
    before = bigcore.get_num_threads()
    try:
        bigcore.set_num_threads(3)
        assert bigcore.get_num_threads() == 3
    finally:
        bigcore.set_num_threads(before)
    assert bigcore.get_num_threads() == before


def test_environment_variable_sizes_the_pool():
    code = "import bigcore; print(bigcore.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "BIGCORE_NUM_THREADS": "3"}).stdout
    assert out.strip() == "3"


def _work(seed):
    rng = np.random.default_rng(seed)
    x = bigcore.tensor(rng.standard_normal((64, 96)), requires_grad=True)
    w = bigcore.tensor(rng.standard_normal((48, 96)), requires_grad=True)
    y = bigcore.tensor(rng.integers(0, 48, 64))
    loss = F.cross_entropy(F.layer_norm(F.gelu(F.linear(x, w)), (48,)), y)
    loss.backward()
    return loss.item(), x.grad.numpy(), w.grad.numpy()


def test_python_threads_compute_concurrently_and_correctly():
    expected = [_work(s) for s in range(8)]
    results = [None] * 8
    errors = []

    def run(i):
        try:
            for _ in range(3):
                results[i] = _work(i)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, expected):
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[2], want[2])
