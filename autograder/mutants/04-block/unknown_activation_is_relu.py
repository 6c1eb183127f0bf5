"""An unknown activation silently falls back to ReLU instead of raising ValueError."""

_init = FeedForward.__init__


def _lenient_init(self, d_model, d_ff, activation="relu", bias=True):
    _init(self, d_model, d_ff, activation if activation in ACTIVATIONS else "relu", bias)


FeedForward.__init__ = _lenient_init
