"""Collective communication over MPI with ``torch.distributed``'s names, for data-parallel training on several
processes or machines. Needs ``pip install "bigcore[mpi]"`` (mpi4py and an MPI from PyPI); launch with MPI::

    mpirun -n 4 python train.py             # as root add --allow-run-as-root; more ranks than cores: --oversubscribe

    import bigcore.distributed as dist
    dist.init_process_group("mpi")           # rank and world size come from MPI
    t = bigcore.tensor([float(dist.get_rank())])
    dist.all_reduce(t)                       # in place: 0 + 1 + 2 + 3 = 6 on every rank

Every collective runs on the tensor's values through one numpy buffer (copied in, reduced in place by MPI with
the GIL released, copied back into the tensor's storage); nothing passes through Python lists. The tensor is
written in place under ``no_grad``, so its version moves on as for any in-place write. ``async_op=True`` returns
a :class:`Work` whose ``wait()`` completes the operation; the tensor holds the result only after it.

Run outside ``mpirun``, MPI starts a world of one process: the same script works alone.
"""

import enum
import sys

import numpy as np

from . import _core
from ._tensor import Tensor, _wrap
from .autograd import no_grad
from .errors import DTypeError, ShapeError


class ReduceOp(enum.Enum):
    """How ``all_reduce`` and ``reduce_scatter`` combine the ranks' values."""

    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    AVG = "avg"  # the sum divided by the world size (floating-point tensors)


_state = {"comm": None}


def is_available():
    """Whether MPI can be used here (mpi4py importable)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f'bigcore.distributed needs mpi4py and an MPI library ({e}): pip install "bigcore[mpi]"') \
            from None
    return MPI


def _abort_on_uncaught(MPI):
    """An exception nobody catches on one rank ends the whole job with that rank's traceback (MPI_Abort), instead
    of leaving the other ranks waiting in a collective forever."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(1)

    sys.excepthook = hook


def init_process_group(backend="mpi", init_method=None, world_size=-1, rank=-1, timeout=None):
    """Join the job's process group: every process of ``mpirun -n N`` calls it once, before any collective.

    Args:
        backend: ``"mpi"`` (the only one).
        init_method, timeout: accepted for PyTorch's signature; MPI's launcher does the rendezvous.
        world_size, rank: when given, checked against what MPI says (-1: take MPI's).

    Raises:
        ValueError: another backend, or a world size or rank that differs from MPI's.
        RuntimeError: already initialized.
        ImportError: mpi4py is not installed (the ``mpi`` extra).
    """
    if backend not in ("mpi", "MPI"):
        raise ValueError(f"bigcore.distributed supports backend='mpi' only, got {backend!r}")
    if _state["comm"] is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    comm = _mpi().COMM_WORLD.Dup()  # our own communicator: the user's MPI traffic on COMM_WORLD never mixes in
    for name, want, got in (("world_size", world_size, comm.Get_size()), ("rank", rank, comm.Get_rank())):
        if want not in (-1, None) and want != got:
            comm.Free()
            raise ValueError(f"init_process_group: {name}={want}, but MPI started this process with {name} {got}")
    _state["comm"] = comm
    if comm.Get_size() > 1 and not _state.get("abort_hook"):
        _abort_on_uncaught(_mpi())
        _state["abort_hook"] = True


def is_initialized():
    """Whether :func:`init_process_group` has run (and :func:`destroy_process_group` not since)."""
    return _state["comm"] is not None


def _comm():
    comm = _state["comm"]
    if comm is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "init_process_group.")
    return comm


def get_rank(group=None):
    """This process's rank, 0 to world size - 1."""
    return _comm().Get_rank()


def get_world_size(group=None):
    """The number of processes in the job."""
    return _comm().Get_size()


def barrier(group=None, async_op=False):
    """Wait until every rank has reached this call."""
    _comm().Barrier()


def destroy_process_group(group=None):
    """Leave the process group (MPI itself stays up until the interpreter exits)."""
    _comm().Free()
    _state["comm"] = None


class Work:
    """A collective started with ``async_op=True``: ``wait()`` completes it and writes the result."""

    def __init__(self, request, finish):
        self._request, self._finish, self._done = request, finish, False

    def is_completed(self):
        return self._done

    def wait(self, timeout=None):
        if not self._done:
            self._request.Wait()
            self._finish()
            self._done = True
        return True


