"""Week 10: training transformers: objectives, schedules, stability, memory, mixture of experts.

Shapes use these letters:

* ``B`` batch, ``T`` positions, ``N`` tokens of a flattened batch (``N = B * T``)
* ``D`` model width (``d_model``), ``F`` feed-forward width (``d_ff``), ``V`` vocabulary size
* ``H`` attention heads (``n_heads``), ``Dh`` head size (``D / H``), ``L`` layers (``n_layers``)
* ``E`` experts (``n_experts``), ``k`` experts per token (``top_k``), ``C`` expert capacity

Token ids are int64. ``attention_mask`` is ``(B, T)``, 1 (or True) for a real token and 0
(or False) for padding, as in week 06 and Hugging Face. The masks your attention takes are
bool and mean **True = may attend**.

Rules: as in weeks 04 and 06, write GELU, LayerNorm and dropout yourself (``F.gelu``,
``nn.GELU``, ``F.layer_norm``, ``nn.LayerNorm``, ``F.dropout``, ``nn.Dropout`` and PyTorch's
fused attention are forbidden). This week also forbids ``torch.nn.utils.clip_grad_norm_``
(and the ``torch._foreach_*`` functions it runs) and ``torch.amp.GradScaler``: you write
gradient clipping and loss scaling. ``F.cross_entropy``, ``torch.logsumexp``, ``torch.autocast``,
``torch.utils.checkpoint.checkpoint``, ``torch.topk``, ``torch.optim.AdamW`` and ``torch.save`` /
``torch.load`` are fine. Only this file is submitted: paste your week 02, 04, 05 and 06 code
into it rather than importing it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "swiglu")
NORMS = ("layernorm", "rmsnorm")
IGNORE_INDEX = -100  # the label of a position a loss ignores (PyTorch's and Hugging Face's convention)
AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


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


# -- week 06, pasted ------------------------------------------------------------


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
    # BEGIN SOLUTION: paste your week 06 causal_mask (create the triangle on attention_mask's device when there is one).
    device = None if attention_mask is None else attention_mask.device
    allowed = torch.ones(query_length, key_length, dtype=torch.bool, device=device)
    allowed = allowed.tril(diagonal=key_length - query_length)  # (Tq, Tk)
    allowed = allowed[None, None]  # (1, 1, Tq, Tk)
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool()[:, None, None, :]  # (B, 1, Tq, Tk)
    return allowed
    # END SOLUTION


class GPT(nn.Module):
    """GPT-2 (Radford et al., 2019): a stack of pre-norm blocks with causal self-attention.

    ::

        x      = drop(token_embedding(input_ids) + position_embedding(position_ids))   (B, T, D)
        x      = block(x, mask=causal_mask(...))          for each of the L blocks      (B, T, D)
        logits = norm_f(x) @ token_embedding.weight.T     the tied LM head              (B, T, V)

    Submodules (names fixed: the grader loads weights by name):

    ======================  =================================================================
    ``token_embedding``     ``nn.Embedding(V, D)``; its weight is also the LM head (tied)
    ``position_embedding``  ``nn.Embedding(max_len, D)``, learned absolute positions
    ``drop``                ``Dropout(dropout)`` on the summed embeddings
    ``blocks``              ``nn.ModuleList`` of ``L`` ``TransformerBlock(D, H, F, dropout,
                            norm_first=True, activation="gelu_tanh", eps=eps)``
    ``norm_f``              ``LayerNorm(D, eps=eps)`` after the last block
    ======================  =================================================================

    There is no ``lm_head`` module and no output bias: the head multiplies by
    ``token_embedding.weight`` itself, so ``state_dict()`` holds exactly the entries above.

    Args:
        vocab_size: ``V``.
        max_len: rows of the position table, the longest sequence the model reads (GPT-2: 1024).
        d_model: ``D``.
        n_heads: ``H`` (``Dh = D / H``).
        n_layers: ``L``.
        d_ff: ``F``; None means ``4 * D``, GPT-2's choice.
        dropout: the probability of ``drop`` and of every block's dropout.
        eps: the epsilon of every LayerNorm (GPT-2: 1e-5).
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
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: paste the body of your week 06 GPT.__init__.
        self.max_len = max_len
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_len, d_model)
        self.drop = Dropout(dropout)
        hidden = 4 * d_model if d_ff is None else d_ff
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, hidden, dropout, norm_first=True, activation="gelu_tanh", eps=eps)
            for _ in range(n_layers)
        )
        self.norm_f = LayerNorm(d_model, eps=eps)
        # END SOLUTION
        self.gradient_checkpointing = False  # this week: see set_gradient_checkpointing and run_blocks

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each block's activations during the backward pass instead of storing them (this week)."""
        self.gradient_checkpointing = enabled

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Next-token logits at every position.

        Args:
            input_ids: ``(B, T)`` int64, ``T <= max_len``.
            attention_mask: ``(B, T)``, 1 = real token, 0 = (left) padding; None means no padding.

        Returns:
            ``(B, T, V)``: ``logits[b, t]`` scores the token that follows ``input_ids[b, : t + 1]``.
        """
        # BEGIN SOLUTION: paste the body of your week 06 GPT.forward, but run the blocks with run_blocks(self.blocks, x, mask, self.gradient_checkpointing).
        batch, length = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        positions = position_ids(attention_mask)  # (B, T)
        x = self.drop(self.token_embedding(input_ids) + self.position_embedding(positions))  # (B, T, D)
        mask = causal_mask(length, length, attention_mask)  # (B, 1, T, T)
        x = run_blocks(self.blocks, x, mask, self.gradient_checkpointing)
        logits: Tensor = self.norm_f(x) @ self.token_embedding.weight.T  # (B, T, V): the tied head
        return logits
        # END SOLUTION


def run_blocks(blocks: nn.ModuleList, x: Tensor, mask: Tensor, checkpointed: bool = False) -> Tensor:
    """Run ``x`` through every block in order, each called as ``block(x, mask=mask)``: ``(B, T, D)`` -> ``(B, T, D)``.

    With ``checkpointed`` True (and gradients enabled), each block runs under
    ``torch.utils.checkpoint.checkpoint(block, x, mask, use_reentrant=False)``: the forward
    pass keeps only each block's **input**, and the backward pass recomputes the block's
    internals (attention scores, the feed-forward's hidden layer ...) from it. Same values,
    same gradients, less memory, about one more forward pass of compute.

    Args:
        blocks: the ``L`` blocks (``GPT.blocks``).
        x: ``(B, T, D)`` the embeddings.
        mask: bool, broadcastable to ``(B, H, T, T)``, True = may attend.
        checkpointed: whether to checkpoint every block.
    """
    # BEGIN SOLUTION: a loop over the blocks; when checkpointed and torch.is_grad_enabled(), call checkpoint(block, x, mask, use_reentrant=False) instead of block(x, mask=mask).
    for block in blocks:
        if checkpointed and torch.is_grad_enabled():
            x = checkpoint(block, x, mask, use_reentrant=False)  # keeps x only; recomputes the rest in backward
        else:
            x = block(x, mask=mask)  # keeps every activation for the backward pass
    return x
    # END SOLUTION


# -- week 05, pasted ------------------------------------------------------------------


def mlm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """The MLM loss: mean cross-entropy over the positions whose label is not ``-100``.

    ``loss = -(1 / N) * sum over labelled (b, t) of log softmax(logits[b, t])[labels[b, t]]``,
    ``N`` the number of labelled positions. With no labelled position it returns 0
    (not NaN), still connected to ``logits`` for autograd. (This week ``F.cross_entropy``
    is allowed too.)

    Args:
        logits: ``(B, T, V)`` float.
        labels: ``(B, T)`` int64, a class id in ``[0, V)`` or ``-100`` (ignored).

    Returns:
        a scalar (shape ``()``) of the logits' dtype.
    """
    # BEGIN SOLUTION: paste your week 05 mlm_loss (or use F.cross_entropy with reduction="sum" over the labelled positions, divided by their count, at least 1).
    labelled = labels != IGNORE_INDEX  # (B, T)
    log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)  # (B, T, V)
    safe_labels = torch.where(labelled, labels, torch.zeros_like(labels))  # -100 is not an index
    picked = log_probs.gather(-1, safe_labels.unsqueeze(-1)).squeeze(-1)  # (B, T)
    total = -torch.where(labelled, picked, torch.zeros_like(picked)).sum()
    return total / labelled.sum().clamp(min=1)
    # END SOLUTION


# -- this week: objectives ------------------------------------------------------------


def causal_lm_loss(logits: Tensor, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """The causal language-modelling loss: each position predicts the **next** token.

    ``logits[:, t]`` scores ``input_ids[:, t + 1]``, so the last position has no target and
    the first token is never a target: compare ``logits[:, :-1]`` ``(B, T - 1, V)`` with
    ``input_ids[:, 1:]`` ``(B, T - 1)``. A target counts only when it is a real token
    (``attention_mask`` 1 at the target's position); padded targets are ignored, as
    Hugging Face's ``labels = -100``. The loss is the mean over **all counted targets of the
    batch** (not the mean of per-sequence means), 0 when no target counts.

    Args:
        logits: ``(B, T, V)`` float, the model's output for ``input_ids``.
        input_ids: ``(B, T)`` int64.
        attention_mask: ``(B, T)``, 1 = real token, 0 = padding; None means no padding.

    Returns:
        a scalar (shape ``()``) of the logits' dtype.
    """
    # BEGIN SOLUTION: labels = input_ids[:, 1:] with padded targets set to -100 (mask[:, 1:] == 0), then your mlm_loss on logits[:, :-1].
    labels = input_ids[:, 1:]  # (B, T - 1): the token after each position
    if attention_mask is not None:
        labels = labels.masked_fill(attention_mask[:, 1:] == 0, IGNORE_INDEX)
    return mlm_loss(logits[:, :-1], labels)
    # END SOLUTION


# -- this week: learning-rate schedules ---------------------------------------------------


def cosine_with_warmup(step: int, warmup_steps: int, total_steps: int, max_lr: float, min_lr: float = 0.0) -> float:
    """The learning rate at ``step`` (counting from 0): linear warm-up, then cosine decay.

    ::

        step <  warmup_steps:                  max_lr * step / warmup_steps
        warmup_steps <= step <= total_steps:   min_lr + (max_lr - min_lr) * 0.5 * (1 + cos(pi * progress))
                                               progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        step >  total_steps:                   min_lr

    So the rate is 0 at step 0, ``max_lr`` at ``step == warmup_steps`` and ``min_lr`` at
    ``step == total_steps``. With ``min_lr = 0`` this is Hugging Face's
    ``get_cosine_schedule_with_warmup`` times ``max_lr``.
    """
    # BEGIN SOLUTION: the three cases above; progress divides by max(1, total_steps - warmup_steps).
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    if step > total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)  # from 0 to 1
    return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    # END SOLUTION


def inverse_sqrt(step: int, d_model: int, warmup_steps: int) -> float:
    """The original Transformer's schedule (Vaswani et al., 2017, eq. 3), with steps counted from 1.

    ``lr = d_model ** -0.5 * min(step ** -0.5, step * warmup_steps ** -1.5)``: linear growth for
    ``warmup_steps`` steps, then decay proportional to ``1 / sqrt(step)``; the peak, at
    ``step == warmup_steps``, is ``(d_model * warmup_steps) ** -0.5``. ``step == 0`` gives 0.0
    (``0 ** -0.5`` would divide by zero).
    """
    # BEGIN SOLUTION: 0.0 at step 0, else the formula (both terms of the min, times d_model ** -0.5).
    if step == 0:
        return 0.0
    return min(1.0 / math.sqrt(step), step / (warmup_steps * math.sqrt(warmup_steps))) / math.sqrt(d_model)
    # END SOLUTION


# -- this week: gradient clipping ---------------------------------------------------------


def clip_grad_norm(parameters: nn.Module | Iterable[Tensor], max_norm: float) -> Tensor:
    """Clip gradients by their **global** norm, in place, as ``torch.nn.utils.clip_grad_norm_`` does.

    ``total = sqrt(sum over every parameter p with a gradient of sum(p.grad ** 2))``: one norm
    for all gradients together, as if they were one long vector. If
    ``coef = max_norm / (total + 1e-6)`` is below 1, every gradient is multiplied by ``coef``
    **in place** (``grad.mul_(coef)``), so the direction of the update is kept and its length
    becomes ``max_norm``; otherwise the gradients are left alone. Parameters whose ``.grad``
    is None are skipped.

    Args:
        parameters: a module (its ``.parameters()``) or an iterable of parameters.
        max_norm: the largest global norm allowed (``float("inf")`` only measures it).

    Returns:
        the global norm **before** clipping, a scalar tensor (0 when no parameter has a gradient).
    """
    params = list(parameters.parameters()) if isinstance(parameters, nn.Module) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    # BEGIN SOLUTION: one norm over all gradients (torch.linalg.vector_norm of the per-gradient norms), coef = max_norm / (total + 1e-6), grad.mul_(coef) for each when coef < 1.
    if not grads:
        return torch.tensor(0.0)
    total: Tensor = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    coef = max_norm / (total + 1e-6)  # below 1 only when the norm is too large
    if coef < 1.0:
        for g in grads:
            g.mul_(coef)
    return total  # the norm before clipping
    # END SOLUTION


# -- this week: mixed precision -------------------------------------------------------------


class DynamicLossScaler:
    """Dynamic loss scaling for float16 training (Micikevicius et al., 2018), with ``torch.amp.GradScaler``'s rules.

    float16 cannot represent magnitudes below about ``6e-8``, and many gradients are that
    small: multiplying the loss by a large ``loss_scale`` before ``backward`` shifts every
    gradient up into float16's range; dividing the (float32) parameter gradients by the same
    factor afterwards undoes it. When the scale is so large that something overflowed (an
    ``inf`` or NaN gradient), the step is skipped and the scale halved; after
    ``growth_interval`` good steps in a row it doubles, to stay as large as is safe.

    Attributes (the grader reads them):
        loss_scale: the current scale, a Python float, starting at ``init_scale``.
        growth_tracker: good steps since the scale last changed, an int starting at 0.
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
    ) -> None:
        self.loss_scale = float(init_scale)
        self.growth_factor = growth_factor
        self.backoff_factor = backoff_factor
        self.growth_interval = growth_interval
        self.growth_tracker = 0

    def scale(self, loss: Tensor) -> Tensor:
        """``loss * loss_scale``: call ``.backward()`` on this instead of on ``loss``."""
        # BEGIN SOLUTION: multiply by the current scale.
        return loss * self.loss_scale
        # END SOLUTION

    def unscale_(self, parameters: nn.Module | Iterable[Tensor]) -> bool:
        """Divide every gradient by ``loss_scale`` in place; return True if any gradient has an inf or NaN.

        Parameters whose ``.grad`` is None are skipped. Returns a Python bool ("found inf").
        """
        params = list(parameters.parameters()) if isinstance(parameters, nn.Module) else list(parameters)
        grads = [p.grad for p in params if p.grad is not None]
        # BEGIN SOLUTION: grad.div_(self.loss_scale) for each gradient, and whether any of them is not finite (torch.isfinite).
        finite = True
        for g in grads:
            g.div_(self.loss_scale)
            finite = finite and bool(torch.isfinite(g).all())
        return not finite
        # END SOLUTION

    def update(self, found_inf: bool) -> None:
        """After each step: back off on an overflow, grow after ``growth_interval`` good steps in a row.

        ``found_inf``: ``loss_scale *= backoff_factor`` and ``growth_tracker = 0``. Otherwise
        ``growth_tracker += 1``, and when it reaches ``growth_interval``: ``loss_scale *= growth_factor``
        and ``growth_tracker = 0``.
        """
        # BEGIN SOLUTION: the two rules above.
        if found_inf:
            self.loss_scale *= self.backoff_factor
            self.growth_tracker = 0  # an overflow restarts the count
            return
        self.growth_tracker += 1
        if self.growth_tracker == self.growth_interval:
            self.loss_scale *= self.growth_factor
            self.growth_tracker = 0  # and so does a change of scale
        # END SOLUTION


@torch.enable_grad()
def forward_backward(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    amp_dtype: str | None = None,
    scaler: DynamicLossScaler | None = None,
    device_type: str = "cpu",
) -> tuple[Tensor, Tensor]:
    """One forward and backward pass of the causal LM loss, optionally in mixed precision.

    1. Reset the gradients: ``model.zero_grad(set_to_none=True)``.
    2. ``logits = model(input_ids, attention_mask=attention_mask)``, inside
       ``torch.autocast(device_type, dtype=...)`` when ``amp_dtype`` is ``"bfloat16"`` or
       ``"float16"`` (matrix products then run in that dtype; the parameters stay float32).
       ``amp_dtype=None``: no autocast, the model's own dtype.
    3. The loss **outside** autocast, in float32 at least: ``causal_lm_loss`` on the logits
       converted to float32 when they are bfloat16 or float16 (a softmax over ``V`` classes in
       bfloat16 keeps about 3 significant digits).
    4. ``backward`` of ``scaler.scale(loss)`` when a scaler is given, else of ``loss``. The
       gradients stay scaled: ``scaler.unscale_`` is the caller's job (``train_step``).

    Args:
        model: a ``GPT`` (called as ``model(input_ids, attention_mask=mask)`` -> ``(B, T, V)``).
        input_ids: ``(B, T)`` int64.
        attention_mask: ``(B, T)`` or None, as in ``causal_lm_loss``.
        amp_dtype: None, ``"bfloat16"`` or ``"float16"``.
        scaler: a ``DynamicLossScaler`` or None.
        device_type: ``"cpu"`` or ``"cuda"``, for ``torch.autocast``.

    Returns:
        ``(loss, logits)``: the **unscaled** loss, a detached scalar in float32 (float64 for a
        float64 model), and the detached logits ``(B, T, V)`` in the dtype the model produced
        (bfloat16 under bfloat16 autocast).
    """
    # BEGIN SOLUTION: zero_grad(set_to_none=True); forward under torch.autocast(device_type, dtype=AMP_DTYPES[amp_dtype], enabled=amp_dtype is not None); loss outside it on logits upcast to float32; backward of the (scaled) loss.
    model.zero_grad(set_to_none=True)  # or the gradients pile up across calls
    with torch.autocast(device_type, dtype=AMP_DTYPES[amp_dtype or "bfloat16"], enabled=amp_dtype is not None):
        logits = model(input_ids, attention_mask=attention_mask)  # (B, T, V)
    upcast = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    loss = causal_lm_loss(upcast, input_ids, attention_mask)
    torch.autograd.backward(scaler.scale(loss) if scaler is not None else loss)
    return loss.detach(), logits.detach()
    # END SOLUTION


def configure_optimizer(
    model: nn.Module, lr: float, weight_decay: float = 0.1, betas: tuple[float, float] = (0.9, 0.95)
) -> torch.optim.AdamW:
    """AdamW (Loshchilov & Hutter, 2019) with two parameter groups, as nanoGPT sets it up.

    Group 0: every parameter with 2 or more dims (the weight matrices and the embeddings), with
    ``weight_decay``. Group 1: the others (biases, LayerNorm weights and biases), with weight
    decay 0: shrinking a norm's gain or a bias towards 0 is not regularisation. Both groups in
    ``model.named_parameters()`` order, ``lr`` and ``betas`` as given, ``eps`` 1e-8.
    """
    # BEGIN SOLUTION: split model.parameters() by p.dim() >= 2; torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas).
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8)
    # END SOLUTION


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    max_norm: float | None = None,
    amp_dtype: str | None = None,
    scaler: DynamicLossScaler | None = None,
    device_type: str = "cpu",
) -> dict[str, Any]:
    """One optimisation step: ``forward_backward``, unscale, clip, step, update the scaler.

    1. ``loss, _ = forward_backward(model, input_ids, attention_mask, amp_dtype, scaler, device_type)``.
    2. With a scaler: ``found_inf = scaler.unscale_(model)``; without: ``found_inf = False``.
    3. Unless ``found_inf``: ``grad_norm = clip_grad_norm(model, max_norm)`` (``max_norm=None``:
       ``float("inf")``, which only measures) and ``optimizer.step()``. With ``found_inf`` the
       step is **skipped** (the parameters do not change) and ``grad_norm`` is ``inf``.
    4. With a scaler: ``scaler.update(found_inf)``.

    The learning rate is whatever ``optimizer.param_groups`` hold (the caller sets it from a
    schedule before each step).

    Returns:
        ``{"loss": float, "grad_norm": float, "skipped": bool}``: the unscaled loss, the global
        gradient norm before clipping, and whether the step was skipped.
    """
    # BEGIN SOLUTION: the four steps above, in that order (clip after unscaling, never on scaled gradients).
    loss = forward_backward(model, input_ids, attention_mask, amp_dtype, scaler, device_type)[0]
    overflow = scaler.unscale_(model) if scaler is not None else False  # unscale before clipping
    grad_norm = math.inf
    if not overflow:
        grad_norm = float(clip_grad_norm(model, math.inf if max_norm is None else max_norm))
        optimizer.step()  # skipped when a gradient overflowed
    if scaler is not None:
        scaler.update(overflow)
    return {"loss": float(loss), "grad_norm": grad_norm, "skipped": overflow}
    # END SOLUTION


