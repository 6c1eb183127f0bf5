# target: flash_triton.py
"""The Triton kernel multiplies the float32 probabilities by the fp16/bf16 values tile (no p.to(v.dtype)):
the interpreter, which upcasts every tile, runs it; a GPU compiler rejects it."""

REPLACE = [
    (
        'acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision="ieee")',
        'acc = acc * alpha[:, None] + tl.dot(p, v, input_precision="ieee")',
    ),
]
