"""decode_step runs on an empty cache as if the token were a one-token prompt, instead of raising ValueError."""

REPLACE = [
    (
        "    if cache.length == 0:\n        raise ValueError(\"decode_step needs a cache filled by prefill; this one is empty\")\n",
        "",
    ),
]
