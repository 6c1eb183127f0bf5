"""load_checkpoint returns the model in training mode: dropout stays on when sampling."""


def load_checkpoint(source):
    if isinstance(source, Tensor):
        source = source.numpy().tobytes()
    file = io.BytesIO(source) if isinstance(source, bytes) else source
    state = torch.load(file, weights_only=True)
    model = GPT(**state["config"])
    model.load_state_dict(state["model"])
    return model, state
