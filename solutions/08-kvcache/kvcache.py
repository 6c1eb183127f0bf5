"""Week 08: inference with a KV cache.

Shapes use these letters:

* ``B`` batch, ``T`` positions so far (cached + new), ``Tc`` cached positions, ``Tn`` new positions
* ``T0`` prompt length, ``N`` new tokens (``max_new_tokens``)
* ``D`` model width, ``F`` feed-forward width, ``V`` vocabulary size, ``L`` layers
* ``H`` query heads, ``Hkv`` key/value heads (``n_kv_heads``; ``H`` for MHA, 1 for MQA), ``Dh`` head size

Token ids are int64; ``attention_mask`` is ``(B, T)``, 1 for a real token, 0 for
(left) padding, and always covers **every** position so far, cached ones included.

Rules: as in weeks 04 and 06 (no ``F.gelu``, ``F.layer_norm``, ``F.dropout``, fused
attention or ``transformers``). Only this file is submitted: paste your week 02, 04
and 06 code into it where it says so.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "swiglu")
NORMS = ("layernorm", "rmsnorm")


# -- week 02, pasted ------------------------------------------------------------


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """``(B, T, n_heads * Dh)`` -> ``(B, n_heads, T, Dh)``: one slice of features per head."""
    # BEGIN SOLUTION: paste your week 02 split_heads.
    batch, length, width = x.shape
    return x.view(batch, length, n_heads, width // n_heads).transpose(1, 2)
    # END SOLUTION


def merge_heads(x: Tensor) -> Tensor:
    """``(B, H, T, Dh)`` -> ``(B, T, H * Dh)``: the inverse of ``split_heads``."""
    # BEGIN SOLUTION: paste your week 02 merge_heads.
    batch, heads, length, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * d_head)
    # END SOLUTION


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """``(B, Hkv, T, Dh)`` -> ``(B, Hkv * n_rep, T, Dh)``, each head repeated ``n_rep`` times in a row."""
    # BEGIN SOLUTION: paste your week 02 repeat_kv.
    return x.repeat_interleave(n_rep, dim=1)
    # END SOLUTION


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention over the last two dims, fully masked rows giving zeros (week 02).

    q ``(..., Tq, Dh)``, k ``(..., Tk, Dh)``, v ``(..., Tk, Dv)``; returns ``(output, weights)``.
    """
    # BEGIN SOLUTION: paste your week 02 attention (torch.softmax is allowed; rows with no key -> zeros).
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a row of all -inf gives NaN: make it zeros
    return weights @ v, weights
    # END SOLUTION


class MultiHeadAttention(nn.Module):
    """Week 02's multi-head attention, unchanged: ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``.

    ============  ==============================
    ``q_proj``    Linear(D, n_heads * Dh)
    ``k_proj``    Linear(D, n_kv_heads * Dh)
    ``v_proj``    Linear(D, n_kv_heads * Dh)
    ``out_proj``  Linear(n_heads * Dh, D)
    ============  ==============================
    """

    def __init__(
        self, d_model: int, n_heads: int, n_kv_heads: int | None = None, d_head: int | None = None, bias: bool = True
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: paste the body of your week 02 MultiHeadAttention.__init__.
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
        """``x`` ``(B, Tq, D)``, ``context`` ``(B, Tk, D)`` or None -> ``(B, Tq, D)`` and ``(B, H, Tq, Tk)``."""
        # BEGIN SOLUTION: paste the body of your week 02 MultiHeadAttention.forward.
        source = x if context is None else context
        q = split_heads(self.q_proj(x), self.n_heads)  # (B, H, Tq, Dh)
        k = split_heads(self.k_proj(source), self.n_kv_heads)  # (B, Hkv, Tk, Dh)
        v = split_heads(self.v_proj(source), self.n_kv_heads)  # (B, Hkv, Tk, Dh)
        n_rep = self.n_heads // self.n_kv_heads
        out, weights = attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask)  # (B, H, Tq, Dh)
        return self.out_proj(merge_heads(out)), weights
        # END SOLUTION


