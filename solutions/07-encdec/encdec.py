"""Week 07: encoder-decoder transformers, the prefix LM, and a T5-style variant.

Shapes use these letters:

* ``B`` batch, ``Ts`` source positions, ``Tt`` target positions, ``T`` positions of one sequence
* ``D`` model width (``d_model``), ``F`` feed-forward width (``d_ff``)
* ``H`` attention heads (``n_heads``), ``Dh`` head size (``d_head``)
* ``V`` vocabulary size (``src_vocab``, ``tgt_vocab``, ``vocab_size``)

Token ids are ``torch.long`` tensors ``(B, T)``; ``lengths`` are ``torch.long``
``(B,)`` tensors that count the real tokens of each sequence, which sit at the
start (positions ``0 … lengths[b] - 1``), the padding after them.

Masks are boolean, broadcastable to ``(B, H, Tq, Tk)``, and mean **True = may
attend** (weeks 01 to 04; the opposite of ``torch.nn.Transformer``).

Rules: as in week 04, write LayerNorm, RMSNorm, dropout and attention yourself:
``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``, ``nn.Transformer``
and its layers, ``F.layer_norm``, ``F.rms_norm``, ``F.dropout`` (and their
``nn`` modules) are forbidden; the grader records which torch ops run.
``F.cross_entropy`` and ``torch.softmax`` are fine. Only this file is submitted:
paste your code from weeks 01 to 04 into it rather than importing it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "swiglu")
NORMS = ("layernorm", "rmsnorm")


# -- week 01, pasted ------------------------------------------------------------


def causal_mask(seq_len: int, device: torch.device | str | None = None) -> Tensor:
    """bool ``(T, T)``: ``mask[i, j]`` is True when query ``i`` may attend to key ``j``, i.e. ``j <= i``."""
    # BEGIN SOLUTION: paste your week 01 causal_mask.
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()
    # END SOLUTION


def padding_mask(lengths: Tensor, seq_len: int) -> Tensor:
    """bool ``(B, 1, 1, T)``: True for real tokens (positions ``< lengths[b]``), from ``lengths`` ``(B,)``."""
    # BEGIN SOLUTION: paste your week 01 padding_mask.
    positions = torch.arange(seq_len, device=lengths.device)
    keep = positions[None, :] < lengths[:, None]  # (B, T)
    return keep[:, None, None, :]
    # END SOLUTION


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


# -- week 03, pasted ------------------------------------------------------------


def sinusoidal_encoding(positions: Tensor, d_model: int, base: float = 10000.0) -> Tensor:
    """Week 03's sinusoidal table: ``(T,)`` float positions -> ``(T, D)`` in their dtype, sin in even columns."""
    # BEGIN SOLUTION: paste your week 03 sinusoidal_encoding.
    exponents = torch.arange(0, d_model, 2, dtype=positions.dtype) / d_model  # 2i / D, (D/2,)
    angles = positions[:, None] * base**-exponents  # (T, D/2)
    encoding = torch.empty(positions.shape[0], d_model, dtype=positions.dtype)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles)
    return encoding
    # END SOLUTION


