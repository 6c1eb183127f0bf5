"""h' = z * n + (1 - z) * h: the update gate's roles swapped."""

REPLACE = [("return (1 - update) * new + update * h", "return update * new + (1 - update) * h")]
