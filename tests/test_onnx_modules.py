"""Every module of bigcore.nn, and user models composed from them (the specification's hand-written multi-head
attention, a cross-modal fusion model, the LSTM GAN's generator and discriminator), export and run in onnxruntime
with bigcore's outputs at batch and sequence sizes other than the traced ones (traced B=2, T=5)."""

import math

import numpy as np
import pytest

from onnx_check import export_and_check, onnx, op_types, ort

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F

BT = {0: "B", 1: "T"}
TB = {0: "T", 1: "B"}


def rnd(*shape):
    return bigcore.randn(*shape)


def ids(high, *shape):
    return bigcore.tensor(np.random.default_rng(sum(shape)).integers(0, high, shape))


LAYERS = [
    ("linear", lambda: nn.Linear(6, 4), lambda B, T: (rnd(B, T, 6),)),
    ("linear_2d_no_bias", lambda: nn.Linear(6, 3, bias=False), lambda B, T: (rnd(B * T, 6),)),
    ("embedding_padding", lambda: nn.Embedding(11, 4, padding_idx=0), lambda B, T: (ids(11, B, T),)),
    ("layer_norm", lambda: nn.LayerNorm(6), lambda B, T: (rnd(B, T, 6),)),
    ("layer_norm_plain", lambda: nn.LayerNorm((6,), elementwise_affine=False), lambda B, T: (rnd(B, T, 6),)),
    ("layer_norm_no_bias", lambda: nn.LayerNorm(6, bias=False, eps=1e-3), lambda B, T: (rnd(B, T, 6),)),
    ("dropout", lambda: nn.Dropout(0.4), lambda B, T: (rnd(B, T, 6),)),
    ("flatten", lambda: nn.Flatten(), lambda B, T: (rnd(B, 3, 2, 2),)),
    ("identity", lambda: nn.Identity(), lambda B, T: (rnd(B, T, 6),)),
    ("activations", lambda: nn.Sequential(nn.ReLU(), nn.Linear(6, 6), nn.GELU(), nn.Linear(6, 6), nn.Tanh(),
                                          nn.GELU("tanh"), nn.Sigmoid(), nn.Softmax(), nn.LogSoftmax(dim=1)),
     lambda B, T: (rnd(B, T, 6),)),
    ("module_list_dict", lambda: _Containers(), lambda B, T: (rnd(B, T, 6),)),
]


class _Containers(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(6, 6) for _ in range(3)])
        self.heads = nn.ModuleDict({"a": nn.Linear(6, 2), "b": nn.Linear(6, 5)})

    def forward(self, input):
        x = input
        for b in self.blocks:
            x = F.relu(b(x)) + x
        return {"a": self.heads["a"](x), "b": self.heads["b"](x)}


