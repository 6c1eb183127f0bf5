"""Greedy decoding checks the length at the end of its loop, so it always makes at least one step (max_len=0 too)."""


def _greedy(self, src, src_lengths, bos_id, eos_id, max_len, pad_id=0):
    batch = src.shape[0]
    memory = self.encode(src, src_lengths)
    out = torch.full((batch, 1), bos_id, dtype=torch.long)
    finished = torch.zeros(batch, dtype=torch.bool)
    while True:
        step = out.shape[1]
        logits = self.generator(self.decode(out, memory, src_lengths, torch.full((batch,), step))[:, -1])
        chosen = logits.argmax(dim=-1)
        out = torch.cat([out, torch.where(finished, torch.full_like(chosen, pad_id), chosen)[:, None]], dim=1)
        finished = finished | (chosen == eos_id)
        if out.shape[1] >= 1 + max_len or bool(finished.all()):
            break
    return torch.cat([out, torch.full((batch, 1 + max_len - out.shape[1]), pad_id, dtype=torch.long)], dim=1)


EncoderDecoder.greedy_translate = _greedy
