"""mask_tokens writes [MASK] and the random ids into input_ids itself (`inputs = input_ids` is no copy)."""


def mask_tokens(input_ids, vocab_size, mask_token_id, special_tokens_mask, seed, mlm_probability=0.15):
    generator = torch.Generator().manual_seed(seed)
    selected = torch.rand(input_ids.shape, generator=generator) < mlm_probability
    if special_tokens_mask is not None:
        selected &= ~special_tokens_mask
    split = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    labels = input_ids.clone()
    labels[~selected] = -100
    inputs = input_ids
    inputs[selected & (split < 0.8)] = mask_token_id
    to_random = selected & (split >= 0.8) & (split < 0.9)
    inputs[to_random] = random_ids[to_random]
    return inputs, labels
