"""configure_optimizer puts every parameter in one group with weight decay, biases and norm weights included."""


def configure_optimizer(model, lr, weight_decay=0.1, betas=(0.9, 0.95)):
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, eps=1e-8, weight_decay=weight_decay)
