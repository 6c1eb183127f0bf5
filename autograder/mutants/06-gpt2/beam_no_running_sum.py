"""beam_search ranks the candidates by the new token's log-probability alone, not the beam's running sum."""


@torch.no_grad()
def beam_search(model, input_ids, num_beams, max_new_tokens, length_penalty=1.0):
    if input_ids.shape[0] != 1 or max_new_tokens < 1:
        raise ValueError("beam_search takes one prompt, shape (1, T0), and max_new_tokens >= 1")
    beams, totals = input_ids, torch.zeros(1, dtype=torch.float64)
    for _ in range(max_new_tokens):
        log_probs = torch.log_softmax(model(beams)[:, -1, :], dim=-1)
        vocab = log_probs.size(-1)
        best, flat = torch.topk(log_probs.flatten(), num_beams)
        totals = totals.to(log_probs.dtype)[flat // vocab] + best
        beams = torch.cat([beams[flat // vocab], (flat % vocab)[:, None]], dim=1)
    return beams, totals / max_new_tokens**length_penalty
