"""Graph clean-up after emission: constant folding (``do_constant_folding``) and removal of what no output needs.

Folding evaluates, with onnx's reference implementation, each node whose inputs are all initializers (the
transposed weight of a ``linear``, the reordered gates of an LSTM, masks of fixed size) and stores its result as
an initializer under the node's output name. It never makes the file grow by more than a few kilobytes and never
stores data twice: a node whose result would sit next to a large input that stays in use (a tied weight read by
both an embedding and a transposed ``linear``) is left to run, and random nodes are never folded.
"""

from collections import Counter

import numpy as np

_NEVER = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
_MAX_GROWTH = 4096  # elements a fold may add to the file
_SMALL = 64  # elements of a constant that may exist twice (shapes, scalars); larger data never does


def fold_constants(nodes, initializers, outputs, opset):
    """Fold constant nodes into initializers (in place on ``initializers``); returns the nodes left."""
    from onnx.reference import ReferenceEvaluator

    uses = Counter(i for n in nodes for i in set(n.input) if i)
    uses.update(outputs)
    kept = []
    for n in nodes:
        ins = sorted({i for i in n.input if i})
        foldable = (n.op_type not in _NEVER and n.domain in ("", "ai.onnx") and ins
                    and all(i in initializers for i in ins) and not any(o in outputs for o in n.output))
        if foldable:
            results = [np.asarray(r) for r in
                       ReferenceEvaluator(n, opsets={"": opset}).run(None, {i: initializers[i] for i in ins})]
            size = sum(r.size for r in results)
            kept_inputs = [initializers[i].size for i in ins if uses[i] > 1]  # stay in the file after the fold
            growth = size - sum(initializers[i].size for i in ins if uses[i] == 1)
            if growth <= _MAX_GROWTH and (size <= _SMALL or all(k <= _SMALL for k in kept_inputs)):
                for name, r in zip(n.output, results):
                    initializers[name] = r
                for i in ins:
                    uses[i] -= 1
                continue
        kept.append(n)
    return kept


def prune(nodes, initializers, outputs):
    """The nodes some output needs, in order; initializers no kept node reads are dropped (in place)."""
    needed = set(outputs)
    keep = []
    for n in reversed(nodes):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(i for i in n.input if i)
    for name in [k for k in initializers if k not in needed]:
        del initializers[name]
    return keep[::-1]
