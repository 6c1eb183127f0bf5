"""freeze 'embeddings' looks for the wrong names and freezes nothing."""

REPLACE = [
    (
        'mode == "embeddings" and in_backbone and len(parts) > 1 and parts[1] in EMBEDDING_NAMES',
        'mode == "embeddings" and in_backbone and len(parts) > 1 and parts[1] == "embedding"',
    )
]
