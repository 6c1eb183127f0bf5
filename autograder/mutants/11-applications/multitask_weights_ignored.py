"""multitask_loss ignores the task weights."""

REPLACE = [("weight = 1.0 if weights is None else float(weights.get(task, 1.0))", "weight = 1.0")]
