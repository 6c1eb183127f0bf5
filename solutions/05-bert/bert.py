"""Week 05: encoder models. BERT's embeddings, a post-norm encoder, the tied MLM head, masking and the MLM loss.

Shapes use these letters:

* ``B`` batch, ``T`` positions (``T <= max_len``)
* ``D`` model width (``d_model``), ``F`` feed-forward width (``d_ff``), ``V`` vocabulary size
* ``H`` attention heads (``n_heads``), ``Dh`` head size (``D / H``), ``L`` layers (``n_layers``)

Token ids are int64. ``attention_mask`` is ``(B, T)``, 1 (or True) for a real
token and 0 (or False) for padding, as in Hugging Face; the masks your attention
takes are bool and mean **True = may attend** (weeks 01 to 04).

Rules: as in week 04, write GELU, LayerNorm and dropout yourself (``F.gelu``,
``nn.GELU``, ``F.layer_norm``, ``nn.LayerNorm``, ``F.dropout``, ``nn.Dropout``
and PyTorch's fused attention are forbidden), and write the MLM loss without
``F.cross_entropy`` / ``F.nll_loss`` (``torch.logsumexp``, ``torch.log_softmax``
and ``gather`` are fine). ``nn.Embedding`` and ``nn.Linear`` are fine. Only this
file is submitted: paste your week 02 and week 04 code into it rather than
importing it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import torch
from torch import Tensor, nn

ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "swiglu")
NORMS = ("layernorm", "rmsnorm")
IGNORE_INDEX = -100  # the label of a position the MLM loss ignores (PyTorch's and Hugging Face's convention)


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


# -- this week: BERT ----------------------------------------------------------------


def key_padding_mask(attention_mask: Tensor) -> Tensor:
    """Hugging Face's ``attention_mask`` -> a bool mask your attention takes.

    Args:
        attention_mask: ``(B, T)``, int or bool; nonzero (1 / True) marks a real token, 0 / False padding.

    Returns:
        bool ``(B, 1, 1, T)``: ``mask[b, 0, 0, j]`` is True when key ``j`` of sequence ``b`` is a real
        token, so every query (every head, every position) may attend to it.
    """
    # BEGIN SOLUTION: True where attention_mask is nonzero, reshaped to (B, 1, 1, T) so it broadcasts over heads and queries.
    return (attention_mask != 0)[:, None, None, :]
    # END SOLUTION


class BertEmbeddings(nn.Module):
    """BERT's input: the sum of token, position and segment embeddings, then LayerNorm and dropout.

    ``x[b, t] = word_embeddings[input_ids[b, t]] + position_embeddings[t] + token_type_embeddings[token_type_ids[b, t]]``,
    positions counted from 0; then ``dropout(norm(x))``.

    =========================  ===========================================
    ``word_embeddings``        ``nn.Embedding(V, D)``
    ``position_embeddings``    ``nn.Embedding(max_len, D)`` (learned)
    ``token_type_embeddings``  ``nn.Embedding(type_vocab_size, D)`` (segments A and B)
    ``norm``                   ``LayerNorm(D, eps=eps)``
    ``dropout``                ``Dropout(dropout)``
    =========================  ===========================================

    Args:
        vocab_size: ``V``.
        d_model: ``D``.
        max_len: the number of learned positions (Hugging Face's ``max_position_embeddings``).
        type_vocab_size: the number of segments (2 in BERT).
        eps: the LayerNorm's epsilon (BERT: 1e-12).
        dropout: the dropout probability (BERT: 0.1).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        max_len: int = 512,
        type_vocab_size: int = 2,
        eps: float = 1e-12,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: create word_embeddings, position_embeddings, token_type_embeddings (nn.Embedding), norm and dropout.
        self.word_embeddings = nn.Embedding(vocab_size, d_model)
        self.position_embeddings = nn.Embedding(max_len, d_model)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, d_model)
        self.norm = LayerNorm(d_model, eps=eps)
        self.dropout = Dropout(dropout)
        # END SOLUTION

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """``input_ids`` ``(B, T)`` int64, ``token_type_ids`` ``(B, T)`` int64 or None (all segment 0) -> ``(B, T, D)``."""
        # BEGIN SOLUTION: positions 0..T-1; token_type_ids default to zeros; sum the three embeddings, then norm, then dropout.
        positions = torch.arange(input_ids.size(1), device=input_ids.device)  # (T,)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        summed = (
            self.word_embeddings(input_ids)  # (B, T, D)
            + self.position_embeddings(positions)  # (T, D), broadcast over B
            + self.token_type_embeddings(token_type_ids)  # (B, T, D)
        )
        embedded: Tensor = self.dropout(self.norm(summed))
        return embedded
        # END SOLUTION


