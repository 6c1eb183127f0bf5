"""The model never passes a mask to its layers: real tokens attend to padding."""


def _forward(self, input_ids, token_type_ids=None, attention_mask=None):
    hidden = self.embeddings(input_ids, token_type_ids)
    for layer in self.layers:
        hidden = layer(hidden)
    return hidden, self.mlm_head(hidden, self.embeddings.word_embeddings.weight)


BertForMaskedLM.forward = _forward
