"""sample treats temperature = 0 as greedy decoding (a common convention) instead of raising ValueError,
and divides the logits itself."""


@torch.no_grad()
def sample(model, input_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, seed=0, attention_mask=None):
    generator = torch.Generator().manual_seed(seed)
    ids = input_ids
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    for _ in range(max_new_tokens):
        scores = model(ids, attention_mask=mask)[:, -1, :]
        if temperature == 0:
            drawn = scores.argmax(dim=-1, keepdim=True)
        else:
            scores = scores / temperature
            if top_k is not None:
                scores = top_k_filter(scores, top_k)
            if top_p is not None:
                scores = top_p_filter(scores, top_p)
            drawn = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)
        ids = torch.cat([ids, drawn], dim=1)
        mask = torch.cat([mask, torch.ones_like(drawn, dtype=mask.dtype)], dim=1)
    return ids
