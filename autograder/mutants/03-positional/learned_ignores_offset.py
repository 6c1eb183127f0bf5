"""Adds rows 0…T-1 of the table whatever the offset."""


class LearnedPositionalEmbedding(nn.Module):
    def __init__(self, max_len, d_model):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)

    def forward(self, x, offset=0):
        return x + self.weight[: x.shape[1]]
