"""beam_search extends only the best beam each step, taking its K best continuations."""


@torch.no_grad()
def beam_search(model, input_ids, num_beams, max_new_tokens, length_penalty=1.0):
    if input_ids.shape[0] != 1 or max_new_tokens < 1:
        raise ValueError("beam_search takes one prompt, shape (1, T0), and max_new_tokens >= 1")
    beams, totals = input_ids, torch.zeros(1, dtype=torch.float64)
    for _ in range(max_new_tokens):
        best, best_total = beams[:1], totals[:1]
        log_probs = torch.log_softmax(model(best)[:, -1, :], dim=-1)[0]
        totals, tokens = torch.topk(best_total.to(log_probs.dtype) + log_probs, num_beams)
        beams = torch.cat([best.expand(num_beams, -1), tokens[:, None]], dim=1)
    return beams, totals / max_new_tokens**length_penalty
