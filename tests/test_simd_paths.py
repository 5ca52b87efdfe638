"""Every SIMD path the CPU has gives the same products: BIGCORE_SIMD forces a path in a fresh interpreter."""

import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import numpy as np, bigcore, sys
rng = np.random.default_rng(0)
for m, k, n in [(1, 1, 1), (7, 300, 33), (65, 257, 129), (130, 17, 2)]:
    for dt in (np.float32, np.float64):
        a, b = rng.standard_normal((m, k)).astype(dt), rng.standard_normal((k, n)).astype(dt)
        got = (bigcore.tensor(a) @ bigcore.tensor(b)).numpy()
        want = a.astype(np.float64) @ b.astype(np.float64)
        tol = (2e-6 if dt == np.float32 else 1e-12) * np.sqrt(k) * np.abs(want).max()
        assert np.abs(got - want).max() <= tol, (m, k, n, dt)
        # transposed operands in the backward pass
        x = bigcore.tensor(a, requires_grad=True); w = bigcore.tensor(b.T.copy(), requires_grad=True)
        bigcore.nn.functional.linear(x, w).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), np.ones((m, n)) @ b.T, rtol=1e-4, atol=1e-4 * np.sqrt(n))
print(bigcore.simd_level())
"""


def _levels():
    best = subprocess.run([sys.executable, "-c", "import bigcore; print(bigcore.simd_level())"],
                          capture_output=True, text=True, check=True, env={**os.environ, "BIGCORE_SIMD": ""}).stdout.strip()
    return ["scalar", "avx2", "avx512"][: ["scalar", "avx2", "avx512"].index(best) + 1]


@pytest.mark.parametrize("level", _levels())
def test_forced_simd_path(level):
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       env={**os.environ, "BIGCORE_SIMD": level, "BIGCORE_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == level
