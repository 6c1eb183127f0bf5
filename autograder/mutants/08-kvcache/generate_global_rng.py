"""generate_cached seeds and draws from torch's global generator (torch.manual_seed, multinomial without generator=):
the same tokens, but the caller's random state is reset."""

REPLACE = [
    ("    generator = torch.Generator()  # the only source of randomness: one draw per step\n    generator.manual_seed(seed)\n",
     "    torch.manual_seed(seed)\n"),
    ("            chosen = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)  # (B, 1)",
     "            chosen = torch.multinomial(torch.softmax(scores, dim=-1), 1)  # (B, 1)"),
]
