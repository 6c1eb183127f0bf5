"""Greedy decoding stops every sentence as soon as any one of them produces EOS."""


def _greedy(self, src, src_lengths, bos_id, eos_id, max_len, pad_id=0):
    batch = src.shape[0]
    memory = self.encode(src, src_lengths)
    out = torch.full((batch, 1 + max_len), pad_id, dtype=torch.long)
    out[:, 0] = bos_id
    for step in range(1, max_len + 1):
        logits = self.generator(self.decode(out[:, :step], memory, src_lengths, torch.full((batch,), step))[:, -1])
        out[:, step] = logits.argmax(dim=-1)
        if bool((out[:, step] == eos_id).any()):
            break
    return out


EncoderDecoder.greedy_translate = _greedy