# -- week 04, pasted ------------------------------------------------------------


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """The Gaussian error linear unit, elementwise (any shape in, the same shape out).

    ``approximate="none"``: ``x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))``, exact.
    ``approximate="tanh"``: ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`` (GPT-2's "gelu_new").
    Anything else raises ``ValueError``.
    """
    # BEGIN SOLUTION: paste your week 04 gelu (both formulas, ValueError otherwise).
    if approximate == "none":
        return 0.5 * x * (1.0 + torch.erf(x * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + torch.tanh(inner))
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    # END SOLUTION


class FeedForward(nn.Module):
    """The position-wise feed-forward network: ``(B, T, D)`` -> ``(B, T, D)``, each position on its own.

    ============  ===============  ===============================
    ``fc1``       Linear(D, F)     every activation
    ``fc2``       Linear(F, D)     every activation
    ``fc_gate``   Linear(D, F)     ``activation="swiglu"`` only
    ============  ===============  ===============================

    ``relu``, ``gelu``, ``gelu_tanh``: ``fc2(act(fc1(x)))`` with ``act`` ReLU, exact GELU
    or tanh GELU. ``swiglu`` (Shazeer 2020): ``fc2(silu(fc_gate(x)) * fc1(x))``, where
    ``silu(z) = z * sigmoid(z)``. Any other ``activation`` raises ``ValueError``.

    Args:
        d_model: model width ``D``.
        d_ff: hidden width ``F``.
        activation: one of ``"relu"``, ``"gelu"``, ``"gelu_tanh"``, ``"swiglu"``.
        bias: whether the linear layers have biases.
    """

    def __init__(self, d_model: int, d_ff: int, activation: str = "relu", bias: bool = True) -> None:
        super().__init__()
        # BEGIN SOLUTION: paste the body of your week 04 FeedForward.__init__.
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)
        if activation == "swiglu":
            self.fc_gate = nn.Linear(d_model, d_ff, bias=bias)
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """``(B, T, D)`` -> ``(B, T, D)``."""
        # BEGIN SOLUTION: paste the body of your week 04 FeedForward.forward.
        hidden = self.fc1(x)  # (B, T, F)
        if self.activation == "relu":
            hidden = torch.relu(hidden)
        elif self.activation == "gelu":
            hidden = gelu(hidden)
        elif self.activation == "gelu_tanh":
            hidden = gelu(hidden, approximate="tanh")
        else:
            gate = self.fc_gate(x)  # (B, T, F)
            hidden = gate * torch.sigmoid(gate) * hidden
        out: Tensor = self.fc2(hidden)  # (B, T, D)
        return out
        # END SOLUTION


class LayerNorm(nn.Module):
    """Layer normalization over the last dim (Ba et al., 2016): ``(..., D)`` -> ``(..., D)``.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, with the mean and the
    **biased** variance (divide by ``D``) of each position's ``D`` features.

    Parameters: ``weight`` ``(D,)`` starting at ones, ``bias`` ``(D,)`` starting at zeros.
    """

    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        # BEGIN SOLUTION: paste the body of your week 04 LayerNorm.__init__.
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """``(..., D)`` -> ``(..., D)``."""
        # BEGIN SOLUTION: paste the body of your week 04 LayerNorm.forward.
        centred = x - x.mean(dim=-1, keepdim=True)
        variance = centred.square().mean(dim=-1, keepdim=True)  # biased: divides by D
        return centred * torch.rsqrt(variance + self.eps) * self.weight + self.bias
        # END SOLUTION


class RMSNorm(nn.Module):
    """Root-mean-square normalization over the last dim (Zhang & Sennrich, 2019): ``(..., D)`` -> ``(..., D)``.

    ``y = x / sqrt(mean(x^2) + eps) * weight``: no centring and no bias.

    Parameters: ``weight`` ``(D,)`` starting at ones.
    """

    def __init__(self, d_model: int, eps: float = 1e-6) -> None:
        super().__init__()
        # BEGIN SOLUTION: paste the body of your week 04 RMSNorm.__init__.
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """``(..., D)`` -> ``(..., D)``."""
        # BEGIN SOLUTION: paste the body of your week 04 RMSNorm.forward.
        mean_square = x.square().mean(dim=-1, keepdim=True)
        return x * torch.rsqrt(mean_square + self.eps) * self.weight
        # END SOLUTION


