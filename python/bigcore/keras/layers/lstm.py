"""``keras.layers.LSTM`` over ``nn.LSTM`` (batch first); its weights in Keras's layout for ``get_weights``."""

from ... import nn
from .layer import KerasWeight, Layer, SummedBias


class LSTM(Layer):
    """``LSTM(units, return_sequences=False, return_state=False)`` over batch-first input ``(B, T, features)``;
    the input size is taken from the first call.

    Returns the last output ``(B, units)``, or all of them ``(B, T, units)`` with ``return_sequences``, followed by
    the final ``h`` and ``c`` (each ``(B, units)``) with ``return_state``. ``get_weights()`` gives Keras's
    ``kernel (features, 4 units)``, ``recurrent_kernel (units, 4 units)`` and one ``bias (4 units,)`` (the sum
    of PyTorch's two), gates in the order input, forget, cell, output in both libraries.
    """

    def __init__(self, units, return_sequences=False, return_state=False, **kwargs):
        super().__init__(**kwargs)
        self.units, self.return_sequences, self.return_state = int(units), bool(return_sequences), bool(return_state)
        self.lstm = None

    def build(self, input_shape):
        self.lstm = nn.LSTM(input_shape[-1], self.units, batch_first=True, dtype=self.dtype)
        self._mark_built()

    def call(self, inputs):
        if self.lstm is None:
            self.build(tuple(inputs.shape))
        out, (h, c) = self.lstm(inputs)
        result = out if self.return_sequences else out[:, -1]
        return (result, h[0], c[0]) if self.return_state else result

    def _keras_weights(self):
        if self.lstm is None:
            return []
        m = self.lstm
        return [KerasWeight(m.weight_ih_l0, transpose=True), KerasWeight(m.weight_hh_l0, transpose=True),
                SummedBias(m.bias_ih_l0, m.bias_hh_l0)]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "return_sequences": self.return_sequences,
                "return_state": self.return_state}
