"""The head gets the word embeddings detached, so the head's gradient never reaches the tied matrix."""


def _forward(self, input_ids, token_type_ids=None, attention_mask=None):
    mask = None if attention_mask is None else key_padding_mask(attention_mask)
    hidden = self.embeddings(input_ids, token_type_ids)
    for layer in self.layers:
        hidden = layer(hidden, mask=mask)
    return hidden, self.mlm_head(hidden, self.embeddings.word_embeddings.weight.detach())


BertForMaskedLM.forward = _forward
