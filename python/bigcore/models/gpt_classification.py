"""``GPTForSequenceClassification``: a GPT trunk and a bias-free ``score`` head on the last non-padding token,
with Hugging Face's semantics (``GPT2ForSequenceClassification``) and parameter names.

The trunk is the composed GPT (``hidden_states``): the fused engine path ends in the language-model head. The head
is applied to one position per sequence, the last whose id is not ``pad_token_id``; Hugging Face applies it to
every position and then picks that one, which is the same product. Pad on the right: a causal model's last real
token then never sees the padding, so no attention mask is needed.
"""

import os

import numpy as np

from .. import nn
from .._creation import tensor
from .._dtype import int64
from ..errors import ShapeError
from ..nn import functional as F
from .gpt import GPT, hidden_states


class GPTForSequenceClassification(nn.Module):
    """A GPT that classifies (or scores) whole sequences: ``score(h[last non-pad token])``.

    Parameter names are ``transformer.*`` (the GPT's) and ``score.weight`` ``(num_labels, C)``, as in Hugging
    Face. The loss follows Hugging Face's ``problem_type`` rules: ``num_labels == 1`` is regression (MSE),
    int64 labels single-label classification (cross-entropy), float labels ``(B, num_labels)`` multi-label
    classification (binary cross-entropy on the logits).

    Args:
        config: a ``GPTConfig``.
        num_labels: classes (1 for regression).
        pad_token_id: the id that pads sequences on the right; None allows only batches of one sequence (the
            last position is used), as Hugging Face.
        dtype: ``bigcore.float32`` (the default) or ``bigcore.float64``.

    Shape: ``input_ids`` ``(B, T)`` int64; labels ``(B,)`` int64 or float, or ``(B, num_labels)`` float;
    logits ``(B, num_labels)``; loss ``()``.

    Example::

        model = GPTForSequenceClassification(GPTConfig(block_size=64, vocab_size=65, n_layer=2), num_labels=8, pad_token_id=0)
        logits, loss = model(input_ids, labels)  # (B, 8), ()

    Raises:
        ValueError: ``num_labels`` below 1, or a config ``GPT`` refuses.
    """

    def __init__(self, config, num_labels, pad_token_id=None, dtype=None):
        super().__init__()
        if not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 1:
            raise ValueError(f"GPTForSequenceClassification: num_labels must be a positive integer, got {num_labels!r}")
        gpt = GPT(config, dtype=dtype, fused=False)  # nanoGPT's initialization of the trunk
        self.config = config
        self.num_labels = num_labels
        self.pad_token_id = pad_token_id
        self.transformer = gpt.transformer
        self.score = nn.Linear(config.n_embd, num_labels, bias=False, dtype=dtype)  # weight (num_labels, C)
        nn.init.normal_(self.score.weight, mean=0.0, std=0.02)

    @classmethod
    def from_gpt(cls, gpt, num_labels, pad_token_id=None):
        """A classifier on the trunk of a trained ``GPT``: the two share the trunk's parameters (training one
        changes the other); the ``score`` head is new, N(0, 0.02).

        Example::

            clf = GPTForSequenceClassification.from_gpt(pretrained_gpt, num_labels=8, pad_token_id=0)
            clf.transformer.wte.requires_grad_(False)  # freeze what should not move
        """
        config = type(gpt.config)(**vars(gpt.config))
        # built with a trunk of no blocks (the cheapest), which the GPT's trunk then replaces
        model = cls(type(config)(**{**vars(config), "n_layer": 0}), num_labels, pad_token_id, gpt.lm_head.weight.dtype)
        model.config = config
        model.transformer = gpt.transformer
        return model

    @classmethod
    def from_pretrained(cls, path, num_labels=None, pad_token_id=None, dtype=None, dropout=0.0):
        """A classifier from a local Hugging Face GPT-2 directory: a ``GPT2ForSequenceClassification`` (its
        ``score`` too) or a ``GPT2LMHeadModel`` (its trunk; ``score`` new, N(0, 0.02), and ``lm_head`` unused).

        Args:
            path: the directory (``config.json`` and ``model.safetensors``).
            num_labels: classes; default the config's (its ``id2label``), required for a language model.
            pad_token_id: default the config's ``pad_token_id``.
            dtype, dropout: as ``GPT.from_pretrained``.

        Example::

            clf = GPTForSequenceClassification.from_pretrained("gpt2", num_labels=2, pad_token_id=50256)
            logits, _ = clf(input_ids)  # (B, 2)
        """
        from .hf_gpt2 import WEIGHTS_NAME, read_config, read_weights, trunk_from_hf

        config, hf = read_config(path)
        config.dropout = dropout
        saved_labels = len(hf["id2label"]) if isinstance(hf.get("id2label"), dict) else hf.get("num_labels")
        num_labels = num_labels if num_labels is not None else saved_labels
        if num_labels is None:
            raise ValueError(f"{os.fspath(path)!r} is not a classifier: pass num_labels")
        pad_token_id = pad_token_id if pad_token_id is not None else hf.get("pad_token_id")
        weights = read_weights(path)
        where = os.path.join(os.fspath(path), WEIGHTS_NAME)
        state = trunk_from_hf(weights, config, where)
        score = weights.pop("score.weight", None)
        if weights:
            raise ValueError(f"{where}: unexpected tensor(s) for GPT-2: {', '.join(sorted(weights)[:5])}")
        model = cls(config, num_labels, pad_token_id, dtype)
        if score is not None:
            if score.shape != (num_labels, config.n_embd):
                raise ValueError(f"{where}: score.weight has shape {score.shape}, expected "
                                 f"{(num_labels, config.n_embd)} for num_labels={num_labels}")
            state["score.weight"] = score
        else:
            state["score.weight"] = model.score.weight
        model.load_state_dict(state)
        return model.eval()

    def save_pretrained(self, path, id2label=None):
        """Write a Hugging Face ``GPT2ForSequenceClassification`` directory (``config.json`` with
        ``num_labels``/``id2label`` and ``pad_token_id``, ``model.safetensors``), which transformers loads.

        Args:
            path: a directory, created if missing.
            id2label: the class names in id order; default ``LABEL_0``, ``LABEL_1``, ...

        Example::

            clf.save_pretrained("speakers", id2label=["ROMEO", "JULIET"])
        """
        from .hf_gpt2 import trunk_to_hf, write_pretrained

        names = list(id2label) if id2label is not None else [f"LABEL_{i}" for i in range(self.num_labels)]
        if len(names) != self.num_labels:
            raise ValueError(f"save_pretrained: {len(names)} label names for {self.num_labels} labels")
        dtype = np.dtype(self.score.weight.dtype.name)
        state = self.state_dict()
        tensors = trunk_to_hf(state, self.config.bias, dtype)
        tensors["score.weight"] = np.ascontiguousarray(state["score.weight"].numpy().astype(dtype))
        write_pretrained(path, self.config, tensors, dtype, architectures=["GPT2ForSequenceClassification"],
                         id2label={str(i): n for i, n in enumerate(names)},
                         label2id={n: i for i, n in enumerate(names)}, pad_token_id=self.pad_token_id)

    def forward(self, input_ids, labels=None):
        """Logits of each sequence's class, and the loss when labels are given.

        Args:
            input_ids: int64 ids, padded on the right with ``pad_token_id``.
            labels: class ids (int64), targets (float, regression) or 0/1 targets per class (float,
                multi-label), or None.

        Returns:
            ``(logits, loss)``; loss is None without labels.

        Shape: input_ids ``(B, T)``; logits ``(B, num_labels)``; loss ``()``.

        Example::

            logits, loss = clf(input_ids, labels)  # (B, num_labels), ()
            loss.backward()

        Raises:
            ValueError: B > 1 without a ``pad_token_id``, or T longer than block_size.
            IndexError (``bigcore.OutOfRangeError``): an id outside the vocabulary or a label outside
                ``[0, num_labels)``.
            bigcore.ShapeError: input_ids not 2-D, or labels of the wrong shape.
        """
        B, T = GPT._check_input(self, input_ids, None)  # GPT's own checks: they read only self.config
        last = self._last_token(input_ids, B, T)  # (B,) numpy
        x = hidden_states(self.transformer, input_ids)  # (B, T, C)
        C = x.shape[-1]
        pooled = x.reshape(B * T, C).index_select(0, tensor(np.arange(B) * T + last))  # (B, C)
        logits = self.score(pooled)  # (B, num_labels)
        if labels is None:
            return logits, None
        return logits, self._loss(logits, labels, B)

    def _last_token(self, input_ids, B, T):
        if self.pad_token_id is None:
            if B != 1:
                raise ValueError("Cannot handle batch sizes > 1 if no padding token is defined "
                                 "(GPTForSequenceClassification(..., pad_token_id=...))")
            return np.array([T - 1])
        ids = input_ids._c.numpy()  # (B, T)
        # Hugging Face's rule: the rightmost position whose id is not the pad id (0 when all are pad)
        return (np.arange(T) * (ids != self.pad_token_id)).argmax(-1)

    def _loss(self, logits, labels, B):
        if self.num_labels == 1:  # regression
            return F.mse_loss(logits.view(B), labels.view(B).to(logits.dtype))
        if labels.dtype is int64:  # single-label classification
            if labels.shape != (B,):
                raise ShapeError(f"GPTForSequenceClassification: int64 labels must be (B,) = ({B},), got {labels.shape}")
            return F.cross_entropy(logits, labels)
        if labels.shape != (B, self.num_labels):  # multi-label classification
            raise ShapeError(f"GPTForSequenceClassification: float labels must be (B, num_labels) = "
                             f"({B}, {self.num_labels}), got {labels.shape}")
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        """AdamW over the parameters that require gradients, decay on matrices only: as
        ``GPT.configure_optimizers``, so frozen layers (``requires_grad_(False)``) are left out.

        Example::

            optimizer = clf.configure_optimizers(0.01, 3e-4, (0.9, 0.99))
        """
        return GPT.configure_optimizers(self, weight_decay, learning_rate, betas)


__all__ = ["GPTForSequenceClassification"]
