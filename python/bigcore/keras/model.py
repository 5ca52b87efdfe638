"""``keras.Model`` and ``keras.Sequential``: modules with Keras's ``compile / fit / evaluate / predict``.

A Model is an ``nn.Module``: define ``call(inputs)`` (or ``forward``), and everything in ``nn`` works on it.
Layers with inferred sizes are built by a first forward pass when ``fit`` (or ``predict``) starts, and the
optimizer is bound to the parameters then.
"""

import math

import numpy as np

from .. import _core
from .._creation import tensor
from .._random import Generator
from .._tensor import Tensor, _wrap
from ..autograd import no_grad
from ..nn import Module
from ..optim import Optimizer
from . import callbacks as callbacks_module
from . import losses, optimizers
from .metrics import resolve as resolve_metric
from .progress import ProgressBar


def _as_tensor(a):
    if a is None or isinstance(a, Tensor):
        return a
    arr = np.asarray(a)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)  # Keras computes in float32
    return tensor(arr)


class Model(Module):
    """A trainable model with Keras's training API.

    Example::

        class DNN(keras.Model):
            def __init__(self, hidden_units, output_units):
                super().__init__()
                self.flatten = keras.layers.Flatten()
                self.dense1 = keras.layers.Dense(hidden_units, activation="relu")
                self.dense2 = keras.layers.Dense(output_units, activation="softmax")

            def call(self, inputs):
                return self.dense2(self.dense1(self.flatten(inputs)))

        model = DNN(128, 10)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x_train, y_train, epochs=10, batch_size=32, validation_split=0.1)
    """

    def __init__(self):
        super().__init__()
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self.stop_training = False
        self._opt_spec = None

    def forward(self, *args, **kwargs):
        if args and isinstance(args[0], Tensor) and "_input_spec" not in self.__dict__:
            # the first input's per-sample shape and dtype: what export() traces when given no input_signature
            object.__setattr__(self, "_input_spec", (tuple(int(s) for s in args[0].shape[1:]), args[0].dtype))
        return self.call(*args, **kwargs)

    def call(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs) or forward(inputs)")

    # ----- configuration -----
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Choose the optimizer (name, keras optimizer or ``bigcore.optim`` optimizer), the loss (name or
        callable ``(y_true, y_pred)``) and metrics (names like ``"accuracy"``)."""
        if loss is None:
            raise ValueError("compile needs a loss")
        if optimizer == "rmsprop":
            raise ValueError("rmsprop is not available; use 'adam', 'adamw' or 'sgd'")
        spec = optimizers.get(optimizer)
        self._opt_spec = spec
        self.optimizer = spec if isinstance(spec, Optimizer) else None
        self.loss = losses.get(loss)
        self.compiled_metrics = [resolve_metric(m, self.loss) for m in (metrics or [])]

    def _build(self, x):
        """Run one forward pass so layers with inferred sizes create their parameters; bind the optimizer."""
        if self.loss is None:
            raise RuntimeError("you must compile the model before training or evaluating it")
        with no_grad():
            was = self.training
            self.eval()
            self(x[:1])
            self.train(was)
        if self.optimizer is None:
            params = list(self.parameters())
            if not params:
                raise ValueError("the model has no trainable parameters")
            self.optimizer = self._opt_spec.build(params)

    # ----- batches -----
    @staticmethod
    def _batches(n, batch_size, shuffle, generator=None):
        order = _wrap(_core.randperm(n, generator and generator._g)).numpy() if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size]

    def _step(self, xb, yb):
        self.optimizer.zero_grad()
        pred = self(xb)
        loss = self.loss(yb, pred)
        loss.backward()
        self.optimizer.step()
        return loss, pred

    def _step_distributed(self, xb, yb, share):
        """One data-parallel step: this rank's rows (``share`` of the global batch's rows, perhaps none), its
        loss weighted by that share, the gradients summed over the ranks in one all-reduce, then the update.
        Returns this rank's loss (None without rows) and predictions."""
        from mpi4py import MPI

        from .. import distributed

        self.optimizer.zero_grad()
        loss = pred = None
        if len(xb):
            pred = self(xb)
            loss = self.loss(yb, pred)
            (loss * share).backward()
        params = [p for p in self.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = p.detach() * 0
        grads = [p.grad._c for p in params]
        size = sum(p.numel() for p in params)
        buffer = getattr(self, "_grad_buffer", None)
        if buffer is None or len(buffer) != size:  # kept across steps: fresh pages every step cost more
            buffer = np.empty(size, params[0].dtype.numpy)
            object.__setattr__(self, "_grad_buffer", buffer)
        _core.pack(grads, buffer)
        distributed._comm().Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        _core.unpack(buffer, grads)
        self.optimizer.step()
        return loss, pred

    def _metric_sums(self, yb, pred, sums):
        if not self.compiled_metrics:
            return
        p, y = pred.detach().numpy(), yb.numpy()
        for name, fn in self.compiled_metrics:
            sums[name] = sums.get(name, 0.0) + float(np.sum(fn(y, p)))

    # ----- training -----
    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, initial_epoch=0, distribute=False):
        """Train for ``epochs`` epochs; returns a ``History`` whose ``.history`` maps ``"loss"``, each metric and
        their ``"val_"`` forms to one value per epoch.

        ``validation_split`` holds out that fraction of the samples (the last ones, before shuffling, as Keras
        does: the first ``floor(n * (1 - validation_split))`` train); too few samples to leave both parts
        non-empty is a ValueError before any training, as in Keras. ``validation_data=(x_val, y_val)`` gives them
        explicitly. ``shuffle`` reorders the training samples every epoch with bigcore's seeded generator.
        ``verbose``: 0 silent, 1 progress bar, 2 one line per epoch.

        ``distribute=True`` trains data-parallel over MPI (``mpirun -n 4 python train.py``; needs
        ``pip install "bigcore[mpi]"``; joins ``bigcore.distributed``'s process group if the script has not):
        every rank passes the same data; ``batch_size`` is the global batch, of which each rank computes every
        world-size-th row; the gradients are summed over the ranks weighted by their rows, so the run equals one
        process's. Rank 0's weights are broadcast first, only rank 0 prints, the logs are global, and
        ``ModelCheckpoint`` writes on rank 0 alone.
        """
        x, y = _as_tensor(x), _as_tensor(y)
        if x is None or y is None:
            raise ValueError("fit needs x and y")
        n = len(x)
        if len(y) != n:
            raise ValueError(f"x and y have different numbers of samples: {n} and {len(y)}")
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            cut = int(math.floor(n * (1.0 - validation_split)))  # Keras 3's split point
            if cut == 0 or cut == n:
                raise ValueError(f"Training data contains {n} samples, which is not sufficient to split it into a "
                                 f"validation and training set as specified by `validation_split={validation_split}`. "
                                 "Either provide more data, or a different value for the `validation_split` argument.")
            x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
            n = cut
        if n == 0:
            raise ValueError("no training samples")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (x_val, y_val)")
            validation_data = tuple(map(_as_tensor, validation_data))
            if len(validation_data[0]) == 0 or len(validation_data[0]) != len(validation_data[1]):
                raise ValueError(f"validation_data needs at least one sample and as many x as y, got "
                                 f"{len(validation_data[0])} and {len(validation_data[1])}")
        if batch_size is None or batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self._build(x)
        rank, world = 0, 1
        if distribute:
            from .. import distributed

            if not distributed.is_initialized():
                distributed.init_process_group("mpi")
            rank, world = distributed.get_rank(), distributed.get_world_size()
            with no_grad():
                for t in list(self.parameters()) + list(self.buffers()):
                    distributed.broadcast(t, 0)
            comm = distributed._comm()
            order_gen = Generator().manual_seed(comm.bcast(int(_core.randint(0, 2**62, [], "int64").item())))
            if rank != 0:
                verbose = 0
        history = callbacks_module.History()
        cbs = list(callbacks or []) + [history]
        history.params = {"epochs": epochs, "steps": -(-n // batch_size), "verbose": verbose}
        for cb in cbs:
            cb.set_model(self)
        self.stop_training = False
        for cb in cbs:
            cb.on_train_begin()
        steps = -(-n // batch_size)
        for epoch in range(initial_epoch, epochs):
            for cb in cbs:
                cb.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            bar = ProgressBar(steps, verbose)
            self.train()
            total, sums = 0.0, {}
            batches = self._batches(n, batch_size, shuffle, order_gen if world > 1 else None)
            for step, idx in enumerate(batches):
                for cb in cbs:
                    cb.on_train_batch_begin(step)
                if world == 1:
                    xb, yb = x[idx], y[idx]
                    loss, pred = self._step(xb, yb)
                    total += loss.item() * len(idx)
                    self._metric_sums(yb, pred, sums)
                else:
                    mine = idx[rank::world]
                    xb, yb = x[mine], y[mine]
                    loss, pred = self._step_distributed(xb, yb, len(mine) / len(idx))
                    part = {}
                    if loss is not None:
                        self._metric_sums(yb, pred, part)
                    names = [name for name, _ in self.compiled_metrics]
                    mine_sums = [loss.item() * len(mine) if loss is not None else 0.0] + [part.get(k, 0.0) for k in names]
                    every = comm.allreduce(np.array(mine_sums, np.float64))  # the global batch's sums
                    total += float(every[0])
                    for k, v in zip(names, every[1:]):
                        sums[k] = sums.get(k, 0.0) + float(v)
                seen = min((step + 1) * batch_size, n)
                logs = {**{k: v / seen for k, v in sums.items()}, "loss": total / seen}
                bar.update(step + 1, logs)
                for cb in cbs:
                    cb.on_train_batch_end(step, logs)
            logs = {**{k: v / n for k, v in sums.items()}, "loss": total / n}
            if validation_data is not None:
                vals = self._evaluate(*validation_data, batch_size)
                logs.update({f"val_{k}": v for k, v in vals.items()})
            bar.finish(logs)
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in cbs:
            cb.on_train_end()
        return history

    def _evaluate(self, x, y, batch_size):
        was = self.training
        self.eval()
        total, sums, n = 0.0, {}, len(x)
        with no_grad():
            for idx in self._batches(n, batch_size, False):
                pred = self(x[idx])
                total += self.loss(y[idx], pred).item() * len(idx)
                self._metric_sums(y[idx], pred, sums)
        self.train(was)
        return {**{k: v / n for k, v in sums.items()}, "loss": total / n}

    def evaluate(self, x=None, y=None, batch_size=32, verbose=0):
        """The loss and metrics on ``(x, y)``: ``[loss, *metrics]``, or the loss alone when there are no metrics."""
        x, y = _as_tensor(x), _as_tensor(y)
        if len(x) == 0:
            raise ValueError("evaluate needs at least one sample")
        if self.optimizer is None:
            self._build(x)
        res = self._evaluate(x, y, batch_size)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in res.items()))
        out = [res["loss"]] + [res[name] for name, _ in self.compiled_metrics]
        return out if self.compiled_metrics else out[0]

    def predict(self, x, batch_size=32, verbose=0):
        """The model's outputs for ``x`` as a numpy array (evaluation mode, no graph)."""
        x = _as_tensor(x)
        was = self.training
        self.eval()
        outs = []
        with no_grad():
            for idx in self._batches(len(x), batch_size, False):
                outs.append(self(x[idx]).numpy())
        self.train(was)
        return np.concatenate(outs) if outs else np.zeros((0,))

    def export(self, filepath, format="onnx", verbose=True, input_signature=None, **kwargs):
        """Save the model for inference outside bigcore, as Keras 3's ``Model.export``; ``format="onnx"`` is the
        one format bigcore writes (Keras's default, a TensorFlow SavedModel, is not available).

        Args:
            filepath: the ``.onnx`` file to write.
            format: ``"onnx"``.
            verbose: print where the model was written.
            input_signature: example inputs (arrays or tensors, one per input) whose first axis is the batch; by
                default a batch of zeros shaped like the samples the model has seen (in ``fit``, ``predict``...).
            **kwargs: passed to :func:`bigcore.onnx.export` (``opset_version``, ``external_data``...).

        Returns:
            None.

        Shape: the input ``inputs`` and the output ``output_0`` have a dynamic first (batch) axis.

        Example::

            model.fit(x, y, epochs=3)
            model.export("digits.onnx", format="onnx")
        """
        from .. import onnx as bigcore_onnx

        if format != "onnx":
            raise ValueError(f"Model.export: format {format!r} is not available; bigcore exports format='onnx'")
        if input_signature is None:
            if "_input_spec" not in self.__dict__:
                raise ValueError("Model.export: the model has not seen any input yet; call fit, predict or the "
                                 "model once, or pass input_signature=[example batch]")
            shape, dtype = self._input_spec
            examples = [tensor(np.zeros((2,) + shape, dtype.numpy))]
        else:
            examples = [a if isinstance(a, Tensor) else _as_tensor(a) for a in input_signature]
        names = ["inputs"] if len(examples) == 1 else [f"inputs_{i}" for i in range(len(examples))]
        axes = {name: {0: "batch"} for name in names}
        axes["output_0"] = {0: "batch"}
        bigcore_onnx.export(self, tuple(examples), filepath, input_names=names, output_names=["output_0"],
                            dynamic_axes=axes, **kwargs)
        if verbose:
            print(f"Saved the model to {filepath} (ONNX)")

    def summary(self):
        """Print the layers and their parameter counts."""
        total = 0
        print(f'Model: "{type(self).__name__}"')
        for name, m in self.named_children():
            count = sum(p.numel() for p in m.parameters())
            total += count
            print(f"  {name:<20} {type(m).__name__:<20} {count:>10,}")
        print(f"Total params: {total:,}")


class Sequential(Model):
    """Layers applied in order: ``Sequential([Dense(128, activation="relu"), Dense(10)])``; ``add`` appends."""

    def __init__(self, layers=None):
        super().__init__()
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential.add expects a layer, got {type(layer).__name__}")
        self.add_module(str(len(self._modules)), layer)

    def call(self, inputs):
        for layer in self._modules.values():
            inputs = layer(inputs)
        return inputs

    @property
    def layers(self):
        return list(self._modules.values())
