# target: flash_triton.py
"""The Triton kernel never rescales acc and l by exp(m_i - m_new) when the running max grows."""

REPLACE = [
    ("l_i = l_i * alpha + tl.sum(p, axis=1)", "l_i = l_i + tl.sum(p, axis=1)"),
    (
        'acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision="ieee")',
        'acc = acc + tl.dot(p.to(v.dtype), v, input_precision="ieee")',
    ),
]