class MLMHead(nn.Module):
    """The masked-language-modelling head: a transform, then scores against the (tied) embedding matrix.

    ``logits = norm(gelu(transform(h))) @ decoder_weight.T + bias``, with the exact GELU.

    ==============  ==========================================
    ``transform``   ``nn.Linear(D, D)``
    ``norm``        ``LayerNorm(D, eps=eps)``
    ``bias``        ``nn.Parameter`` ``(V,)``, starting at zeros
    ==============  ==========================================

    The head owns **no** ``(V, D)`` output matrix: ``forward`` receives it, and
    ``BertForMaskedLM`` passes its ``embeddings.word_embeddings.weight`` (weight tying).
    """

    def __init__(self, d_model: int, vocab_size: int, eps: float = 1e-12) -> None:
        super().__init__()
        # BEGIN SOLUTION: create transform (Linear(D, D)), norm (LayerNorm) and bias (zeros of shape (V,)); no output matrix.
        self.transform = nn.Linear(d_model, d_model)
        self.norm = LayerNorm(d_model, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        # END SOLUTION

    def forward(self, hidden: Tensor, decoder_weight: Tensor) -> Tensor:
        """``hidden`` ``(B, T, D)``, ``decoder_weight`` ``(V, D)`` -> logits ``(B, T, V)``."""
        # BEGIN SOLUTION: transform, exact gelu, norm, then a matmul with decoder_weight transposed, plus bias.
        transformed: Tensor = self.norm(gelu(self.transform(hidden)))  # (B, T, D)
        return transformed @ decoder_weight.T + self.bias  # (B, T, V)
        # END SOLUTION


class BertForMaskedLM(nn.Module):
    """BERT (Devlin et al., 2019) with its masked-language-modelling head.

    ``embeddings`` -> ``L`` post-norm ``TransformerBlock``s (exact GELU) -> ``mlm_head``, whose
    output matrix is ``embeddings.word_embeddings.weight`` itself (tied: one parameter, not a copy).

    ==============  ====================================================================================
    ``embeddings``  ``BertEmbeddings(V, D, max_len, type_vocab_size, eps, dropout)``
    ``layers``      ``nn.ModuleList`` of ``L`` ``TransformerBlock(D, H, F, dropout=dropout,
                    norm_first=False, activation="gelu", eps=eps)``
    ``mlm_head``    ``MLMHead(D, V, eps)``
    ==============  ====================================================================================

    Args:
        vocab_size: ``V``.
        d_model: ``D`` (BERT-base: 768).
        n_layers: ``L`` (12).
        n_heads: ``H`` (12).
        d_ff: ``F`` (3072).
        max_len: learned positions (512).
        type_vocab_size: segments (2).
        dropout: every dropout's probability (0.1).
        eps: every LayerNorm's epsilon (1e-12).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 768,
        n_layers: int = 12,
        n_heads: int = 12,
        d_ff: int = 3072,
        max_len: int = 512,
        type_vocab_size: int = 2,
        dropout: float = 0.1,
        eps: float = 1e-12,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION: create embeddings, layers (post-norm, "gelu", eps) and mlm_head as in the table above.
        self.embeddings = BertEmbeddings(vocab_size, d_model, max_len, type_vocab_size, eps=eps, dropout=dropout)
        self.layers = nn.ModuleList(
            TransformerBlock(d_model, n_heads, d_ff, dropout=dropout, norm_first=False, activation="gelu", eps=eps)
            for _ in range(n_layers)
        )
        self.mlm_head = MLMHead(d_model, vocab_size, eps=eps)
        # END SOLUTION

    def forward(
        self, input_ids: Tensor, token_type_ids: Tensor | None = None, attention_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Encode a batch and score every position against the vocabulary.

        Args:
            input_ids: ``(B, T)`` int64.
            token_type_ids: ``(B, T)`` int64 segment ids, or None (all 0).
            attention_mask: ``(B, T)``, 1 / True for a real token, 0 / False for padding; or None (no padding).

        Returns:
            ``(hidden_states, logits)``: the last layer's output ``(B, T, D)`` and the MLM head's ``(B, T, V)``.
        """
        # BEGIN SOLUTION: embed, run every layer with the key padding mask (None without attention_mask), then the head with the tied weight.
        mask = None if attention_mask is None else key_padding_mask(attention_mask)  # (B, 1, 1, T)
        hidden = self.embeddings(input_ids, token_type_ids)  # (B, T, D)
        for layer in self.layers:
            hidden = layer(hidden, mask=mask)
        logits = self.mlm_head(hidden, self.embeddings.word_embeddings.weight)  # (B, T, V)
        return hidden, logits
        # END SOLUTION


def mask_tokens(
    input_ids: Tensor,
    vocab_size: int,
    mask_token_id: int,
    special_tokens_mask: Tensor | None,
    seed: int,
    mlm_probability: float = 0.15,
) -> tuple[Tensor, Tensor]:
    """BERT's masking procedure, deterministic given ``seed``: the model's inputs and the MLM labels.

    Each position that is not special is **selected** with probability ``mlm_probability``;
    a selected position's input becomes ``[MASK]`` with probability 0.8, a uniformly random
    token id in ``[0, V)`` with probability 0.1, and stays unchanged with probability 0.1.
    Its label is the original id; every other label is ``-100`` (``IGNORE_INDEX``).

    The random numbers, exactly in this order (so that every correct solution returns
    the same tensors for the same seed):

    1. ``generator = torch.Generator().manual_seed(seed)``
    2. ``select = torch.rand(input_ids.shape, generator=generator)`` (float32): a position
       is selected when ``select < mlm_probability`` and it is not special.
    3. ``split = torch.rand(input_ids.shape, generator=generator)`` (float32): a selected
       position becomes ``[MASK]`` when ``split < 0.8``, a random token when
       ``0.8 <= split < 0.9``, and is left unchanged when ``split >= 0.9``.
    4. ``random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)``:
       the random token for each position (used only where step 3 says so).

    Draw every tensor at the full shape ``(B, T)``, even where it is not used.

    Args:
        input_ids: ``(B, T)`` int64; not modified.
        vocab_size: ``V``.
        mask_token_id: the id of ``[MASK]``.
        special_tokens_mask: bool ``(B, T)``, True where the token must never be selected
            (``[CLS]``, ``[SEP]`` and ``[PAD]``), or None (no such token).
        seed: an int.
        mlm_probability: the selection probability (BERT: 0.15).

    Returns:
        ``(inputs, labels)``, both ``(B, T)`` int64.
    """
    # BEGIN SOLUTION: follow the four numbered steps; never select special tokens; labels: the original id where selected, else -100.
    draws = torch.Generator()
    draws.manual_seed(seed)
    shape = input_ids.shape
    selected = torch.rand(shape, generator=draws) < mlm_probability  # (B, T)
    if special_tokens_mask is not None:
        selected &= ~special_tokens_mask
    split = torch.rand(shape, generator=draws)  # (B, T)
    random_ids = torch.randint(vocab_size, shape, generator=draws)  # (B, T)
    to_mask = selected & (split < 0.8)
    to_random = selected & (split >= 0.8) & (split < 0.9)
    inputs = input_ids.masked_fill(to_mask, mask_token_id)
    inputs = torch.where(to_random, random_ids, inputs)
    labels = input_ids.masked_fill(~selected, IGNORE_INDEX)
    return inputs, labels
    # END SOLUTION


def mlm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """The MLM loss: mean cross-entropy over the positions whose label is not ``-100``.

    ``loss = -(1 / N) * sum over labelled (b, t) of log softmax(logits[b, t])[labels[b, t]]``,
    ``N`` the number of labelled positions. With no labelled position it returns 0
    (not NaN), still connected to ``logits`` for autograd.

    Args:
        logits: ``(B, T, V)`` float.
        labels: ``(B, T)`` int64, a class id in ``[0, V)`` or ``-100`` (ignored).

    Returns:
        a scalar (shape ``()``) of the logits' dtype.
    """
    # BEGIN SOLUTION: a stable log-softmax (logsumexp), gather each labelled position's log-probability, average over labelled positions only.
    labelled = labels != IGNORE_INDEX  # (B, T)
    log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)  # (B, T, V)
    safe_labels = torch.where(labelled, labels, torch.zeros_like(labels))  # -100 is not an index
    picked = log_probs.gather(-1, safe_labels.unsqueeze(-1)).squeeze(-1)  # (B, T)
    total = -torch.where(labelled, picked, torch.zeros_like(picked)).sum()
    return total / labelled.sum().clamp(min=1)
    # END SOLUTION