def relative_position_bucket(
    relative_position: Tensor, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> Tensor:
    """Week 03's T5 bucket of each relative position ``key - query``: a ``torch.long`` tensor of the same shape."""
    # BEGIN SOLUTION: paste your week 03 relative_position_bucket.
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
    """Week 03's T5 relative position bias: ``relative_attention_bias`` = ``nn.Embedding(num_buckets, n_heads)``."""

    def __init__(
        self, n_heads: int, num_buckets: int = 32, max_distance: int = 128, bidirectional: bool = True
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: paste the body of your week 03 RelativePositionBias.__init__.
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.relative_attention_bias = nn.Embedding(num_buckets, n_heads)
        # END SOLUTION

    def forward(self, q_len: int, k_len: int) -> Tensor:
        """The bias ``(1, H, Tq, Tk)``; entry ``[0, h, i, j]`` is head ``h``'s value for the bucket of ``j - i``."""
        # BEGIN SOLUTION: paste the body of your week 03 RelativePositionBias.forward.
        relative = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None]  # (Tq, Tk)
        buckets = relative_position_bucket(relative, self.bidirectional, self.num_buckets, self.max_distance)
        values: Tensor = self.relative_attention_bias(buckets)  # (Tq, Tk, H)
        return values.permute(2, 0, 1).unsqueeze(0)
        # END SOLUTION


# -- week 04, pasted ------------------------------------------------------------


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Week 04's GELU, exact (``"none"``) or tanh (``"tanh"``); anything else raises ``ValueError``."""
    # BEGIN SOLUTION: paste your week 04 gelu.
    if approximate == "none":
        return 0.5 * x * (1.0 + torch.erf(x * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + torch.tanh(inner))
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    # END SOLUTION


class FeedForward(nn.Module):
    """Week 04's position-wise feed-forward network: ``fc1`` Linear(D, F), ``fc2`` Linear(F, D) (+ ``fc_gate``)."""

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
    """Week 04's LayerNorm over the last dim: ``weight`` (ones) and ``bias`` (zeros), both ``(D,)``."""

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
    """Week 04's RMSNorm over the last dim (T5 calls it T5LayerNorm): ``weight`` ``(D,)`` (ones), no bias."""

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
    """Week 04's inverted dropout: the identity in eval mode or for ``p == 0``; ``p`` outside [0, 1] -> ValueError."""

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
    """Week 04's block: ``attn``, ``norm1``, ``norm2``, ``ff``, ``dropout1``, ``dropout2``; pre- or post-norm.

    Post-norm (``norm_first=False``) is the original Transformer's encoder layer::

        x = norm1(x + dropout1(attn(x)))
        x = norm2(x + dropout2(ff(x)))
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
        """Pre-norm: ``x + dropout(sublayer(norm(x)))``; post-norm: ``norm(x + dropout(sublayer(x)))``."""
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


# -- this week: masks -----------------------------------------------------------


def prefix_lm_mask(prefix_lengths: Tensor, seq_len: int) -> Tensor:
    """The prefix-LM mask: bidirectional over each sequence's prefix, causal after it.

    Query ``i`` may attend to key ``j`` iff ``j < prefix_lengths[b]`` (the key is in
    the prefix, which every position sees in full) or ``j <= i`` (causal).
    ``prefix_lengths[b] = 0`` gives the causal mask; ``prefix_lengths[b] = T`` lets
    everything attend to everything.

    Args:
        prefix_lengths: int ``(B,)``, each in ``[0, T]``.
        seq_len: ``T``.

    Returns:
        bool ``(B, 1, T, T)`` (the 1 broadcasts over heads); True = may attend.
    """
    # BEGIN SOLUTION: key j is visible to query i when j < prefix_lengths[b] or j <= i; shape (B, 1, T, T).
    positions = torch.arange(seq_len, device=prefix_lengths.device)
    in_prefix = positions[None, None, :] < prefix_lengths[:, None, None]  # (B, 1, T): the key is in the prefix
    seen = positions[None, :] <= positions[:, None]  # (T, T): the key is not in the future
    return (in_prefix | seen)[:, None]
    # END SOLUTION


# -- this week: the original encoder-decoder --------------------------------------


class DecoderLayer(nn.Module):
    """One post-norm decoder layer of the original Transformer (as ``nn.TransformerDecoderLayer``)::

        x = norm1(x + dropout1(self_attn(x, mask=tgt_mask)))                     masked self-attention
        x = norm2(x + dropout2(cross_attn(x, context=memory, mask=memory_mask)))  queries from x, keys/values from memory
        x = norm3(x + dropout3(ff(x)))

    Submodules (names fixed: the grader loads weights by name): ``self_attn`` and
    ``cross_attn`` (``MultiHeadAttention(d_model, n_heads)``), ``ff``
    (``FeedForward(d_model, d_ff)``, ReLU), ``norm1``, ``norm2``, ``norm3``
    (``LayerNorm(d_model, eps)``), ``dropout1``, ``dropout2``, ``dropout3``
    (``Dropout(dropout)``).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, eps: float = 1e-5) -> None:
        super().__init__()
        # BEGIN SOLUTION: create self_attn, cross_attn, ff (ReLU), norm1-3 (LayerNorm with eps) and dropout1-3.
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.ff = FeedForward(d_model, d_ff, activation="relu")
        self.norm1 = LayerNorm(d_model, eps=eps)
        self.norm2 = LayerNorm(d_model, eps=eps)
        self.norm3 = LayerNorm(d_model, eps=eps)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        # END SOLUTION

    def forward(
        self, x: Tensor, memory: Tensor, tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None
    ) -> Tensor:
        """Decode one layer.

        Args:
            x: ``(B, Tt, D)`` the decoder's states.
            memory: ``(B, Ts, D)`` the encoder's output.
            tgt_mask: bool, broadcastable to ``(B, H, Tt, Tt)`` (causal, and padding of the target).
            memory_mask: bool, broadcastable to ``(B, H, Tt, Ts)`` (padding of the source).

        Returns:
            ``(B, Tt, D)``.
        """
        # BEGIN SOLUTION: three post-norm residual branches: self-attention (tgt_mask), cross-attention to memory (memory_mask), ff.
        attended = self.self_attn(x, mask=tgt_mask)[0]
        x = self.norm1(x + self.dropout1(attended))
        crossed = self.cross_attn(x, context=memory, mask=memory_mask)[0]  # (B, Tt, D)
        x = self.norm2(x + self.dropout2(crossed))
        out: Tensor = self.norm3(x + self.dropout3(self.ff(x)))
        return out
        # END SOLUTION


class Encoder(nn.Module):
    """The encoder stack of ``nn.Transformer``: ``layers`` (post-norm ``TransformerBlock``s), then ``norm``.

    Submodules: ``layers``, an ``nn.ModuleList`` of ``n_layers``
    ``TransformerBlock(d_model, n_heads, d_ff, dropout, norm_first=False, eps=eps)``
    (ReLU, LayerNorm), and ``norm``, a final ``LayerNorm(d_model, eps)``.
    """

    def __init__(
        self, d_model: int, n_heads: int, d_ff: int, n_layers: int, dropout: float = 0.0, eps: float = 1e-5
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: an nn.ModuleList `layers` of post-norm TransformerBlocks and a final LayerNorm `norm`.
        self.layers = nn.ModuleList(
            TransformerBlock(d_model, n_heads, d_ff, dropout, norm_first=False, eps=eps) for _ in range(n_layers)
        )
        self.norm = LayerNorm(d_model, eps=eps)
        # END SOLUTION

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``(B, Ts, D)``, ``mask`` broadcastable to ``(B, H, Ts, Ts)`` -> ``(B, Ts, D)``."""
        # BEGIN SOLUTION: every layer in turn with the same mask, then the final norm.
        for block in self.layers:
            x = block(x, mask=mask)
        out: Tensor = self.norm(x)
        return out
        # END SOLUTION


class Decoder(nn.Module):
    """The decoder stack of ``nn.Transformer``: ``layers`` (``DecoderLayer``s), then ``norm``.

    Submodules: ``layers``, an ``nn.ModuleList`` of ``n_layers``
    ``DecoderLayer(d_model, n_heads, d_ff, dropout, eps)``, and ``norm``, a final
    ``LayerNorm(d_model, eps)``.
    """

    def __init__(
        self, d_model: int, n_heads: int, d_ff: int, n_layers: int, dropout: float = 0.0, eps: float = 1e-5
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: an nn.ModuleList `layers` of DecoderLayers and a final LayerNorm `norm`.
        self.layers = nn.ModuleList(DecoderLayer(d_model, n_heads, d_ff, dropout, eps) for _ in range(n_layers))
        self.norm = LayerNorm(d_model, eps=eps)
        # END SOLUTION

    def forward(
        self, x: Tensor, memory: Tensor, tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None
    ) -> Tensor:
        """``x`` ``(B, Tt, D)``, ``memory`` ``(B, Ts, D)``, masks as in ``DecoderLayer`` -> ``(B, Tt, D)``."""
        # BEGIN SOLUTION: every layer in turn, each reading the same memory with the same masks, then the final norm.
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask)
        out: Tensor = self.norm(x)
        return out
        # END SOLUTION


class EncoderDecoder(nn.Module):
    """The original Transformer (Vaswani et al., 2017) laid out as ``nn.Transformer``, with embeddings and a head.

    Submodules (names fixed):

    ==============  =========================================================================
    ``src_embed``   ``nn.Embedding(src_vocab, D)``
    ``tgt_embed``   ``nn.Embedding(tgt_vocab, D)``
    ``encoder``     ``Encoder(D, n_heads, d_ff, n_encoder_layers, dropout, eps)``
    ``decoder``     ``Decoder(D, n_heads, d_ff, n_decoder_layers, dropout, eps)``
    ``generator``   ``nn.Linear(D, tgt_vocab)``: decoder states to logits
    ``dropout``     ``Dropout(dropout)`` on the embedded inputs
    ==============  =========================================================================

    Masks: the encoder's self-attention sees the real source tokens; the
    decoder's self-attention is causal and sees the real target tokens; the
    cross-attention sees the real source tokens.
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        d_model: int,
        n_heads: int,
        d_ff: int,
        n_encoder_layers: int,
        n_decoder_layers: int,
        dropout: float = 0.1,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: remember d_model; create src_embed, tgt_embed, encoder, decoder, generator and dropout.
        self.d_model = d_model
        self.src_embed = nn.Embedding(src_vocab, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model)
        self.encoder = Encoder(d_model, n_heads, d_ff, n_encoder_layers, dropout, eps)
        self.decoder = Decoder(d_model, n_heads, d_ff, n_decoder_layers, dropout, eps)
        self.generator = nn.Linear(d_model, tgt_vocab)
        self.dropout = Dropout(dropout)
        # END SOLUTION

    def embed(self, tokens: Tensor, table: nn.Embedding) -> Tensor:
        """``(B, T)`` ids -> ``(B, T, D)``: ``dropout(table(tokens) * sqrt(D) + PE[:T])``.

        ``PE`` is the sinusoidal table of positions ``0 … T-1`` in the embeddings' dtype.
        """
        # BEGIN SOLUTION: look up, multiply by sqrt(d_model), add the sinusoidal encoding of positions 0..T-1, dropout.
        vectors = table(tokens) * math.sqrt(self.d_model)  # (B, T, D)
        positions = torch.arange(tokens.shape[1], dtype=vectors.dtype, device=vectors.device)
        embedded: Tensor = self.dropout(vectors + sinusoidal_encoding(positions, self.d_model).to(vectors.device))
        return embedded
        # END SOLUTION

    def encode(self, src: Tensor, src_lengths: Tensor) -> Tensor:
        """``src`` ``(B, Ts)`` ids and ``src_lengths`` ``(B,)`` -> the memory ``(B, Ts, D)``."""
        # BEGIN SOLUTION: embed with src_embed; run the encoder with the source's padding mask.
        memory: Tensor = self.encoder(self.embed(src, self.src_embed), mask=padding_mask(src_lengths, src.shape[1]))
        return memory
        # END SOLUTION

    def decode(self, tgt: Tensor, memory: Tensor, src_lengths: Tensor, tgt_lengths: Tensor) -> Tensor:
        """The decoder's states ``(B, Tt, D)`` (after its final norm, before the generator).

        Args:
            tgt: ``(B, Tt)`` the decoder's input ids.
            memory: ``(B, Ts, D)`` from ``encode``.
            src_lengths: ``(B,)`` real source tokens (for the cross-attention mask).
            tgt_lengths: ``(B,)`` real target tokens (with the causal mask, for self-attention).
        """
        # BEGIN SOLUTION: embed with tgt_embed; self-attention mask = causal & target padding; memory mask = source padding.
        length = tgt.shape[1]
        self_mask = causal_mask(length, device=tgt.device) & padding_mask(tgt_lengths, length)  # (B, 1, Tt, Tt)
        memory_mask = padding_mask(src_lengths, memory.shape[1])  # (B, 1, 1, Ts)
        states: Tensor = self.decoder(self.embed(tgt, self.tgt_embed), memory, self_mask, memory_mask)
        return states
        # END SOLUTION

    def forward(self, src: Tensor, tgt: Tensor, src_lengths: Tensor, tgt_lengths: Tensor) -> Tensor:
        """``src`` ``(B, Ts)``, ``tgt`` ``(B, Tt)``, lengths ``(B,)`` each -> logits ``(B, Tt, tgt_vocab)``."""
        # BEGIN SOLUTION: encode, decode, generator.
        memory = self.encode(src, src_lengths)
        logits: Tensor = self.generator(self.decode(tgt, memory, src_lengths, tgt_lengths))
        return logits
        # END SOLUTION

    def teacher_forcing_loss(
        self, src: Tensor, tgt: Tensor, src_lengths: Tensor, tgt_lengths: Tensor, pad_id: int
    ) -> Tensor:
        """The training loss with teacher forcing: predict ``tgt[:, 1:]`` from ``tgt[:, :-1]``.

        ``tgt`` ``(B, Tt)`` holds whole target sentences, ``BOS … EOS``, padded with
        ``pad_id`` after ``tgt_lengths[b]`` tokens. The decoder reads ``tgt[:, :-1]``
        (``tgt_lengths - 1`` real tokens each) and position ``t`` is scored on the
        next token ``tgt[:, t + 1]``. Returns the mean cross-entropy (natural log)
        over the target tokens that are not ``pad_id``: a scalar.
        """
        # BEGIN SOLUTION: logits for the shifted input; cross-entropy against tgt[:, 1:], ignoring pad_id, mean over real tokens.
        logits = self(src, tgt[:, :-1], src_lengths, tgt_lengths - 1)  # (B, Tt-1, V)
        targets = tgt[:, 1:]  # (B, Tt-1)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id)
        # END SOLUTION

    def greedy_translate(
        self, src: Tensor, src_lengths: Tensor, bos_id: int, eos_id: int, max_len: int, pad_id: int = 0
    ) -> Tensor:
        """Greedy decoding: start from ``BOS``, append the most likely next token, stop at ``EOS``.

        Every step decodes the whole prefix so far and takes the arg-max of the
        last position's logits. A sequence that has produced ``eos_id`` is
        finished: every later position holds ``pad_id``. The loop may stop early
        once every sequence is finished. Call it in eval mode, under ``torch.no_grad()``.

        Args:
            src: ``(B, Ts)``; src_lengths: ``(B,)``.
            max_len: the number of tokens to generate after ``BOS`` at most.

        Returns:
            ``torch.long`` ``(B, 1 + max_len)``: ``BOS``, the generated tokens (the
            ``EOS`` included), then ``pad_id``.
        """
        # BEGIN SOLUTION: encode once; loop max_len times: decode the prefix, argmax of the last logits, pad_id once finished.
        batch = src.shape[0]
        memory = self.encode(src, src_lengths)
        out = torch.full((batch, 1 + max_len), pad_id, dtype=torch.long, device=src.device)
        out[:, 0] = bos_id
        finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
        for step in range(1, max_len + 1):
            prefix = out[:, :step]
            full = torch.full((batch,), step, dtype=torch.long, device=src.device)
            logits = self.generator(self.decode(prefix, memory, src_lengths, full)[:, -1])  # (B, V)
            chosen = logits.argmax(dim=-1)
            out[:, step] = torch.where(finished, torch.full_like(chosen, pad_id), chosen)
            finished = finished | (chosen == eos_id)
            if bool(finished.all()):
                break
        return out
        # END SOLUTION


# -- this week: a T5-style encoder-decoder --------------------------------------


class T5Attention(nn.Module):
    """T5's attention: no biases, a position bias added to the scores, and by default no 1/sqrt(Dh) scale.

    ============  ==============================================
    ``q_proj``    Linear(D, n_heads * Dh, bias=False)
    ``k_proj``    Linear(D, n_heads * Dh, bias=False)
    ``v_proj``    Linear(D, n_heads * Dh, bias=False)
    ``out_proj``  Linear(n_heads * Dh, D, bias=False)
    ============  ==============================================

    ``scores = q kᵀ (· 1/sqrt(Dh) only if scale) + position_bias``, then the mask,
    the softmax over keys (fully masked rows give zeros), the weighted sum of values.
    """

    def __init__(self, d_model: int, n_heads: int, d_head: int, scale: bool = False) -> None:
        super().__init__()
        # BEGIN SOLUTION: store n_heads, d_head and scale; create the four bias-free projections.
        self.n_heads = n_heads
        self.d_head = d_head
        self.scale = scale
        self.q_proj = nn.Linear(d_model, n_heads * d_head, bias=False)
        self.k_proj = nn.Linear(d_model, n_heads * d_head, bias=False)
        self.v_proj = nn.Linear(d_model, n_heads * d_head, bias=False)
        self.out_proj = nn.Linear(n_heads * d_head, d_model, bias=False)
        # END SOLUTION

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        mask: Tensor | None = None,
        position_bias: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend from ``x`` to ``context`` (to ``x`` itself when None).

        Args:
            x: ``(B, Tq, D)``; context: ``(B, Tk, D)`` or None.
            mask: bool broadcastable to ``(B, H, Tq, Tk)``; True = may attend.
            position_bias: float broadcastable to ``(B, H, Tq, Tk)`` (e.g. ``(1, H, Tq, Tk)``), or None.

        Returns:
            ``(output, weights)``: ``(B, Tq, D)`` and ``(B, H, Tq, Tk)``.
        """
        # BEGIN SOLUTION: project and split heads; scores = q k^T (scaled only if self.scale) + position_bias; mask, softmax, values, merge, out_proj.
        source = x if context is None else context
        q = split_heads(self.q_proj(x), self.n_heads)  # (B, H, Tq, Dh)
        k = split_heads(self.k_proj(source), self.n_heads)  # (B, H, Tk, Dh)
        v = split_heads(self.v_proj(source), self.n_heads)  # (B, H, Tk, Dh)
        logits = q @ k.transpose(-2, -1)  # (B, H, Tq, Tk)
        if self.scale:
            logits = logits / math.sqrt(self.d_head)
        if position_bias is not None:
            logits = logits + position_bias
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        probabilities = torch.softmax(logits, dim=-1).nan_to_num(0.0)
        return self.out_proj(merge_heads(probabilities @ v)), probabilities
        # END SOLUTION


class T5Layer(nn.Module):
    """One pre-norm T5 layer (a ``T5Block``): self-attention, cross-attention (decoder only), ReLU FFN::

        x = x + dropout(self_attn(self_attn_norm(x), mask=mask, position_bias=position_bias))
        x = x + dropout(cross_attn(cross_attn_norm(x), context=memory, mask=memory_mask))   decoder only
        x = x + dropout(ff(ff_norm(x)))

    Submodules (names fixed): ``self_attn`` (``T5Attention(d_model, n_heads, d_head)``),
    ``self_attn_norm`` (``RMSNorm(d_model, eps)``), for ``is_decoder`` only
    ``cross_attn`` and ``cross_attn_norm`` (the same kinds), ``ff``
    (``FeedForward(d_model, d_ff, "relu", bias=False)``), ``ff_norm``
    (``RMSNorm(d_model, eps)``) and ``dropout`` (``Dropout(dropout)``). The
    cross-attention gets no position bias.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_head: int,
        d_ff: int,
        dropout: float = 0.0,
        eps: float = 1e-6,
        is_decoder: bool = False,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: self_attn + self_attn_norm; cross_attn + cross_attn_norm only if is_decoder; ff (relu, no bias) + ff_norm; dropout.
        self.is_decoder = is_decoder
        self.self_attn = T5Attention(d_model, n_heads, d_head)
        self.self_attn_norm = RMSNorm(d_model, eps=eps)
        if is_decoder:
            self.cross_attn = T5Attention(d_model, n_heads, d_head)
            self.cross_attn_norm = RMSNorm(d_model, eps=eps)
        self.ff = FeedForward(d_model, d_ff, activation="relu", bias=False)
        self.ff_norm = RMSNorm(d_model, eps=eps)
        self.dropout = Dropout(dropout)
        # END SOLUTION

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        position_bias: Tensor | None = None,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
    ) -> Tensor:
        """``x`` ``(B, T, D)``; ``mask`` and ``position_bias`` for the self-attention; ``memory`` ``(B, Ts, D)``
        and ``memory_mask`` for the cross-attention (decoder only) -> ``(B, T, D)``."""
        # BEGIN SOLUTION: pre-norm residual branches: self-attention (mask, position_bias), cross-attention (decoder), ff.
        normed = self.self_attn_norm(x)
        x = x + self.dropout(self.self_attn(normed, mask=mask, position_bias=position_bias)[0])
        if self.is_decoder:
            normed = self.cross_attn_norm(x)
            x = x + self.dropout(self.cross_attn(normed, context=memory, mask=memory_mask)[0])
        out: Tensor = x + self.dropout(self.ff(self.ff_norm(x)))
        return out
        # END SOLUTION


class T5Stack(nn.Module):
    """A T5 encoder or decoder stack: one relative position bias shared by all layers, then a final norm.

    ``forward`` computes ``relative_bias(T, T)`` **once** and hands it to every
    layer: ``h = dropout(x)``, ``h = layer(h, …, position_bias=bias, …)`` for each
    layer, then ``dropout(final_norm(h))``.

    Submodules (names fixed): ``relative_bias``
    (``RelativePositionBias(n_heads, num_buckets, max_distance, bidirectional=not is_decoder)``:
    the encoder's looks both ways, the decoder's only back), ``layers`` (an
    ``nn.ModuleList`` of ``n_layers`` ``T5Layer(d_model, n_heads, d_head, d_ff, dropout, eps, is_decoder)``),
    ``final_norm`` (``RMSNorm(d_model, eps)``) and ``dropout`` (``Dropout(dropout)``).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_head: int,
        d_ff: int,
        n_layers: int,
        num_buckets: int = 32,
        max_distance: int = 128,
        dropout: float = 0.0,
        eps: float = 1e-6,
        is_decoder: bool = False,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: relative_bias (bidirectional unless is_decoder), layers, final_norm, dropout.
        self.relative_bias = RelativePositionBias(n_heads, num_buckets, max_distance, bidirectional=not is_decoder)
        self.layers = nn.ModuleList(
            T5Layer(d_model, n_heads, d_head, d_ff, dropout, eps, is_decoder) for _ in range(n_layers)
        )
        self.final_norm = RMSNorm(d_model, eps=eps)
        self.dropout = Dropout(dropout)
        # END SOLUTION

    def forward(
        self, x: Tensor, mask: Tensor | None = None, memory: Tensor | None = None, memory_mask: Tensor | None = None
    ) -> Tensor:
        """``x`` ``(B, T, D)`` embedded tokens; ``mask`` for self-attention; ``memory``, ``memory_mask`` (decoder)."""
        # BEGIN SOLUTION: the bias (1, H, T, T) once; dropout; every layer with that same bias; final_norm; dropout.
        length = x.shape[1]
        shared_bias = self.relative_bias(length, length).to(x.device)  # (1, H, T, T), one for all layers
        h = self.dropout(x)
        for layer in self.layers:
            h = layer(h, mask=mask, position_bias=shared_bias, memory=memory, memory_mask=memory_mask)
        out: Tensor = self.dropout(self.final_norm(h))
        return out
        # END SOLUTION


class T5Style(nn.Module):
    """A T5-style encoder-decoder (Raffel et al., 2020), the layout of ``transformers.T5Model``.

    Submodules (names fixed): ``shared`` (``nn.Embedding(vocab_size, D)``, used
    by both stacks, no scaling and no absolute positions), ``encoder`` and
    ``decoder`` (``T5Stack``, the decoder's with ``is_decoder=True``).
    ``from_hf_t5_state_dict`` maps a ``T5Model``'s weights to these names.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        n_heads: int,
        d_head: int,
        d_ff: int,
        n_encoder_layers: int,
        n_decoder_layers: int,
        num_buckets: int = 32,
        max_distance: int = 128,
        dropout: float = 0.1,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: shared embedding; encoder and decoder T5Stacks (is_decoder False / True) with the same settings.
        self.shared = nn.Embedding(vocab_size, d_model)
        sizes = (d_model, n_heads, d_head, d_ff)
        self.encoder = T5Stack(*sizes, n_encoder_layers, num_buckets, max_distance, dropout, eps, is_decoder=False)
        self.decoder = T5Stack(*sizes, n_decoder_layers, num_buckets, max_distance, dropout, eps, is_decoder=True)
        # END SOLUTION

    def encode(self, src: Tensor, src_lengths: Tensor) -> Tensor:
        """``src`` ``(B, Ts)``, ``src_lengths`` ``(B,)`` -> the encoder's output ``(B, Ts, D)``."""
        # BEGIN SOLUTION: look up shared; the encoder stack with the source's padding mask.
        hidden: Tensor = self.encoder(self.shared(src), mask=padding_mask(src_lengths, src.shape[1]))
        return hidden
        # END SOLUTION

    def decode(self, tgt: Tensor, memory: Tensor, src_lengths: Tensor, tgt_lengths: Tensor) -> Tensor:
        """``tgt`` ``(B, Tt)``, ``memory`` ``(B, Ts, D)``, lengths ``(B,)`` -> the decoder's output ``(B, Tt, D)``."""
        # BEGIN SOLUTION: look up shared; the decoder stack with causal & target padding, memory with source padding.
        length = tgt.shape[1]
        self_mask = causal_mask(length, device=tgt.device) & padding_mask(tgt_lengths, length)
        cross_mask = padding_mask(src_lengths, memory.shape[1])
        hidden: Tensor = self.decoder(self.shared(tgt), mask=self_mask, memory=memory, memory_mask=cross_mask)
        return hidden
        # END SOLUTION

    def forward(self, src: Tensor, tgt: Tensor, src_lengths: Tensor, tgt_lengths: Tensor) -> Tensor:
        """The decoder's last hidden state ``(B, Tt, D)`` (``T5Model``'s ``last_hidden_state``)."""
        # BEGIN SOLUTION: encode, then decode.
        return self.decode(tgt, self.encode(src, src_lengths), src_lengths, tgt_lengths)
        # END SOLUTION


def from_hf_t5_state_dict(hf: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a ``transformers.T5Model`` state dict to ``T5Style``'s names (given: nothing to write).

    ``T5Model`` keeps the relative bias in the first block of each stack
    (``….block.0.layer.0.SelfAttention.relative_attention_bias``); its blocks hold
    a list of sublayers (``layer.0`` self-attention, ``layer.1`` cross-attention in
    the decoder, then the feed-forward network), each with its own ``layer_norm``.
    """
    ours = {"shared.weight": hf["shared.weight"]}
    projections = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "out_proj"}
    for stack in ("encoder", "decoder"):
        first = f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        ours[f"{stack}.relative_bias.relative_attention_bias.weight"] = hf[first]
        ours[f"{stack}.final_norm.weight"] = hf[f"{stack}.final_layer_norm.weight"]
        index = 0
        while f"{stack}.block.{index}.layer.0.layer_norm.weight" in hf:
            theirs, mine = f"{stack}.block.{index}.layer", f"{stack}.layers.{index}"
            sublayers = [("0.SelfAttention", "self_attn")]
            if stack == "decoder":
                sublayers.append(("1.EncDecAttention", "cross_attn"))
            for their_name, my_name in sublayers:
                for short, long in projections.items():
                    ours[f"{mine}.{my_name}.{long}.weight"] = hf[f"{theirs}.{their_name}.{short}.weight"]
                ours[f"{mine}.{my_name}_norm.weight"] = hf[f"{theirs}.{their_name.split('.')[0]}.layer_norm.weight"]
            last = len(sublayers)  # the feed-forward sublayer comes after the attention ones
            ours[f"{mine}.ff.fc1.weight"] = hf[f"{theirs}.{last}.DenseReluDense.wi.weight"]
            ours[f"{mine}.ff.fc2.weight"] = hf[f"{theirs}.{last}.DenseReluDense.wo.weight"]
            ours[f"{mine}.ff_norm.weight"] = hf[f"{theirs}.{last}.layer_norm.weight"]
            index += 1
    return ours
