"""Week 09, part 1: FlashAttention in PyTorch (forward and backward), sparse masks, Linformer and Performer.

Shapes use these letters:

* ``B`` batch, ``H`` heads, ``Tq`` query positions, ``Tk`` key/value positions (``T`` when they are equal)
* ``D`` head size of queries and keys, ``Dv`` head size of values (usually ``D``)
* ``Bq``, ``Bk`` tile sizes (``block_q``, ``block_k``): query rows and key columns handled at once
* ``Dm`` model width (``d_model``), ``Dh`` head size in ``Linformer`` (``Dm / H``), ``K`` Linformer's
  projected length (``k_proj_dim``), ``M`` Performer's number of random features

Attention is ``softmax(q k^T / sqrt(D)) v`` over the last two dims. ``causal=True``
masks key ``j > i`` for query ``i``, **aligned at the top left** exactly like
``F.scaled_dot_product_attention(..., is_causal=True)``: with ``Tq != Tk``, query
``i`` still sees keys ``0 .. i``. The log-sum-exp (LSE) of a query row is
``log(sum_j exp(s_ij))`` of its scaled, masked scores, natural log.

Masks are boolean and mean **True = may attend** (weeks 01 to 04). Masked scores are
``float("-inf")`` (or ``torch.finfo(dtype).min``), never a big negative number such as
``-1e9``: the grader has allowed scores far below it. No function changes its tensor
arguments in place (``q = q * scale``, not ``q *= scale``), and the tiled functions use
``block_q`` and ``block_k`` as given.

Rules: ``F.scaled_dot_product_attention`` and PyTorch's other fused attention
kernels are forbidden everywhere; the grader records which torch ops run. The
tiled functions (``flash_attention_forward``, ``flash_attention_backward``,
``flash_attention``, ``sliding_window_attention``, ``performer_attention``) must
never create a tensor that holds a whole ``(Tq, Tk)`` matrix, masks included, and
FlashAttention's scores must be tiled both ways (no ``(block_q, Tk)`` or
``(Tq, block_k)`` tensor either): the grader records the shape of every tensor
your code creates. ``torch.softmax``,
``torch.logsumexp`` and ``nn.Linear`` are fine.

``split_heads`` and ``merge_heads`` (for ``Linformer``) are imported from week 02's
``multihead``. When graded, that module is the reference solution (course.yml
``carry: reference``), so an old mistake costs points only in its own week.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from multihead import merge_heads, split_heads  # week 02
from torch import Tensor, nn

# -- exact attention, the yardstick ---------------------------------------------


def naive_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = False) -> tuple[Tensor, Tensor]:
    """Attention the memory-hungry way: the whole ``(B, H, Tq, Tk)`` score matrix at once.

    Args:
        q: ``(B, H, Tq, D)``; k: ``(B, H, Tk, D)``; v: ``(B, H, Tk, Dv)``.
        causal: mask key ``j > i`` for query ``i`` (top-left aligned, like SDPA).

    Returns:
        ``(out, lse)``: ``(B, H, Tq, Dv)`` and the log-sum-exp of each row's scaled scores ``(B, H, Tq)``.
    """
    # BEGIN SOLUTION: scores = q k^T / sqrt(D), mask j > i with -inf when causal, lse = logsumexp over keys, out = exp(scores - lse) v.
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, Tq, Tk)
    if causal:
        allowed = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)  # (B, H, Tq)
    return torch.exp(scores - lse[..., None]) @ v, lse
    # END SOLUTION


# -- FlashAttention in PyTorch ----------------------------------------------------


def flash_attention_forward(
    q: Tensor, k: Tensor, v: Tensor, causal: bool = False, block_q: int = 16, block_k: int = 16
) -> tuple[Tensor, Tensor]:
    """Tiled attention with the online softmax: the same ``(out, lse)`` as ``naive_attention``.

    For each tile of ``block_q`` query rows, stream over tiles of ``block_k`` keys
    keeping, per row, the running max ``m`` of the scores, the running sum ``l`` of
    ``exp(s - m)`` and the running ``exp(s - m) @ v`` (rescaled by ``exp(m_old - m_new)``
    whenever the max grows). The last tiles may be shorter (``Tq``, ``Tk`` need not be
    multiples of the tile sizes). Nothing of size ``Tq x Tk`` is created.

    Args:
        q: ``(B, H, Tq, D)``; k: ``(B, H, Tk, D)``; v: ``(B, H, Tk, Dv)``.
        causal: mask key ``j > i`` for query ``i`` (top-left aligned); key tiles wholly above the diagonal
            may be skipped.
        block_q, block_k: tile sizes ``Bq`` and ``Bk``.

    Returns:
        ``(out, lse)``: ``(B, H, Tq, Dv)`` and ``(B, H, Tq)``, in q's dtype.
    """
    # BEGIN SOLUTION: loop over query tiles; inside, loop over key tiles updating m, l and the accumulator (online softmax); out = acc / l, lse = m + log(l).
    seq_q, seq_k = q.size(-2), k.size(-2)
    scale = 1.0 / math.sqrt(q.size(-1))
    outs, lses = [], []
    for i0 in range(0, seq_q, block_q):
        i1 = min(i0 + block_q, seq_q)
        q_tile = q[..., i0:i1, :]  # (B, H, Bq, D)
        m = torch.full(q_tile.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)  # (B, H, Bq)
        l = torch.zeros_like(m)  # noqa: E741  (the paper's name)
        acc = torch.zeros(*q_tile.shape[:-1], v.size(-1), dtype=q.dtype, device=q.device)  # (B, H, Bq, Dv)
        rows = torch.arange(i0, i1, device=q.device)
        k_end = min(seq_k, i1) if causal else seq_k  # key tiles past the diagonal are fully masked
        for j0 in range(0, k_end, block_k):
            j1 = min(j0 + block_k, seq_k)
            s = q_tile @ k[..., j0:j1, :].transpose(-2, -1) * scale  # (B, H, Bq, Bk)
            if causal:
                cols = torch.arange(j0, j1, device=q.device)
                s = s.masked_fill(cols[None, :] > rows[:, None], float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1))
            m_safe = m_new.masked_fill(m_new == float("-inf"), 0.0)  # a row with no key yet: keep zeros, not NaN
            alpha = torch.exp(m - m_safe)  # rescales what was summed under the old max
            p = torch.exp(s - m_safe[..., None])  # (B, H, Bq, Bk)
            l = alpha * l + p.sum(dim=-1)  # noqa: E741
            acc = alpha[..., None] * acc + p @ v[..., j0:j1, :]
            m = m_new
        outs.append(acc / l[..., None])
        lses.append(m + torch.log(l))
    return torch.cat(outs, dim=-2), torch.cat(lses, dim=-1)
    # END SOLUTION


def flash_attention_backward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    grad_out: Tensor,
    causal: bool = False,
    block_q: int = 16,
    block_k: int = 16,
) -> tuple[Tensor, Tensor, Tensor]:
    """The gradients of attention, recomputing the probabilities tile by tile from the saved LSE.

    With ``s = q k^T / sqrt(D)``, ``P = exp(s - lse)``, ``dO = grad_out`` and
    ``delta = rowsum(dO * out)`` ``(B, H, Tq)``, for each pair of tiles::

        dV_j += P_ij^T dO_i        dP_ij = dO_i V_j^T        dS_ij = P_ij * (dP_ij - delta_i)
        dQ_i += dS_ij K_j / sqrt(D)                           dK_j += dS_ij^T Q_i / sqrt(D)

    Args:
        q, k, v: as in ``flash_attention_forward``.
        out, lse: what the forward pass returned: ``(B, H, Tq, Dv)`` and ``(B, H, Tq)``.
        grad_out: the gradient of the loss with respect to ``out``, ``(B, H, Tq, Dv)``.
        causal, block_q, block_k: as in the forward pass.

    Returns:
        ``(dq, dk, dv)``, shaped like ``q``, ``k`` and ``v``.
    """
    # BEGIN SOLUTION: delta = rowsum(grad_out * out); for each tile pair recompute P = exp(s - lse), then accumulate dV, dQ, dK with dS = P * (dP - delta).
    seq_q, seq_k = q.size(-2), k.size(-2)
    scale = 1.0 / math.sqrt(q.size(-1))
    delta = (grad_out * out).sum(dim=-1)  # (B, H, Tq)
    dk = torch.zeros_like(k)
    dv = torch.zeros_like(v)
    dqs = []
    for i0 in range(0, seq_q, block_q):
        i1 = min(i0 + block_q, seq_q)
        q_tile, do_tile = q[..., i0:i1, :], grad_out[..., i0:i1, :]  # (B, H, Bq, D), (B, H, Bq, Dv)
        lse_tile, delta_tile = lse[..., i0:i1, None], delta[..., i0:i1, None]  # (B, H, Bq, 1)
        dq_tile = torch.zeros_like(q_tile)
        rows = torch.arange(i0, i1, device=q.device)
        k_end = min(seq_k, i1) if causal else seq_k
        for j0 in range(0, k_end, block_k):
            j1 = min(j0 + block_k, seq_k)
            k_tile, v_tile = k[..., j0:j1, :], v[..., j0:j1, :]
            s = q_tile @ k_tile.transpose(-2, -1) * scale  # (B, H, Bq, Bk)
            if causal:
                cols = torch.arange(j0, j1, device=q.device)
                s = s.masked_fill(cols[None, :] > rows[:, None], float("-inf"))
            p = torch.exp(s - lse_tile)  # the exact probabilities of this tile
            dv[..., j0:j1, :] += p.transpose(-2, -1) @ do_tile
            dp = do_tile @ v_tile.transpose(-2, -1)  # (B, H, Bq, Bk)
            ds = p * (dp - delta_tile)
            dq_tile += ds @ k_tile * scale
            dk[..., j0:j1, :] += ds.transpose(-2, -1) @ q_tile * scale
        dqs.append(dq_tile)
    return torch.cat(dqs, dim=-2), dk, dv
    # END SOLUTION


class FlashAttention(torch.autograd.Function):
    """``FlashAttention.apply(q, k, v, causal, block_q, block_k)`` -> ``out`` ``(B, H, Tq, Dv)``.

    Saves only ``q``, ``k``, ``v``, the output and the LSE for the backward pass,
    never the probabilities: the backward recomputes them tile by tile.
    """

    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, causal: bool, block_q: int, block_k: int) -> Tensor:
        """Run ``flash_attention_forward``; save what the backward pass needs on ``ctx``."""
        # BEGIN SOLUTION: run the tiled forward, save q, k, v, out and lse (ctx.save_for_backward) and the settings on ctx.
        out, lse = flash_attention_forward(q, k, v, causal, block_q, block_k)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.settings = (causal, block_q, block_k)
        return out
        # END SOLUTION

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        """One gradient per input of ``forward``: ``(dq, dk, dv, None, None, None)``."""
        # BEGIN SOLUTION: call flash_attention_backward with the saved tensors; no gradient for the three settings.
        q, k, v, out, lse = ctx.saved_tensors
        causal, block_q, block_k = ctx.settings
        dq, dk, dv = flash_attention_backward(q, k, v, out, lse, grad_out, causal, block_q, block_k)
        return dq, dk, dv, None, None, None
        # END SOLUTION


def flash_attention(
    q: Tensor, k: Tensor, v: Tensor, causal: bool = False, block_q: int = 16, block_k: int = 16
) -> Tensor:
    """Differentiable FlashAttention: ``(B, H, Tq, D)``, ``(B, H, Tk, D)``, ``(B, H, Tk, Dv)`` -> ``(B, H, Tq, Dv)``."""
    # BEGIN SOLUTION: FlashAttention.apply with all six arguments (apply takes positional arguments only).
    out: Tensor = FlashAttention.apply(q, k, v, causal, block_q, block_k)  # type: ignore[no-untyped-call]
    return out
    # END SOLUTION


# -- sparse attention: Longformer and BigBird patterns ------------------------------


def sliding_window_mask(length: int, window: int, global_tokens: list[int] | tuple[int, ...] = ()) -> Tensor:
    """Longformer's pattern as a ``(T, T)`` bool mask (True = may attend).

    Query ``i`` may attend key ``j`` when ``|i - j| <= window``; a global token
    attends every position and every position attends it (both directions).

    Args:
        length: ``T``.
        window: keys on each side of the query (``window=0``: only the diagonal).
        global_tokens: positions of the global tokens (e.g. ``[0]`` for ``[CLS]``).
    """
    # BEGIN SOLUTION: band |i - j| <= window, then set the rows AND the columns of the global tokens to True.
    positions = torch.arange(length)
    mask = (positions[:, None] - positions[None, :]).abs() <= window
    if len(global_tokens):
        index = torch.as_tensor(list(global_tokens), dtype=torch.long)
        mask[index, :] = True
        mask[:, index] = True
    return mask
    # END SOLUTION


def bigbird_mask(
    length: int, block: int, window_blocks: int, n_random_blocks: int, n_global_blocks: int, seed: int
) -> Tensor:
    """BigBird's block-sparse pattern as a ``(T, T)`` bool mask (True = may attend).

    The ``T`` positions form ``nb = ceil(T / block)`` blocks (the last may be
    shorter); query block ``a`` may attend key block ``b`` when:

    * window: ``|a - b| <= window_blocks``;
    * global: ``a < n_global_blocks`` or ``b < n_global_blocks`` (both directions);
    * random: ``b`` is one of the random blocks of row ``a``.

    Random blocks, exactly in this order (the grader checks the exact mask): one
    generator ``g = torch.Generator().manual_seed(seed)``; for each non-global
    query block ``a = n_global_blocks, ..., nb - 1`` in increasing order, the
    candidates are the key blocks that window and global do not already give
    row ``a``, in increasing order; draw ``torch.randperm(len(candidates),
    generator=g)`` and take the candidates at its first ``n_random_blocks``
    entries (all of them when there are fewer). Global rows draw nothing. Draw from
    ``g`` only: torch's global random generator is left untouched (no ``torch.manual_seed``).

    Returns:
        ``(T, T)`` bool; position ``i`` is in block ``i // block``.
    """
    # BEGIN SOLUTION: build the (nb, nb) block pattern (window, global rows and columns, then the seeded random blocks per row in order), then expand it to positions.
    n_blocks = -(-length // block)
    index = torch.arange(n_blocks)
    pattern = (index[:, None] - index[None, :]).abs() <= window_blocks  # (nb, nb)
    pattern[:n_global_blocks, :] = True
    pattern[:, :n_global_blocks] = True
    draws = torch.Generator().manual_seed(seed)  # one generator, rows in order
    for row in range(n_global_blocks, n_blocks):
        candidates = (~pattern[row]).nonzero().flatten()  # increasing order
        chosen = candidates[torch.randperm(len(candidates), generator=draws)[:n_random_blocks]]
        pattern[row, chosen] = True
    blocks = torch.arange(length) // block
    return pattern[blocks][:, blocks]
    # END SOLUTION


def masked_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
    """Dense attention with a bool mask: the yardstick for the sparse patterns.

    Args:
        q: ``(B, H, Tq, D)``; k: ``(B, H, Tk, D)``; v: ``(B, H, Tk, Dv)``.
        mask: bool, broadcastable to ``(B, H, Tq, Tk)``, True = may attend.

    Returns:
        ``(B, H, Tq, Dv)``; a query row with no allowed key gives zeros (not NaN).
    """
    # BEGIN SOLUTION: week 01's masked attention: scores / sqrt(D), -inf where the mask is False, softmax, zeros for rows with no key, times v.
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return weights @ v
    # END SOLUTION


def sliding_window_attention(q: Tensor, k: Tensor, v: Tensor, window: int, block: int = 16) -> Tensor:
    """Local attention ``|i - j| <= window`` in ``O(T * (block + 2 window))`` memory.

    Equal to ``masked_attention(q, k, v, sliding_window_mask(T, window))``, but each
    tile of ``block`` queries only looks at the keys its window can reach:
    ``[max(0, i0 - window), min(T, i1 + window))`` for queries ``[i0, i1)``. Never
    creates a ``(T, T)`` tensor.

    Args:
        q, k: ``(B, H, T, D)``; v: ``(B, H, T, Dv)`` (self-attention: ``Tq = Tk = T``).
        window: keys on each side; block: query rows per tile.

    Returns:
        ``(B, H, T, Dv)``.
    """
    # BEGIN SOLUTION: per query tile, slice the reachable keys, mask |i - j| > window inside the slice, softmax, times the value slice; concatenate.
    length = q.size(-2)
    scale = 1.0 / math.sqrt(q.size(-1))
    outs = []
    for i0 in range(0, length, block):
        i1 = min(i0 + block, length)
        j0, j1 = max(0, i0 - window), min(length, i1 + window)
        s = q[..., i0:i1, :] @ k[..., j0:j1, :].transpose(-2, -1) * scale  # (B, H, Bq, Bq + 2 window at most)
        rows = torch.arange(i0, i1, device=q.device)
        cols = torch.arange(j0, j1, device=q.device)
        s = s.masked_fill((rows[:, None] - cols[None, :]).abs() > window, float("-inf"))
        outs.append(torch.softmax(s, dim=-1) @ v[..., j0:j1, :])
    return torch.cat(outs, dim=-2)
    # END SOLUTION


# -- Linformer: project the length dimension -----------------------------------------


class Linformer(nn.Module):
    """Linformer self-attention (Wang et al., 2020): keys and values projected from ``T`` to ``K`` positions.

    Parameters (names and shapes are fixed: the grader loads weights by name):

    ============  ==================================================
    ``q_proj``    Linear(Dm, Dm)
    ``k_proj``    Linear(Dm, Dm)
    ``v_proj``    Linear(Dm, Dm)
    ``out_proj``  Linear(Dm, Dm)
    ``E``         Parameter ``(K, seq_len)``: projects the keys' length
    ``F``         Parameter ``(K, seq_len)``: projects the values' length
    ============  ==================================================

    One ``E`` and one ``F`` are shared by all heads ("headwise sharing").
    ``E`` and ``F`` start as two separate draws from ``N(0, 1/K)``: variance ``1/K``,
    standard deviation ``1/sqrt(K)`` (``torch.randn(K, seq_len) / math.sqrt(K)``).

    Args:
        d_model: model width ``Dm``.
        n_heads: heads ``H`` (``Dh = Dm / H``).
        seq_len: the longest input ``T``; shorter inputs use the first ``T`` columns of ``E`` and ``F``.
        k_proj_dim: the projected length ``K``.
    """

    def __init__(self, d_model: int, n_heads: int, seq_len: int, k_proj_dim: int) -> None:
        super().__init__()
        # BEGIN SOLUTION: store n_heads; the four Linear(Dm, Dm) projections; E and F as nn.Parameter (K, seq_len) drawn N(0, 1/K).
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.E = nn.Parameter(torch.randn(k_proj_dim, seq_len) / math.sqrt(k_proj_dim))
        self.F = nn.Parameter(torch.randn(k_proj_dim, seq_len) / math.sqrt(k_proj_dim))
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``(B, T, Dm)`` with ``T <= seq_len`` -> ``(B, T, Dm)``.

        ``out_proj(merge(softmax(q (E k)^T / sqrt(Dh)) (F v)))`` with ``q, k, v``
        ``(B, H, T, Dh)`` and ``E k``, ``F v`` ``(B, H, K, Dh)``: ``E[:, :T]`` mixes
        the ``T`` key positions into ``K`` (likewise ``F`` for the values). No mask.
        """
        # BEGIN SOLUTION: project and split heads; E[:, :T] @ k and F[:, :T] @ v (length T -> K); attention over the K projected positions; merge; out_proj.
        length = x.size(1)
        q = split_heads(self.q_proj(x), self.n_heads)  # (B, H, T, Dh)
        k = self.E[:, :length] @ split_heads(self.k_proj(x), self.n_heads)  # (B, H, K, Dh)
        v = self.F[:, :length] @ split_heads(self.v_proj(x), self.n_heads)  # (B, H, K, Dh)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, T, K)
        out: Tensor = self.out_proj(merge_heads(torch.softmax(scores, dim=-1) @ v))
        return out
        # END SOLUTION


