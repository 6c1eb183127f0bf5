"""FeedForward honours `bias` only in its SwiGLU branch: relu/gelu always get fc1 and fc2 with biases."""

_init = FeedForward.__init__


def _init_bias_for_swiglu_only(self, d_model, d_ff, activation="relu", bias=True):
    _init(self, d_model, d_ff, activation, bias)
    if activation != "swiglu":
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)


FeedForward.__init__ = _init_bias_for_swiglu_only