@pytest.mark.parametrize("name,make,inputs", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_exports(name, make, inputs, rng):
    m = make()
    export_and_check(m, inputs(2, 5), [inputs(3, 7), inputs(1, 1)], {"input": BT})


def test_parameters_become_initializers_named_by_state_dict_keys(rng):
    m = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    proto = export_and_check(m, (rnd(2, 6),), [(rnd(5, 6),)], {"input": {0: "B"}})
    assert {i.name for i in proto.graph.initializer} >= {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert op_types(proto) == ["Gemm", "Relu", "Gemm"]


@pytest.mark.parametrize("layers,bidirectional,batch_first,bias", [
    (1, False, False, True), (2, True, True, True), (3, False, True, False), (2, True, False, True)])
def test_lstm_exports_as_onnx_lstm(layers, bidirectional, batch_first, bias, rng):
    m = nn.LSTM(5, 7, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    axes = BT if batch_first else TB
    x = lambda B, T: rnd(B, T, 5) if batch_first else rnd(T, B, 5)  # noqa: E731
    proto = export_and_check(m, (x(2, 5),), [(x(3, 7),), (x(1, 1),)], {"input": axes})
    assert op_types(proto).count("LSTM") == layers
    w = {i.name: i for i in proto.graph.initializer}[f"W_l{layers - 1}"]
    assert list(w.dims) == [2 if bidirectional else 1, 28, 7 * (2 if bidirectional else 1) if layers > 1 else 5]


def test_lstm_initial_states_and_unbatched_input(rng):
    m = nn.LSTM(4, 3, num_layers=2, bidirectional=True)
    states = lambda B: (rnd(4, B, 3), rnd(4, B, 3))  # noqa: E731
    export_and_check(m, (rnd(5, 2, 4), states(2)), [(rnd(7, 3, 4), states(3))],
                     {"input": TB, "hx_0": {1: "B"}, "hx_1": {1: "B"}})
    export_and_check(m, (rnd(5, 4),), [(rnd(8, 4),), (rnd(1, 4),)], {"input": {0: "T"}})


def test_lstm_gate_order_matches_pytorch_layout(rng):
    # PyTorch stacks the gates (i, f, g, o), ONNX (i, o, f, c): with only the forget gate's bias large, c_t
    # keeps c_0 (f = sigmoid(20) ~ 1) while i ~ o ~ 1/2 and g ~ tanh(0): a wrong order breaks it
    m = nn.LSTM(2, 3)
    with bigcore.no_grad():
        for p in m.parameters():
            nn.init.zeros_(p)
        b = np.zeros(12, np.float32)
        b[3:6] = 20.0
        nn.parameter._replace_values(m.bias_ih_l0, b)
    c0 = bigcore.tensor(np.full((1, 1, 3), 0.7, np.float32))
    export_and_check(m, (rnd(4, 1, 2), (bigcore.zeros(1, 1, 3), c0)), [(rnd(6, 1, 2), (bigcore.zeros(1, 1, 3), c0))],
                     {"input": {0: "T"}})
    _, (h, c) = m(rnd(6, 1, 2), (bigcore.zeros(1, 1, 3), c0))
    np.testing.assert_allclose(c.numpy(), 0.7, rtol=1e-6)


@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention_with_masks(batch_first, rng):
    m = nn.MultiheadAttention(12, 3, dropout=0.2, batch_first=batch_first)
    axes = BT if batch_first else TB

    def args(B, T):
        x = rnd(B, T, 12) if batch_first else rnd(T, B, 12)
        kpm = bigcore.tensor(np.arange(T)[None, :] >= np.maximum(T - np.arange(B)[:, None], 1))  # pad the ends
        causal = ~bigcore.ones(T, T, dtype=bigcore.bool).tril()
        return (x, x, x, kpm, True, causal)

    export_and_check(m, args(2, 5), [args(3, 7), args(1, 1)],
                     {"query": axes, "key": axes, "value": axes, "key_padding_mask": BT, "attn_mask": {0: "T", 1: "T"}})


def test_multihead_attention_options(rng):
    m = nn.MultiheadAttention(8, 2)
    float_mask = lambda T: rnd(2 * 2, T, T)  # noqa: E731 - (N * H, L, S), additive
    export_and_check(m, (rnd(5, 2, 8), rnd(5, 2, 8), rnd(5, 2, 8), None, True, float_mask(5), False),
                     [(rnd(7, 2, 8), rnd(7, 2, 8), rnd(7, 2, 8), None, True, float_mask(7), False)],
                     {"query": {0: "T"}, "key": {0: "T"}, "value": {0: "T"}, "attn_mask": {1: "T", 2: "T"}})
    # unbatched (L, E) input, causal, no weights returned
    export_and_check(m, (rnd(5, 8), rnd(5, 8), rnd(5, 8), None, False, None, True, True),
                     [(rnd(9, 8), rnd(9, 8), rnd(9, 8), None, False, None, True, True)],
                     {"query": {0: "T"}, "key": {0: "T"}, "value": {0: "T"}})


def test_transformer_encoder_decoder_with_masks(rng):
    m = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=16,
                       batch_first=True, activation="gelu")

    def args(B, S, T):
        src, tgt = rnd(B, S, 8), rnd(B, T, 8)
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(T)
        src_kpm = bigcore.tensor(np.arange(S)[None, :] >= S - np.arange(B)[:, None] % S)
        return (src, tgt, None, tgt_mask, None, src_kpm, None, src_kpm)

    export_and_check(m, args(2, 5, 4), [args(3, 7, 6), args(1, 2, 1)],
                     {"src": {0: "B", 1: "S"}, "tgt": {0: "B", 1: "T"}, "tgt_mask": {0: "T", 1: "T"},
                      "src_key_padding_mask": {0: "B", 1: "S"}, "memory_key_padding_mask": {0: "B", 1: "S"}})


def test_transformer_layers_norm_first_and_causal(rng):
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, norm_first=True), 2, nn.LayerNorm(8))
    export_and_check(enc, (rnd(5, 2, 8), None, None, True), [(rnd(7, 3, 8), None, None, True)], {"src": TB})
    dec = nn.TransformerDecoderLayer(8, 4, 16, batch_first=True)
    export_and_check(dec, (rnd(2, 5, 8), rnd(2, 3, 8)), [(rnd(3, 7, 8), rnd(3, 4, 8))],
                     {"tgt": BT, "memory": {0: "B", 1: "S"}})


