"""T5Style multiplies the shared embeddings by sqrt(d_model) like the original model; T5 does not scale them."""

REPLACE = [
    (
        "hidden: Tensor = self.encoder(self.shared(src), mask=padding_mask(src_lengths, src.shape[1]))",
        "hidden: Tensor = self.encoder(\n"
        "            self.shared(src) * math.sqrt(self.shared.embedding_dim), mask=padding_mask(src_lengths, src.shape[1])\n"
        "        )",
    ),
    (
        "hidden: Tensor = self.decoder(self.shared(tgt), mask=self_mask, memory=memory, memory_mask=cross_mask)",
        "hidden: Tensor = self.decoder(\n"
        "            self.shared(tgt) * math.sqrt(self.shared.embedding_dim), mask=self_mask, memory=memory, memory_mask=cross_mask\n"
        "        )",
    ),
]
