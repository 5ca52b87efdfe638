"""Threads: the pool size API, and several Python threads computing at once (the GIL is released inside every
op) giving the same answers as one thread."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

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


def _big_product(_):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((200, 400)).astype(np.float32)
    return (bigcore.tensor(a) @ bigcore.tensor(b)).numpy(), a.astype(np.float64) @ b.astype(np.float64)


def test_threaded_products_work_in_a_forked_child():
    # A forked child inherits the pool's bookkeeping but not its worker threads; the calling thread claims every
    # task itself, so parallel regions still finish (no hang) with the right numbers.
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        pytest.skip("fork is not available on this platform")
    before = bigcore.get_num_threads()
    try:
        bigcore.set_num_threads(2)
        _big_product(0)  # start the workers in the parent
        with mp.get_context("fork").Pool(1) as pool:
            got, want = pool.map(_big_product, [0], chunksize=1)[0]
    finally:
        bigcore.set_num_threads(before)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * np.sqrt(200) * np.abs(want).max())


def test_many_small_parallel_regions_in_a_row_agree_with_one_thread():
    # back-to-back regions (the spinning hand-off) and ones after the workers parked give the same answers
    import time

    rng = np.random.default_rng(2)
    a = bigcore.tensor(rng.standard_normal((96, 130)).astype(np.float32))
    b = bigcore.tensor(rng.standard_normal((130, 70)).astype(np.float32))
    x = bigcore.tensor(rng.standard_normal(200_000).astype(np.float32))
    before = bigcore.get_num_threads()
    try:
        bigcore.set_num_threads(1)
        want = [(a @ b).numpy(), (x * 2 + 1).numpy()]
        bigcore.set_num_threads(2)
        for i in range(300):
            if i % 100 == 99:
                time.sleep(0.01)  # longer than the workers' spin: they park and must be woken
            got = [(a @ b).numpy(), (x * 2 + 1).numpy()]
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    finally:
        bigcore.set_num_threads(before)
