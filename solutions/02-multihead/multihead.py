"""Week 02: multi-head attention for self- and cross-attention, with multi-query and grouped-query variants.

Shapes use these letters:

* ``B`` batch, ``Tq`` query positions, ``Tk`` key/value positions
* ``H`` query heads (``n_heads``), ``Hkv`` key/value heads (``n_kv_heads``), ``Dh`` head size (``d_head``)
* ``D`` model width (``d_model``)

Masks are boolean, broadcastable to ``(B, H, Tq, Tk)``, and mean **True = may
attend** (week 01's convention; the opposite of ``torch.nn.MultiheadAttention``).

Rules: you may use ``torch.softmax`` this week, but not PyTorch's fused attention
(``F.scaled_dot_product_attention``) nor ``nn.MultiheadAttention`` /
``F.multi_head_attention_forward``; the grader records which torch ops run.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """``(B, T, n_heads * Dh)`` -> ``(B, n_heads, T, Dh)``: one slice of features per head."""
    # BEGIN SOLUTION: view as (B, T, n_heads, Dh), then move the head dim in front of T (transpose, not view).
    batch, length, width = x.shape
    return x.view(batch, length, n_heads, width // n_heads).transpose(1, 2)
    # END SOLUTION


def merge_heads(x: Tensor) -> Tensor:
    """``(B, H, T, Dh)`` -> ``(B, T, H * Dh)``: the inverse of ``split_heads``."""
    # BEGIN SOLUTION: move the head dim back behind T, then flatten heads and features (reshape copes with strides).
    batch, heads, length, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * d_head)
    # END SOLUTION


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """``(B, Hkv, T, Dh)`` -> ``(B, Hkv * n_rep, T, Dh)``, each head repeated ``n_rep`` times in a row.

    Query head ``h`` then lines up with key/value head ``h // n_rep``, as in Llama's
    ``repeat_kv`` and ``F.scaled_dot_product_attention(..., enable_gqa=True)``.
    """
    # BEGIN SOLUTION: repeat each head n_rep times consecutively (repeat_interleave on dim 1), not tile them.
    return x.repeat_interleave(n_rep, dim=1)
    # END SOLUTION


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention over the last two dims (week 01), fully masked rows giving zeros.

    q ``(..., Tq, Dh)``, k ``(..., Tk, Dh)``, v ``(..., Tk, Dv)``; returns ``(output, weights)``.
    """
    # BEGIN SOLUTION: week 01's scaled_dot_product_attention (you may use torch.softmax; rows with no key -> zeros).
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a row of all -inf gives NaN: make it zeros
    return weights @ v, weights
    # END SOLUTION


class MultiHeadAttention(nn.Module):
    """Multi-head attention; ``n_kv_heads`` < ``n_heads`` gives grouped-query (1: multi-query) attention.

    Parameters (names and shapes are fixed: the grader loads weights by name):

    ============  ==============================
    ``q_proj``    Linear(D, n_heads * Dh)
    ``k_proj``    Linear(D, n_kv_heads * Dh)
    ``v_proj``    Linear(D, n_kv_heads * Dh)
    ``out_proj``  Linear(n_heads * Dh, D)
    ============  ==============================

    Args:
        d_model: model width ``D``.
        n_heads: query heads ``H``.
        n_kv_heads: key/value heads (default ``n_heads``); must divide ``n_heads``.
        d_head: head size ``Dh`` (default ``d_model // n_heads``); need not equal it.
        bias: whether the four projections have biases.
    """

    def __init__(
        self, d_model: int, n_heads: int, n_kv_heads: int | None = None, d_head: int | None = None, bias: bool = True
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: store the sizes and create q_proj, k_proj, v_proj and out_proj as in the table above.
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads or n_heads
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads={self.n_kv_heads} must divide n_heads={n_heads}")
        self.d_head = d_head or d_model // n_heads
        self.q_proj = nn.Linear(d_model, self.n_heads * self.d_head, bias=bias)
        self.k_proj = nn.Linear(d_model, self.n_kv_heads * self.d_head, bias=bias)
        self.v_proj = nn.Linear(d_model, self.n_kv_heads * self.d_head, bias=bias)
        self.out_proj = nn.Linear(self.n_heads * self.d_head, d_model, bias=bias)
        # END SOLUTION

    def forward(self, x: Tensor, context: Tensor | None = None, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Attend from ``x`` to ``context`` (to ``x`` itself when ``context`` is None).

        Args:
            x: ``(B, Tq, D)`` queries come from here.
            context: ``(B, Tk, D)`` keys and values come from here (cross-attention), or None.
            mask: bool, broadcastable to ``(B, H, Tq, Tk)``; True = may attend.

        Returns:
            ``(output, weights)``: ``(B, Tq, D)`` and ``(B, H, Tq, Tk)``.
        """
        # BEGIN SOLUTION: project, split heads, repeat K/V heads to H, attend (scale 1/sqrt(Dh)), merge, out_proj.
        source = x if context is None else context
        q = split_heads(self.q_proj(x), self.n_heads)  # (B, H, Tq, Dh)
        k = split_heads(self.k_proj(source), self.n_kv_heads)  # (B, Hkv, Tk, Dh)
        v = split_heads(self.v_proj(source), self.n_kv_heads)  # (B, Hkv, Tk, Dh)
        n_rep = self.n_heads // self.n_kv_heads
        out, weights = attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask)  # (B, H, Tq, Dh)
        return self.out_proj(merge_heads(out)), weights
        # END SOLUTION


def kv_param_count(d_model: int, n_kv_heads: int, d_head: int, bias: bool = True) -> int:
    """Parameters of ``k_proj`` and ``v_proj`` together."""
    # BEGIN SOLUTION: two projections, each a (n_kv_heads * d_head, d_model) weight plus a bias of n_kv_heads * d_head.
    per_projection = d_model * n_kv_heads * d_head + (n_kv_heads * d_head if bias else 0)
    return 2 * per_projection
    # END SOLUTION


def kv_cache_bytes_per_token(n_layers: int, n_kv_heads: int, d_head: int, bytes_per_value: int = 2) -> int:
    """Bytes a KV cache grows by for each token: keys and values, every layer and key/value head."""
    # BEGIN SOLUTION: 2 (K and V) * layers * kv heads * head size * bytes per value.
    return 2 * n_layers * n_kv_heads * d_head * bytes_per_value
    # END SOLUTION
