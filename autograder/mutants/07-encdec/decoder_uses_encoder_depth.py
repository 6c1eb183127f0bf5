"""EncoderDecoder builds its decoder with n_encoder_layers layers."""

REPLACE = [
    (
        "self.decoder = Decoder(d_model, n_heads, d_ff, n_decoder_layers, dropout, eps)",
        "self.decoder = Decoder(d_model, n_heads, d_ff, n_encoder_layers, dropout, eps)",
    ),
]
