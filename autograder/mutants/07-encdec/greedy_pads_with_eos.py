"""Greedy decoding fills finished sentences with eos_id instead of pad_id."""


def _greedy(self, src, src_lengths, bos_id, eos_id, max_len, pad_id=0):
    batch = src.shape[0]
    memory = self.encode(src, src_lengths)
    out = torch.full((batch, 1 + max_len), eos_id, dtype=torch.long)
    out[:, 0] = bos_id
    finished = torch.zeros(batch, dtype=torch.bool)
    for step in range(1, max_len + 1):
        logits = self.generator(self.decode(out[:, :step], memory, src_lengths, torch.full((batch,), step))[:, -1])
        chosen = logits.argmax(dim=-1)
        out[:, step] = torch.where(finished, eos_id, chosen)
        finished = finished | (chosen == eos_id)
        if bool(finished.all()):
            break
    return out


EncoderDecoder.greedy_translate = _greedy
