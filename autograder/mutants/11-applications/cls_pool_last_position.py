"""cls_pool takes the last position (a pad token in short rows) instead of [CLS]."""

REPLACE = [("return hidden[:, 0]", "return hidden[:, -1]")]
