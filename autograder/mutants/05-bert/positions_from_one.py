"""Position ids start at 1 instead of 0."""


def _forward(self, input_ids, token_type_ids=None):
    positions = torch.arange(1, input_ids.size(1) + 1, device=input_ids.device)
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    summed = (
        self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
    )
    return self.dropout(self.norm(summed))


BertEmbeddings.forward = _forward
