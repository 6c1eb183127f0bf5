"""Clamps positions past the table to its last row instead of raising ValueError."""


class LearnedPositionalEmbedding(nn.Module):
    def __init__(self, max_len, d_model):
        super().__init__()
        self.max_len = max_len
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)

    def forward(self, x, offset=0):
        rows = torch.arange(offset, offset + x.shape[1]).clamp(max=self.max_len - 1)
        return x + self.weight[rows]