# -- Performer: FAVOR+ positive random features ---------------------------------------


def random_projection(n_features: int, dim: int, seed: int) -> Tensor:
    """``M`` i.i.d. Gaussian directions ``w ~ N(0, I_D)``, as rows of a float64 ``(M, D)`` matrix.

    Exactly ``torch.randn(n_features, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)``;
    torch's global random generator is left untouched (no ``torch.manual_seed``).
    """
    # BEGIN SOLUTION: one seeded generator, one randn call of shape (M, D) in float64.
    return torch.randn(n_features, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    # END SOLUTION


def favor_features(x: Tensor, projection: Tensor) -> Tensor:
    """FAVOR+ positive random features: ``phi(x) = exp(W x - |x|^2 / 2) / sqrt(M)``.

    For ``W`` with rows ``w ~ N(0, I)``, ``E[phi(x) . phi(y)] * M / M = exp(x . y)``:
    the softmax kernel, estimated without bias by positive features.

    Args:
        x: ``(..., T, D)`` (already scaled: see ``performer_attention``).
        projection: ``(M, D)``, the rows ``w``, in x's dtype.

    Returns:
        ``(..., T, M)``.
    """
    # BEGIN SOLUTION: x @ projection^T minus half the squared norm of each row of x, exponentiate, divide by sqrt(M).
    n_features = projection.size(0)
    logits = x @ projection.transpose(-2, -1) - 0.5 * (x * x).sum(dim=-1, keepdim=True)  # (..., T, M)
    return torch.exp(logits) / math.sqrt(n_features)
    # END SOLUTION


def performer_attention(q: Tensor, k: Tensor, v: Tensor, projection: Tensor) -> Tensor:
    """Performer's non-causal linear-time attention, an unbiased estimate of ``softmax(q k^T / sqrt(D)) v``.

    Scale ``q`` and ``k`` by ``D ** -0.25`` (so ``q' . k' = q . k / sqrt(D)``), map
    both through ``favor_features``, then compute ``phi(q') (phi(k')^T v)`` divided
    row by row by ``phi(q') (phi(k')^T 1)``: ``O(T M D)`` time, never ``Tq x Tk``.
    (You may subtract a per-row max of ``q' W^T`` and one max over all keys of
    ``k' W^T`` before exponentiating, for stability: both cancel in the division.)

    Args:
        q: ``(B, H, Tq, D)``; k: ``(B, H, Tk, D)``; v: ``(B, H, Tk, Dv)``.
        projection: ``(M, D)`` random directions, in q's dtype.

    Returns:
        ``(B, H, Tq, Dv)``.
    """
    # BEGIN SOLUTION: features of q and k scaled by D^-1/4; numerator phi_q (phi_k^T v), denominator phi_q (phi_k^T 1); divide.
    scale = q.size(-1) ** -0.25
    phi_q = favor_features(q * scale, projection)  # (B, H, Tq, M)
    phi_k = favor_features(k * scale, projection)  # (B, H, Tk, M)
    kv = phi_k.transpose(-2, -1) @ v  # (B, H, M, Dv)
    normaliser = phi_q @ phi_k.sum(dim=-2)[..., None]  # (B, H, Tq, 1)
    return (phi_q @ kv) / normaliser
    # END SOLUTION
