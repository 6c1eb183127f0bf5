"""Attends with the decoder's new state after the step (Luong's order) where the class says the previous one."""


def _decode_step(self, y, state, enc_states, src_mask):
    embedded = self.tgt_embed(y)
    if self.attention is None:
        state = self.decoder(embedded, state)
        return self.out(state), state, None
    previous, _ = self.attention(state, enc_states, src_mask)
    state = self.decoder(torch.cat([embedded, previous], dim=-1), state)
    context, weights = self.attention(state, enc_states, src_mask)
    return self.out(torch.cat([state, context], dim=-1)), state, weights


Seq2Seq.decode_step = _decode_step
