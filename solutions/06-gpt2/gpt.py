"""Week 06: a decoder-only language model (GPT-2) and text generation.

Shapes use these letters:

* ``B`` batch, ``T`` positions (``T <= max_len``), ``T0`` prompt length, ``N`` new tokens (``max_new_tokens``)
* ``D`` model width (``d_model``), ``F`` feed-forward width (``d_ff``), ``V`` vocabulary size
* ``H`` attention heads (``n_heads``), ``Dh`` head size (``D / H``), ``L`` layers (``n_layers``)
* ``K`` beams (``num_beams``)

Token ids are int64. ``attention_mask`` is ``(B, T)``, 1 (or True) for a real
token and 0 (or False) for padding, as in Hugging Face; padding is on the
**left** (a batch of prompts of different lengths ends at the same column, so
every row's next token is predicted at position ``T - 1``). The masks your
attention takes are bool and mean **True = may attend** (weeks 01 to 04).

Rules: as in week 04, write GELU, LayerNorm and dropout yourself (``F.gelu``,
``nn.GELU``, ``F.layer_norm``, ``nn.LayerNorm``, ``F.dropout``, ``nn.Dropout``
and PyTorch's fused attention are forbidden). ``nn.Embedding``, ``nn.Linear``,
``torch.softmax``, ``torch.log_softmax``, ``torch.topk``, ``torch.sort``,
``torch.cumsum``, ``torch.multinomial`` and ``argmax`` are fine; ``transformers``
is not (it is not installed where your code runs).

The block comes from week 04: ``from block import Dropout, LayerNorm, TransformerBlock``
(its attention is week 02's ``MultiHeadAttention``). Work with your own ``block.py`` and
``multihead.py`` beside this file; when this week is graded, they are the week 04 and
week 02 reference solutions (``course.yml``: ``carry: reference``), so a mistake there
costs points in its own week only.
"""

from __future__ import annotations

import torch
from block import Dropout, LayerNorm, TransformerBlock  # week 04
from torch import Tensor, nn

# -- this week: GPT-2 ---------------------------------------------------------------


