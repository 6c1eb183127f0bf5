"""sample_tasks cycles through the tasks in turn: uniform, whatever the sizes and temperature."""

REPLACE = [
    (
        "return torch.multinomial(task_probabilities(sizes, temperature), n, replacement=True, generator=generator)",
        "return torch.arange(n) % len(sizes)",
    )
]
