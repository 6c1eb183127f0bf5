"""Week 10: training transformers: objectives, schedules, stability, memory, mixture of experts.

Shapes use these letters:

* ``B`` batch, ``T`` positions, ``N`` tokens of a flattened batch (``N = B * T``)
* ``D`` model width (``d_model``), ``F`` feed-forward width (``d_ff``), ``V`` vocabulary size
* ``H`` attention heads (``n_heads``), ``Dh`` head size (``D / H``), ``L`` layers (``n_layers``)
* ``E`` experts (``n_experts``), ``k`` experts per token (``top_k``), ``C`` expert capacity

Token ids are int64. ``attention_mask`` is ``(B, T)``, 1 (or True) for a real token and 0
(or False) for padding, as in week 06 and Hugging Face.

Earlier weeks are imported: week 06's ``GPT`` (subclassed here to add gradient
checkpointing), week 05's ``mlm_loss`` and week 04's ``FeedForward`` (the experts of the
mixture). When you run the lab or ``course check 10``, your own earlier files are used where
they exist (beside this one, or in their own week's folder); when graded, the earlier modules
are the reference solutions (course.yml ``carry: reference``), so an old mistake costs points
only in its own week.

Rules: as in weeks 04 and 06, no ``F.gelu``, ``nn.GELU``, ``F.layer_norm``, ``nn.LayerNorm``,
``F.dropout``, ``nn.Dropout`` or PyTorch's fused attention. This week also forbids
``torch.nn.utils.clip_grad_norm_`` (and the ``torch._foreach_*`` functions it runs) and
``torch.amp.GradScaler``: you write gradient clipping and loss scaling. ``F.cross_entropy``,
``torch.logsumexp``, ``torch.autocast``, ``torch.utils.checkpoint.checkpoint``, ``torch.topk``,
``torch.optim.AdamW`` and ``torch.save`` / ``torch.load`` are fine.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from typing import Any

import gpt  # week 06
import torch
import torch.nn.functional as F
from bert import IGNORE_INDEX, mlm_loss  # week 05
from block import FeedForward  # week 04
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


# -- this week: objectives ------------------------------------------------------------


def causal_lm_loss(logits: Tensor, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """The causal language-modelling loss: each position predicts the **next** token.

    ``logits[:, t]`` scores ``input_ids[:, t + 1]``, so the last position has no target and
    the first token is never a target: compare ``logits[:, :-1]`` ``(B, T - 1, V)`` with
    ``input_ids[:, 1:]`` ``(B, T - 1)``. A target counts only when it is a real token
    (``attention_mask`` 1 at the target's position); padded targets are ignored, as
    Hugging Face's ``labels = -100``. The loss is the mean over **all counted targets of the
    batch** (not the mean of per-sequence means), 0 when no target counts.

    ``input_ids[:, 1:]`` is a view of the caller's tensor: build the labels with ``masked_fill``
    (a new tensor), never by assigning into it.

    Args:
        logits: ``(B, T, V)`` float, the model's output for ``input_ids``.
        input_ids: ``(B, T)`` int64.
        attention_mask: ``(B, T)``, 1 (or True) = real token, 0 (or False) = padding; None means no padding.

    Returns:
        a scalar (shape ``()``) of the logits' dtype.
    """
    # BEGIN SOLUTION: labels = input_ids[:, 1:] with padded targets set to -100 (mask[:, 1:] == 0), then mlm_loss (week 05, imported) on logits[:, :-1].
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
    ``get_cosine_schedule_with_warmup`` times ``max_lr``. Returns a Python float (``math.cos``).
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
    (``0 ** -0.5`` would divide by zero). Returns a Python float.
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
        the global norm **before** clipping, a scalar tensor (0, and nothing changed, when no parameter has a
        gradient).
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
    ``model.named_parameters()`` order, ``lr``, ``weight_decay`` and ``betas`` as given, ``eps`` 1e-8.
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
    4. With a scaler: ``scaler.update(found_inf)``, after every step, skipped or not.

    The learning rate is whatever ``optimizer.param_groups`` hold (the caller sets it from a
    schedule before each step).

    Returns:
        ``{"loss": float, "grad_norm": float, "skipped": bool}``: the unscaled loss, the global
        gradient norm before clipping (Python floats, not tensors), and whether the step was skipped.
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


# -- this week: gradient checkpointing ---------------------------------------------------------


class GPT(gpt.GPT):
    """Week 06's GPT with gradient checkpointing: the same arguments, submodules and ``state_dict()``.

    Week 06's ``forward`` runs the blocks through ``self.run_blocks(x, mask)``; this class
    overrides that method, so nothing of week 06 is copied or changed.
    ``set_gradient_checkpointing(True)`` (given) turns checkpointing on.
    """

    gradient_checkpointing: bool = False  # off until set_gradient_checkpointing(True)

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each block's activations during the backward pass instead of storing them."""
        self.gradient_checkpointing = enabled

    def run_blocks(self, x: Tensor, mask: Tensor) -> Tensor:
        """Run ``x`` through ``self.blocks`` in order, each as ``block(x, mask=mask)``: ``(B, T, D)`` -> ``(B, T, D)``.

        With ``self.gradient_checkpointing`` True (and gradients enabled), each block runs under
        ``torch.utils.checkpoint.checkpoint(block, x, mask, use_reentrant=False)``: the forward
        pass keeps only each block's **input**, and the backward pass recomputes the block's
        internals (attention scores, the feed-forward's hidden layer ...) from it. Same values,
        same gradients, less memory, about one more forward pass of compute. Keep checkpoint's
        ``preserve_rng_state=True`` (the default): in train mode the recomputed blocks must draw
        the dropout masks of the forward pass.

        Args:
            x: ``(B, T, D)`` the embeddings.
            mask: bool, broadcastable to ``(B, H, T, T)``, True = may attend.
        """
        # BEGIN SOLUTION: a loop over self.blocks; when self.gradient_checkpointing and torch.is_grad_enabled(), call checkpoint(block, x, mask, use_reentrant=False) instead of block(x, mask=mask).
        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, mask, use_reentrant=False)  # keeps x only; recomputes the rest in backward
            else:
                x = block(x, mask=mask)  # keeps every activation for the backward pass
        return x
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
    ``FeedForward(D, F, activation, bias)`` (week 04's, imported).

    Args:
        d_model: ``D``.
        d_ff: ``F``, each expert's hidden width.
        n_experts: ``E``.
        top_k: ``k``, experts per token (``1 <= k <= E``).
        capacity_factor: ``C``'s factor, or None for no capacity limit.
        norm_topk_prob: whether to renormalise the ``k`` gates to sum to 1, whatever ``k`` (``k = 1``: gates of 1).
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
        # BEGIN SOLUTION: router (Linear without bias) and experts (a ModuleList of week 04's FeedForward).
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
