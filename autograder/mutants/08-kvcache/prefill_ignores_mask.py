"""prefill drops the attention_mask: padded prompts get wrong positions and attend to their padding."""


@torch.no_grad()
def prefill(model, input_ids, attention_mask=None):
    cache = KVCache(len(model.blocks))
    return model(input_ids, cache=cache), cache