def position_ids(attention_mask: Tensor) -> Tensor:
    """Each token's position among the real tokens of its row: ``(B, T)`` 0/1 -> ``(B, T)`` int64.

    ``cumsum(attention_mask) - 1`` along ``T``, clamped at 0: a left-padded row's first real
    token gets position 0, and its padding gets 0 too (nothing attends to padding, so its
    value does not matter). Without padding every row is ``0, 1, ..., T - 1``. Hugging
    Face's ``generate`` numbers left-padded GPT-2 batches the same way.

    Example: ``[[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]`` -> ``[[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]``.
    """
    # BEGIN SOLUTION: a cumulative sum of the mask along the last dim (int64), minus one, clamped at zero.
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
        bool, True = may attend: ``(1, 1, Tq, Tk)`` without ``attention_mask``, ``(B, 1, Tq, Tk)`` with it,
        on ``attention_mask``'s device (the default device without it).
    """
    # BEGIN SOLUTION: a (Tq, Tk) lower triangle (on attention_mask's device when given) shifted right by Tk - Tq (tril's diagonal), AND each row's real keys.
    device = None if attention_mask is None else attention_mask.device
    allowed = torch.ones(query_length, key_length, dtype=torch.bool, device=device)
    allowed = allowed.tril(diagonal=key_length - query_length)
    allowed = allowed[None, None]  # (1, 1, Tq, Tk)
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool()[:, None, None, :]  # (B, 1, Tq, Tk)
    return allowed
    # END SOLUTION


class GPT(nn.Module):
    """GPT-2 (Radford et al., 2019): a stack of pre-norm blocks with causal self-attention.

    ::

        x      = drop(token_embedding(input_ids) + position_embedding(position_ids))   (B, T, D)
        x      = run_blocks(x, causal_mask(...))          block(x, mask=...) for each   (B, T, D)
        logits = norm_f(x) @ token_embedding.weight.T     the tied LM head              (B, T, V)

    Submodules (names fixed: the grader loads weights by name):

    ======================  =================================================================
    ``token_embedding``     ``nn.Embedding(V, D)``; its weight is also the LM head (tied)
    ``position_embedding``  ``nn.Embedding(max_len, D)``, learned absolute positions
    ``drop``                ``Dropout(dropout)`` (week 04) on the summed embeddings
    ``blocks``              ``nn.ModuleList`` of ``L`` week 04 ``TransformerBlock(D, H, F, dropout,
                            norm_first=True, activation="gelu_tanh", eps=eps)``
    ``norm_f``              ``LayerNorm(D, eps=eps)`` (week 04) after the last block
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
        # BEGIN SOLUTION: create token_embedding, position_embedding, drop, blocks and norm_f as in the table above.
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

    def run_blocks(self, x: Tensor, mask: Tensor) -> Tensor:
        """Run x (B, T, D) through self.blocks in order, each as block(x, mask=mask); week 10 overrides this to checkpoint."""
        for block in self.blocks:
            x = block(x, mask=mask)
        return x

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Next-token logits at every position.

        Args:
            input_ids: ``(B, T)`` int64, ``T <= max_len``.
            attention_mask: ``(B, T)``, 1 = real token, 0 = (left) padding; None means no padding.

        Returns:
            ``(B, T, V)``: ``logits[b, t]`` scores the token that follows ``input_ids[b, : t + 1]``.
        """
        # BEGIN SOLUTION: positions from the mask (all ones if None), embeddings + dropout, the blocks through self.run_blocks with the causal mask, norm_f, tied head.
        length = input_ids.shape[1]
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        positions = position_ids(attention_mask)  # (B, T)
        x = self.drop(self.token_embedding(input_ids) + self.position_embedding(positions))  # (B, T, D)
        mask = causal_mask(length, length, attention_mask)  # (B, 1, T, T)
        x = self.run_blocks(x, mask)
        logits: Tensor = self.norm_f(x) @ self.token_embedding.weight.T  # (B, T, V): the tied head
        return logits
        # END SOLUTION


# -- this week: generation ------------------------------------------------------------
#
# Each function below takes the model and calls it as ``model(input_ids, attention_mask=mask)``
# (beam search: ``model(input_ids)``), reading the logits at the last position, ``[:, -1, :]``.
# There is no KV cache yet (week 08): every step runs the whole sequence again.


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """``logits / temperature``: ``(..., V)`` -> ``(..., V)``; ``temperature <= 0`` raises ``ValueError``.

    ``softmax(logits / temperature)`` is sharper than ``softmax(logits)`` for ``temperature < 1``
    (approaching greedy as it goes to 0) and flatter for ``temperature > 1``.
    """
    # BEGIN SOLUTION: ValueError unless temperature > 0; then divide the logits (do not multiply, do not touch probabilities).
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return logits / temperature
    # END SOLUTION


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits of each row and set the others to ``-inf``: ``(..., V)`` -> ``(..., V)``.

    A logit equal to the ``k``-th largest is kept too, so ties can keep more than ``k``
    (as Hugging Face's ``TopKLogitsWarper``). ``k >= V`` keeps everything; ``k < 1`` raises
    ``ValueError``. Kept logits are returned unchanged.

    Like ``apply_temperature`` and ``top_p_filter``, it returns a new tensor and leaves ``logits``
    as it was (no ``masked_fill_`` or item assignment on the input).
    """
    # BEGIN SOLUTION: find each row's k-th largest value (torch.topk, k capped at V), then -inf wherever a logit is smaller.
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    kth_largest = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))
    # END SOLUTION


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filtering (Holtzman et al., 2020): keep the smallest set of likeliest tokens whose probability reaches ``p``.

    Sort each row's probabilities ``softmax(logits)`` from largest to smallest. A token is
    kept when the total probability of the tokens ranked **before** it is below ``p``: the
    token that crosses ``p`` is kept, and so is the likeliest token, whatever ``p`` (``p = 0``
    keeps exactly that one). The others become ``-inf``; kept logits are returned unchanged.
    ``p`` must be in ``[0, 1]`` (``ValueError`` otherwise); ``p = 1`` keeps everything.
    ``(..., V)`` -> ``(..., V)``.

    Example: probabilities ``[0.1, 0.5, 0.15, 0.25]`` and ``p = 0.7``: sorted ``0.5, 0.25, 0.15, 0.1``,
    mass before each ``0, 0.5, 0.75, 0.9``: keep tokens 1 and 3.
    """
    # BEGIN SOLUTION: sort descending, softmax, mass before each token = cumsum - prob; drop where it is >= p (never the first); scatter back.
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if p == 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    sorted_probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # (..., V), in sorted order
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False  # the likeliest token always stays
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))
    # END SOLUTION


@torch.no_grad()
def greedy(model: nn.Module, input_ids: Tensor, max_new_tokens: int, attention_mask: Tensor | None = None) -> Tensor:
    """Greedy decoding: append the most likely next token, ``max_new_tokens`` times.

    Args:
        model: a ``GPT`` (anything called as ``model(input_ids, attention_mask=mask)`` -> ``(B, T, V)``).
        input_ids: ``(B, T0)`` prompts, left-padded when their lengths differ.
        max_new_tokens: ``N >= 0``; ``T0 + N <= max_len``.
        attention_mask: ``(B, T0)``, 1 = real token; None means no padding. Each new token is real:
            the mask grows by a column of ones every step.

    Returns:
        ``(B, T0 + N)`` int64: the prompts (padding included) followed by the new tokens.
    """
    # BEGIN SOLUTION: each step: logits at the last position (B, V), argmax over the vocabulary, append it; extend the mask with ones.
    ids = input_ids
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    for _ in range(max_new_tokens):
        last: Tensor = model(ids, attention_mask=mask)[:, -1, :]  # (B, V)
        chosen = last.argmax(dim=-1, keepdim=True)  # (B, 1)
        ids = torch.cat([ids, chosen], dim=1)
        mask = torch.cat([mask, torch.ones_like(chosen, dtype=mask.dtype)], dim=1)
    return ids
    # END SOLUTION


@torch.no_grad()
def sample(
    model: nn.Module,
    input_ids: Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    attention_mask: Tensor | None = None,
) -> Tensor:
    """Sampling, with temperature and optional top-k and top-p filtering, reproducible from ``seed``.

    Each step, from the logits at the last position ``(B, V)``:

    1. ``apply_temperature`` with ``temperature``;
    2. ``top_k_filter`` with ``top_k`` (skipped when None);
    3. ``top_p_filter`` with ``top_p`` (skipped when None);
    4. ``probs = torch.softmax(logits, dim=-1)`` and **exactly one** draw for the whole batch,
       ``torch.multinomial(probs, 1, generator=generator)`` ``(B, 1)``, from the generator created below.

    This order (Hugging Face's) and this draw make the result a function of ``seed``: the grader
    expects your tokens, not just their distribution. Do not reseed inside the loop and do not
    use the global generator (``torch.manual_seed``): the grader checks that it is left untouched.

    Only None skips a filter (test ``is not None``): ``top_p=0.0`` keeps just the likeliest token,
    and ``top_k=0`` raises ``ValueError`` (``top_k_filter``), as does ``temperature <= 0``
    (``apply_temperature``). ``max_new_tokens=0`` returns ``input_ids``.

    Args:
        model: as in ``greedy``.
        input_ids: ``(B, T0)``; attention_mask: ``(B, T0)`` or None; max_new_tokens: ``N``: as in ``greedy``.
        temperature: > 0.
        top_k: ``k`` for ``top_k_filter``, or None.
        top_p: ``p`` for ``top_p_filter``, or None.
        seed: seeds the generator.

    Returns:
        ``(B, T0 + N)`` int64.
    """
    generator = torch.Generator()  # the only source of randomness: one draw per step, below
    generator.manual_seed(seed)
    # BEGIN SOLUTION: each step: last logits, temperature, top_k (if given), top_p (if given), softmax, one torch.multinomial draw with the generator; append; extend the mask.
    ids = input_ids
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    for _ in range(max_new_tokens):
        scores = apply_temperature(model(ids, attention_mask=mask)[:, -1, :], temperature)  # (B, V)
        if top_k is not None:
            scores = top_k_filter(scores, top_k)
        if top_p is not None:
            scores = top_p_filter(scores, top_p)
        drawn = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)  # (B, 1)
        ids = torch.cat([ids, drawn], dim=1)
        mask = torch.cat([mask, torch.ones_like(drawn, dtype=mask.dtype)], dim=1)
    return ids
    # END SOLUTION


@torch.no_grad()
def beam_search(
    model: nn.Module, input_ids: Tensor, num_beams: int, max_new_tokens: int, length_penalty: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Beam search for one prompt, without an end-of-sequence token.

    Start from the prompt alone (one beam with score 0). Each step, every beam ``b`` with score
    ``s_b`` proposes every token ``v`` with score ``s_b + log_softmax(model(beams)[b, -1])[v]``;
    of these ``k * V`` candidates (``k`` beams now: 1, then ``K``) keep the ``K`` best, best
    first (``torch.topk`` over the flattened ``(k, V)`` scores, beam-major), each extending its
    own parent beam. After ``N`` steps every sequence has ``N`` new tokens, and its final score
    is its summed log-probability divided by ``N ** length_penalty`` (Hugging Face's length
    penalty; without an end token all lengths are equal, so it rescales the scores without
    reordering them).

    Args:
        model: called as ``model(input_ids)`` on ``(k, T)`` ids, no padding.
        input_ids: ``(1, T0)``: one prompt (a batch of several raises ``ValueError``).
        num_beams: ``K >= 1`` (``K <= V``).
        max_new_tokens: ``N >= 1``; ``T0 + N <= max_len``.
        length_penalty: the exponent of ``N`` in the final scores.

    Returns:
        ``(sequences, scores)``: ``(K, T0 + N)`` int64, best first, and ``(K,)`` in the logits' dtype
        (float32 for a float32 model, whatever precision the sums are kept in).
    """
    if input_ids.shape[0] != 1 or max_new_tokens < 1:
        raise ValueError("beam_search takes one prompt, shape (1, T0), and max_new_tokens >= 1")
    # BEGIN SOLUTION: keep (beams, summed log-probs); each step add log_softmax of the last logits to each beam's sum, topk over the flattened (k, V), gather parents, append tokens.
    beams, totals = input_ids, torch.zeros(1, dtype=torch.float64)  # (k, T), (k,)
    for _ in range(max_new_tokens):
        log_probs = torch.log_softmax(model(beams)[:, -1, :], dim=-1)  # (k, V)
        vocab = log_probs.size(-1)
        candidates = (totals.to(log_probs.dtype)[:, None] + log_probs).flatten()  # (k * V,), beam-major
        totals, flat = torch.topk(candidates, num_beams)  # (K,), best first
        parents, tokens = flat // vocab, flat % vocab
        beams = torch.cat([beams[parents], tokens[:, None]], dim=1)  # (K, T + 1)
    return beams, totals / max_new_tokens**length_penalty
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
