"""Week 00: recurrent networks from scratch, what limits them, and the attention that fixed seq2seq.

An RNN reads a sequence one step at a time, folding every token into one
hidden state. Part 1 builds the two classic cells (Elman and GRU), the loop
over time with padding, and the tools that measure why RNNs struggle: the
norm of ``∂h_T/∂h_t`` across distance (vanishing and exploding gradients), its
closed-form prediction from the recurrent weight, clipping by global norm, and
the number of steps that must run one after the other.

Part 2 is the encoder-decoder (seq2seq). Without attention the decoder sees the
source only through the encoder's final state, one ``(B, H)`` vector whatever
the source length. With attention every decoder step looks back at all encoder
states and takes a weighted average of them (the context), the weights from a
score of the decoder state against each encoder state:

* additive (Bahdanau et al. 2015): ``score(q, k) = vᵀ tanh(W_q q + W_k k)``
* multiplicative (Luong et al. 2015): dot ``qᵀ k`` and general ``qᵀ W k``

Shapes use these letters:

* ``B`` batch, ``T`` time steps (target length in part 2), ``S`` source length
* ``I`` input size, ``H`` hidden size, ``E`` embedding size, ``A`` attention size, ``V`` vocabulary

Everything is **batch-first**: a sequence is ``(B, T, I)``, a state ``(B, H)``.
Masks are boolean and mean **True = a real token** (False = padding), as in week 01.
Parameter names and shapes of the cells are PyTorch's (``nn.RNNCell``,
``nn.GRUCell``), so weights copy across directly. Token ids in part 2:
``PAD = 0`` (padding), ``BOS = 1`` (the decoder's first input); task tokens are ``2 … V-1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# -- the cells ----------------------------------------------------------------------------


def _init_uniform(module: nn.Module, hidden_size: int) -> None:
    """PyTorch's initialisation of recurrent weights: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = hidden_size**-0.5
    for parameter in module.parameters():
        nn.init.uniform_(parameter, -bound, bound)


class RNNCell(nn.Module):
    """The Elman cell: ``h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)``.

    Parameters (names and shapes fixed, as ``nn.RNNCell``): ``weight_ih`` ``(H, I)``,
    ``weight_hh`` ``(H, H)``, ``bias_ih`` ``(H,)``, ``bias_hh`` ``(H,)``, all drawn
    from ``U(-1/sqrt(H), 1/sqrt(H))``.

    ``nonlinearity`` is ``"tanh"`` (the default) or ``"linear"`` (no squashing:
    ``h' = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh``, the case whose gradients have a closed form).
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__()
        if nonlinearity not in ("tanh", "linear"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'linear', not {nonlinearity!r}")
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        # BEGIN SOLUTION: the four nn.Parameters with the names and shapes above, initialised by the helper _init_uniform.
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        _init_uniform(self, hidden_size)
        # END SOLUTION

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """One step: ``x`` ``(B, I)``, ``h`` ``(B, H)`` -> the new state ``(B, H)``."""
        # BEGIN SOLUTION: pre = x W_ih^T + b_ih + h W_hh^T + b_hh; tanh of it (or pre itself when linear).
        pre = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh  # (B, H)
        return torch.tanh(pre) if self.nonlinearity == "tanh" else pre
        # END SOLUTION


class GRUCell(nn.Module):
    """The gated recurrent unit (Cho et al. 2014) in PyTorch's form (``nn.GRUCell``).

    With ``W_ih`` split into three ``(H, I)`` blocks in the order **reset, update,
    new** (``r, z, n``), and ``W_hh``, ``b_ih``, ``b_hh`` split the same way::

        r  = sigmoid(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)
        z  = sigmoid(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)
        n  = tanh(x W_inᵀ + b_in + r * (h W_hnᵀ + b_hn))
        h' = (1 - z) * n + z * h

    Note where ``r`` goes: it multiplies ``h W_hnᵀ + b_hn``, bias included.

    Parameters (names and shapes fixed): ``weight_ih`` ``(3H, I)``, ``weight_hh``
    ``(3H, H)``, ``bias_ih`` ``(3H,)``, ``bias_hh`` ``(3H,)``, from ``U(-1/sqrt(H), 1/sqrt(H))``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        # BEGIN SOLUTION: the four nn.Parameters, the three gates stacked on dim 0 (3H rows), initialised by the helper _init_uniform.
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        _init_uniform(self, hidden_size)
        # END SOLUTION

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """One step: ``x`` ``(B, I)``, ``h`` ``(B, H)`` -> the new state ``(B, H)``."""
        # BEGIN SOLUTION: gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh, each chunked into (r, z, n); the gates as above.
        gi_r, gi_z, gi_n = (x @ self.weight_ih.T + self.bias_ih).chunk(3, dim=-1)  # each (B, H)
        gh_r, gh_z, gh_n = (h @ self.weight_hh.T + self.bias_hh).chunk(3, dim=-1)
        reset = torch.sigmoid(gi_r + gh_r)
        update = torch.sigmoid(gi_z + gh_z)
        new = torch.tanh(gi_n + reset * gh_n)
        return (1 - update) * new + update * h
        # END SOLUTION