class Dropout(nn.Module):
    """Inverted dropout (Srivastava et al., 2014), elementwise, any shape.

    In training mode each element is zeroed with probability ``p`` and the
    survivors are divided by ``1 - p``, so the expected output equals the input.
    In eval mode (``self.training`` False), or when ``p == 0``, it returns its
    input unchanged. ``p == 1`` gives zeros. ``p`` outside ``[0, 1]`` raises ``ValueError``.
    """

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        # BEGIN SOLUTION: paste the body of your week 04 Dropout.__init__.
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """Any shape -> the same shape."""
        # BEGIN SOLUTION: paste the body of your week 04 Dropout.forward.
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return torch.zeros_like(x)  # 0 / 0 would give NaN
        keep = torch.rand_like(x) >= self.p  # True with probability 1 - p
        return x * keep / (1.0 - self.p)
        # END SOLUTION


class TransformerBlock(nn.Module):
    """One transformer encoder layer: self-attention and a feed-forward network, each in a residual branch.

    Pre-norm (``norm_first=True``, GPT-2, Llama)::

        x = x + dropout1(attn(norm1(x)))
        x = x + dropout2(ff(norm2(x)))

    Post-norm (``norm_first=False``, the original Transformer, BERT)::

        x = norm1(x + dropout1(attn(x)))
        x = norm2(x + dropout2(ff(x)))

    Submodules (names fixed: the grader loads weights by name): ``attn``
    (``MultiHeadAttention(d_model, n_heads)``), ``norm1`` and ``norm2`` (``LayerNorm``
    or ``RMSNorm`` with ``eps``), ``ff`` (``FeedForward(d_model, d_ff, activation)``),
    ``dropout1`` and ``dropout2`` (``Dropout(dropout)``).

    Args:
        d_model: model width ``D``.
        n_heads: attention heads ``H`` (``Dh = D / H``).
        d_ff: feed-forward width ``F``.
        dropout: probability for ``dropout1`` and ``dropout2``.
        norm_first: pre-norm (True) or post-norm (False).
        activation: the feed-forward activation (see ``FeedForward``).
        norm: ``"layernorm"`` or ``"rmsnorm"``; anything else raises ``ValueError``.
        eps: the norms' epsilon.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = True,
        activation: str = "relu",
        norm: str = "layernorm",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: paste the body of your week 04 TransformerBlock.__init__.
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        norm_class = LayerNorm if norm == "layernorm" else RMSNorm
        self.norm_first = norm_first
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.norm1 = norm_class(d_model, eps=eps)
        self.norm2 = norm_class(d_model, eps=eps)
        self.ff = FeedForward(d_model, d_ff, activation=activation)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        # END SOLUTION

    def residual(
        self,
        x: Tensor,
        sublayer: Callable[[Tensor], Tensor],
        norm: Callable[[Tensor], Tensor],
        dropout: Callable[[Tensor], Tensor],
    ) -> Tensor:
        """One residual branch around ``sublayer``, pre- or post-norm as ``self.norm_first`` says.

        Pre-norm: ``x + dropout(sublayer(norm(x)))``; post-norm: ``norm(x + dropout(sublayer(x)))``.
        ``x`` ``(B, T, D)`` -> ``(B, T, D)``.
        """
        # BEGIN SOLUTION: paste the body of your week 04 TransformerBlock.residual.
        if self.norm_first:
            return x + dropout(sublayer(norm(x)))
        return norm(x + dropout(sublayer(x)))
        # END SOLUTION

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``(B, T, D)``, ``mask`` bool broadcastable to ``(B, H, T, T)`` (True = may attend) -> ``(B, T, D)``."""
        # BEGIN SOLUTION: paste the body of your week 04 TransformerBlock.forward.
        x = self.residual(x, lambda h: self.attn(h, mask=mask)[0], self.norm1, self.dropout1)
        return self.residual(x, self.ff, self.norm2, self.dropout2)
        # END SOLUTION


# -- week 06, pasted ----------------------------------------------------------------


def position_ids(attention_mask: Tensor) -> Tensor:
    """Each token's position among the real tokens of its row: ``(B, T)`` 0/1 -> ``(B, T)`` int64.

    ``cumsum(attention_mask) - 1`` along ``T``, clamped at 0: a left-padded row's first real
    token gets position 0, and its padding gets 0 too (nothing attends to padding, so its
    value does not matter). Without padding every row is ``0, 1, ..., T - 1``. Hugging
    Face's ``generate`` numbers left-padded GPT-2 batches the same way.

    Example: ``[[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]`` -> ``[[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]``.
    """
    # BEGIN SOLUTION: paste your week 06 position_ids.
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)
    # END SOLUTION


