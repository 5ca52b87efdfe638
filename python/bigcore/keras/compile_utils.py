"""What ``compile`` sets up, applied to every batch: ``CompiledLoss`` (one loss per output, weighted, summed) and
``CompiledMetrics`` (the metrics of each output, accumulated over an epoch). Both learn the outputs' structure
from the first batch, so they work for subclassed models as well as functional ones.

Names follow Keras 3: with one output the logs are ``loss`` and the metric names; with several, also
``<output>_loss`` for each output's (unweighted) loss and ``<output>_<metric>``. A weighted metric whose name
is taken is logged as ``weighted_<name>``.
"""

import numpy as np

from . import losses, metrics, tree


def output_list(y_pred, names, what):
    """The outputs (or labels, or weights) as a list in the order of ``names``; a dict is read by name."""
    if isinstance(y_pred, dict):
        missing = [n for n in names if n not in y_pred]
        if missing:
            raise ValueError(f"{what} is a dict without the keys {missing}; the model's outputs are {names}")
        return [y_pred[n] for n in names]
    if isinstance(y_pred, (list, tuple)):
        if len(y_pred) != len(names):
            raise ValueError(f"{what} has {len(y_pred)} entries, but the model has {len(names)} outputs {names}")
        return list(y_pred)
    if len(names) != 1:
        raise ValueError(f"{what} is a single array, but the model has {len(names)} outputs {names}: pass a list "
                         "or a dict by output name")
    return [y_pred]


def weights_per_output(sample_weight, names):
    """The sample weights of each output: one array for all, or a list / dict by output name."""
    if sample_weight is None:
        return [None] * len(names)
    if tree.is_nested(sample_weight):
        return output_list(sample_weight, names, "sample_weight")
    return [sample_weight] * len(names)


def _per_output(spec, names, what):
    """A compile argument (one item for all outputs, a list, or a dict by output name) as one entry per output."""
    if isinstance(spec, dict):
        unknown = [k for k in spec if k not in names]
        if unknown:
            raise ValueError(f"In the dict argument `{what}`, keys {unknown} do not correspond to any model output "
                             f"{names}")
        return [spec.get(n) for n in names]
    if isinstance(spec, (list, tuple)) and len(names) > 1:
        if len(spec) != len(names):
            raise ValueError(f"For a model with {len(names)} outputs, `{what}` as a list needs {len(names)} entries, "
                             f"got {len(spec)}")
        return list(spec)
    return [spec] * len(names)


class CompiledLoss:
    """``loss`` and ``loss_weights`` as given to ``compile``, resolved per output at the first batch."""

    def __init__(self, loss, loss_weights=None):
        self.loss, self.loss_weights = loss, loss_weights
        self.names = None

    def build(self, names):
        self.names = list(names)
        fns = _per_output(self.loss, self.names, "loss")
        self.fns = [None if f is None else losses.get(f) for f in fns]
        if all(f is None for f in self.fns):
            raise ValueError("compile needs a loss")
        weights = self.loss_weights
        if isinstance(weights, (int, float)):
            weights = [weights] * len(self.names)
        self.weights = [1.0 if w is None else float(w) for w in _per_output(weights, self.names, "loss_weights")]

    def __call__(self, y_true, y_pred, sample_weight=None):
        """``(total loss tensor, {"<output>_loss": float, ...})`` (the dict empty for one output)."""
        ys, ps = output_list(y_true, self.names, "y"), output_list(y_pred, self.names, "the model's output")
        ws = weights_per_output(sample_weight, self.names)
        total, parts = None, {}
        for name, fn, weight, y, p, w in zip(self.names, self.fns, self.weights, ys, ps, ws):
            if fn is None:
                continue
            value = fn(y, p, sample_weight=w) if w is not None else fn(y, p)
            if len(self.names) > 1:
                parts[f"{name}_loss"] = value.item()
            value = value * weight if weight != 1.0 else value
            total = value if total is None else total + value
        return total, parts


class CompiledMetrics:
    """``metrics`` (unweighted) and ``weighted_metrics`` (given the sample weights), per output."""

    def __init__(self, metric_specs=None, weighted_specs=None, loss=None):
        self.specs, self.weighted_specs, self.loss = metric_specs, weighted_specs, loss
        self.built = False

    def _resolve(self, spec, y, p, name):
        if spec is None:
            return []
        items = spec if isinstance(spec, (list, tuple)) else [spec]
        out = []
        for m in items:
            if isinstance(m, str) and m in ("accuracy", "acc"):
                threshold = 0.0 if getattr(self.loss_for(name), "from_logits", False) else 0.5
                out.append(metrics.accuracy_for(np.shape(y), p.shape, m, threshold))
            else:
                out.append(metrics.get(m))
        return out

    def loss_for(self, name):
        fns = getattr(self.loss, "fns", None)
        return None if fns is None else fns[self.loss.names.index(name)]

    def build(self, names, ys, ps):
        self.names = list(names)
        multi = len(self.names) > 1
        self.entries, taken = [], set()  # (output index, display name, metric, weighted)
        for weighted, specs in ((False, self.specs), (True, self.weighted_specs)):
            if not specs:
                continue
            per = _per_output(specs, self.names, "weighted_metrics" if weighted else "metrics") if (
                multi or isinstance(specs, dict)) else [specs]
            for i, spec in enumerate(per):
                for m in self._resolve(spec, ys[i], ps[i], self.names[i]):
                    base = m.name
                    display = f"{self.names[i]}_{base}" if multi else base
                    if display in taken and weighted:
                        display = f"{self.names[i]}_weighted_{base}" if multi else f"weighted_{base}"
                    n, unique = 1, display
                    while unique in taken:
                        unique, n = f"{display}_{n}", n + 1
                    taken.add(unique)
                    self.entries.append((i, unique, m, weighted))
        self.built = True

    @property
    def result_names(self):
        return [name for _, name, _, _ in self.entries] if self.built else []

    def reset_state(self):
        for _, _, m, _ in getattr(self, "entries", []):
            m.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None, names=None):
        ys = output_list(y_true, names, "y")
        ps = [p.detach().numpy() for p in output_list(y_pred, names, "the model's output")]
        if not self.built:
            self.build(names, ys, ps)
        ws = weights_per_output(sample_weight, names)
        for i, _, m, weighted in self.entries:
            y = ys[i].numpy() if hasattr(ys[i], "numpy") else np.asarray(ys[i])
            m.update_state(y, ps[i], ws[i] if weighted else None)

    def state(self):
        """Each metric's ``(total, count)``: what data-parallel training sums over the ranks (a metric that is not
        a running mean counts as ``(result, 1)``, so ranks average it)."""
        return [(m.total, m.count) if isinstance(m, metrics.MeanMetricWrapper) else (float(m.result()), 1.0)
                for _, _, m, _ in self.entries]

    def result(self, pairs=None):
        """Each metric's value; from ``pairs`` (``state()``'s form, e.g. summed over ranks) when given."""
        if pairs is None:
            return {name: float(m.result()) for _, name, m, _ in self.entries}
        return {name: (float(t) / float(c) if c else 0.0) for (_, name, _, _), (t, c) in zip(self.entries, pairs)}
