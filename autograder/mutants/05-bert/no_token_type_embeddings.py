"""The embeddings ignore token_type_ids: the segment embeddings are never added."""


def _forward(self, input_ids, token_type_ids=None):
    positions = torch.arange(input_ids.size(1), device=input_ids.device)
    summed = self.word_embeddings(input_ids) + self.position_embeddings(positions)
    return self.dropout(self.norm(summed))


BertEmbeddings.forward = _forward