def causal_mask(query_length: int, key_length: int, attention_mask: Tensor | None = None) -> Tensor:
    """The bool mask GPT's attention takes: causal and, given ``attention_mask``, no padding keys.

    The ``Tq = query_length`` queries are the **last** ``Tq`` of the ``Tk = key_length``
    positions (the model calls this with ``Tq == Tk``; week 08's KV cache will ask for
    ``Tq < Tk``): query ``i`` sits at key position ``Tk - Tq + i`` and may attend the keys
    ``j <= Tk - Tq + i`` that are real tokens.

    Args:
        query_length: ``Tq``.
        key_length: ``Tk >= Tq``.
        attention_mask: ``(B, Tk)``, 1 = real token, 0 = padding; or None (no padding).

    Returns:
        bool, True = may attend: ``(1, 1, Tq, Tk)`` without ``attention_mask``, ``(B, 1, Tq, Tk)`` with it.
    """
    # BEGIN SOLUTION: paste your week 06 causal_mask (it must handle Tq < Tk).
    allowed = torch.ones(query_length, key_length, dtype=torch.bool).tril(diagonal=key_length - query_length)
    allowed = allowed[None, None]  # (1, 1, Tq, Tk)
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool()[:, None, None, :]  # (B, 1, Tq, Tk)
    return allowed
    # END SOLUTION


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """``logits / temperature``: ``(..., V)`` -> ``(..., V)``; ``temperature <= 0`` raises ``ValueError`` (week 06)."""
    # BEGIN SOLUTION: paste your week 06 apply_temperature.
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return logits / temperature
    # END SOLUTION


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits of each row (ties kept), the others ``-inf``: ``(..., V)`` -> ``(..., V)`` (week 06)."""
    # BEGIN SOLUTION: paste your week 06 top_k_filter.
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    kth_largest = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))
    # END SOLUTION


# -- this week: the KV cache ---------------------------------------------------------


class KVCache:
    """The keys and values of every position seen so far, for each of the ``L`` layers.

    ``keys[layer]`` and ``values[layer]`` are ``(B, Hkv, Tc, Dh)`` tensors, or None before
    the first ``append``. They hold the keys and values **before** ``repeat_kv``: a
    grouped-query (``Hkv < H``) or multi-query (``Hkv = 1``) model caches ``Hkv`` heads,
    not ``H``, which is the whole point of GQA and MQA at inference.
    """

    def __init__(self, n_layers: int) -> None:
        # BEGIN SOLUTION: one slot per layer for the keys and one for the values, all None.
        self.keys: list[Tensor | None] = [None] * n_layers
        self.values: list[Tensor | None] = [None] * n_layers
        # END SOLUTION

    def append(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add new keys and values to ``layer``'s cache and return all of them.

        Args:
            layer: which layer, ``0 <= layer < L``.
            k: ``(B, Hkv, Tn, Dh)``, the new positions' keys.
            v: ``(B, Hkv, Tn, Dh)``, their values.

        Returns:
            ``(keys, values)``, each ``(B, Hkv, Tc + Tn, Dh)``: the cached ones first, then the new ones.
        """
        # BEGIN SOLUTION: concatenate along the time dim (2) to what the layer holds (nothing the first time); store and return.
        old_k, old_v = self.keys[layer], self.values[layer]
        if old_k is not None and old_v is not None:
            k = torch.cat([old_k, k], dim=2)
            v = torch.cat([old_v, v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v
        # END SOLUTION

    @property
    def length(self) -> int:
        """``Tc``: the number of cached positions (0 when empty)."""
        # BEGIN SOLUTION: the time dim of layer 0's keys, or 0.
        first = self.keys[0]
        return 0 if first is None else first.shape[2]
        # END SOLUTION

    def bytes(self) -> int:
        """Memory the cached tensors take: every layer's keys and values, ``numel * element_size``."""
        # BEGIN SOLUTION: sum numel() * element_size() over every stored tensor, keys and values, all layers.
        stored = [t for t in (*self.keys, *self.values) if t is not None]
        return sum(t.numel() * t.element_size() for t in stored)
        # END SOLUTION


def cache_shape(cache: KVCache) -> tuple[int, int, int, int, int, int]:
    """``(L, 2, B, Hkv, Tc, Dh)``: layers, keys and values, then the shape of one layer's keys.

    An empty cache raises ``ValueError``.
    """
    # BEGIN SOLUTION: L from the number of layer slots, the rest from layer 0's keys.
    first = cache.keys[0]
    if first is None:
        raise ValueError("the cache is empty")
    batch, kv_heads, length, d_head = first.shape
    return (len(cache.keys), 2, batch, kv_heads, length, d_head)
    # END SOLUTION


def cached_attention(
    attn: MultiHeadAttention, x: Tensor, mask: Tensor | None = None, cache: KVCache | None = None, layer: int = 0
) -> Tensor:
    """Self-attention of ``attn`` (a week 02 ``MultiHeadAttention``) over the cached positions and the new ones.

    Project the new positions ``x`` ``(B, Tn, D)`` to queries ``(B, H, Tn, Dh)`` and keys and
    values ``(B, Hkv, Tn, Dh)``; with a cache, ``cache.append(layer, k, v)`` them (before
    ``repeat_kv``) and attend to everything it returns, ``(B, Hkv, Tc + Tn, Dh)``; without one,
    attend to the new positions only (the same as ``attn(x, mask=mask)[0]``). Then repeat the
    key/value heads to ``H``, attend with ``mask`` (bool ``(B, 1, Tn, Tc + Tn)``, True = may
    attend), merge the heads and apply ``out_proj``.

    Returns:
        ``(B, Tn, D)``.
    """
    # BEGIN SOLUTION: q/k/v projections and split_heads; append k and v to the cache (if any) before repeat_kv; attention; merge; out_proj.
    q = split_heads(attn.q_proj(x), attn.n_heads)  # (B, H, Tn, Dh)
    k = split_heads(attn.k_proj(x), attn.n_kv_heads)  # (B, Hkv, Tn, Dh)
    v = split_heads(attn.v_proj(x), attn.n_kv_heads)  # (B, Hkv, Tn, Dh)
    if cache is not None:
        k, v = cache.append(layer, k, v)  # (B, Hkv, Tc + Tn, Dh)
    n_rep = attn.n_heads // attn.n_kv_heads
    out, _ = attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask)  # (B, H, Tn, Dh)
    result: Tensor = attn.out_proj(merge_heads(out))  # (B, Tn, D)
    return result
    # END SOLUTION


class GPT(nn.Module):
    """Week 06's GPT-2 with grouped-query attention and a KV cache.

    Submodules and their names are week 06's (``token_embedding``, ``position_embedding``,
    ``drop``, ``blocks``, ``norm_f``; tied head). With ``n_kv_heads`` (``Hkv``, dividing ``H``;
    None means ``H``) every block's ``attn`` is ``MultiHeadAttention(D, H, n_kv_heads)``, so
    ``k_proj`` and ``v_proj`` are ``Linear(D, Hkv * Dh)``; keep building each block as week 04's
    ``TransformerBlock`` and replace its ``attn``.

    Args:
        vocab_size, max_len, d_model, n_heads, n_layers, d_ff, dropout, eps: as in week 06.
        n_kv_heads: ``Hkv``; None means ``n_heads`` (plain multi-head attention).
    """

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        d_model: int,
        n_heads: int,
        n_layers: int,
        d_ff: int | None = None,
        dropout: float = 0.0,
        eps: float = 1e-5,
        n_kv_heads: int | None = None,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: week 06's GPT.__init__, then give every block attn = MultiHeadAttention(d_model, n_heads, n_kv_heads).
        self.max_len = max_len
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_len, d_model)
        self.drop = Dropout(dropout)
        hidden = 4 * d_model if d_ff is None else d_ff
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, hidden, dropout, norm_first=True, activation="gelu_tanh", eps=eps)
            for _ in range(n_layers)
        )
        for block in self.blocks:
            block.attn = MultiHeadAttention(d_model, n_heads, n_kv_heads)
        self.norm_f = LayerNorm(d_model, eps=eps)
        # END SOLUTION

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, cache: KVCache | None = None) -> Tensor:
        """Next-token logits at the new positions.

        Args:
            input_ids: ``(B, Tn)``: the new tokens (the whole sequence when there is no cache).
            attention_mask: ``(B, Tc + Tn)``, 1 = real token, covering the cached positions and
                the new ones; None means no padding.
            cache: a ``KVCache`` holding ``Tc`` positions (``Tc = cache.length``, 0 when empty),
                which this call extends by ``Tn``; None runs week 06's model unchanged.

        Returns:
            ``(B, Tn, V)``. The new tokens' positions are the last ``Tn`` columns of
            ``position_ids(attention_mask)`` and the mask is ``causal_mask(Tn, Tc + Tn, attention_mask)``,
            so a step gives exactly the logits of the uncached forward on the whole sequence.
        """
        # BEGIN SOLUTION: Tc from the cache; positions = last Tn columns of position_ids(full mask); causal_mask(Tn, Tc + Tn, mask); blocks with cached_attention; norm_f; tied head.
        batch, new = input_ids.shape
        past = 0 if cache is None else cache.length
        if attention_mask is None:
            attention_mask = torch.ones(batch, past + new, dtype=torch.long, device=input_ids.device)
        positions = position_ids(attention_mask)[:, past:]  # (B, Tn)
        x = self.drop(self.token_embedding(input_ids) + self.position_embedding(positions))  # (B, Tn, D)
        mask = causal_mask(new, past + new, attention_mask.cpu()).to(x.device)  # (B, 1, Tn, Tc + Tn)
        for layer, block in enumerate(self.blocks):
            assert isinstance(block, TransformerBlock)
            attend = functools.partial(cached_attention, block.attn, mask=mask, cache=cache, layer=layer)
            x = block.residual(x, attend, block.norm1, block.dropout1)
            x = block.residual(x, block.ff, block.norm2, block.dropout2)
        logits: Tensor = self.norm_f(x) @ self.token_embedding.weight.T  # (B, Tn, V)
        return logits
        # END SOLUTION