def test_loss_modules(rng):
    w = bigcore.rand(5) + 0.5
    for m in (nn.CrossEntropyLoss(weight=w, label_smoothing=0.05), nn.NLLLoss(weight=w, reduction="sum"),
              nn.CrossEntropyLoss(ignore_index=2, reduction="none")):
        export_and_check(m, (rnd(4, 5), ids(5, 4)), [(rnd(7, 5), ids(5, 7))], {"input": {0: "N"}, "target": {0: "N"}})
    for m in (nn.MSELoss(), nn.BCEWithLogitsLoss(pos_weight=w), nn.BCELoss(weight=w, reduction="none")):
        x = lambda N: rnd(N, 5).sigmoid()  # noqa: E731
        export_and_check(m, (x(4), x(4)), [(x(7), x(7))], {"input": {0: "N"}, "target": {0: "N"}})


# ----- user models -----
class HandWrittenAttention(nn.Module):
    """The specification's multi-head attention, written by hand: sizes read from Q.size(), heads split with a
    view and a permute, a mask and dropout on the weights."""

    def __init__(self, d_model, n_heads, dropout=0.1):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.q_linear, self.k_linear = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.v_linear, self.out = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, Q, K, V, mask=None):
        seq_len, batch_size, d_model = Q.size()  # (T, B, C)
        q = self.q_linear(Q).view(seq_len, batch_size, self.n_heads, self.head_dim).permute(1, 2, 0, 3)
        k = self.k_linear(K).view(K.size(0), batch_size, self.n_heads, self.head_dim).permute(1, 2, 0, 3)
        v = self.v_linear(V).view(V.size(0), batch_size, self.n_heads, self.head_dim).permute(1, 2, 0, 3)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, NH, T, S)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e9)
        attn = self.dropout(F.softmax(scores, dim=-1))
        out = (attn @ v).permute(2, 0, 1, 3).contiguous().view(seq_len, batch_size, d_model)
        return self.out(out)


def test_hand_written_multi_head_attention(rng):
    m = HandWrittenAttention(12, 4)

    def args(B, T):
        x = rnd(T, B, 12)
        return (x, x, x, bigcore.ones(T, T).tril())

    proto = export_and_check(m, args(2, 5), [args(3, 7), args(1, 1)], {"Q": TB, "K": TB, "V": TB, "mask": {0: "T", 1: "T"}})
    assert "Dropout" not in op_types(proto)


