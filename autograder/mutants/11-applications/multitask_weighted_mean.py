"""multitask_loss returns the mean of the weighted losses, not their sum."""

REPLACE = [("    return total, per_task\n", "    return total / len(per_task), per_task\n")]
