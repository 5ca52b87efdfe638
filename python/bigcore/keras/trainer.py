"""Keras 3's training API for ``keras.Model``: ``compile``, ``fit``, ``evaluate``, ``predict`` and the
``*_on_batch`` forms, over bigcore's autograd and fused optimizers.

The data may be arrays (one, a list, or a dict by input name), a ``DataLoader``, an iterable of batches or a
generator (``data_adapter``). A model whose layers learn their sizes from the data is built by one forward pass
on a single sample before training, and the optimizer is bound to its parameters then. The loss of each batch
is the compiled loss (``compile_utils``), weighted by ``sample_weight`` / ``class_weight``; the epoch's loss is
the mean of the batch losses weighted by their sizes, as Keras reports it.
"""

import numpy as np

from .. import _core
from .._random import Generator
from ..autograd import no_grad
from ..optim import Optimizer
from . import callbacks as callbacks_module
from . import losses, optimizers, tree
from . import metrics as metrics_module
from .compile_utils import CompiledLoss, CompiledMetrics, output_list
from .data_adapter import ArrayAdapter, EpochIterator, adapter_for, unpack_x_y_sample_weight
from .keras_tensor import _run_in_eval
from .progress import ProgressBar

_COMPILE_OPTIONS = {"run_eagerly", "jit_compile", "auto_scale_loss", "steps_per_execution"}


def _verbosity(verbose):
    return 1 if verbose == "auto" else int(verbose)


def _rows(x):
    return len(tree.flatten(x)[0])


