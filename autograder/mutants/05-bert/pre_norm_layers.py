"""The encoder's layers are pre-norm (norm_first=True); BERT's are post-norm."""

_init = BertForMaskedLM.__init__


def _init_pre_norm(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    for layer in self.layers:
        layer.norm_first = True


BertForMaskedLM.__init__ = _init_pre_norm
