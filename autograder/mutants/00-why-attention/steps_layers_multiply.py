"""Stacked RNN layers multiply the depth (length x layers) instead of adding as a wavefront."""

REPLACE = [
    (
        'return length + n_layers - 1 if kind == "rnn" else n_layers',
        'return length * n_layers if kind == "rnn" else n_layers',
    )
]