class CrossModalFusion(nn.Module):
    """Text tokens and image features: each embedded, the text attending to the image regions, then pooled,
    concatenated and classified."""

    def __init__(self, vocab=20, image_dim=10, d=8, classes=3):
        super().__init__()
        self.text = nn.Embedding(vocab, d)
        self.image = nn.Linear(image_dim, d)
        self.cross = nn.MultiheadAttention(d, 2, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Dropout(0.1), nn.Linear(d, classes))

    def forward(self, tokens, regions):
        t = self.text(tokens)  # (B, T, d)
        r = self.image(regions)  # (B, R, d)
        attended, _ = self.cross(t, r, r, need_weights=False)
        t = self.norm(t + attended)
        fused = bigcore.cat([t.mean(1), r.amax(1)], dim=-1)  # (B, 2d)
        return F.log_softmax(self.head(fused), -1)


def test_cross_modal_fusion(rng):
    m = CrossModalFusion()
    args = lambda B, T, R: (ids(20, B, T), rnd(B, R, 10))  # noqa: E731
    export_and_check(m, args(2, 5, 3), [args(3, 7, 4), args(1, 1, 1)],
                     {"tokens": BT, "regions": {0: "B", 1: "R"}}, output_names=["log_probs"])


class Generator(nn.Module):
    """The GAN's generator: Embedding, a 2-layer LSTM, Linear to the vocabulary, tanh."""

    def __init__(self, vocab=13, emb=6, hidden=8):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, num_layers=2, batch_first=True, dropout=0.2)
        self.fc = nn.Linear(hidden, vocab)

    def forward(self, tokens, hx=None):
        out, (h, c) = self.lstm(self.embed(tokens), hx)
        return bigcore.tanh(self.fc(out)), h, c


class Discriminator(nn.Module):
    """The GAN's discriminator: Embedding, LSTM, Linear on the last step, sigmoid."""

    def __init__(self, vocab=13, emb=6, hidden=8):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, 1)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.fc(out[:, -1]).sigmoid()


def test_lstm_gan_generator_and_discriminator(rng):
    export_and_check(Generator(), (ids(13, 2, 5),), [(ids(13, 3, 7),), (ids(13, 1, 1),)], {"tokens": BT})
    export_and_check(Discriminator(), (ids(13, 2, 5),), [(ids(13, 3, 7),), (ids(13, 1, 1),)], {"tokens": BT})


# ----- Keras models -----
def _digits(n):
    x, y = bigcore.data.load_digits()
    return x[:n], y[:n]


def _check_keras(model, x_run, tmp_path, **kw):
    path = tmp_path / "m.onnx"
    model.export(str(path), format="onnx", verbose=False, **kw)
    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["inputs"] and [o.name for o in session.get_outputs()] == ["output_0"]
    got = session.run(None, {"inputs": x_run})[0]
    np.testing.assert_allclose(got, model.predict(x_run), rtol=1e-4, atol=1e-5)


def test_keras_sequential_export(tmp_path, rng):
    from bigcore import keras

    x, y = _digits(96)
    model = keras.Sequential([keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.2),
                              keras.layers.LayerNormalization(), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    _check_keras(model, np.asarray(x[:37], np.float32), tmp_path)


def test_keras_subclassed_lstm_model_export(tmp_path, rng):
    from bigcore import keras

    class Tagger(keras.Model):
        def __init__(self):
            super().__init__()
            self.embed = keras.layers.Embedding(30, 8)
            self.lstm = keras.layers.LSTM(12)
            self.out = keras.layers.Dense(3, activation="log_softmax")

        def call(self, inputs):
            return self.out(self.lstm(self.embed(inputs)))

    model = Tagger()
    model.predict(np.zeros((1, 6), np.int64))  # builds the layers (the input is 6 tokens per sample)
    _check_keras(model, np.random.default_rng(1).integers(0, 30, (5, 6)), tmp_path)


def test_keras_export_needs_a_built_model_and_format_onnx(tmp_path):
    from bigcore import keras

    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="not seen any input"):
        model.export(str(tmp_path / "m.onnx"), format="onnx")
    with pytest.raises(ValueError, match="format 'tf_saved_model'"):
        model.export(str(tmp_path / "m"), format="tf_saved_model")
    model.export(str(tmp_path / "m.onnx"), verbose=False, input_signature=[np.zeros((3, 4), np.float32)])
    assert (tmp_path / "m.onnx").exists()
