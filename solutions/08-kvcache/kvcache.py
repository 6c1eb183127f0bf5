"""Week 08: inference with a KV cache.

Shapes use these letters:

* ``B`` batch, ``T`` positions so far (cached + new), ``Tc`` cached positions, ``Tn`` new positions
* ``T0`` prompt length, ``N`` new tokens (``max_new_tokens``)
* ``D`` model width, ``F`` feed-forward width, ``V`` vocabulary size, ``L`` layers
* ``H`` query heads, ``Hkv`` key/value heads (``n_kv_heads``; ``H`` for MHA, 1 for MQA), ``Dh`` head size

Token ids are int64; ``attention_mask`` is ``(B, T)``, 1 for a real token, 0 for
(left) padding, and always covers **every** position so far, cached ones included.

Rules: as in weeks 04 and 06 (no ``F.gelu``, ``F.layer_norm``, ``F.dropout``, fused
attention or ``transformers``).

Earlier weeks are imported: week 02's attention pieces (``from multihead import ...``),
week 04's ``TransformerBlock`` and week 06's ``GPT``, ``position_ids``, ``causal_mask``,
``apply_temperature``, ``top_k_filter`` and the given ``from_hf_state_dict``. Work with
your own ``multihead.py``, ``block.py`` and ``gpt.py`` beside this file; when this week is
graded, they are the week 02, 04 and 06 reference solutions (``course.yml``: ``carry:
reference``), so a mistake there costs points in its own week only.
"""

from __future__ import annotations

import functools

import gpt  # week 06
import torch
from block import TransformerBlock  # week 04
from gpt import apply_temperature, causal_mask, position_ids, top_k_filter  # week 06
from gpt import from_hf_state_dict as from_hf_state_dict  # week 06, given: loads GPT-2's weights into GPT here
from multihead import MultiHeadAttention, attention, merge_heads, repeat_kv, split_heads  # week 02
from torch import Tensor

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
        """``Tc``: the number of cached positions (0 when empty), a Python ``int``."""
        # BEGIN SOLUTION: the time dim of layer 0's keys, or 0.
        first = self.keys[0]
        return 0 if first is None else first.shape[2]
        # END SOLUTION

    def bytes(self) -> int:
        """Memory the cached tensors take: every layer's keys and values, ``numel * element_size``, a Python ``int``."""
        # BEGIN SOLUTION: sum numel() * element_size() over every stored tensor, keys and values, all layers.
        stored = [t for t in (*self.keys, *self.values) if t is not None]
        return sum(t.numel() * t.element_size() for t in stored)
        # END SOLUTION


def cache_shape(cache: KVCache) -> tuple[int, int, int, int, int, int]:
    """``(L, 2, B, Hkv, Tc, Dh)``: layers, keys and values, then the shape of one layer's keys.

    Six Python ``int``s. An empty cache (nothing appended yet) raises ``ValueError``.
    """
    # BEGIN SOLUTION: ValueError if layer 0 holds nothing yet; else L from the number of layer slots, the rest from layer 0's keys.
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
    attend to the new positions only, still with ``mask`` (the same as ``attn(x, mask=mask)[0]``). Then repeat the
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


class GPT(gpt.GPT):
    """Week 06's GPT-2 (a subclass of it) with grouped-query attention and a KV cache.

    Submodules and their names are week 06's (``token_embedding``, ``position_embedding``,
    ``drop``, ``blocks``, ``norm_f``; tied head): week 06's ``__init__`` builds them. With
    ``n_kv_heads`` (``Hkv``, dividing ``H``; None means ``H``) every block's ``attn`` is
    ``MultiHeadAttention(D, H, n_kv_heads)``, so ``k_proj`` and ``v_proj`` are
    ``Linear(D, Hkv * Dh)``: keep each block week 04's ``TransformerBlock`` and replace its ``attn``.

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
        super().__init__(vocab_size, max_len, d_model, n_heads, n_layers, d_ff, dropout, eps)  # week 06's model
        # BEGIN SOLUTION: give every block attn = MultiHeadAttention(d_model, n_heads, n_kv_heads) (week 02's, with GQA).
        for block in self.blocks:
            block.attn = MultiHeadAttention(d_model, n_heads, n_kv_heads)
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
    """Bytes the cache grows by per token of one sequence: ``2 * L * Hkv * Dh * bytes per value``, a Python ``int``.

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

    Raises:
        ValueError: the cache is empty (``cache.length == 0``): there is nothing to decode from; ``prefill`` first.
    """
    # BEGIN SOLUTION: ValueError if the cache is empty (prefill first); then the model on the single token with the full mask and the cache.
    if cache.length == 0:
        raise ValueError("decode_step needs a cache filled by prefill; this one is empty")
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
    does, so both return exactly week 06's tokens. Only ``top_k=None`` skips the filter (``top_k=0``
    raises ``ValueError``, as does ``temperature <= 0`` when sampling), and the global generator is
    never used or reseeded.

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
