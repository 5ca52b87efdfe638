"""What every subcommand shares: ``CLIError`` (a user mistake: one line on stderr, exit status 2), the argument
parser that reports its errors in one line, option types that check numbers, reading text files, threads, and
Ctrl-C handled between steps."""

import argparse
import contextlib
import hashlib
import os
import signal
import sys

import numpy as np


class CLIError(Exception):
    """A mistake in the command line or its input, reported as one line on stderr with exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with PyTorch-style help, whose usage errors are one line (``bigcore train: error: ...``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _number(kind, check, what):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _number(int, lambda v: v > 0, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0 and np.isfinite(v), "a positive number")
non_negative_float = _number(float, lambda v: v >= 0 and np.isfinite(v), "a number >= 0")
probability = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
fraction = _number(float, lambda v: 0 < v < 1, "a number between 0 and 1")
top_probability = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")


@contextlib.contextmanager
def reading(path, what):
    """Inside it, a failure to open or decode ``path`` (a ``what``, e.g. "text file") is a one-line CLIError."""
    try:
        yield
    except FileNotFoundError:
        raise CLIError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CLIError(f"{path} is a directory, not a {what}") from None
    except PermissionError:
        raise CLIError(f"cannot read {path}: permission denied") from None
    except UnicodeDecodeError as e:
        raise CLIError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise CLIError(f"cannot read {path}: {e.strerror}") from None


def read_text(path):
    """The text of a UTF-8 file, or the bundled tinyshakespeare when ``path`` is None.

    Raises:
        CLIError: a missing, unreadable, non-UTF-8 or empty file, named.
    """
    if path is None:
        from ..data import load_tinyshakespeare

        return load_tinyshakespeare()
    with reading(path, "text file"):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    if not text:
        raise CLIError(f"{path} is empty")
    return text


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: environment variables an MPI launcher sets (Open MPI, MPICH/Slurm's PMI, PMIx)
MPI_LAUNCHED = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")


def mpi_world():
    """``(rank, world_size)``: under ``mpirun``/``srun``, after joining ``bigcore.distributed``'s process group;
    ``(0, 1)`` in a plain run."""
    if not any(k in os.environ for k in MPI_LAUNCHED):
        return 0, 1
    from .. import distributed

    if not distributed.is_available():
        raise CLIError('launched by an MPI launcher, but mpi4py is missing: pip install "bigcore[mpi]"')
    if not distributed.is_initialized():
        distributed.init_process_group("mpi")
    return distributed.get_rank(), distributed.get_world_size()


def set_threads(n):
    """Use ``n`` threads (None: the library's default, all cores)."""
    import bigcore

    if n is not None:
        bigcore.set_num_threads(n)


def encode(tokenizer, text, where):
    """``tokenizer.encode(text)`` as int64 numpy ids; a character outside a char vocabulary is a CLIError."""
    try:
        return np.asarray(tokenizer.encode(text), dtype=np.int64)
    except ValueError as e:
        raise CLIError(f"{where}: {e}") from None


class StopOnInterrupt:
    """While active, Ctrl-C (SIGINT) only sets ``requested``: the loop finishes its step, saves and stops. A
    second Ctrl-C interrupts at once (KeyboardInterrupt)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C: the usual KeyboardInterrupt

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)
        return False


def say(message):
    """A progress line on stderr (stdout is kept for results)."""
    print(message, file=sys.stderr, flush=True)
