"""Deep graphs: a user who accumulates ``total = total + loss`` without ``.item()`` over a long run builds a chain
of one recorded op per step. Dropping it, differentiating it and dropping it after ``backward(retain_graph=True)``
must neither crash nor recurse once per op (it used to overflow the stack: SIGSEGV). Each case runs in a fresh
interpreter, so a crash fails the test instead of the test run."""

import subprocess
import sys
import textwrap

import pytest

BUILD = """
import threading
import bigcore
x = bigcore.tensor(0.5, dtype=bigcore.float64, requires_grad=True)
def chain(n):
    total = bigcore.tensor(0.0, dtype=bigcore.float64)
    for _ in range(n):
        total = total + x * 2.0
    return total
"""

CASES = {
    "dropped": "total = chain(100_000)\ndel total",
    "dropped after backward(retain_graph=True)": """
        total = chain(100_000)
        total.backward(retain_graph=True)
        assert x.grad.item() == 200_000.0, x.grad.item()
        del total""",
    "backward twice, then dropped": """
        total = chain(100_000)
        total.backward(retain_graph=True)
        total.backward()
        assert x.grad.item() == 400_000.0, x.grad.item()
        del total""",
    "dropped in another thread": """
        threading.stack_size(512 * 1024)
        t = threading.Thread(target=lambda: chain(100_000))
        t.start()
        t.join()""",
}


@pytest.mark.parametrize("case", CASES)
def test_a_chain_of_100k_ops_is_freed_without_crashing(case):
    code = BUILD + textwrap.dedent(CASES[case]) + "\nprint('ok')\n"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and p.stdout.strip() == "ok", (p.returncode, p.stderr[-2000:])
