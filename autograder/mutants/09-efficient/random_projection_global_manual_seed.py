"""random_projection seeds the global generator and draws from it: the same matrix, the caller's random stream reset."""


def random_projection(n_features, dim, seed):
    torch.manual_seed(seed)
    return torch.randn(n_features, dim, dtype=torch.float64)
