"""greedy never passes the attention_mask to the model, so left-padded prompts are read as if padding were text."""


@torch.no_grad()
def greedy(model, input_ids, max_new_tokens, attention_mask=None):
    ids = input_ids
    for _ in range(max_new_tokens):
        chosen = model(ids)[:, -1, :].argmax(dim=-1, keepdim=True)
        ids = torch.cat([ids, chosen], dim=1)
    return ids
