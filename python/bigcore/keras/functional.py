"""Functional models: ``keras.Model(inputs, outputs)`` over a graph of layer calls on ``keras.Input`` tensors.

The graph is walked back from the outputs to the inputs once (iteratively, any depth), giving the calls in an
order where each comes after the calls it reads; calling the model replays them on data. Every layer of the graph
is registered as a submodule under its name, so ``parameters()``, ``state_dict()`` (``dense.linear.weight``)
and ``to()`` see them. ``get_config`` records each layer with the calls it received, by the names of the tensors
it read (Keras 3's ``inbound_nodes``), and ``from_config`` replays them.
"""

from . import tree
from .keras_tensor import KerasTensor
from .layers.input_layer import InputLayer
from .layers.layer import as_tensor
from .model import Model


def _history_key(t, local):
    layer, node_index, tensor_index = t._keras_history
    return [layer.name, local[id(layer._inbound_nodes[node_index])], tensor_index]


class Functional(Model):
    """A model defined by its inputs and outputs: ``keras.Model(inputs, outputs, name=None)``.

    Args:
        inputs: a ``keras.Input`` tensor, or a list or dict of them.
        outputs: a tensor computed from them by calling layers, or a list or dict of such tensors.

    Calling it takes data in the structure of ``inputs`` (a list in order, or a dict by Input name) and gives
    outputs in the structure of ``outputs``.

    Example::

        a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(5,), name="b")
        h = keras.layers.Concatenate()([keras.layers.Dense(8)(a), b])
        model = keras.Model([a, b], keras.layers.Dense(1)(h))
        model.predict([xa, xb])  # or {"a": xa, "b": xb}
    """

    def __init__(self, inputs, outputs, name=None, **kwargs):
        super().__init__(name=name or None, **kwargs)
        for what, struct in (("inputs", inputs), ("outputs", outputs)):
            bad = [t for t in tree.flatten(struct) if not isinstance(t, KerasTensor)]
            if bad or not tree.flatten(struct):
                raise TypeError(f"All `{what}` values must be KerasTensors (made by keras.Input and layers called on "
                                f"them). Received: {what}={struct!r}")
        self._inputs_struct, self._outputs_struct = inputs, outputs
        self.inputs, self.outputs = tree.flatten(inputs), tree.flatten(outputs)
        for t in self.inputs:
            if not isinstance(t._keras_history[0], InputLayer):
                raise ValueError(f"The inputs of a functional model must be keras.Input tensors; {t!r} was made by "
                                 f"layer {t._keras_history[0].name!r}")
        self._nodes = self._walk()
        layers, names = [], set()
        for t in self.inputs:
            layers.append(t._keras_history[0])
        for node in self._nodes:
            if node.layer not in layers:
                layers.append(node.layer)
        for layer in layers:
            if layer.name in names:
                raise ValueError(f"The name {layer.name!r} is used 2 times in the model. All layer names should be "
                                 "unique.")
            names.add(layer.name)
            self.add_module(layer.name, layer)
        if isinstance(outputs, dict):
            self.output_names = sorted(outputs)
        else:
            self.output_names = [t._keras_history[0].name for t in self.outputs]
        if len(set(self.output_names)) < len(self.output_names):
            self.output_names = [f"{n}_{i}" for i, n in enumerate(self.output_names)]
        self.input_names = [t._keras_history[0].name for t in self.inputs]
        self._build_input_shape = tree.map_structure(lambda t: list(t.shape), inputs)
        self._build_input_dtype = tree.map_structure(lambda t: t.dtype.name, inputs)
        self.built = True

    def _walk(self):
        """The non-input calls the outputs depend on, each after the calls whose outputs it reads."""
        inputs = {id(t) for t in self.inputs}
        order, done, stack = [], set(), []
        for t in reversed(self.outputs):
            stack.append((t, False))
        while stack:
            t, expanded = stack.pop()
            layer, node_index, _ = t._keras_history
            node = layer._inbound_nodes[node_index]
            if id(node) in done:
                continue
            if id(t) in inputs:
                continue
            if node.is_input:
                raise ValueError(f"Graph disconnected: cannot obtain value for tensor {t!r} at layer {layer.name!r}: "
                                 f"it is an Input that is not among the model's inputs {self.inputs}")
            if expanded:
                done.add(id(node))
                order.append(node)
                continue
            stack.append((t, True))
            for parent in reversed(node.parents):
                p_layer, p_index, _ = parent._keras_history
                if id(p_layer._inbound_nodes[p_index]) not in done:
                    stack.append((parent, False))
        return order

    @property
    def layers(self):
        return list(self._modules.values())

    def _layer_output_shapes(self):
        shapes = {id(t._keras_history[0]): t.shape for t in self.inputs}
        shapes.update({id(node.layer): (node.flat_outputs[0].shape if len(node.flat_outputs) == 1 else
                                        [t.shape for t in node.flat_outputs]) for node in self._nodes})
        return shapes

    def _flat_inputs(self, inputs):
        """The data for each Input, in order, checked against its shape."""
        if isinstance(inputs, dict):
            missing = [n for n in self.input_names if n not in inputs]
            unknown = [k for k in inputs if k not in self.input_names]
            if missing or unknown:
                raise ValueError(f"model {self.name!r} takes inputs named {self.input_names}; got the keys "
                                 f"{sorted(inputs)}")
            flat = [inputs[n] for n in self.input_names]
        elif isinstance(inputs, (list, tuple)):
            flat = list(inputs)
        else:
            flat = [inputs]
        if len(flat) != len(self.inputs):
            raise ValueError(f"model {self.name!r} expects {len(self.inputs)} input(s) {self.input_names}, but it "
                             f"received {len(flat)} input tensors")
        flat = [as_tensor(v) for v in flat]
        for i, (kt, v) in enumerate(zip(self.inputs, flat)):
            if len(kt.shape) != v.ndim or any(k is not None and k != s for k, s in zip(kt.shape, v.shape)):
                raise ValueError(f'Input {i} of layer "{self.name}" is incompatible with the layer: expected '
                                 f"shape={kt.shape}, found shape={tuple(v.shape)}")
        return flat

    def call(self, inputs, *more):
        values = {}
        for kt, v in zip(self.inputs, self._flat_inputs([inputs, *more] if more else inputs)):
            values[id(kt)] = v
        for node in self._nodes:
            args, kwargs = tree.map_structure(lambda v: values[id(v)] if isinstance(v, KerasTensor) else v,
                                              (list(node.args), node.kwargs))
            out = node.layer(*args, **kwargs)
            for kt, o in zip(node.flat_outputs, tree.flatten(out)):
                values[id(kt)] = o
        return tree.pack_sequence_as(self._outputs_struct, [values[id(t)] for t in self.outputs])

    # ----- configuration -----
    def get_config(self):
        from .saving import serialize_keras_object

        local = {}  # each node's index among its layer's calls inside this model
        counts = {}
        nodes = [t._keras_history[0]._inbound_nodes[0] for t in self.inputs] + self._nodes
        for node in nodes:
            local[id(node)] = counts.get(id(node.layer), 0)
            counts[id(node.layer)] = local[id(node)] + 1
        def encode(v):
            if not isinstance(v, KerasTensor):
                return v
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(v.shape), "dtype": v.dtype.name, "keras_history": _history_key(v, local)}}

        calls = {}
        for node in self._nodes:
            args, kwargs = tree.map_structure(encode, (list(node.args), node.kwargs))
            calls.setdefault(id(node.layer), []).append({"args": args, "kwargs": kwargs})
        layers = []
        for layer in self.layers:
            entry = serialize_keras_object(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = calls.get(id(layer), [])
            layers.append(entry)
        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "input_layers": tree.map_structure(lambda t: _history_key(t, local), self._inputs_struct),
                "output_layers": tree.map_structure(lambda t: _history_key(t, local), self._outputs_struct)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from .saving import deserialize_keras_object

        try:
            layers = {c["name"]: deserialize_keras_object(c, custom_objects) for c in config["layers"]}
            made = {}  # (layer name, call index, tensor index) -> KerasTensor
            for name, layer in layers.items():
                if isinstance(layer, InputLayer):
                    made[(name, 0, 0)] = layer.output
            pending = [(c["name"], i, call) for c in config["layers"] for i, call in enumerate(c["inbound_nodes"])]
            done_calls = {name: 0 for name in layers}
            while pending:
                left = []
                for name, i, call in pending:
                    refs = []
                    _decode_call(call, lambda v: refs.append(tuple(v["config"]["keras_history"])))
                    if i != done_calls[name] or any(r not in made for r in refs):
                        left.append((name, i, call))
                        continue
                    args, kwargs = _decode_call(call, lambda v: made[tuple(v["config"]["keras_history"])])
                    out = layers[name](*args, **kwargs)
                    for j, t in enumerate(tree.flatten(out)):
                        made[(name, i, j)] = t
                    done_calls[name] += 1
                if len(left) == len(pending):
                    stuck = sorted({n for n, _, _ in left})
                    raise ValueError(f"the calls of layers {stuck} read tensors no call makes")
                pending = left
            inputs = _decode_refs(config["input_layers"], made)
            outputs = _decode_refs(config["output_layers"], made)
        except (KeyError, TypeError, IndexError) as e:
            raise ValueError(f"a damaged functional model config ({type(e).__name__}: {e})") from None
        return cls(inputs, outputs, name=config.get("name"), trainable=config.get("trainable", True))


def _is_ref(v):
    return isinstance(v, list) and len(v) == 3 and isinstance(v[0], str) and isinstance(v[1], int)


def _decode_refs(refs, made):
    """The structure of ``[layer name, call, tensor]`` references as the KerasTensors they name."""
    if _is_ref(refs):
        return made[tuple(refs)]
    if isinstance(refs, dict):
        return {k: _decode_refs(v, made) for k, v in refs.items()}
    return [_decode_refs(v, made) for v in refs]


def _decode_call(call, decode):
    """A recorded call's ``(args, kwargs)`` with its tensor references as KerasTensors (encoded tensors are dicts,
    which ``tree`` would walk into, so they are decoded before the structure is rebuilt)."""

    def walk(v):
        if isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
            return decode(v)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(call["args"]), walk(call["kwargs"])
