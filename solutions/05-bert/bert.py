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
and ``gather`` are fine). ``nn.Embedding`` and ``nn.Linear`` are fine.

The building blocks come from week 04 (``from block import Dropout, LayerNorm,
TransformerBlock, gelu``; its ``TransformerBlock`` uses week 02's attention).
Work with your own ``block.py`` and ``multihead.py`` beside this file; when this
week is graded, they are the reference solutions of weeks 04 and 02
(``course.yml``: ``carry: reference``), so a mistake there costs points in its
own week only.
"""

from __future__ import annotations

import re

import torch
from block import Dropout, LayerNorm, TransformerBlock, gelu  # week 04
from torch import Tensor, nn

IGNORE_INDEX = -100  # the label of a position the MLM loss ignores (PyTorch's and Hugging Face's convention)


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
