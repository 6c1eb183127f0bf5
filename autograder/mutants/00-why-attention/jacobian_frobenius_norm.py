"""The Frobenius norm of each Jacobian instead of its spectral norm."""

REPLACE = [
    (
        "norms.append(torch.linalg.matrix_norm(jacobian, ord=2))",
        'norms.append(torch.linalg.matrix_norm(jacobian, ord="fro"))',
    )
]
