"""An LSTM GAN for token sequences: ``LSTMGenerator`` (Embedding, LSTM, Linear + Tanh, Linear to the vocabulary),
``LSTMDiscriminator`` (Embedding, LSTM, Linear to 1, Sigmoid) and ``SequenceGAN``, the trainer that pretrains the
generator by maximum likelihood and then trains both adversarially.

Token ids are discrete, so no gradient flows from a discriminator that reads ids back into the generator that drew
them. The generator therefore also draws differentiable samples (``LSTMGenerator.rsample``): straight-through
Gumbel-softmax vectors ``(B, T, V)``, exactly one-hot in the forward pass, with the gradient of the soft sample in the
backward pass (``F.gumbel_softmax(hard=True)``), each fed back as the next step's input. The discriminator reads
such vectors through its embedding matrix, ``soft @ embedding.weight``: for a one-hot row that is exactly the row
``embedding(id)`` picks, so real ids and generated vectors are read alike, and the gradient reaches the generator.
"""

import numbers

import numpy as np

from .._creation import full, ones, tensor, zeros
from .._dtype import int64
from .._functions import cat, stack
from .._random import Generator, multinomial
from .._tensor import Tensor
from ..autograd import no_grad
from ..errors import DTypeError, ShapeError
from ..nn import functional as F
from ..nn.activation import Sigmoid, Tanh
from ..nn.layers import Embedding, Linear
from ..nn.module import Module
from ..nn.rnn import LSTM
from ..nn.utils import clip_grad_norm_
from ..optim import Adam


