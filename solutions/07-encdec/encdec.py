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

Earlier weeks are imported, not copied: the masks from week 01 (``attention``),
``MultiHeadAttention`` and the head helpers from week 02 (``multihead``), the
sinusoidal encoding and T5's relative position bias from week 03
(``positional``), and the feed-forward network, norms, dropout and
``TransformerBlock`` from week 04 (``block``). Keep your earlier files beside
this one (or in their own ``assignments/`` folders) to run it with your own code;
when this week is graded, the earlier modules are the reference solutions
(course.yml ``carry: reference``), so an old mistake costs points only in its own week.

Rules: as in week 04, write LayerNorm, RMSNorm, dropout and attention yourself:
``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``, ``nn.Transformer``
and its layers, ``F.layer_norm``, ``F.rms_norm``, ``F.dropout`` (and their
``nn`` modules) are forbidden; the grader records which torch ops run.
``F.cross_entropy`` and ``torch.softmax`` are fine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from attention import causal_mask, padding_mask  # week 01
from block import Dropout, FeedForward, LayerNorm, RMSNorm, TransformerBlock  # week 04
from multihead import MultiHeadAttention, merge_heads, split_heads  # week 02
from positional import RelativePositionBias, sinusoidal_encoding  # week 03
from torch import Tensor, nn

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

        ``PE`` is the sinusoidal table of positions ``0 … T-1`` in the embeddings' dtype. The dropout is
        ``self.dropout`` on the sum: in training mode it zeroes each element with probability ``p`` and
        divides the others by ``1 - p``.
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
        over the target tokens that are not ``pad_id``: a scalar. ``tgt`` and
        ``tgt_lengths`` are the caller's: never modify them in place.
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
            max_len: the number of tokens to generate after ``BOS`` at most (0: the ``BOS`` column alone).

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


class T5Attention(MultiHeadAttention):
    """T5's attention: week 02's ``MultiHeadAttention`` without biases, plus a position bias and by default no scale.

    ============  ==============================================
    ``q_proj``    Linear(D, n_heads * Dh, bias=False)
    ``k_proj``    Linear(D, n_heads * Dh, bias=False)
    ``v_proj``    Linear(D, n_heads * Dh, bias=False)
    ``out_proj``  Linear(n_heads * Dh, D, bias=False)
    ============  ==============================================

    The projections are week 02's (``MultiHeadAttention(d_model, n_heads, d_head=d_head, bias=False)``
    creates exactly these four); only ``forward`` is new:
    ``scores = q kᵀ (· 1/sqrt(d_head) only if scale) + position_bias``, then the mask,
    the softmax over keys (fully masked rows give zero weights, not NaN), the weighted sum of values.
    ``d_head`` need not be ``d_model / n_heads``.
    """

    def __init__(self, d_model: int, n_heads: int, d_head: int, scale: bool = False) -> None:
        super().__init__(d_model, n_heads, d_head=d_head, bias=False)  # week 02: the projections, n_heads, d_head
        # BEGIN SOLUTION: store scale (week 02's __init__ above made the four bias-free projections).
        self.scale = scale
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
