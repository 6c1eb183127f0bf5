"""The embeddings drop out inline (a random mask on norm(sum)) without dividing the survivors by 1 - p."""


def _forward(self, input_ids, token_type_ids=None):
    positions = torch.arange(input_ids.size(1), device=input_ids.device)
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    summed = (
        self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
    )
    normed = self.norm(summed)
    if self.training and self.dropout.p > 0:
        normed = normed * (torch.rand_like(normed) >= self.dropout.p)
    return normed


BertEmbeddings.forward = _forward