def cache_bytes_per_token(model: GPT) -> int:
    """Bytes the cache grows by per token of one sequence: ``2 * L * Hkv * Dh * bytes per value``.

    Read ``L``, ``Hkv``, ``Dh`` from the model and the bytes per value from its parameters' dtype
    (4 for float32, 8 for float64): week 02's ``kv_cache_bytes_per_token`` for this model.
    """
    # BEGIN SOLUTION: the first block's attn gives n_kv_heads and d_head; len(model.blocks) layers; element_size of a parameter.
    attn = model.blocks[0].attn
    assert isinstance(attn, MultiHeadAttention)
    bytes_per_value = model.token_embedding.weight.element_size()
    return 2 * len(model.blocks) * attn.n_kv_heads * attn.d_head * bytes_per_value
    # END SOLUTION


@torch.no_grad()
def prefill(model: GPT, input_ids: Tensor, attention_mask: Tensor | None = None) -> tuple[Tensor, KVCache]:
    """Run the whole prompt once, filling a new cache.

    Args:
        model: a ``GPT``.
        input_ids: ``(B, T0)`` prompts, left-padded.
        attention_mask: ``(B, T0)`` or None.

    Returns:
        ``(logits, cache)``: ``(B, T0, V)`` (the uncached forward's logits) and a ``KVCache`` of ``T0`` positions.
    """
    # BEGIN SOLUTION: a KVCache with one slot per block, then the model on the prompt with that cache.
    cache = KVCache(len(model.blocks))
    return model(input_ids, attention_mask=attention_mask, cache=cache), cache
    # END SOLUTION