# -- the loop over time -------------------------------------------------------------------


def run_rnn(cell: nn.Module, x: Tensor, h0: Tensor | None = None, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Run ``cell`` over a batch-first sequence, one step after another.

    Args:
        cell: a module called as ``cell(x_t, h)`` with ``x_t`` ``(B, I)`` and ``h`` ``(B, H)``,
            returning ``(B, H)``; it has an attribute ``hidden_size`` (``H``).
        x: ``(B, T, I)``.
        h0: the initial state ``(B, H)``; zeros (of ``x``'s dtype) when None.
        mask: optional bool ``(B, T)``, True for real tokens. At a padded step
            the state does **not** change (a finished sequence keeps its last state).

    Returns:
        ``(outputs, h_last)``: ``outputs`` ``(B, T, H)`` holds the state after each
        real step and **zeros** at padded steps (as ``nn.utils.rnn.pad_packed_sequence``
        gives); ``h_last`` ``(B, H)`` is the state after the last real step
        (``h0`` for a sequence with no real token).
    """
    # BEGIN SOLUTION: h = h0 or zeros; for each t: new = cell(x[:, t], h); keep the old h where mask[:, t] is False; collect outputs (zeros at padding); stack on dim 1.
    batch, length, _ = x.shape
    hidden_size = int(cell.hidden_size)  # type: ignore[arg-type]
    h = h0 if h0 is not None else x.new_zeros(batch, hidden_size)
    outputs = []
    for t in range(length):
        new = cell(x[:, t], h)  # (B, H)
        if mask is None:
            h = new
            outputs.append(h)
        else:
            real = mask[:, t, None]  # (B, 1)
            h = torch.where(real, new, h)
            outputs.append(torch.where(real, h, torch.zeros_like(h)))
    return torch.stack(outputs, dim=1), h
    # END SOLUTION


# -- vanishing and exploding gradients ----------------------------------------------------


def state_jacobian_norms(cell: nn.Module, x: Tensor, h0: Tensor) -> Tensor:
    """``‖∂h_T/∂h_t‖₂`` for ``t = 0 … T``, measured by autograd on one sequence.

    The states are ``h_0 = h0`` and ``h_t = cell(x[t-1], h_{t-1})`` for ``t = 1 … T``
    (so ``h_t`` has read ``t`` tokens). Entry ``t`` of the result is the spectral
    norm (largest singular value, ``torch.linalg.matrix_norm(J, ord=2)``) of the
    ``(H, H)`` Jacobian ``J = ∂h_T/∂h_t``: how much a change in the state ``T - t``
    steps back can still move the final state. Entry ``T`` is 1 (``J`` is the identity).

    Args:
        cell: as in :func:`run_rnn`.
        x: ``(T, I)``, one sequence without a batch dimension.
        h0: ``(H,)``.

    Returns:
        ``(T + 1,)`` in ``x``'s dtype. Use autograd (``torch.autograd.grad`` or
        ``torch.func.jacrev``), not the formula: the formula is what it is checked against;
        turn gradients on inside (``with torch.enable_grad():``), the caller may have them off.
    """
    # BEGIN SOLUTION: keep every state h_0 … h_T (h_0 requiring grad) in one graph; for each of the H components of h_T take its gradient with respect to all states (rows of every J_t); stack, then the spectral norm of each J_t.
    with torch.enable_grad():  # also when called under torch.no_grad()
        h = h0.detach().clone().requires_grad_(True)
        states = [h]
        for t in range(x.shape[0]):
            h = cell(x[t][None], h[None])[0]  # (H,)
            states.append(h)
        final = states[-1]
        rows = [
            torch.autograd.grad(final[i], states, retain_graph=True, allow_unused=True) for i in range(final.shape[0])
        ]
    norms = []
    for t, state in enumerate(states):
        jacobian = torch.stack([r[t] if r[t] is not None else torch.zeros_like(state) for r in rows])  # (H, H)
        norms.append(torch.linalg.matrix_norm(jacobian, ord=2))
    return torch.stack(norms).detach()
    # END SOLUTION


def linear_jacobian_norm_bound(weight_hh: Tensor, length: int) -> Tensor:
    """The closed-form prediction for a linear RNN: ``‖∂h_T/∂h_t‖₂ <= σ_max(W_hh)^(T-t)``.

    For ``h_t = W_hh h_{t-1} + (input terms)`` the Jacobian is ``W_hh^(T-t)``, whose
    norm is at most ``σ^(T-t)`` with ``σ`` the largest singular value of ``W_hh``
    (exactly that when ``W_hh`` is a scaled orthogonal matrix). ``σ < 1``: the
    gradient vanishes exponentially with distance; ``σ > 1``: it may explode.

    Args:
        weight_hh: ``(H, H)``.
        length: ``T``.

    Returns:
        ``(T + 1,)`` in ``weight_hh``'s dtype: entry ``t`` is ``σ^(T-t)`` (entry ``T`` is 1).
    """
    # BEGIN SOLUTION: sigma = largest singular value of weight_hh (torch.linalg.matrix_norm(ord=2)); sigma ** (T - t) for t = 0 … T.
    sigma = torch.linalg.matrix_norm(weight_hh, ord=2)
    exponents = torch.arange(length, -1, -1, dtype=weight_hh.dtype)  # T, T-1, …, 0
    bound: Tensor = sigma**exponents
    return bound
    # END SOLUTION


def clip_by_global_norm(grads: Sequence[Tensor], max_norm: float) -> tuple[list[Tensor], Tensor]:
    """Scale a list of gradients together so that their global L2 norm is at most ``max_norm``.

    The global norm is ``sqrt(Σ_i ‖g_i‖²)`` over every element of every tensor.
    When it exceeds ``max_norm`` every tensor is multiplied by ``max_norm / norm``
    (the direction is kept, only the length shrinks); otherwise they come back unchanged.
    The inputs are not modified.

    Returns:
        ``(clipped, norm)``: new tensors (same shapes and dtypes) and the global
        norm *before* clipping, a 0-dim tensor.
    """
    # BEGIN SOLUTION: norm = sqrt of the sum of every squared element; scale = min(1, max_norm / norm); return [g * scale], norm.
    squares = torch.stack([(g.double() ** 2).sum() for g in grads])
    norm = squares.sum().sqrt().to(grads[0].dtype)
    scale = torch.clamp(max_norm / norm, max=1.0)
    return [g * scale.to(g.dtype) for g in grads], norm
    # END SOLUTION


# -- sequential cost ----------------------------------------------------------------------


def sequential_steps(kind: str, length: int, n_layers: int = 1) -> int:
    """The dependency depth: operations that must run one after the other, for a whole sequence.

    ``"rnn"``: layer ``l`` at time ``t`` needs layer ``l`` at ``t - 1`` and layer
    ``l - 1`` at ``t``; computed as a wavefront, the longest chain of cell
    steps is ``length + n_layers - 1``. ``"attention"``: a self-attention layer
    handles all positions at once, one step per layer: ``n_layers``.
    A sequence of ``length`` 0 needs 0 steps. Any other ``kind`` raises ``ValueError``.
    """
    # BEGIN SOLUTION: 0 for length 0; rnn: length + n_layers - 1; attention: n_layers; ValueError otherwise.
    if kind not in ("rnn", "attention"):
        raise ValueError(f"kind must be 'rnn' or 'attention', not {kind!r}")
    if length == 0:
        return 0
    return length + n_layers - 1 if kind == "rnn" else n_layers
    # END SOLUTION


def max_path_length(kind: str, length: int) -> int:
    """The most steps information from one position takes to reach another (Vaswani et al. 2017, Table 1).

    One ``"rnn"`` layer passes token ``0``'s information to position ``length - 1``
    through ``length - 1`` cell steps; one ``"attention"`` layer connects every
    pair directly: 1 (0 when ``length`` is 1 or 0: there is no other position).
    Any other ``kind`` raises ``ValueError``.
    """
    # BEGIN SOLUTION: rnn: max(length - 1, 0); attention: 1 if length > 1 else 0; ValueError otherwise.
    if kind not in ("rnn", "attention"):
        raise ValueError(f"kind must be 'rnn' or 'attention', not {kind!r}")
    if kind == "rnn":
        return max(length - 1, 0)
    return 1 if length > 1 else 0
    # END SOLUTION


# == part 2: the sequence-to-sequence bottleneck, and the attention that removed it ==========

PAD, BOS = 0, 1
ATTENTION_KINDS = ("none", "additive", "dot", "general")

# -- attention over encoder states ---------------------------------------------------------


def attend(scores: Tensor, values: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Softmax over the source positions, then the weighted average of ``values``.

    Args:
        scores: ``(B, S)``, one score per source position.
        values: ``(B, S, H)``, the encoder states.
        mask: optional bool ``(B, S)``, True for real source tokens. Padded positions
            get weight exactly 0; a row with no real token gets all-zero weights and a
            zero context (never NaN, in the forward or the backward pass).

    Returns:
        ``(context, weights)``: ``(B, H)`` and ``(B, S)``; each row of ``weights``
        sums to 1 (or 0 when fully masked).
    """
    # BEGIN SOLUTION: fill masked scores with -inf; softmax over S (subtract the row max, taking 0 for fully masked rows; divide by a sum that is never 0); context = weights @ values.
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    row_max = scores.amax(dim=-1, keepdim=True)  # (B, 1)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max)).detach()
    exp = torch.exp(scores - row_max)  # 0 at masked positions
    total = exp.sum(dim=-1, keepdim=True)
    weights = exp / torch.where(total > 0, total, torch.ones_like(total))  # (B, S)
    context = (weights[:, None, :] @ values)[:, 0]  # (B, 1, S) x (B, S, H) -> (B, H)
    return context, weights
    # END SOLUTION


class AdditiveAttention(nn.Module):
    """Bahdanau's additive attention: ``score(q, k_s) = vᵀ tanh(W_q q + W_k k_s)``.

    Parameters (names and shapes fixed): ``query_proj`` ``nn.Linear(Hq, A, bias=False)``
    (``W_q``), ``key_proj`` ``nn.Linear(Hk, A, bias=False)`` (``W_k``), ``v``
    ``nn.Linear(A, 1, bias=False)`` (``vᵀ``).
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int) -> None:
        super().__init__()
        # BEGIN SOLUTION: the three bias-free nn.Linear layers query_proj, key_proj and v.
        self.query_proj = nn.Linear(query_size, attention_size, bias=False)
        self.key_proj = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)
        # END SOLUTION

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """``query`` ``(B, Hq)``, ``keys`` ``(B, S, Hk)`` -> scores ``(B, S)``."""
        # BEGIN SOLUTION: project the query (B, A) and the keys (B, S, A); add with broadcasting over S; tanh; v; drop the last dim.
        projected = torch.tanh(self.query_proj(query)[:, None, :] + self.key_proj(keys))  # (B, S, A)
        return torch.squeeze(self.v(projected), -1)  # (B, S, 1) -> (B, S)
        # END SOLUTION

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(context (B, Hk), weights (B, S))``: :func:`attend` on these scores, the keys as values."""
        return attend(self.score(query, keys), keys, mask)


class MultiplicativeAttention(nn.Module):
    """Luong's multiplicative attention: ``"dot"`` ``qᵀ k_s`` or ``"general"`` ``qᵀ W k_s``.

    ``"general"`` has one parameter ``weight`` ``(Hq, Hk)`` (``W``, drawn from
    ``U(-1/sqrt(Hk), 1/sqrt(Hk))``), so ``score = (q W) · k_s``. ``"dot"`` has no
    parameters and needs ``Hq == Hk`` (``ValueError`` otherwise, as for an unknown ``kind``).
    """

    def __init__(self, query_size: int, key_size: int, kind: str = "general") -> None:
        super().__init__()
        # BEGIN SOLUTION: check kind (and Hq == Hk for dot); for general create weight (Hq, Hk) from U(-1/sqrt(Hk), 1/sqrt(Hk)).
        if kind not in ("dot", "general"):
            raise ValueError(f"kind must be 'dot' or 'general', not {kind!r}")
        if kind == "dot" and query_size != key_size:
            raise ValueError(f"dot attention needs equal sizes, got query {query_size} and key {key_size}")
        self.kind = kind
        if kind == "general":
            bound = key_size**-0.5
            self.weight = nn.Parameter(torch.empty(query_size, key_size).uniform_(-bound, bound))
        # END SOLUTION

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """``query`` ``(B, Hq)``, ``keys`` ``(B, S, Hk)`` -> scores ``(B, S)``."""
        # BEGIN SOLUTION: q (or q @ weight for general, (B, Hk)); its dot product with every key.
        projected = query @ self.weight if self.kind == "general" else query  # (B, Hk)
        return (keys @ projected[:, :, None])[..., 0]  # (B, S, Hk) x (B, Hk, 1) -> (B, S)
        # END SOLUTION

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(context (B, Hk), weights (B, S))``: :func:`attend` on these scores, the keys as values."""
        return attend(self.score(query, keys), keys, mask)


# -- the encoder-decoder -------------------------------------------------------------------


class Seq2Seq(nn.Module):
    """A GRU encoder-decoder, with or without attention over the encoder states.

    Parameters (names fixed; ``E`` = ``embed_size``, ``H`` = ``hidden_size``, ``C`` = ``H``
    with attention and 0 without):

    * ``src_embed``, ``tgt_embed``: ``nn.Embedding(V, E)``
    * ``encoder``: ``GRUCell(E, H)``; ``decoder``: ``GRUCell(E + C, H)``
    * ``attention`` (not for ``"none"``): ``AdditiveAttention(H, H, H)``, or
      ``MultiplicativeAttention(H, H, "dot" | "general")``
    * ``out``: ``nn.Linear(H + C, V)``

    One decoder step, from the previous token ``y`` and state ``s`` (the first
    state is the encoder's last, ``h_last`` of :func:`run_rnn`; the first ``y`` is ``BOS``)::

        without attention:  s' = decoder(emb(y), s)              logits = out(s')
        with attention:     c, w = attention(s, encoder states, src_mask)   (query: the *previous* state)
                            s' = decoder([emb(y); c], s)         logits = out([s'; c])

    (``[a; b]`` is concatenation on the last dim, ``a`` first.)
    """

    def __init__(self, vocab_size: int, hidden_size: int, attention: str = "none", embed_size: int | None = None):
        super().__init__()
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, not {attention!r}")
        embed = embed_size if embed_size is not None else hidden_size
        self.kind = attention
        # BEGIN SOLUTION: the embeddings, the two GRUCells, the attention module (when not "none") and out, sized as above.
        context = 0 if attention == "none" else hidden_size
        self.src_embed = nn.Embedding(vocab_size, embed)
        self.tgt_embed = nn.Embedding(vocab_size, embed)
        self.encoder = GRUCell(embed, hidden_size)
        self.decoder = GRUCell(embed + context, hidden_size)
        self.attention: nn.Module | None = None
        if attention == "additive":
            self.attention = AdditiveAttention(hidden_size, hidden_size, hidden_size)
        elif attention in ("dot", "general"):
            self.attention = MultiplicativeAttention(hidden_size, hidden_size, attention)
        self.out = nn.Linear(hidden_size + context, vocab_size)
        # END SOLUTION

    def encode(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        """``src`` ``(B, S)`` long, ``src_mask`` ``(B, S)`` -> ``(states (B, S, H), h_last (B, H))`` via :func:`run_rnn`."""
        # BEGIN SOLUTION: embed the source and run the encoder cell over it with the mask.
        return run_rnn(self.encoder, self.src_embed(src), mask=src_mask)
        # END SOLUTION

    def decode_step(
        self, y: Tensor, state: Tensor, enc_states: Tensor, src_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One decoder step: ``y`` ``(B,)`` long, ``state`` ``(B, H)``.

        Returns ``(logits (B, V), new state (B, H), attention weights (B, S) or None without attention)``.
        """
        # BEGIN SOLUTION: as in the class docstring: attend with the previous state (if any attention), step the decoder, project.
        embedded = self.tgt_embed(y)  # (B, E)
        if self.attention is None:
            state = self.decoder(embedded, state)
            return self.out(state), state, None
        context, weights = self.attention(state, enc_states, src_mask)  # (B, H), (B, S)
        state = self.decoder(torch.cat([embedded, context], dim=-1), state)
        return self.out(torch.cat([state, context], dim=-1)), state, weights
        # END SOLUTION

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: ``tgt_in`` ``(B, T)`` long (``BOS`` then the target shifted right).

        Returns ``(logits (B, T, V), weights (B, T, S) or None without attention)``.
        """
        # BEGIN SOLUTION: encode; start from h_last; one decode_step per target position fed tgt_in[:, t]; stack on dim 1.
        enc_states, state = self.encode(src, src_mask)
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            step_logits, state, step_weights = self.decode_step(tgt_in[:, t], state, enc_states, src_mask)
            logits.append(step_logits)
            if step_weights is not None:
                weights.append(step_weights)
        return torch.stack(logits, dim=1), torch.stack(weights, dim=1) if weights else None
        # END SOLUTION

    @torch.no_grad()
    def greedy_decode(self, src: Tensor, src_mask: Tensor, steps: int) -> Tensor:
        """``steps`` tokens ``(B, steps)`` long, each the argmax of its step's logits fed back as the next input."""
        # BEGIN SOLUTION: encode; y = BOS; repeat steps times: decode_step, y = argmax of the logits; stack.
        enc_states, state = self.encode(src, src_mask)
        y = torch.full((src.shape[0],), BOS, dtype=torch.long)
        tokens = []
        for _ in range(steps):
            logits, state, _ = self.decode_step(y, state, enc_states, src_mask)
            y = logits.argmax(dim=-1)
            tokens.append(y)
        return torch.stack(tokens, dim=1)
        # END SOLUTION


