"""The embeddings skip their LayerNorm: dropout(word + position + token_type)."""


def _forward(self, input_ids, token_type_ids=None):
    positions = torch.arange(input_ids.size(1), device=input_ids.device)
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    summed = (
        self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
    )
    return self.dropout(summed)


BertEmbeddings.forward = _forward
