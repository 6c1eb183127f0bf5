"""Week 03: positional encodings: sinusoidal, learned, T5 relative bias, RoPE and ALiBi.

Attention is permutation-equivariant: shuffle the tokens and the outputs are
shuffled the same way. These five schemes each tell the model where a token is.

Shapes use these letters:

* ``B`` batch, ``T`` positions, ``Tq`` query positions, ``Tk`` key positions
* ``H`` heads, ``Dh`` head size, ``D`` model width

Where positions are given as a tensor they are a *floating-point* tensor, and the
result has its dtype: ``torch.arange(T, dtype=torch.float64)`` gives float64
encodings. Every function here works for any length (the tests use T > 128).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# -- absolute encodings: added to the token embeddings ------------------------------------


def sinusoidal_encoding(positions: Tensor, d_model: int, base: float = 10000.0) -> Tensor:
    """The original transformer's encoding (Vaswani et al. 2017, §3.5), interleaved sin/cos.

    ``PE[p, 2i] = sin(p / base^(2i/D))`` and ``PE[p, 2i+1] = cos(p / base^(2i/D))``.

    Args:
        positions: ``(T,)`` floating-point positions (need not start at 0).
        d_model: ``D``, even.
        base: the wavelength base (10000 in the paper).

    Returns:
        ``(T, D)`` in the dtype of ``positions``.
    """
    # BEGIN SOLUTION: frequencies base^(-2i/D) for i < D/2; angles = positions x frequencies; sin in even columns, cos in odd.
    exponents = torch.arange(0, d_model, 2, dtype=positions.dtype) / d_model  # 2i / D, (D/2,)
    angles = positions[:, None] * base**-exponents  # (T, D/2)
    encoding = torch.empty(positions.shape[0], d_model, dtype=positions.dtype)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles)
    return encoding
    # END SOLUTION


class LearnedPositionalEmbedding(nn.Module):
    """One learned vector per position (BERT, GPT-2), added to the input.

    Parameter (name and shape fixed): ``weight`` ``(max_len, D)``, initialised
    from a normal distribution with std 0.02.
    """

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        # BEGIN SOLUTION: create the (max_len, d_model) parameter `weight` with std 0.02 and remember max_len.
        self.max_len = max_len
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        # END SOLUTION

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """``x`` ``(B, T, D)`` plus the vectors of positions ``offset … offset+T-1``.

        Raises ``ValueError`` when ``offset + T > max_len``: a learned table has
        nothing for positions it never saw.
        """
        # BEGIN SOLUTION: check offset + T <= max_len (ValueError otherwise); add rows offset..offset+T-1 of weight.
        length = x.shape[1]
        if offset + length > self.max_len:
            raise ValueError(f"positions up to {offset + length - 1} but the table has {self.max_len}")
        return x + self.weight[offset : offset + length]
        # END SOLUTION


# -- T5: a learned bias per head and distance bucket, added to the scores -----------------


def relative_position_bucket(
    relative_position: Tensor, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> Tensor:
    """T5's bucket of each relative position ``key_position - query_position`` (Raffel et al. 2020).

    With ``bidirectional``, half the buckets are for keys after the query
    (positive offsets, buckets ``num_buckets/2 …``) and half for keys at or
    before it; otherwise (causal) only ``key <= query`` is bucketed and positive
    offsets fall in bucket 0. Of each half's ``n`` buckets, distances
    ``0 … n/2-1`` get one bucket each; larger distances share buckets spaced
    logarithmically up to ``max_distance``, and everything beyond goes to the
    last bucket ``n - 1``.

    Args:
        relative_position: integer tensor of any shape.

    Returns:
        a ``torch.long`` tensor of the same shape, values in ``[0, num_buckets)``.
    """
    # BEGIN SOLUTION: halve the buckets (offset n for positive) if bidirectional, else clamp to <= 0; exact below n/2; log-spaced after, clamped to n-1.
    if bidirectional:
        num_buckets //= 2
        bucket = (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        bucket = torch.zeros_like(relative_position, dtype=torch.long)
        distance = -torch.clamp(relative_position, max=0)
    max_exact = num_buckets // 2
    log_ratio = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
    far = max_exact + (log_ratio * (num_buckets - max_exact)).long()
    far = torch.clamp(far, max=num_buckets - 1)
    return bucket + torch.where(distance < max_exact, distance.long(), far)
    # END SOLUTION


class RelativePositionBias(nn.Module):
    """T5's relative position bias: one learned scalar per (bucket, head), added to the scores.

    Parameter (name and shape fixed, as in T5): ``relative_attention_bias``, an
    ``nn.Embedding(num_buckets, n_heads)``.
    """

    def __init__(
        self, n_heads: int, num_buckets: int = 32, max_distance: int = 128, bidirectional: bool = True
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: remember the settings; create relative_attention_bias = nn.Embedding(num_buckets, n_heads).
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.relative_attention_bias = nn.Embedding(num_buckets, n_heads)
        # END SOLUTION

    def forward(self, q_len: int, k_len: int) -> Tensor:
        """The bias ``(1, H, Tq, Tk)`` for queries at positions ``0 … Tq-1`` and keys at ``0 … Tk-1``.

        Entry ``[0, h, i, j]`` is the learned value of head ``h`` for the bucket of ``j - i``.
        """
        # BEGIN SOLUTION: relative positions key - query as a (Tq, Tk) grid, bucket them, look up, move heads first.
        relative = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None]  # (Tq, Tk)
        buckets = relative_position_bucket(relative, self.bidirectional, self.num_buckets, self.max_distance)
        values: Tensor = self.relative_attention_bias(buckets)  # (Tq, Tk, H)
        return values.permute(2, 0, 1).unsqueeze(0)
        # END SOLUTION


# -- RoPE: rotate queries and keys by an angle proportional to their position -------------


def rope_cos_sin(positions: Tensor, d_head: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """The cosines and sines of rotary embeddings in the half-split ("rotate_half") layout of Llama.

    Pair ``i`` (``0 <= i < Dh/2``) is features ``i`` and ``i + Dh/2``; it turns at
    frequency ``base^(-2i/Dh)``, so at position ``p`` by angle ``p * base^(-2i/Dh)``.
    Both results repeat the ``Dh/2`` angles twice: ``[θ_0 … θ_{Dh/2-1}, θ_0 … θ_{Dh/2-1}]``.

    Args:
        positions: ``(T,)`` floating-point positions.
        d_head: ``Dh``, even.

    Returns:
        ``(cos, sin)``, each ``(T, Dh)`` in the dtype of ``positions``.
    """
    # BEGIN SOLUTION: inverse frequencies base^(-2i/Dh); angles = outer(positions, inv_freq); duplicate along the last dim; cos and sin.
    inv_freq = base ** -(torch.arange(0, d_head, 2, dtype=positions.dtype) / d_head)  # (Dh/2,)
    angles = positions[:, None] * inv_freq  # (T, Dh/2)
    angles = torch.cat((angles, angles), dim=-1)  # (T, Dh)
    return angles.cos(), angles.sin()
    # END SOLUTION


def rotate_half(x: Tensor) -> Tensor:
    """``[x1, x2] -> [-x2, x1]`` where ``x1``, ``x2`` are the two halves of the last dim."""
    # BEGIN SOLUTION: split the last dim into halves x1, x2; concatenate -x2 then x1.
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)
    # END SOLUTION


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` ``(B, H, T, Dh)`` by the angles of its positions: ``x * cos + rotate_half(x) * sin``.

    ``cos`` and ``sin`` come from :func:`rope_cos_sin` and broadcast against ``x``
    (``(T, Dh)``). Apply it to queries and keys, never to values.
    """
    # BEGIN SOLUTION: x * cos + rotate_half(x) * sin.
    return x * cos + rotate_half(x) * sin
    # END SOLUTION


