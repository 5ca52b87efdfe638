"""Callbacks for ``fit``: ``EarlyStopping``, ``ModelCheckpoint``, ``LearningRateScheduler``, and ``History``
(returned by ``fit``)."""

import math

import numpy as np


class Callback:
    """Hooks called by ``fit``; ``self.model`` is set before training starts."""

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """``history.history["loss"]``, ``["val_accuracy"]``, ...: one value per epoch; ``history.epoch``."""

    def __init__(self):
        self.history, self.epoch, self.params = {}, [], {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _better(mode, monitor):
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.startswith("fmeasure")) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; optionally restore the
    weights of the best epoch."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto", baseline=None, restore_best_weights=False, verbose=0):
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), int(patience)
        self.mode = _better(mode, monitor)
        self.baseline, self.restore_best_weights, self.verbose = baseline, restore_best_weights, verbose
        self.stopped_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait, self.best_weights = 0, None
        self.best = self.baseline if self.baseline is not None else (math.inf if self.mode == "min" else -math.inf)

    def _improved(self, value):
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which is not among the logs {sorted(logs or {})}")
        if self._improved(value):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = {k: v.numpy() for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.load_state_dict(self.best_weights)
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping")


class ModelCheckpoint(Callback):
    """Save the model after each epoch, or only when ``monitor`` improves with ``save_best_only``.

    ``filepath`` may hold ``{epoch}`` and log names: ``"ck-{epoch:02d}-{val_loss:.2f}.keras"``. A name ending in
    ``.keras`` gets the whole model (``model.save``, unless ``save_weights_only``); any other name the weights, as a
    safetensors state dict (``.weights.safetensors`` files load with ``model.load_weights``).
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto"):
        self.filepath, self.monitor, self.save_best_only = str(filepath), monitor, save_best_only
        self.save_weights_only = bool(save_weights_only)
        if self.save_weights_only and self.filepath.endswith(".keras"):
            raise ValueError(f"ModelCheckpoint: save_weights_only=True writes weights, not a .keras archive; name "
                             f"the file '<name>.weights.safetensors'. Received: filepath={self.filepath}")
        self.mode, self.verbose = _better(mode, monitor), verbose
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        from ..io import save

        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                raise KeyError(f"ModelCheckpoint monitors {self.monitor!r}, which is not among the logs {sorted(logs)}")
            if not (value < self.best if self.mode == "min" else value > self.best):
                return
            self.best = value
        from .. import distributed

        if distributed.is_initialized() and distributed.get_rank() != 0:
            return  # data-parallel: every rank holds the same weights; rank 0 writes them
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if path.endswith(".keras"):
            self.model.save(path)
        else:
            save(self.model.state_dict(), path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved model to {path}")


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)``."""

    def __init__(self, schedule, verbose=0):
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = float(self.schedule(epoch, float(opt.param_groups[0]["lr"])))
        if not np.isfinite(lr):
            raise ValueError(f"the schedule returned a non-finite learning rate {lr}")
        for g in opt.param_groups:
            g["lr"] = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")