# -- loading Hugging Face weights (given) ------------------------------------------------

# Hugging Face ``BertForMaskedLM.state_dict()`` names -> this file's names; ``{i}`` is a layer number.
HF_NAMES = {
    "bert.embeddings.word_embeddings.weight": "embeddings.word_embeddings.weight",
    "bert.embeddings.position_embeddings.weight": "embeddings.position_embeddings.weight",
    "bert.embeddings.token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
    "bert.embeddings.LayerNorm.{p}": "embeddings.norm.{p}",
    "bert.encoder.layer.{i}.attention.self.query.{p}": "layers.{i}.attn.q_proj.{p}",
    "bert.encoder.layer.{i}.attention.self.key.{p}": "layers.{i}.attn.k_proj.{p}",
    "bert.encoder.layer.{i}.attention.self.value.{p}": "layers.{i}.attn.v_proj.{p}",
    "bert.encoder.layer.{i}.attention.output.dense.{p}": "layers.{i}.attn.out_proj.{p}",
    "bert.encoder.layer.{i}.attention.output.LayerNorm.{p}": "layers.{i}.norm1.{p}",
    "bert.encoder.layer.{i}.intermediate.dense.{p}": "layers.{i}.ff.fc1.{p}",
    "bert.encoder.layer.{i}.output.dense.{p}": "layers.{i}.ff.fc2.{p}",
    "bert.encoder.layer.{i}.output.LayerNorm.{p}": "layers.{i}.norm2.{p}",
    "cls.predictions.transform.dense.{p}": "mlm_head.transform.{p}",
    "cls.predictions.transform.LayerNorm.{p}": "mlm_head.norm.{p}",
    "cls.predictions.bias": "mlm_head.bias",
}
# Entries with no counterpart here: the tied output matrix (it is bert.embeddings.word_embeddings.weight),
# its bias (it is cls.predictions.bias), buffers of older checkpoints, and what other BERT heads add
# (the pooler and next-sentence prediction of BertForPreTraining).
HF_SKIPPED = (
    "cls.predictions.decoder.weight",
    "cls.predictions.decoder.bias",
    "bert.embeddings.position_ids",
    "bert.embeddings.token_type_ids",
    "bert.pooler.",
    "cls.seq_relationship.",
)


def _name_pattern(template: str) -> re.Pattern[str]:
    escaped = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{p\}", r"(?P<p>weight|bias)")
    return re.compile(escaped + "$")


_HF_PATTERNS = [(_name_pattern(theirs), ours) for theirs, ours in HF_NAMES.items()]


def from_hf_state_dict(hf: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a Hugging Face ``BertForMaskedLM`` state dict for ``BertForMaskedLM`` here.

    Tied and unused entries (``HF_SKIPPED``) are dropped; any other unknown name raises ``KeyError``.
    Load the result with ``model.load_state_dict(from_hf_state_dict(hf_model.state_dict()))``.
    """
    ours: dict[str, Tensor] = {}
    for name, value in hf.items():
        if any(name == skip or (skip.endswith(".") and name.startswith(skip)) for skip in HF_SKIPPED):
            continue
        for pattern, template in _HF_PATTERNS:
            match = pattern.match(name)
            if match:
                ours[template.format(**match.groupdict())] = value
                break
        else:
            raise KeyError(f"no counterpart for the Hugging Face parameter {name!r}")
    return ours