class Trainer:
    """The training methods of ``keras.Model`` (mixed into it)."""

    def _init_trainer(self):
        self.optimizer = None
        self.loss = None
        self.compiled_loss = self.compiled_metrics = None
        self.stop_training = False
        self._opt_spec = None
        self._compile_config = None

    # ----- configuration -----
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None, **kwargs):
        """Configure training.

        Args:
            optimizer: a name (``"rmsprop"``, Keras's default; ``"adam"``, ``"adamw"``, ``"sgd"``), a
                ``keras.optimizers`` optimizer, or a ``bigcore.optim`` optimizer already bound to the parameters.
            loss: a name (``"sparse_categorical_crossentropy"``, ``"SparseCategoricalCrossentropy"``...), a
                ``keras.losses.Loss``, or a function ``(y_true, y_pred) -> per-sample values``; with several
                outputs, a list or a dict by output name (or one loss for all).
            loss_weights: with several outputs, a list or dict of weights of each output's loss in the total.
            metrics: a list of names (``"accuracy"``...), ``keras.metrics`` objects or functions; with several
                outputs, a list of lists or a dict by output name. They ignore sample weights.
            weighted_metrics: as ``metrics``, weighted by ``sample_weight`` / ``class_weight``.
            **kwargs: ``run_eagerly``, ``jit_compile``... are accepted and change nothing (bigcore runs eagerly).
        """
        unknown = set(kwargs) - _COMPILE_OPTIONS
        if unknown:
            raise TypeError(f"compile() got unexpected keyword arguments {sorted(unknown)}")
        if kwargs.get("steps_per_execution", 1) != 1:
            raise ValueError("steps_per_execution must be 1 in bigcore (every step runs eagerly)")
        if loss is None:
            raise ValueError("compile needs a loss")
        for name, spec in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if spec is not None and not isinstance(spec, (list, tuple, dict)):
                raise ValueError(f"Expected `{name}` argument to be a list, tuple, or dict. Received instead: "
                                 f"{name}={spec!r} of type {type(spec)}")
            for m in tree.flatten(spec):
                if m is not None and not (isinstance(m, str) and m in ("accuracy", "acc")):
                    metrics_module.get(m)  # an unknown name fails here, not at the first batch
        for one in tree.flatten(loss):
            if one is not None:
                losses.get(one)
        spec = optimizers.get(optimizer)
        self._opt_spec = spec
        self.optimizer = spec if isinstance(spec, Optimizer) else None
        self.loss = loss
        self.compiled_loss = CompiledLoss(loss, loss_weights)
        self.compiled_metrics = CompiledMetrics(metrics, weighted_metrics, self.compiled_loss)
        self._compile_config = {"optimizer": optimizer, "loss": loss, "loss_weights": loss_weights,
                                "metrics": metrics, "weighted_metrics": weighted_metrics}
        params = [p for p in self.parameters() if p.requires_grad]
        if self.optimizer is None and self.built and params:  # else bound when fit builds the model
            self.optimizer = spec.build(params)

    @property
    def compiled(self):
        return self.compiled_loss is not None

    def _require_compiled(self):
        if not self.compiled:
            raise RuntimeError("You must call `compile()` before training or evaluating the model.")

    def _output_names(self, pred):
        names = getattr(self, "output_names", None)
        if names:
            return list(names)
        if isinstance(pred, dict):
            return sorted(pred)
        if isinstance(pred, (list, tuple)):
            return [f"output_{i}" for i in range(len(pred))]
        return ["output_0"]

    def _build_for(self, xb, yb, bind_optimizer=True):
        """Build the model (one forward pass on the first sample), the compiled loss and metrics from the
        outputs and labels, and bind the optimizer to the parameters."""
        first = tree.map_structure(lambda t: t[:1], xb)
        pred = _run_in_eval(self, (first,), {})
        names = self._output_names(pred)
        if self.compiled_loss.names is None:
            self.compiled_loss.build(names)
        if yb is not None and not self.compiled_metrics.built:
            ys = [tree.map_structure(lambda t: t[:1], y) for y in output_list(yb, names, "y")]
            self.compiled_metrics.build(names, ys, [p.numpy() for p in output_list(pred, names, "the model's output")])
        if bind_optimizer and self.optimizer is None:
            params = [p for p in self.parameters() if p.requires_grad]
            if not params:
                raise ValueError("the model has no trainable parameters")
            self.optimizer = self._opt_spec.build(params)

    @property
    def metrics_names(self):
        """The names ``evaluate`` returns values for, in order: ``loss``, each output's loss, the metrics."""
        names = ["loss"]
        if self.compiled_loss is not None and self.compiled_loss.names and len(self.compiled_loss.names) > 1:
            names += [f"{n}_loss" for n in self.compiled_loss.names]
        return names + (self.compiled_metrics.result_names if self.compiled_metrics else [])

    # ----- steps -----
    def _train_step(self, xb, yb, wb):
        if yb is None:
            raise ValueError("fit needs labels: a batch holds only x")
        self.optimizer.zero_grad()
        pred = self(xb)
        loss, parts = self.compiled_loss(yb, pred, wb)
        loss.backward()
        self.optimizer.step()
        return loss, parts, pred

    def _step_distributed(self, xb, yb, wb, share):
        """One data-parallel step: this rank's rows (``share`` of the global batch's rows, perhaps none), its
        loss weighted by that share, the gradients summed over the ranks in one all-reduce, then the update.
        Returns this rank's loss and per-output losses (None without rows) and predictions."""
        from mpi4py import MPI

        from .. import distributed

        self.optimizer.zero_grad()
        loss = parts = pred = None
        if _rows(xb):
            pred = self(xb)
            loss, parts = self.compiled_loss(yb, pred, wb)
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
        return loss, parts, pred

    def _sums(self, total, parts):
        """The epoch's running sums as one vector: the loss, each output's loss, each metric's total and count;
        and the names of the output losses."""
        outputs = self.compiled_loss.names or []
        names = [f"{n}_loss" for n in outputs] if len(outputs) > 1 else []
        state = [x for pair in self.compiled_metrics.state() for x in pair] if self.compiled_metrics.built else []
        return np.array([total] + [parts.get(n, 0.0) for n in names] + state, np.float64), names

    def _logs(self, sums, part_names, seen):
        """Logs from the running sums (perhaps summed over ranks): metrics, ``loss``, each output's loss."""
        k = 1 + len(part_names)
        logs = {}
        if self.compiled_metrics.built:
            logs = self.compiled_metrics.result([tuple(p) for p in sums[k:].reshape(-1, 2)])
        logs["loss"] = float(sums[0]) / seen
        logs.update({n: float(v) / seen for n, v in zip(part_names, sums[1:k])})
        return logs

    # ----- fit -----
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, distribute=False):
        """Train for ``epochs`` epochs; returns a ``History`` whose ``.history`` maps ``"loss"``, each metric and
        their ``"val_"`` forms to one value per epoch.

        Args:
            x, y: arrays (a list or a dict by name for several inputs or outputs), or ``x`` a ``DataLoader``,
                an iterable of batches or a generator of ``(x, y)`` / ``(x, y, sample_weight)`` with ``y=None``.
            batch_size: rows per batch for arrays (default 32); not with a DataLoader or generator.
            sample_weight: per-sample weights ``(N,)`` (or one per loss value, e.g. ``(N, T)``).
            class_weight: a dict class -> weight, turned into per-sample weights (single output).
            validation_split: hold out that fraction of the array samples (the last ones, before shuffling, as
                Keras does; too few to leave both parts non-empty is a ValueError).
            validation_data: ``(x_val, y_val)``, ``(x_val, y_val, sample_weight)``, or a DataLoader/iterable.
            shuffle: reorder the array samples every epoch with bigcore's seeded generator.
            steps_per_epoch: batches per epoch (a generator must be given it to run several epochs).
            verbose: ``"auto"``/1 progress bar, 2 one line per epoch, 0 silent.
            distribute: train data-parallel over MPI (``mpirun -n 4 python train.py``; needs
                ``pip install "bigcore[mpi]"``; arrays only): every rank passes the same data; ``batch_size`` is
                the global batch, of which each rank computes every world-size-th row; the gradients are summed
                over the ranks weighted by their rows, so the run equals one process's. Rank 0's weights are
                broadcast first, only rank 0 prints, the logs are global, and ``ModelCheckpoint`` writes on
                rank 0 alone.
        """
        self._require_compiled()
        verbose = _verbosity(verbose)
        data = adapter_for(x, y, sample_weight, class_weight, batch_size, "fit")
        val = None
        if validation_data is None and validation_split:
            if not isinstance(data, ArrayAdapter):
                raise ValueError("`validation_split` is only supported for arrays, not for a DataLoader, an iterable "
                                 "or a generator: pass validation_data instead")
            data, val = data.split(validation_split)
        elif validation_data is not None:
            val = self._validation_adapter(validation_data, validation_batch_size or batch_size)
        if isinstance(data, ArrayAdapter) and data.size == 0:
            raise ValueError("fit: no training samples")
        rank, world, order_gen = 0, 1, None
        first = np.arange(1) if isinstance(data, ArrayAdapter) else data.peek()
        if first is None:
            raise ValueError("fit: the data yielded no batches")
        xb, yb, _ = data.take(first)
        if yb is None:
            raise ValueError("fit needs labels: y is None (or the batches hold only x)")
        self._build_for(xb, yb)  # before the callbacks start: they may read the optimizer
        if distribute:
            if not isinstance(data, ArrayAdapter):
                raise ValueError("fit(distribute=True) takes arrays, not a DataLoader, an iterable or a generator")
            rank, world, order_gen, comm = self._join_distributed()
            verbose = verbose if rank == 0 else 0
        history = callbacks_module.History()
        cbs = list(callbacks or []) + [history]
        epoch_it = EpochIterator(data, steps_per_epoch, shuffle, order_gen)
        history.params = {"epochs": epochs, "steps": epoch_it.num_steps, "verbose": verbose}
        for cb in cbs:
            cb.set_model(self)
        self.stop_training = False
        for cb in cbs:
            cb.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            for cb in cbs:
                cb.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            bar = ProgressBar(epoch_it.num_steps, verbose)
            self.train()
            if self.compiled_metrics.built:
                self.compiled_metrics.reset_state()
            total, parts_total, seen, step = 0.0, {}, 0, -1
            for step, batch in enumerate(epoch_it):
                for cb in cbs:
                    cb.on_train_batch_begin(step)
                if world == 1:
                    xb, yb, wb = data.take(batch)
                    loss, parts, pred = self._train_step(xb, yb, wb)
                    self._accumulate(loss, parts, pred, yb, wb, _rows(xb), parts_total)
                    total += loss.item() * _rows(xb)
                    seen += _rows(xb)
                    sums, names = self._sums(total, parts_total)
                else:
                    mine = batch[rank::world]
                    xb, yb, wb = data.take(mine)
                    loss, parts, pred = self._step_distributed(xb, yb, wb, len(mine) / len(batch))
                    if loss is not None:
                        self._accumulate(loss, parts, pred, yb, wb, len(mine), parts_total)
                        total += loss.item() * len(mine)
                    seen += len(batch)
                    sums, names = self._sums(total, parts_total)
                    sums = comm.allreduce(sums)  # the global batch's sums
                logs = self._logs(sums, names, seen)
                bar.update(step + 1, logs)
                for cb in cbs:
                    cb.on_train_batch_end(step, logs)
            if step < 0:
                if epoch_it.ran_out:
                    break
                raise ValueError("fit: the data yielded no batches")
            if val is not None:
                logs.update({f"val_{k}": v for k, v in self._evaluate_adapter(val, validation_steps).items()})
            bar.finish(logs, step + 1)
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training or epoch_it.ran_out:
                break
        for cb in cbs:
            cb.on_train_end()
        return history

    def _accumulate(self, loss, parts, pred, yb, wb, rows, parts_total):
        for k, v in parts.items():
            parts_total[k] = parts_total.get(k, 0.0) + v * rows
        self.compiled_metrics.update_state(yb, pred, wb, self.compiled_loss.names)

    def _join_distributed(self):
        from .. import distributed

        if not distributed.is_initialized():
            distributed.init_process_group("mpi")
        rank, world = distributed.get_rank(), distributed.get_world_size()
        with no_grad():
            for t in list(self.parameters()) + list(self.buffers()):
                distributed.broadcast(t, 0)
        comm = distributed._comm()
        order_gen = Generator().manual_seed(comm.bcast(int(_core.randint(0, 2**62, [], "int64").item())))
        return rank, world, order_gen, comm

    def _validation_adapter(self, validation_data, batch_size):
        if isinstance(validation_data, (tuple, list)):
            if len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight), "
                                 f"got {len(validation_data)} items")
            vx, vy, vw = unpack_x_y_sample_weight(tuple(validation_data))
            val = adapter_for(vx, vy, vw, None, batch_size, "validation_data")
        else:
            val = adapter_for(validation_data, None, None, None, None, "validation_data")
        if isinstance(val, ArrayAdapter) and val.size == 0:
            raise ValueError("validation_data needs at least one sample")
        return val

    # ----- evaluate / predict -----
    def _evaluate_adapter(self, data, steps=None, verbose=0):
        was = self.training
        self.eval()
        if self.compiled_metrics.built:
            self.compiled_metrics.reset_state()
        total, parts_total, seen, step = 0.0, {}, 0, -1
        it = EpochIterator(data, steps)
        bar = ProgressBar(it.num_steps, verbose)
        try:
            with no_grad():
                for step, batch in enumerate(it):
                    xb, yb, wb = data.take(batch)
                    if yb is None:
                        raise ValueError("evaluate needs labels: y is None (or the batches hold no labels)")
                    if self.compiled_loss.names is None or not self.compiled_metrics.built:
                        self._build_for(xb, yb, bind_optimizer=False)
                    pred = self(xb)
                    loss, parts = self.compiled_loss(yb, pred, wb)
                    rows = _rows(xb)
                    self._accumulate(loss, parts, pred, yb, wb, rows, parts_total)
                    total += loss.item() * rows
                    seen += rows
                    bar.update(step + 1, {})
        finally:
            self.train(was)
        if seen == 0:
            raise ValueError("evaluate: the data yielded no samples")
        sums, names = self._sums(total, parts_total)
        logs = self._logs(sums, names, seen)
        bar.finish(logs, step + 1)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 return_dict=False):
        """The loss and metrics on the data (arrays, or batches as for ``fit``): the loss alone when there are no
        metrics and one output, else the list ``[loss, *output losses, *metrics]`` (``metrics_names`` order),
        or a dict with ``return_dict=True``."""
        self._require_compiled()
        data = adapter_for(x, y, sample_weight, None, batch_size, "evaluate")
        if isinstance(data, ArrayAdapter) and data.size == 0:
            raise ValueError("evaluate needs at least one sample")
        logs = self._evaluate_adapter(data, steps, _verbosity(verbose))
        if return_dict:
            return logs
        values = [logs[k] for k in self.metrics_names]
        return values if len(values) > 1 else values[0]

    def predict(self, x, batch_size=None, verbose="auto", steps=None):
        """The model's outputs as numpy arrays (one array, or a list / dict for several outputs), in evaluation
        mode without a graph. ``x`` as for ``fit`` (batches' labels, if any, are ignored)."""
        data = adapter_for(x, None, None, None, batch_size, "predict")
        it = EpochIterator(data, steps)
        bar = ProgressBar(it.num_steps, _verbosity(verbose))
        was = self.training
        self.eval()
        outs = []
        try:
            with no_grad():
                for step, batch in enumerate(it):
                    outs.append(tree.map_structure(lambda t: t.numpy(), self(data.take(batch)[0])))
                    bar.update(step + 1, {})
        finally:
            self.train(was)
        bar.finish({}, len(outs))
        if not outs:
            return np.zeros((0,))
        flat = [tree.flatten(o) for o in outs]
        return tree.pack_sequence_as(outs[0], [np.concatenate([f[i] for f in flat]) for i in range(len(flat[0]))])

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns that batch's loss (and metrics) as ``evaluate`` does."""
        self._require_compiled()
        data = adapter_for(x, y, sample_weight, class_weight, None, "train_on_batch")
        xb, yb, wb = data.take(np.arange(data.size))
        if self.optimizer is None or self.compiled_loss.names is None:
            self._build_for(xb, yb)
        self.train()
        self.compiled_metrics.reset_state()
        loss, parts, pred = self._train_step(xb, yb, wb)
        parts_total = {}
        self._accumulate(loss, parts, pred, yb, wb, 1, parts_total)
        logs = self._logs(*self._sums(loss.item(), parts_total), 1)
        if return_dict:
            return logs
        values = [logs[k] for k in self.metrics_names]
        return values if len(values) > 1 else values[0]

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """``evaluate`` on one batch."""
        return self.evaluate(x, y, batch_size=max(1, len(tree.flatten(x)[0])), verbose=0,
                             sample_weight=sample_weight, return_dict=return_dict)

    def predict_on_batch(self, x):
        """``predict`` on one batch."""
        return self.predict(x, batch_size=max(1, len(tree.flatten(x)[0])), verbose=0)
