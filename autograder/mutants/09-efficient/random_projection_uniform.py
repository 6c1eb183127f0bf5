"""The random directions are uniform on [0, 1) (torch.rand) instead of Gaussian: the estimator is biased."""


def random_projection(n_features, dim, seed):
    return torch.rand(n_features, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
