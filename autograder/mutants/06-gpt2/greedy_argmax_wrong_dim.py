"""greedy takes the argmax over the batch dim of the last logits instead of over the vocabulary."""


@torch.no_grad()
def greedy(model, input_ids, max_new_tokens, attention_mask=None):
    ids = input_ids
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    for _ in range(max_new_tokens):
        last = model(ids, attention_mask=mask)[:, -1, :]
        chosen = last.argmax(dim=0)[: ids.shape[0], None]
        ids = torch.cat([ids, chosen], dim=1)
        mask = torch.cat([mask, torch.ones_like(chosen, dtype=mask.dtype)], dim=1)
    return ids
