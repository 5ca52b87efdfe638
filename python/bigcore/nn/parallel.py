"""``DistributedDataParallel``: data-parallel training over MPI (``bigcore.distributed``), PyTorch's design.

Each rank runs the same model on its own share of the batch. At construction rank 0's parameters and buffers are
broadcast, so every rank starts equal. During ``backward()`` the gradients are packed into buckets of about
``bucket_cap_mb`` in reverse parameter order (the order backward finishes them); the moment a bucket's last
gradient is final (``register_post_accumulate_grad_hook``, called from the Rust backward) its non-blocking
all-reduce starts, so communication overlaps the rest of the backward. When ``backward()`` returns every
parameter's ``.grad`` holds the mean over the ranks, and the optimizer steps alike everywhere.
"""

import contextlib

import numpy as np

from .. import _core, distributed
from ..autograd import no_grad
from .module import Module


#: id(parameter) -> the hook of the DistributedDataParallel that reduces its gradient (the newest wrapper)
_HOOKED = {}


class _Bucket:
    """Parameters whose gradients travel together, and the flat numpy buffer they travel in (allocated once and
    reused: a fresh buffer every step would pay for fresh pages)."""

    def __init__(self, params):
        self.params = params
        self.buffer = np.empty(sum(p.numel() for p in params), params[0].dtype.numpy)
        self.ready = set()
        self.packed = False
        self.request = None

    def pack(self):
        # every parameter here has a gradient: its hook ran after backward accumulated into it
        _core.pack([p.grad._c for p in self.params], self.buffer)
        self.packed = True

    def unpack(self, world):
        _core.unpack(self.buffer, [p.grad._c for p in self.params], 1.0 / world)
        self.clear()

    def clear(self):
        self.ready.clear()
        self.packed = False
        self.request = None


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training; call it as the module. Needs
    ``bigcore.distributed.init_process_group`` first.

    Args:
        module: the model; every rank builds it the same way (rank 0's values are broadcast).
        broadcast_buffers: send rank 0's buffers to every rank before each forward (PyTorch's default).
        bucket_cap_mb: the size of a gradient bucket, in MiB (default 25).
        find_unused_parameters: not supported: every parameter that requires grad must receive a gradient in
            each backward (a missing one is named when the next forward starts).

    Every rank must call ``backward()`` as often as the others (the all-reduces pair up across ranks). Gradients
    are averaged, so the loss on each rank is the mean over its own share of the batch, as in PyTorch.

    Example::

        dist.init_process_group("mpi")
        model = DistributedDataParallel(GPT(config))
        logits, loss = model(x_of_this_rank, y_of_this_rank)
        loss.backward()                      # .grad: the mean over ranks
        optimizer.step()
        if dist.get_rank() == 0:
            bigcore.save(model.module.state_dict(), "model.safetensors")
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25, find_unused_parameters=False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a bigcore.nn.Module, got {type(module).__name__}")
        if find_unused_parameters:
            raise ValueError("DistributedDataParallel: find_unused_parameters=True is not supported; every parameter "
                             "that requires grad must receive a gradient in each backward")
        if not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.world_size = distributed.get_world_size()  # raises before init_process_group
        self._check_same_parameters(module)
        with no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                distributed.broadcast(t, 0)
        params = [p for p in module.parameters() if p.requires_grad]
        object.__setattr__(self, "_buckets", self._make_buckets(params[::-1], int(bucket_cap_mb * 2**20)))
        object.__setattr__(self, "_sync", True)
        object.__setattr__(self, "_next", 0)  # the next bucket to start, in order on every rank
        for bucket in self._buckets:
            for p in bucket.params:
                old = _HOOKED.pop(id(p), None)
                if old is not None:  # wrapped before: the older wrapper stops reducing this parameter
                    old.remove()
                _HOOKED[id(p)] = p.register_post_accumulate_grad_hook(self._hook(bucket))

    @staticmethod
    def _check_same_parameters(module):
        """Every rank must hold the same parameters and buffers (names, shapes, dtypes): a mismatch is a
        RuntimeError on every rank, naming the first that differs, before anything is sent."""
        mine = [(n, tuple(t.shape), t.dtype.name) for n, t in
                list(module.named_parameters()) + list(module.named_buffers())]
        everyone = distributed._comm().allgather(mine)
        for rank, theirs in enumerate(everyone):
            if theirs != everyone[0]:
                diff = next((a, b) for a, b in zip(everyone[0] + [None] * len(theirs), theirs + [None] * len(
                    everyone[0])) if a != b)
                raise RuntimeError(f"DistributedDataParallel: the ranks' models differ: rank 0 has {diff[0]}, rank "
                                   f"{rank} has {diff[1]} (name, shape, dtype); build the same model on every rank")

    @staticmethod
    def _make_buckets(params, cap):
        buckets, current, size = [], [], 0
        for p in params:
            nbytes = p.numel() * p.dtype.itemsize
            if current and (size + nbytes > cap or p.dtype is not current[0].dtype):
                buckets.append(_Bucket(current))
                current, size = [], 0
            current.append(p)
            size += nbytes
        if current:
            buckets.append(_Bucket(current))
        return buckets

    def _hook(self, bucket):
        def ready(p):
            if not self._sync:
                return
            bucket.ready.add(id(p))
            if len(bucket.ready) == len(bucket.params):  # the bucket's last gradient: pack it, start what can
                bucket.pack()
                self._start_ready()

        return ready

    def _start_ready(self):
        """Start the all-reduces of the finished buckets in bucket order; after the last, wait for all and write
        the means into ``.grad``."""
        from mpi4py import MPI

        comm = distributed._comm()
        while self._next < len(self._buckets) and self._buckets[self._next].packed:
            b = self._buckets[self._next]
            b.request = comm.Iallreduce(MPI.IN_PLACE, b.buffer, op=MPI.SUM)
            object.__setattr__(self, "_next", self._next + 1)
        started = [b.request for b in self._buckets[:self._next]]
        if self._next < len(self._buckets):
            MPI.Request.Testall(started)  # lets MPI move the started reductions on while backward continues
            return
        MPI.Request.Waitall(started)
        for b in self._buckets:
            b.unpack(self.world_size)
        object.__setattr__(self, "_next", 0)

    def _reset(self):
        """Forget an unfinished reduction (every rank stopped at the same bucket: they started the same ones)."""
        from mpi4py import MPI

        MPI.Request.Waitall([b.request for b in self._buckets[:self._next]])
        for b in self._buckets:
            b.clear()
        object.__setattr__(self, "_next", 0)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside it, backward only accumulates gradients locally (gradient accumulation); the first backward
        after it reduces what was accumulated."""
        previous = self._sync
        object.__setattr__(self, "_sync", False)
        try:
            yield
        finally:
            object.__setattr__(self, "_sync", previous)

    def forward(self, *args, **kwargs):
        waiting = [p for b in self._buckets for p in b.params if b.ready and id(p) not in b.ready]
        if waiting or self._next:
            self._reset()
            names = {id(p): n for n, p in self.module.named_parameters()}
            missing = ", ".join(names.get(id(p), "?") for p in waiting[:8])
            raise RuntimeError(
                "DistributedDataParallel: the previous backward did not give every parameter a gradient, so its "
                f"gradients were not averaged; parameters without one: {missing or 'none (a bucket is still open)'}. "
                "Every parameter that requires grad must take part in the loss (or set requires_grad=False).")
        if self.broadcast_buffers:
            with no_grad():
                for b in self.module.buffers():
                    distributed.broadcast(b, 0)
        return self.module(*args, **kwargs)


__all__ = ["DistributedDataParallel"]
