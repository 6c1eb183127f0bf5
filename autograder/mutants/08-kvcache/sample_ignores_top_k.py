"""generate_cached samples from the unfiltered distribution: top_k is ignored."""


@torch.no_grad()
def generate_cached(
    model: GPT,
    input_ids: Tensor,
    max_new_tokens: int,
    attention_mask: Tensor | None = None,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> Tensor:
    generator = torch.Generator()  # the only source of randomness: one draw per step
    generator.manual_seed(seed)
    ids = input_ids
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    if max_new_tokens == 0:
        return ids
    logits, cache = prefill(model, ids, mask)
    last = logits[:, -1, :]  # (B, V)
    for step in range(max_new_tokens):
        if do_sample:
            scores = apply_temperature(last, temperature)
            if top_k is not None:
                pass
            chosen = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)  # (B, 1)
        else:
            chosen = last.argmax(dim=-1, keepdim=True)  # (B, 1)
        ids = torch.cat([ids, chosen], dim=1)
        mask = torch.cat([mask, torch.ones_like(chosen, dtype=mask.dtype)], dim=1)
        if step + 1 < max_new_tokens:
            last = decode_step(model, chosen, mask, cache)[:, -1, :]
    return ids
