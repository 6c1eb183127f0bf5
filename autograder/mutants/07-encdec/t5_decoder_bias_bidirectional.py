"""The decoder's relative position bias is built bidirectional, like the encoder's; it must be causal."""

_original_stack_init = T5Stack.__init__


def _init(self, *args, **kwargs):
    _original_stack_init(self, *args, **kwargs)
    self.relative_bias.bidirectional = True


T5Stack.__init__ = _init
