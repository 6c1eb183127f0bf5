"""Week 01: scaled dot-product attention and masking.

Everything here works on plain tensors; later weeks wrap these functions in
`nn.Module`s. Shapes use these letters:

* ``B``  batch, ``H`` heads (any number of leading dims is allowed where it says ``...``)
* ``Tq`` query positions, ``Tk`` key/value positions
* ``d``  query/key feature size, ``dv`` value feature size

Masks are boolean and mean **True = may attend** (the convention of
``torch.nn.functional.scaled_dot_product_attention``; the opposite of
``torch.nn.MultiheadAttention``'s ``key_padding_mask``).

Rules: do not call ``torch.softmax``, ``torch.nn.functional.softmax``,
``Tensor.softmax`` or PyTorch's fused attention; the grader records which torch
ops your code runs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Numerically stable softmax of ``x`` along ``dim``.

    Args:
        x: any shape, floating point. May hold large values (``1e4``) and ``-inf``.
        dim: the dimension whose entries sum to one in the result.

    Returns:
        A tensor shaped like ``x``, non-negative, summing to 1 along ``dim``.
        A slice that is entirely ``-inf`` is all zeros (not NaN).
    """
    # BEGIN SOLUTION: subtract the max along `dim` before exp (a slice of all -inf must give zeros, not NaN), then divide by the sum.
    x_max = x.amax(dim=dim, keepdim=True)
    # A slice that is all -inf has max -inf; shift it by 0 instead so exp gives 0, not NaN.
    x_max = torch.where(torch.isfinite(x_max), x_max, torch.zeros_like(x_max))
    exp = torch.exp(x - x_max)
    total = exp.sum(dim=dim, keepdim=True)
    return exp / torch.where(total > 0, total, torch.ones_like(total))
    # END SOLUTION


def causal_mask(seq_len: int, device: torch.device | str | None = None) -> Tensor:
    """Mask that lets position ``i`` attend to positions ``j <= i`` only.

    Returns:
        bool ``(seq_len, seq_len)``; ``mask[i, j]`` is True when query ``i`` may
        attend to key ``j`` (the lower triangle, diagonal included).
    """
    # BEGIN SOLUTION: build a (seq_len, seq_len) bool lower-triangular matrix (diagonal included) on `device`.
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()
    # END SOLUTION


def padding_mask(lengths: Tensor, seq_len: int) -> Tensor:
    """Mask that hides the padding at the end of each sequence in a batch.

    Args:
        lengths: int ``(B,)``, the number of real tokens in each sequence
            (``0 <= lengths[b] <= seq_len``).
        seq_len: the padded length ``T``.

    Returns:
        bool ``(B, 1, 1, T)``; True for real tokens (positions ``< lengths[b]``).
        The two singleton dims broadcast over heads and query positions.
    """
    # BEGIN SOLUTION: compare torch.arange(seq_len) with lengths[:, None]; reshape to (B, 1, 1, T).
    positions = torch.arange(seq_len, device=lengths.device)
    keep = positions[None, :] < lengths[:, None]  # (B, T)
    return keep[:, None, None, :]
    # END SOLUTION


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Attention(q, k, v) = softmax(q kᵀ / sqrt(d)) v, with an optional mask.

    Args:
        q: ``(..., Tq, d)`` queries.
        k: ``(..., Tk, d)`` keys.
        v: ``(..., Tk, dv)`` values.
        mask: optional bool, broadcastable to ``(..., Tq, Tk)``; True = attend.

    Returns:
        ``(output, weights)``: output ``(..., Tq, dv)`` and the attention
        weights ``(..., Tq, Tk)`` (each row sums to 1). A query row whose keys
        are all masked gets zero weights and a zero output, never NaN.
    """
    # BEGIN SOLUTION: scores = q @ k^T / sqrt(d); fill masked scores with -inf; softmax over keys (last dim); output = weights @ v.
    d = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (..., Tq, d) x (..., d, Tk) -> (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = softmax(scores, dim=-1)  # (..., Tq, Tk); fully masked rows are all zero
    output = weights @ v  # (..., Tq, Tk) x (..., Tk, dv) -> (..., Tq, dv)
    return output, weights
    # END SOLUTION