def _embed_tokens(embedding, input, op):
    """``input`` read through ``embedding``: int64 ids ``(B, T)`` by lookup, float vectors ``(B, T, V)`` (one-hot or
    soft) as ``input @ embedding.weight``, which equals the lookup on one-hot rows and is differentiable in
    ``input``. Returns ``(B, T, C)``; a ShapeError names both sizes when ``V`` is not the embedding's vocabulary."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a bigcore.Tensor of token ids or one-hot vectors, got {type(input).__name__}")
    V = embedding.num_embeddings
    if input.is_floating_point():
        if input.ndim != 3:
            raise ShapeError(f"{op}: one-hot input must have shape (B, T, V={V}), got {input.shape}")
        if input.shape[2] != V:
            raise ShapeError(f"{op}: one-hot input has {input.shape[2]} categories (shape {input.shape}) but the "
                             f"vocabulary has vocab_size={V}")
        return input @ embedding.weight  # (B, T, V) @ (V, C) -> (B, T, C)
    return embedding(_check_ids(input, op))  # (B, T, C)


def _check_ids(ids, op):
    """``ids`` if it is an int64 tensor of shape (B, T); else a DTypeError or ShapeError saying what it is."""
    if ids.dtype is not int64:
        raise DTypeError(f"{op}: token ids must be int64, got {ids.dtype!r}")
    if ids.ndim != 2:
        raise ShapeError(f"{op}: token ids must have shape (B, T), got {ids.shape}")
    return ids


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0:
        raise ValueError(f"{name} must be a positive number, got {v!r}")
    return float(v)


def _count(name, v):
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return int(v)


class LSTMGenerator(Module):
    """An autoregressive LSTM language model used as a GAN's generator.

    ``embedding`` (V, C) -> ``lstm`` (C -> H, ``num_layers``, batch first) -> ``proj`` (H -> H) and ``tanh`` ->
    ``head`` (H -> V). The head emits logits: a Tanh on the logits would bound them to [-1, 1], so no
    character could ever get more than e^2 (about 7.4) times the probability of another and samples would stay
    near uniform; the Tanh sits on the hidden projection, where bounding is harmless.

    Every sequence starts from ``start_token`` (fed as the first input, not part of the output), so the model
    learns ``p(x_0 .. x_{T-1} | start)``.

    Args:
        vocab_size: V, the number of token ids.
        embed_dim: C, the embedding width. hidden_dim: H, the LSTM's width.
        num_layers: stacked LSTM layers (default 1). dropout: between LSTM layers, while training.
        start_token: the id fed as the first input (default 0).

    Shape: ``forward`` takes ids ``(B, T)`` int64 or one-hot vectors ``(B, T, V)`` float and returns logits
    ``(B, T, V)`` and the LSTM state ``(h_n, c_n)``, each ``(num_layers, B, H)``.

    Example::

        >>> g = LSTMGenerator(65, 32, 128)
        >>> g.sample(4, 50).shape, g.rsample(4, 50).shape  # ids (4, 50); differentiable one-hots (4, 50, 65)
    """

    def __init__(self, vocab_size, embed_dim, hidden_dim, num_layers=1, dropout=0.0, start_token=0):
        super().__init__()
        self.vocab_size = _count("vocab_size", vocab_size)
        if not 0 <= start_token < self.vocab_size:
            raise ValueError(f"start_token {start_token} is out of range for vocab_size {self.vocab_size}")
        self.start_token = int(start_token)
        self.embedding = Embedding(self.vocab_size, embed_dim)
        self.lstm = LSTM(embed_dim, hidden_dim, num_layers, batch_first=True, dropout=dropout)
        self.proj = Linear(hidden_dim, hidden_dim)
        self.tanh = Tanh()
        self.head = Linear(hidden_dim, self.vocab_size)

    def forward(self, input, hx=None):
        """Next-token logits ``(B, T, V)`` after each input token, and the LSTM state ``(h_n, c_n)``."""
        x = _embed_tokens(self.embedding, input, "LSTMGenerator")  # (B, T, C)
        out, hx = self.lstm(x, hx)  # (B, T, H)
        return self.head(self.tanh(self.proj(out))), hx  # (B, T, V)

    def _start(self, batch_size, start):
        """The first inputs, int64 ``(B, 1)``: ``start`` (None: ``start_token``; an int; or ``(B,)`` ids)."""
        if start is None:
            start = self.start_token
        if isinstance(start, Tensor):
            if start.shape != (batch_size,):
                raise ShapeError(f"LSTMGenerator: start ids must have shape ({batch_size},), got {start.shape}")
            return start.reshape(batch_size, 1)
        return full((batch_size, 1), int(start), dtype=int64)

    def nll(self, ids):
        """The mean negative log-likelihood per token of ``ids`` (B, T) int64 under teacher forcing: the model
        reads the start token and ``ids[:, :-1]`` and predicts ``ids``. A scalar, differentiable."""
        if not isinstance(ids, Tensor):
            raise TypeError(f"LSTMGenerator.nll: expected a bigcore.Tensor of token ids, got {type(ids).__name__}")
        B, T = _check_ids(ids, "LSTMGenerator.nll").shape
        inputs = cat([self._start(B, None), ids[:, : T - 1]], 1)  # (B, T)
        logits, _ = self(inputs)  # (B, T, V)
        return F.cross_entropy(logits.reshape(B * T, self.vocab_size), ids.reshape(B * T))

    @no_grad()
    def sample(self, batch_size, seq_len, temperature=1.0, start=None, generator=None):
        """Token ids drawn one at a time from ``softmax(logits / temperature)``, each fed back as the next input.

        Args:
            batch_size, seq_len: B and T. temperature: > 0; below 1 sharpens, above 1 flattens.
            start: the first input: None (``start_token``), an int, or ``(B,)`` int64 ids.
            generator: a :class:`bigcore.Generator` for the draws (default: the seeded default generator).

        Returns:
            int64 ids ``(B, T)``, without the start token.
        """
        B, T = _count("batch_size", batch_size), _count("seq_len", seq_len)
        temperature = _positive("temperature", temperature)
        x, hx, out = self._start(B, start), None, []
        for _ in range(T):
            logits, hx = self(x, hx)  # (B, 1, V)
            probs = (logits[:, -1] / temperature).softmax(-1)  # (B, V)
            x = multinomial(probs, 1, True, generator=generator)  # (B, 1)
            out.append(x)
        return cat(out, 1)  # (B, T)

    def rsample(self, batch_size, seq_len, tau=1.0, hard=True, start=None, generator=None):
        """A differentiable sample (PyTorch's name for a reparameterized one): at each step a Gumbel-softmax
        draw from the logits (``F.gumbel_softmax(logits, tau, hard)``), fed back through the embedding matrix as
        the next input, so gradients reach every parameter through the whole sequence.

        Args:
            batch_size, seq_len: B and T. tau: the Gumbel-softmax temperature, > 0.
            hard: exactly one-hot vectors with the soft sample's gradient (straight through; the default), or the
                soft samples themselves.
            start: the first input: None (``start_token``), an int, or ``(B,)`` int64 ids.
            generator: a :class:`bigcore.Generator` for the noise (default: the seeded default generator).

        Returns:
            float ``(B, T, V)``; with ``hard``, ``argmax(-1)`` gives ids distributed as :meth:`sample`'s at
            temperature 1.
        """
        B, T = _count("batch_size", batch_size), _count("seq_len", seq_len)
        x, hx, out = self._start(B, start), None, []
        for _ in range(T):
            logits, hx = self(x, hx)  # (B, 1, V)
            y = F.gumbel_softmax(logits[:, -1], tau, hard, generator=generator)  # (B, V)
            out.append(y)
            x = y.unsqueeze(1)  # (B, 1, V)
        return stack(out, 1)  # (B, T, V)


class LSTMDiscriminator(Module):
    """An LSTM sequence classifier used as a GAN's discriminator: the probability that a sequence is real.

    ``embedding`` (V, C) -> ``lstm`` (C -> H, batch first) -> its last layer's final hidden state (both directions
    when bidirectional) -> ``fc`` (H -> 1) -> ``sigmoid``. Token ids are looked up; float one-hot (or soft)
    vectors ``(B, T, V)`` are read as ``input @ embedding.weight``, the same rows for one-hot input, and
    differentiable, so a generator's straight-through samples get a gradient. :meth:`logit` is the score before the
    sigmoid, for the numerically stable ``F.binary_cross_entropy_with_logits``.

    Args:
        vocab_size: V. embed_dim: C. hidden_dim: H.
        num_layers: stacked LSTM layers (default 1). dropout: between LSTM layers, while training.
        bidirectional: read the sequence both ways.

    Shape: input ids ``(B, T)`` int64 or vectors ``(B, T, V)`` float; output ``(B, 1)``.

    Example::

        >>> d = LSTMDiscriminator(65, 32, 64)
        >>> d(bigcore.randint(65, (4, 50))).shape  # (4, 1), probabilities of being real
    """

    def __init__(self, vocab_size, embed_dim, hidden_dim, num_layers=1, dropout=0.0, bidirectional=False):
        super().__init__()
        self.vocab_size = _count("vocab_size", vocab_size)
        self.embedding = Embedding(self.vocab_size, embed_dim)
        self.lstm = LSTM(embed_dim, hidden_dim, num_layers, batch_first=True, dropout=dropout,
                         bidirectional=bidirectional)
        self.fc = Linear(hidden_dim * (2 if bidirectional else 1), 1)
        self.sigmoid = Sigmoid()

    def logit(self, input):
        """The score before the sigmoid, ``(B, 1)``: positive means real."""
        x = _embed_tokens(self.embedding, input, "LSTMDiscriminator")  # (B, T, C)
        _, (h_n, _) = self.lstm(x)  # (num_layers * D, B, H)
        d = 2 if self.lstm.bidirectional else 1
        last = h_n[h_n.shape[0] - d:].transpose(0, 1)  # (B, D, H): the last layer's final states
        return self.fc(last.reshape(last.shape[0], -1))  # (B, 1)

    def forward(self, input):
        """The probability that each sequence is real, ``(B, 1)``."""
        return self.sigmoid(self.logit(input))


def _as_ids(batch):
    """A batch of real sequences as int64 ``(B, T)``: a Tensor, a numpy array, or a tuple/list whose first item is
    one (what a ``DataLoader`` over a ``TensorDataset`` yields)."""
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
        batch = batch[0]
    if not isinstance(batch, Tensor):
        batch = tensor(np.asarray(batch))
    return _check_ids(batch, "SequenceGAN: real sequences")


def _batches(data):
    """Endless batches: ``data()`` again and again, or passes over the iterable ``data`` (a DataLoader)."""
    if callable(data):
        while True:
            yield data()
    passes = 0
    while True:
        empty = True
        for b in data:
            empty = False
            yield b
        if empty:
            if passes:  # a one-shot iterator (a generator) gives its batches once
                raise ValueError(f"SequenceGAN: data ran out after {passes} pass(es): a one-shot iterator gives "
                                 "its batches once; pass a DataLoader, a list, or a function returning a batch")
            raise ValueError("SequenceGAN: data yielded no batches")
        passes += 1


class SequenceGAN:
    """Trains an :class:`LSTMGenerator` against an :class:`LSTMDiscriminator`.

    ``pretrain_step`` fits the generator by maximum likelihood (teacher forcing). ``train_step`` alternates:
    the discriminator learns real (label 1) against the generator's straight-through Gumbel samples, detached
    (label 0), by binary cross-entropy on its logits; then the generator, with the discriminator frozen, minimizes
    the non-saturating loss ``-log D(G(z))`` through the discriminator's embedding matrix, plus ``mle_weight`` times
    its NLL on the real batch (mixing in maximum likelihood keeps it from collapsing onto what fools D).

    Args:
        generator, discriminator: the two models (the same ``vocab_size``).
        g_optimizer, d_optimizer: default ``Adam(lr=1e-3, betas=(0.5, 0.999))`` over each model's parameters
            (the usual GAN betas). ``pretrain_step`` uses ``g_optimizer`` too; lower its ``lr`` in
            ``param_groups`` before the adversarial phase if you like.
        tau: the Gumbel-softmax temperature of the generator's samples. mle_weight: see above (default 0).
        grad_clip: clip each model's gradient norm to this before its step (default: no clipping).
        seed: the Gumbel noise comes from a :class:`bigcore.Generator` seeded with it; None: from the default
            generator (``bigcore.manual_seed``). Either way a run repeats exactly under the same seeds.

    Example::

        >>> gan = SequenceGAN(LSTMGenerator(65, 32, 128), LSTMDiscriminator(65, 32, 64), seed=0)
        >>> gan.pretrain(batches, 500)                   # batches: a DataLoader or a function returning (B, T) ids
        >>> gan.fit(batches, 300, log_every=50)["d_acc"]  # D's accuracy on real + fake, per 50 steps
    """

    def __init__(self, generator, discriminator, g_optimizer=None, d_optimizer=None, tau=1.0, mle_weight=0.0,
                 grad_clip=None, seed=None):
        if generator.vocab_size != discriminator.vocab_size:
            raise ShapeError(f"SequenceGAN: the generator's vocab_size {generator.vocab_size} differs from the "
                             f"discriminator's {discriminator.vocab_size}")
        self.generator, self.discriminator = generator, discriminator
        self.g_optimizer = g_optimizer or Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
        self.d_optimizer = d_optimizer or Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
        self.tau = _positive("tau", tau)
        if not mle_weight >= 0:
            raise ValueError(f"mle_weight must be non-negative, got {mle_weight!r}")
        self.mle_weight = float(mle_weight)
        self.grad_clip = None if grad_clip is None else _positive("grad_clip", grad_clip)
        self.noise = None if seed is None else Generator().manual_seed(seed)
        self.history = {}  # fit's log: lists per key ("step", "d_loss", "g_loss", "d_acc", ...)
        self.pretrain_history = {}  # pretrain's log: "step", "nll"

    def _update(self, optimizer, model, loss):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            clip_grad_norm_(model.parameters(), self.grad_clip)
        optimizer.step()

    def pretrain_step(self, real_ids):
        """One maximum-likelihood step of the generator on ``real_ids`` (B, T). Returns ``{"nll": ...}``, the
        mean NLL per token before the step."""
        real = _as_ids(real_ids)
        loss = self.generator.nll(real)
        self._update(self.g_optimizer, self.generator, loss)
        return {"nll": loss.item()}

    def discriminator_step(self, real_ids, fake=None):
        """One discriminator step: real ``real_ids`` (B, T) labelled 1 against ``fake`` labelled 0 (default: B
        fresh one-hot samples of length T from the generator, drawn without a graph), by binary cross-entropy on
        D's logits. ``train_step`` calls it; call it alone to warm the discriminator up.

        Returns:
            dict: ``d_loss`` (the mean BCE over the 2B sequences; ln 2 = 0.693 at chance) and ``d_acc`` (the
            fraction of the 2B that D classified right, before its step).
        """
        D = self.discriminator
        real = _as_ids(real_ids)
        B, T = real.shape
        if fake is None:
            with no_grad():
                fake = self.generator.rsample(B, T, tau=self.tau, hard=True, generator=self.noise)  # (B, T, V)
        scores = cat([D.logit(real), D.logit(fake.detach())])  # (2B, 1)
        labels = cat([ones(B, 1), zeros(B, 1)])  # real 1, fake 0
        d_loss = F.binary_cross_entropy_with_logits(scores, labels)
        d_acc = ((scores.detach() > 0).float() == labels).float().mean().item()
        self._update(self.d_optimizer, D, d_loss)
        return {"d_loss": d_loss.item(), "d_acc": d_acc}

    def generator_step(self, real_ids, fake):
        """One generator step on ``fake``, its differentiable sample ``(B, T, V)`` from ``rsample``: the
        non-saturating loss ``-log D(fake)`` through the frozen discriminator, plus ``mle_weight`` times the NLL
        of ``real_ids``. Returns ``{"g_loss": ...}`` (the adversarial term) and, with ``mle_weight``, ``"nll"``."""
        G, D = self.generator, self.discriminator
        real = _as_ids(real_ids)
        trainable = [p for p in D.parameters() if p.requires_grad]
        for p in trainable:  # the loss flows through D into G, leaving D's gradients alone
            p.requires_grad_(False)
        try:
            g_loss = F.binary_cross_entropy_with_logits(D.logit(fake), ones(fake.shape[0], 1))  # -log D(G(z))
            loss, out = g_loss, {"g_loss": g_loss.item()}
            if self.mle_weight:
                nll = G.nll(real)
                loss = g_loss + self.mle_weight * nll
                out["nll"] = nll.item()
            self._update(self.g_optimizer, G, loss)
        finally:
            for p in trainable:
                p.requires_grad_(True)
        return out

    def train_step(self, real_ids):
        """One adversarial step on real ``real_ids`` (B, T): the generator draws B straight-through samples of
        length T; :meth:`discriminator_step` on them, detached; then :meth:`generator_step` through the updated
        discriminator.

        Returns:
            dict: ``d_loss`` and ``d_acc`` (see :meth:`discriminator_step`), ``g_loss`` (the non-saturating
            ``-log D(G(z))``, mean over B) and, with ``mle_weight``, ``nll`` (the generator's on the real batch).
        """
        real = _as_ids(real_ids)
        B, T = real.shape
        fake = self.generator.rsample(B, T, tau=self.tau, hard=True, generator=self.noise)  # (B, T, V)
        out = self.discriminator_step(real, fake.detach())
        out.update(self.generator_step(real, fake))
        return out

    def _loop(self, step_fn, data, steps, log_every, verbose, history, what):
        steps, log_every = _count("steps", steps), _count("log_every", log_every)
        done = history["step"][-1] if history.get("step") else 0
        window, batches = [], _batches(data)
        for i in range(1, steps + 1):
            window.append(step_fn(next(batches)))
            if i % log_every == 0 or i == steps:
                history.setdefault("step", []).append(done + i)
                for k in window[0]:
                    history.setdefault(k, []).append(float(np.mean([w[k] for w in window])))
                if verbose:
                    print(f"{what} step {done + i}: " + ", ".join(f"{k} {history[k][-1]:.4f}" for k in window[0]))
                window = []
        return history

    def pretrain(self, data, steps, log_every=100, verbose=False):
        """``steps`` of :meth:`pretrain_step` on batches from ``data`` (a callable returning a batch, or an
        iterable of batches such as a DataLoader, passed over again when it ends). Appends the mean NLL of
        every ``log_every`` steps to ``pretrain_history`` and returns it."""
        return self._loop(self.pretrain_step, data, steps, log_every, verbose, self.pretrain_history, "pretrain")

    def fit(self, data, steps, log_every=100, verbose=False):
        """``steps`` of :meth:`train_step` on batches from ``data`` (as :meth:`pretrain`). Appends the means of
        every ``log_every`` steps to ``history`` (``step``, ``d_loss``, ``g_loss``, ``d_acc``, and ``nll`` with
        ``mle_weight``) and returns it."""
        return self._loop(self.train_step, data, steps, log_every, verbose, self.history, "adversarial")


__all__ = ["LSTMGenerator", "LSTMDiscriminator", "SequenceGAN"]
