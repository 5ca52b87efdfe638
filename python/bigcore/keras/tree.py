"""Nested structures of inputs and outputs (a tensor, a list or tuple, a dict by name): flatten them to a list of
leaves in a fixed order, map a function over the leaves, and pack a flat list back into a structure. Dicts are
walked in sorted key order, as Keras (``keras.tree``) does, so a model's inputs pair up however a dict was built.
Only lists, tuples and dicts nest; everything else (tensors, arrays, None) is a leaf."""


def is_nested(x):
    return isinstance(x, (list, tuple, dict))


def flatten(x):
    """The leaves of ``x``, depth first (dict values by sorted key)."""
    out, stack = [], [x]
    while stack:  # iterative: any depth
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item[k] for k in reversed(sorted(item)))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def pack_sequence_as(structure, flat):
    """``flat`` (as many leaves as ``structure`` has) rebuilt in the shape of ``structure``."""
    it = iter(flat)

    def build(s):
        if isinstance(s, dict):
            return {k: build(s[k]) for k in sorted(s)}
        if isinstance(s, (list, tuple)):
            return type(s)(build(v) for v in s)
        return next(it)

    return build(structure)


def map_structure(fn, x):
    """``x`` with every leaf replaced by ``fn(leaf)``."""
    return pack_sequence_as(x, [fn(v) for v in flatten(x)])