def _check(tensor, what):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what} expects a bigcore.Tensor, got {type(tensor).__name__}")
    if tensor.dtype.name not in ("float32", "float64", "int64"):
        raise DTypeError(f"{what}: tensors of {tensor.dtype} cannot be communicated (float32, float64, int64)")


def _check_list(what, list_name, tensors, like, like_name, size):
    """``tensors`` holds one tensor per rank, each of ``like``'s shape and dtype."""
    _check(like, what)
    if len(tensors) != size:
        raise ValueError(f"{what}: {list_name} holds {len(tensors)} tensors for a world of {size}")
    for i, t in enumerate(tensors):
        _check(t, what)
        if t.shape != like.shape or t.dtype is not like.dtype:
            raise ShapeError(f"{what}: {list_name}[{i}] is {t.dtype} {tuple(t.shape)}, the {like_name} "
                             f"{like.dtype} {tuple(like.shape)}")


def _write(tensor, values):
    """Copy ``values`` (numpy, the tensor's shape) into ``tensor``'s storage, in place."""
    with no_grad():
        tensor.copy_(_wrap(_core.from_numpy(np.ascontiguousarray(values))))


def _op(op, what):
    MPI = _mpi()
    table = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD, ReduceOp.MIN: MPI.MIN,
             ReduceOp.MAX: MPI.MAX}
    if op not in table:
        raise ValueError(f"{what}: op must be a bigcore.distributed.ReduceOp, got {op!r}")
    return table[op]


def _started(request, finish, async_op):
    work = Work(request, finish)
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Combine ``tensor`` over all ranks with ``op``; every rank's tensor holds the result (in place)."""
    _check(tensor, "all_reduce")
    if op is ReduceOp.AVG and not tensor.is_floating_point():
        raise DTypeError(f"all_reduce: ReduceOp.AVG needs a floating-point tensor, got {tensor.dtype}")
    comm, mpi_op = _comm(), _op(op, "all_reduce")
    buf = np.ascontiguousarray(tensor.numpy())  # a copy of the values, reduced in place

    def finish():
        if op is ReduceOp.AVG:
            buf[...] /= comm.Get_size()
        _write(tensor, buf)

    return _started(comm.Iallreduce(_mpi().IN_PLACE, buf, op=mpi_op), finish, async_op)


def broadcast(tensor, src, group=None, async_op=False):
    """Every rank's ``tensor`` becomes rank ``src``'s (in place)."""
    _check(tensor, "broadcast")
    comm = _comm()
    if not 0 <= int(src) < comm.Get_size():
        raise ValueError(f"broadcast: src {src} is not a rank of a world of {comm.Get_size()}")
    buf = np.ascontiguousarray(tensor.numpy())  # a copy of the values, reduced in place
    return _started(comm.Ibcast(buf, root=int(src)), lambda: _write(tensor, buf), async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """``tensor_list[i]`` becomes rank i's ``tensor`` on every rank (world-size tensors of ``tensor``'s shape)."""
    comm = _comm()
    size = comm.Get_size()
    _check_list("all_gather", "tensor_list", tensor_list, tensor, "input", size)
    send = np.ascontiguousarray(tensor.numpy())
    out = np.empty((size, *send.shape), send.dtype)

    def finish():
        for t, values in zip(tensor_list, out):
            _write(t, values)

    return _started(comm.Iallgather(send, out), finish, async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """Rank i's ``output`` becomes ``input_list[i]`` combined over all ranks with ``op``."""
    comm = _comm()
    size = comm.Get_size()
    _check_list("reduce_scatter", "input_list", input_list, output, "output", size)
    if op is ReduceOp.AVG and not output.is_floating_point():
        raise DTypeError(f"reduce_scatter: ReduceOp.AVG needs a floating-point tensor, got {output.dtype}")
    send = np.stack([t.numpy() for t in input_list])
    out = np.empty(send.shape[1:], send.dtype)

    def finish():
        if op is ReduceOp.AVG:
            out[...] /= size
        _write(output, out)

    return _started(comm.Ireduce_scatter_block(send, out, op=_op(op, "reduce_scatter")), finish, async_op)


__all__ = [
    "ReduceOp", "Work", "is_available", "init_process_group", "is_initialized", "get_rank", "get_world_size",
    "barrier", "destroy_process_group", "all_reduce", "broadcast", "all_gather", "reduce_scatter",
]
