"""mask_tokens reseeds and draws from torch's global generator: the same tensors, but every other draw in the program changes."""


def mask_tokens(input_ids, vocab_size, mask_token_id, special_tokens_mask, seed, mlm_probability=0.15):
    torch.manual_seed(seed)
    selected = torch.rand(input_ids.shape) < mlm_probability
    if special_tokens_mask is not None:
        selected &= ~special_tokens_mask
    split = torch.rand(input_ids.shape)
    random_ids = torch.randint(vocab_size, input_ids.shape)
    inputs = input_ids.masked_fill(selected & (split < 0.8), mask_token_id)
    inputs = torch.where(selected & (split >= 0.8) & (split < 0.9), random_ids, inputs)
    return inputs, input_ids.masked_fill(~selected, -100)
