"""Week 04: the feed-forward network, normalization, dropout, residuals and the transformer block.

Shapes use these letters:

* ``B`` batch, ``T`` positions
* ``D`` model width (``d_model``), ``F`` feed-forward width (``d_ff``)
* ``H`` attention heads (``n_heads``), ``Dh`` head size (``d_head``)

Masks are boolean, broadcastable to ``(B, H, T, T)``, and mean **True = may
attend** (weeks 01 and 02; the opposite of ``torch.nn.TransformerEncoderLayer``).

Rules: write GELU, LayerNorm, RMSNorm and dropout yourself. ``F.gelu``,
``nn.GELU``, ``F.layer_norm``, ``nn.LayerNorm``, ``F.rms_norm``, ``nn.RMSNorm``,
``F.dropout`` and ``nn.Dropout`` (and the fused attention kernels of week 02) are
forbidden; the grader records which torch ops run. ``torch.erf``, ``torch.tanh``,
``torch.sigmoid``, ``torch.relu``, ``torch.rsqrt``, ``torch.rand_like`` and
``nn.Linear`` are fine.

The attention comes from week 02: ``from multihead import MultiHeadAttention``.
Work with your own ``multihead.py`` beside this file; when this week is graded,
``multihead`` is the week 02 reference solution (``course.yml``: ``carry: reference``),
so a mistake there costs points in week 02 only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from multihead import MultiHeadAttention  # week 02
from torch import Tensor, nn

ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "swiglu")
NORMS = ("layernorm", "rmsnorm")


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """The Gaussian error linear unit, elementwise (any shape in, the same shape out).

    ``approximate="none"``: ``x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))``, exact.
    ``approximate="tanh"``: ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`` (GPT-2's "gelu_new").
    Anything else raises ``ValueError``.
    """
    # BEGIN SOLUTION: write both formulas yourself (torch.erf, torch.tanh); raise ValueError for another `approximate`.
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
        # BEGIN SOLUTION: check `activation` (ValueError), store it, create fc1, fc2 and (for swiglu only) fc_gate.
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
        # BEGIN SOLUTION: fc1, the activation (use your gelu; swiglu multiplies silu(fc_gate(x)) into fc1(x)), fc2.
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

    float16 and bfloat16 inputs are normalised in float32 (``(x - mean)^2`` overflows float16
    once the spread passes about 255), cast back to the input's dtype, then scaled and shifted;
    float32 and float64 inputs are normalised in their own dtype.

    Parameters: ``weight`` ``(D,)`` starting at ones, ``bias`` ``(D,)`` starting at zeros.
    """

    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        # BEGIN SOLUTION: store eps; weight (ones) and bias (zeros) as nn.Parameter of shape (D,).
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """``(..., D)`` -> ``(..., D)``."""
        # BEGIN SOLUTION: in at least float32, centre over the last dim and divide by sqrt(biased variance + eps); cast back to x's dtype, then scale and shift.
        h = x.to(torch.promote_types(x.dtype, torch.float32))  # float16/bfloat16 -> float32; float32/64 unchanged
        centred = h - h.mean(dim=-1, keepdim=True)
        variance = centred.square().mean(dim=-1, keepdim=True)  # biased: divides by D
        normed = centred * torch.rsqrt(variance + self.eps)
        return normed.to(x.dtype) * self.weight + self.bias
        # END SOLUTION


class RMSNorm(nn.Module):
    """Root-mean-square normalization over the last dim (Zhang & Sennrich, 2019): ``(..., D)`` -> ``(..., D)``.

    ``y = x / sqrt(mean(x^2) + eps) * weight``: no centring and no bias.

    float16 and bfloat16 inputs are normalised in float32 (``x^2`` overflows float16 for
    ``|x| > 255``, and the result would be all zeros), cast back to the input's dtype, then
    scaled, as Llama's ``LlamaRMSNorm`` does; float32 and float64 inputs are normalised in
    their own dtype.

    Parameters: ``weight`` ``(D,)`` starting at ones.
    """

    def __init__(self, d_model: int, eps: float = 1e-6) -> None:
        super().__init__()
        # BEGIN SOLUTION: store eps; weight (ones) as an nn.Parameter of shape (D,).
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """``(..., D)`` -> ``(..., D)``."""
        # BEGIN SOLUTION: in at least float32, divide by sqrt(mean of squares over the last dim + eps); cast back to x's dtype, then scale by weight.
        h = x.to(torch.promote_types(x.dtype, torch.float32))  # float16/bfloat16 -> float32; float32/64 unchanged
        mean_square = h.square().mean(dim=-1, keepdim=True)
        normed = h * torch.rsqrt(mean_square + self.eps)
        return normed.to(x.dtype) * self.weight
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
        # BEGIN SOLUTION: check 0 <= p <= 1 (ValueError otherwise) and store p.
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """Any shape -> the same shape."""
        # BEGIN SOLUTION: identity unless training with p > 0; keep each element with probability 1 - p, rescale survivors.
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
        # BEGIN SOLUTION: store norm_first; create attn, norm1, norm2, ff, dropout1, dropout2 (ValueError for an unknown norm).
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
        # BEGIN SOLUTION: one formula per setting of self.norm_first (see the class docstring).
        if self.norm_first:
            return x + dropout(sublayer(norm(x)))
        return norm(x + dropout(sublayer(x)))
        # END SOLUTION

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``(B, T, D)``, ``mask`` bool broadcastable to ``(B, H, T, T)`` (True = may attend) -> ``(B, T, D)``."""
        # BEGIN SOLUTION: self-attention in a residual branch (keep its output, drop the weights), then the feed-forward.
        x = self.residual(x, lambda h: self.attn(h, mask=mask)[0], self.norm1, self.dropout1)
        return self.residual(x, self.ff, self.norm2, self.dropout2)
        # END SOLUTION
