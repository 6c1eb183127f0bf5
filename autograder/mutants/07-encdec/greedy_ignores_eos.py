"""Greedy decoding never stops: tokens keep coming after a sentence's EOS instead of padding."""


def _greedy(self, src, src_lengths, bos_id, eos_id, max_len, pad_id=0):
    batch = src.shape[0]
    memory = self.encode(src, src_lengths)
    out = torch.full((batch, 1), bos_id, dtype=torch.long)
    for step in range(1, max_len + 1):
        logits = self.generator(self.decode(out, memory, src_lengths, torch.full((batch,), step))[:, -1])
        out = torch.cat([out, logits.argmax(dim=-1)[:, None]], dim=1)
    return out


EncoderDecoder.greedy_translate = _greedy
