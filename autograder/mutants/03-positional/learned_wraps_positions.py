"""Wraps positions past the table around (position % max_len) instead of raising ValueError."""


class LearnedPositionalEmbedding(nn.Module):
    def __init__(self, max_len, d_model):
        super().__init__()
        self.max_len = max_len
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)

    def forward(self, x, offset=0):
        return x + self.weight[torch.arange(offset, offset + x.shape[1]) % self.max_len]
