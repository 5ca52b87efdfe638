import os
import sys
import zlib

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import bigcore  # noqa: E402


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name, so each test draws its own reproducible shapes and values."""
    seed = zlib.crc32(request.node.name.encode())
    bigcore.manual_seed(seed)
    return np.random.default_rng(seed)