def sequence_loss(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Mean cross-entropy over the real target positions: ``logits`` ``(B, T, V)``, ``targets`` and ``mask`` ``(B, T)``."""
    # BEGIN SOLUTION: per-position cross-entropy (F.cross_entropy on (B*T, V)), summed where mask is True, divided by the number of real positions.
    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(targets.shape)
    return (losses * mask).sum() / mask.sum()
    # END SOLUTION


# -- the synthetic task (provided) ------------------------------------------------------------


def make_batch(
    task: str, batch_size: int, min_len: int, max_len: int, vocab_size: int, generator: torch.Generator
) -> dict[str, Tensor]:
    """A batch of the copy or reverse task, lengths uniform in ``[min_len, max_len]``, right-padded.

    Returns ``src`` ``(B, S)``, ``src_mask`` ``(B, S)``, ``tgt_in`` ``(B, S)`` (``BOS``
    then the target shifted right), ``tgt`` ``(B, S)`` (the source copied or reversed
    within its length, ``PAD`` after it), with ``S = max_len``; the target mask is ``src_mask``.
    """
    if task not in ("copy", "reverse"):
        raise ValueError(f"task must be 'copy' or 'reverse', not {task!r}")
    lengths = torch.randint(min_len, max_len + 1, (batch_size,), generator=generator)
    positions = torch.arange(max_len)
    src_mask = positions[None, :] < lengths[:, None]  # (B, S)
    tokens = torch.randint(2, vocab_size, (batch_size, max_len), generator=generator)
    src = torch.where(src_mask, tokens, PAD)
    if task == "copy":
        tgt = src
    else:
        index = (lengths[:, None] - 1 - positions[None, :]).clamp(min=0)  # reversed within each length
        tgt = torch.where(src_mask, src.gather(1, index), PAD)
    tgt_in = torch.cat([torch.full((batch_size, 1), BOS), tgt[:, :-1]], dim=1)
    return {"src": src, "src_mask": src_mask, "tgt_in": tgt_in, "tgt": tgt}


def train_seq2seq(
    model: nn.Module,
    task: str = "reverse",
    steps: int = 300,
    batch_size: int = 32,
    min_len: int = 5,
    max_len: int = 10,
    lr: float = 1e-2,
    seed: int = 0,
    clip: float = 1.0,
) -> list[float]:
    """Train ``model`` (a :class:`Seq2Seq`) with Adam and teacher forcing; the loss of every step.

    Seeded: the same model, arguments and seed give the same losses. Gradients are
    clipped to global norm ``clip`` (``torch.nn.utils.clip_grad_norm_``).
    """
    generator = torch.Generator().manual_seed(seed)
    vocab_size = int(model.out.out_features)  # type: ignore[union-attr, arg-type]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    with torch.enable_grad():  # also when called under torch.no_grad()
        for _ in range(steps):
            batch = make_batch(task, batch_size, min_len, max_len, vocab_size, generator)
            logits, _ = model(batch["src"], batch["src_mask"], batch["tgt_in"])
            loss = sequence_loss(logits, batch["tgt"], batch["src_mask"])
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            losses.append(float(loss.detach()))
    return losses


def exact_match(predicted: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Per sequence: True when every real position of ``predicted`` equals ``target`` ``(B,)``."""
    return ((predicted == target) | ~mask).all(dim=1)
