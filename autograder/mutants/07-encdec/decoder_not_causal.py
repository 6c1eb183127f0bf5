"""The decoder's self-attention has the target padding mask but no causal mask: it sees the future."""


def _decode(self, tgt, memory, src_lengths, tgt_lengths):
    self_mask = padding_mask(tgt_lengths, tgt.shape[1])
    memory_mask = padding_mask(src_lengths, memory.shape[1])
    return self.decoder(self.embed(tgt, self.tgt_embed), memory, self_mask, memory_mask)


EncoderDecoder.decode = _decode
