"""T5Style builds both stacks with n_encoder_layers (the tests' models had as many layers on each side)."""

REPLACE = [
    (
        "self.decoder = T5Stack(*sizes, n_decoder_layers, num_buckets, max_distance, dropout, eps, is_decoder=True)",
        "self.decoder = T5Stack(*sizes, n_encoder_layers, num_buckets, max_distance, dropout, eps, is_decoder=True)",
    ),
]