# -- this week: mixture of experts ------------------------------------------------------------


class MoEFeedForward(nn.Module):
    """A mixture-of-experts feed-forward layer: a router sends each token to ``k`` of ``E`` experts.

    For the ``N = B * T`` tokens ``x`` ``(N, D)`` (every position is a token; there is no mask):

    1. **Router.** ``probs = softmax(router(x), dim=-1)`` ``(N, E)``: over the **experts**, per token.
    2. **Top-k.** ``gates, expert_index = probs.topk(k, dim=-1)`` ``(N, k)``, largest first. With
       ``norm_topk_prob`` the ``k`` gates are divided by their sum (Mixtral); without, they stay
       the router probabilities (Switch Transformer, ``k = 1``).
    3. **Capacity.** Expert ``e`` processes at most ``C = ceil(capacity_factor * N * k / E)``
       assignments (``capacity_factor=None``: no limit). Assignments claim places in this order:
       every token's **first** choice, in token order, then every token's second choice, in token
       order, and so on (GShard). An assignment that finds its expert full is **dropped**: that
       expert contributes nothing to that token, and the token's other gates are **not**
       renormalised. A token with every assignment dropped gets 0 (in a block, the residual
       connection carries it through unchanged).
    4. **Combine.** ``out[n] = sum over kept (n, j) of gates[n, j] * experts[expert_index[n, j]](x[n])``.
    5. **Load-balancing loss** (Switch Transformer, eq. 4): ``aux = E * sum_e f_e * P_e``, where
       ``f_e`` is the fraction of tokens whose **top-1** expert is ``e`` (before any drop) and
       ``P_e = probs[:, e].mean()``. It is 1 when routing is perfectly uniform; only ``P``
       carries gradient.

    Submodules (names fixed: the grader loads weights by name): ``router``
    ``nn.Linear(D, E, bias=False)``; ``experts``, an ``nn.ModuleList`` of ``E``
    ``FeedForward(D, F, activation, bias)`` (your week 04 class).

    Args:
        d_model: ``D``.
        d_ff: ``F``, each expert's hidden width.
        n_experts: ``E``.
        top_k: ``k``, experts per token (``1 <= k <= E``).
        capacity_factor: ``C``'s factor, or None for no capacity limit.
        norm_topk_prob: whether to renormalise the ``k`` gates to sum to 1.
        activation: the experts' activation (see ``FeedForward``).
        bias: whether the experts' linear layers have biases.
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        n_experts: int,
        top_k: int = 2,
        capacity_factor: float | None = 1.25,
        norm_topk_prob: bool = True,
        activation: str = "gelu",
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.n_experts = n_experts
        self.top_k = top_k
        self.capacity_factor = capacity_factor
        self.norm_topk_prob = norm_topk_prob
        # BEGIN SOLUTION: router (Linear without bias) and experts (a ModuleList of your FeedForward).
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.experts = nn.ModuleList(FeedForward(d_model, d_ff, activation, bias) for _ in range(n_experts))
        # END SOLUTION

    def capacity(self, n_tokens: int) -> int:
        """``C = ceil(capacity_factor * n_tokens * top_k / n_experts)``; ``n_tokens * top_k`` without a capacity factor."""
        # BEGIN SOLUTION: the formula (math.ceil); without a factor every assignment fits.
        if self.capacity_factor is None:
            return n_tokens * self.top_k
        return math.ceil(self.capacity_factor * n_tokens * self.top_k / self.n_experts)
        # END SOLUTION

    def route(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Steps 1 to 3 for ``x`` ``(N, D)``.

        Returns:
            ``(probs, expert_index, gates, kept)``: ``(N, E)`` router probabilities, ``(N, k)``
            int64 expert ids (largest probability first), ``(N, k)`` gates (renormalised with
            ``norm_topk_prob``) and ``(N, k)`` bool, False where the assignment was dropped.
        """
        # BEGIN SOLUTION: softmax over experts, topk, optional renormalisation; then places in choice-major order: one_hot of expert_index.T flattened, cumsum over assignments, kept where the place is < capacity.
        probs = torch.softmax(self.router(x), dim=-1)  # (N, E)
        top_probs, expert_index = probs.topk(self.top_k, dim=-1)  # (N, k), largest first
        gates = top_probs / top_probs.sum(dim=-1, keepdim=True) if self.norm_topk_prob else top_probs
        order = expert_index.T.reshape(-1)  # (k * N,): first choices of every token, then second choices ...
        one_hot = F.one_hot(order, self.n_experts)  # (k * N, E)
        place = ((one_hot.cumsum(dim=0) - 1) * one_hot).sum(dim=-1)  # (k * N,): 0 for the first to claim its expert
        kept = (place < self.capacity(x.shape[0])).reshape(self.top_k, -1).T  # (N, k)
        return probs, expert_index, gates, kept
        # END SOLUTION

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``(B, T, D)`` -> ``(output (B, T, D), aux_loss ())``, steps 1 to 5."""
        # BEGIN SOLUTION: route the flattened tokens; per expert, run it on its kept tokens and index_add_ gate * output into a zero tensor; aux = E * sum(f * P) with f from the top-1 choices.
        batch, length, width = x.shape
        tokens = x.reshape(-1, width)  # (N, D)
        probs, expert_index, gates, kept = self.route(tokens)
        out = torch.zeros_like(tokens)  # (N, D)
        for e, expert in enumerate(self.experts):
            rows, slots = torch.where((expert_index == e) & kept)  # the kept assignments to expert e
            if rows.numel():
                out = out.index_add(0, rows, gates[rows, slots, None] * expert(tokens[rows]))
        top1 = F.one_hot(expert_index[:, 0], self.n_experts).to(probs.dtype)  # (N, E)
        aux = self.n_experts * (top1.mean(dim=0) * probs.mean(dim=0)).sum()
        return out.reshape(batch, length, width), aux
        # END SOLUTION


# -- this week: checkpoints --------------------------------------------------------------------


def save_checkpoint(
    path: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    config: dict[str, Any],
    vocab: str,
) -> None:
    """Save everything needed to resume training or to sample, with ``torch.save``, to ``path``.

    The file holds a dict: ``"model"`` (``model.state_dict()``), ``"optimizer"``
    (``optimizer.state_dict()``, or None), ``"step"`` (int), ``"config"`` (the ``GPT``
    keyword arguments, e.g. ``{"vocab_size": 65, "max_len": 64, ...}``) and ``"vocab"`` (the
    characters, in id order). Plain tensors, numbers, strings, lists and dicts only, so that
    ``torch.load(..., weights_only=True)`` reads it back.
    """
    # BEGIN SOLUTION: torch.save the five entries above as one dict.
    state = {
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "step": step,
        "config": dict(config),
        "vocab": vocab,
    }
    torch.save(state, path)
    # END SOLUTION


def load_checkpoint(source: str | bytes | Tensor) -> tuple[GPT, dict[str, Any]]:
    """Load a checkpoint written by ``save_checkpoint``: a path, the file's bytes, or those bytes as a uint8 tensor.

    Read it with ``torch.load(..., weights_only=True)`` (never unpickle arbitrary objects from
    a file), build ``GPT(**checkpoint["config"])``, load ``checkpoint["model"]`` into it
    (strictly) and put it in eval mode.

    Returns:
        ``(model, checkpoint)``: the model and the whole loaded dict (``"step"``, ``"vocab"``,
        ``"optimizer"`` ... for resuming).
    """
    if isinstance(source, Tensor):
        source = source.numpy().tobytes()
    file: str | io.BytesIO = io.BytesIO(source) if isinstance(source, bytes) else source
    # BEGIN SOLUTION: torch.load(file, weights_only=True); GPT(**config); load_state_dict; eval().
    state: dict[str, Any] = torch.load(file, weights_only=True)
    model = GPT(**state["config"])
    model.load_state_dict(state["model"])
    return model.eval(), state
    # END SOLUTION


# -- given: helpers for the lab and the grader -----------------------------------------------------


def gradients(model: nn.Module) -> dict[str, Tensor]:
    """``{name: parameter.grad}`` for every parameter that has a gradient (copies)."""
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def saved_activation_bytes(model: nn.Module, input_ids: Tensor) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of ``model(input_ids)`` (parameters excluded).

    Runs the forward pass under ``torch.autograd.graph.saved_tensors_hooks``, counting each
    saved tensor's storage once, then the backward pass. This is the activation memory at the
    peak, the end of the forward pass: with ``model.set_gradient_checkpointing(True)`` it should
    shrink to about one ``(B, T, D)`` tensor per block (plus the embeddings and the head).
    """
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.enable_grad():
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            logits = model(input_ids)
        torch.autograd.backward(logits.float().square().mean())
    model.zero_grad(set_to_none=True)
    return sum(saved.values())


@torch.no_grad()
def generate_text(
    model: GPT, vocab: str, prompt: str, max_new_chars: int, temperature: float = 0.8, seed: int = 0
) -> str:
    """Sample ``max_new_chars`` characters after ``prompt`` from a character-level ``GPT``.

    The context is cropped to the model's last ``max_len`` characters (the rows of its position
    table); each character is one ``torch.multinomial`` draw from ``softmax(logits / temperature)``
    with a generator seeded by ``seed``. Characters of ``prompt`` not in ``vocab`` are skipped.
    Returns ``prompt`` followed by the new characters.
    """
    lookup = {char: i for i, char in enumerate(vocab)}
    context_length = int(model.position_embedding.num_embeddings)
    known = [lookup[char] for char in prompt if char in lookup] or [0]
    ids = torch.tensor([known], dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    new: list[str] = []
    for _ in range(max_new_chars):
        scores = model(ids[:, -context_length:])[:, -1, :].float() / temperature  # (1, V)
        drawn = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)  # (1, 1)
        ids = torch.cat([ids, drawn], dim=-1)  # (1, length + 1)
        new.append(vocab[int(drawn)])
    return prompt + "".join(new)