@torch.no_grad()
def decode_step(model: GPT, token: Tensor, attention_mask: Tensor, cache: KVCache) -> Tensor:
    """One decoding step: the model on one new token per row, reusing and extending the cache.

    Args:
        model: a ``GPT``.
        token: ``(B, 1)`` int64, the newest token of each row.
        attention_mask: ``(B, Tc + 1)``: the mask of the cached positions with a column for the new token.
        cache: the cache of the previous positions (``Tc``); it grows by one.

    Returns:
        ``(B, 1, V)``: equal to the uncached forward's logits at the last position of the whole sequence.
    """
    # BEGIN SOLUTION: the model on the single token with the full mask and the cache.
    logits: Tensor = model(token, attention_mask=attention_mask, cache=cache)
    return logits
    # END SOLUTION


@torch.no_grad()
def generate_cached(
    model: GPT,
    input_ids: Tensor,
    max_new_tokens: int,
    attention_mask: Tensor | None = None,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> Tensor:
    """Week 06's ``greedy`` (``do_sample=False``) or ``sample`` (top-k only), with a KV cache.

    ``prefill`` the prompt, pick a token from the last position's logits, then ``decode_step``
    with that token (the mask grows by a column of ones) and pick again, ``N`` tokens in all:
    ``N - 1`` decode steps (none after the last token). Greedy picks ``argmax``; sampling applies
    ``apply_temperature``, then ``top_k_filter`` (when ``top_k`` is not None), then makes one
    ``torch.multinomial(softmax, 1, generator=generator)`` draw per step, as week 06's ``sample``
    does, so both return exactly week 06's tokens.

    Args:
        model: a ``GPT``.
        input_ids: ``(B, T0)``; attention_mask: ``(B, T0)`` or None; max_new_tokens: ``N >= 0``.
        do_sample: sample (True) or greedy (False).
        temperature, top_k, seed: as in week 06's ``sample``.

    Returns:
        ``(B, T0 + N)`` int64: the prompts followed by the new tokens.
    """
    generator = torch.Generator()  # the only source of randomness: one draw per step
    generator.manual_seed(seed)
    # BEGIN SOLUTION: prefill; loop: pick from the last logits (argmax or temperature, top-k, one multinomial draw), append, extend the mask, decode_step unless it was the last token.
    ids = input_ids
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    if max_new_tokens == 0:
        return ids
    logits, cache = prefill(model, ids, mask)
    last = logits[:, -1, :]  # (B, V)
    for step in range(max_new_tokens):
        if do_sample:
            scores = apply_temperature(last, temperature)
            if top_k is not None:
                scores = top_k_filter(scores, top_k)
            chosen = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)  # (B, 1)
        else:
            chosen = last.argmax(dim=-1, keepdim=True)  # (B, 1)
        ids = torch.cat([ids, chosen], dim=1)
        mask = torch.cat([mask, torch.ones_like(chosen, dtype=mask.dtype)], dim=1)
        if step + 1 < max_new_tokens:
            last = decode_step(model, chosen, mask, cache)[:, -1, :]
    return ids
    # END SOLUTION


