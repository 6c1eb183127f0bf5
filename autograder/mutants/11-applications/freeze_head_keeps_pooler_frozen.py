"""freeze 'head' trains only the classifier: the pooler is frozen with the backbone."""

REPLACE = [
    ('frozen = (mode == "head" and in_backbone) or (', 'frozen = (mode == "head" and parts[0] != "classifier") or (')
]