# -- ALiBi: a fixed, per-head linear penalty on distance, added to the scores -------------


def alibi_slopes(n_heads: int) -> Tensor:
    """ALiBi's head slopes (Press et al. 2022), float32 ``(H,)``.

    For ``H`` a power of two: the geometric sequence ``2^(-8/H), 2^(-16/H), …,
    2^(-8)``. Otherwise, with ``P`` the largest power of two below ``H``: the ``P``
    slopes for ``P`` heads, then the first ``H - P`` of the slopes at odd
    positions (1st, 3rd, 5th, …) of the sequence for ``2P`` heads.
    """

    # BEGIN SOLUTION: geometric slopes 2^(-8(i+1)/n) for the power of two n; for other H, interleave from 2n as described.
    def geometric(n: int) -> list[float]:
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    power = 2 ** int(math.floor(math.log2(n_heads)))
    slopes = geometric(power)
    if power < n_heads:
        slopes += geometric(2 * power)[0::2][: n_heads - power]
    return torch.tensor(slopes, dtype=torch.float32)
    # END SOLUTION


def alibi_bias(slopes: Tensor, q_len: int, k_len: int) -> Tensor:
    """ALiBi's bias ``(H, Tq, Tk)``: ``-slope[h] * |distance|`` between query ``i`` and key ``j``.

    The ``Tq`` queries are the *last* ``Tq`` of the ``Tk`` positions (as when
    decoding with a cache), so query ``i`` sits at position ``i + Tk - Tq`` and
    the distance is ``i + Tk - Tq - j``. Dtype: that of ``slopes``.
    """
    # BEGIN SOLUTION: query positions (Tk - Tq) + arange(Tq), key positions arange(Tk); bias = -slope * |query - key|.
    query_positions = torch.arange(q_len, dtype=slopes.dtype) + (k_len - q_len)
    key_positions = torch.arange(k_len, dtype=slopes.dtype)
    distance = (query_positions[:, None] - key_positions[None, :]).abs()  # (Tq, Tk)
    return -slopes[:, None, None] * distance
    # END SOLUTION