# -- loading Hugging Face weights (given) ------------------------------------------------


def from_hf_state_dict(hf: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a Hugging Face ``GPT2LMHeadModel`` (or ``GPT2Model``) state dict for ``GPT`` here.

    GPT-2 keeps each block's query, key and value projections in one ``Conv1D`` named
    ``attn.c_attn``, and a ``Conv1D`` stores its weight as ``(in, out)``, the transpose of
    ``nn.Linear``'s ``(out, in)``: ``c_attn.weight`` is ``(D, 3D)``, its columns the query,
    then the key, then the value. The same transpose applies to ``attn.c_proj``,
    ``mlp.c_fc`` and ``mlp.c_proj``. ``lm_head.weight`` is the token embedding itself (tied)
    and is dropped, with the buffers of older checkpoints (``attn.bias``, ``attn.masked_bias``).
    Load the result with ``model.load_state_dict(from_hf_state_dict(hf_model.state_dict()))``.
    """
    hf = {name.removeprefix("transformer."): value for name, value in hf.items()}
    ours = {
        "token_embedding.weight": hf["wte.weight"],
        "position_embedding.weight": hf["wpe.weight"],
        "norm_f.weight": hf["ln_f.weight"],
        "norm_f.bias": hf["ln_f.bias"],
    }
    n_layers = len({name.split(".")[1] for name in hf if name.startswith("h.")})
    for i in range(n_layers):
        theirs, mine = f"h.{i}.", f"blocks.{i}."
        for norm_hf, norm_ours in (("ln_1", "norm1"), ("ln_2", "norm2")):
            for kind in ("weight", "bias"):
                ours[f"{mine}{norm_ours}.{kind}"] = hf[f"{theirs}{norm_hf}.{kind}"]
        queries_keys_values = hf[f"{theirs}attn.c_attn.weight"].t().chunk(3, dim=0)  # 3 x (D, D), Linear's layout
        biases = hf[f"{theirs}attn.c_attn.bias"].chunk(3)  # 3 x (D,)
        for j, part in enumerate(("q_proj", "k_proj", "v_proj")):
            ours[f"{mine}attn.{part}.weight"] = queries_keys_values[j].contiguous()
            ours[f"{mine}attn.{part}.bias"] = biases[j].contiguous()
        for conv, linear in (("attn.c_proj", "attn.out_proj"), ("mlp.c_fc", "ff.fc1"), ("mlp.c_proj", "ff.fc2")):
            ours[f"{mine}{linear}.weight"] = hf[f"{theirs}{conv}.weight"].t().contiguous()
            ours[f"{mine}{linear}.bias"] = hf[f"{theirs}{conv}.bias"]
    return ours
