"""Week 11: applications. Task heads on your own pretrained models, fine-tuning, multi-task training, what heads learn.

Shapes use these letters:

* ``B`` batch, ``T`` positions, ``Ts`` / ``Tt`` source / target positions (seq2seq)
* ``D`` model width, ``H`` heads, ``Dh`` head size, ``L`` layers, ``V`` vocabulary size
* ``C`` classes (``num_labels``), ``K`` tasks, ``P`` the period of a repeated sequence
* ``W`` a forecaster's context window, ``N`` its horizon (steps ahead)

Token ids are int64. ``attention_mask`` is ``(B, T)``, 1 (or True) for a real token and
0 (or False) for padding, as in Hugging Face. Labels use ``-100`` (``IGNORE_INDEX``) for a
position no loss may read, as in PyTorch and Hugging Face.

The models come from earlier weeks and are **wrapped, not copied**: week 05's
``BertForMaskedLM`` (its ``mlm_head`` is simply not used by a task head), week 06's ``GPT``,
week 07's ``T5Style`` (subclassed, adding an output layer), week 04's ``TransformerBlock``
for this week's small models, and week 10's ``causal_lm_loss``. When this week is graded
they are the reference solutions (``course.yml``: ``carry: reference``).

Rules: ``F.cross_entropy`` (whose ``ignore_index`` is ``-100`` by default), ``F.mse_loss``,
``torch.softmax``, ``torch.tanh``, ``torch.multinomial`` and forward hooks are fine. Calls
that draw random numbers use their own ``torch.Generator`` seeded as documented and leave
torch's global generator alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from bert import IGNORE_INDEX, BertForMaskedLM, from_hf_state_dict  # week 05
from block import Dropout, LayerNorm, TransformerBlock  # week 04
from encdec import T5Style  # week 07
from gpt import GPT  # week 06
from torch import Tensor, nn
from training import causal_lm_loss  # week 10

# -- part 1: task heads on an encoder -------------------------------------------------------


def cls_pool(hidden: Tensor) -> Tensor:
    """The ``[CLS]`` vector: ``(B, T, D)`` -> ``(B, D)``, the first position of each row (BERT puts ``[CLS]`` there)."""
    # BEGIN SOLUTION: position 0 of every row.
    return hidden[:, 0]
    # END SOLUTION


def mean_pool(hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """The mean of each row's **real** positions: ``(B, T, D)``, ``(B, T)`` -> ``(B, D)``.

    ``pooled[b] = sum_t mask[b, t] * hidden[b, t] / sum_t mask[b, t]``; padding never counts
    (neither in the sum nor in the count). ``attention_mask=None`` means every position is real.
    A row without any real position gives zeros (not NaN).
    """
    # BEGIN SOLUTION: weights = mask as hidden's dtype (B, T, 1); weighted sum over T divided by the count, clamped at 1.
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = (attention_mask != 0).to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    # END SOLUTION


class BertForSequenceClassification(nn.Module):
    """A sentence classifier on top of week 05's BERT, laid out like Hugging Face's model of that name.

    ``pooling="cls"`` (Hugging Face's): ``pooled = tanh(pooler(hidden[:, 0]))``.
    ``pooling="mean"``: ``pooled`` is ``mean_pool`` of the hidden states over the real tokens (``pooler`` is not used).
    Then ``logits = classifier(dropout(pooled))`` ``(B, C)``.

    ==============  ======================================================================
    ``bert``        ``BertForMaskedLM(**bert_config)`` (week 05; its ``mlm_head`` is unused)
    ``pooler``      ``nn.Linear(D, D)`` (Hugging Face's ``bert.pooler.dense``)
    ``dropout``     ``Dropout(bert_config's dropout)`` (week 04)
    ``classifier``  ``nn.Linear(D, C)``
    ==============  ======================================================================

    Args:
        num_labels: ``C >= 2``.
        pooling: ``"cls"`` or ``"mean"``; anything else raises ``ValueError``.
        **bert_config: ``BertForMaskedLM``'s arguments (``vocab_size``, ``d_model``, ``n_layers``, ...).
    """

    def __init__(self, num_labels: int, pooling: str = "cls", **bert_config: Any) -> None:
        super().__init__()
        # BEGIN SOLUTION: ValueError unless pooling is "cls" or "mean" (before building anything).
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        # END SOLUTION
        self.pooling = pooling
        self.bert = BertForMaskedLM(**bert_config)
        d_model = self.bert.embeddings.word_embeddings.weight.shape[1]
        self.pooler = nn.Linear(d_model, d_model)
        self.dropout = Dropout(bert_config.get("dropout", 0.1))
        self.classifier = nn.Linear(d_model, num_labels)

    def forward(
        self,
        input_ids: Tensor,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``(logits (B, C), loss)``: the mean cross-entropy over the batch for ``labels`` ``(B,)`` int64, else None."""
        # BEGIN SOLUTION: hidden states from self.bert (with the mask); pool as self.pooling says; dropout, classifier; F.cross_entropy.
        hidden, _ = self.bert(input_ids, token_type_ids, attention_mask)  # (B, T, D)
        if self.pooling == "cls":
            pooled = torch.tanh(self.pooler(cls_pool(hidden)))
        else:
            pooled = mean_pool(hidden, attention_mask)
        logits: Tensor = self.classifier(self.dropout(pooled))  # (B, C)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return logits, loss
        # END SOLUTION


class BertForTokenClassification(nn.Module):
    """A label for every token (named entities, parts of speech): ``logits = classifier(dropout(hidden))`` ``(B, T, C)``.

    Submodules: ``bert`` (``BertForMaskedLM(**bert_config)``), ``dropout``, ``classifier`` (``nn.Linear(D, C)``).
    The loss is the mean cross-entropy over the positions whose label is not ``-100`` (padding,
    ``[CLS]``, ``[SEP]``, the second piece of a split word), 0 when none is labelled.
    """

    def __init__(self, num_labels: int, **bert_config: Any) -> None:
        super().__init__()
        self.bert = BertForMaskedLM(**bert_config)
        d_model = self.bert.embeddings.word_embeddings.weight.shape[1]
        self.dropout = Dropout(bert_config.get("dropout", 0.1))
        self.classifier = nn.Linear(d_model, num_labels)

    def forward(
        self,
        input_ids: Tensor,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``(logits (B, T, C), loss)`` for ``labels`` ``(B, T)`` int64 (``-100`` ignored), else ``(logits, None)``."""
        # BEGIN SOLUTION: classifier on every position; cross-entropy over the labelled positions only (mean over them).
        hidden, _ = self.bert(input_ids, token_type_ids, attention_mask)
        logits: Tensor = self.classifier(self.dropout(hidden))  # (B, T, C)
        if labels is None:
            return logits, None
        labelled = labels != IGNORE_INDEX
        if not bool(labelled.any()):
            return logits, logits.sum() * 0.0
        return logits, F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        # END SOLUTION


class BertForQuestionAnswering(nn.Module):
    """Extractive QA: a start and an end score for every token; the answer is the span between them.

    ``qa_outputs`` is ``nn.Linear(D, 2)``: column 0 gives ``start_logits``, column 1 ``end_logits``,
    each ``(B, T)``. The loss for the true ``start_positions`` / ``end_positions`` ``(B,)`` is
    ``(cross_entropy(start_logits, starts) + cross_entropy(end_logits, ends)) / 2``.
    Submodules: ``bert`` (``BertForMaskedLM(**bert_config)``) and ``qa_outputs``.
    """

    def __init__(self, **bert_config: Any) -> None:
        super().__init__()
        self.bert = BertForMaskedLM(**bert_config)
        d_model = self.bert.embeddings.word_embeddings.weight.shape[1]
        self.qa_outputs = nn.Linear(d_model, 2)

    def forward(
        self,
        input_ids: Tensor,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        start_positions: Tensor | None = None,
        end_positions: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(start_logits (B, T), end_logits (B, T), loss or None)``; the loss needs both positions."""
        # BEGIN SOLUTION: qa_outputs on the hidden states, split the last dim into start (0) and end (1); the mean of the two cross-entropies.
        hidden, _ = self.bert(input_ids, token_type_ids, attention_mask)
        scores = self.qa_outputs(hidden)  # (B, T, 2)
        start_logits, end_logits = scores[..., 0], scores[..., 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (F.cross_entropy(start_logits, start_positions) + F.cross_entropy(end_logits, end_positions)) / 2
        return start_logits, end_logits, loss
        # END SOLUTION


def best_span(
    start_logits: Tensor, end_logits: Tensor, context_mask: Tensor, max_answer_length: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The best answer span of each row: ``argmax over (s, e) of start_logits[s] + end_logits[e]``.

    Allowed spans: ``s <= e``, at most ``max_answer_length`` tokens (``e - s + 1 <= max_answer_length``),
    and both ends in the context (``context_mask[b, s]`` and ``context_mask[b, e]`` True: never the
    question, ``[CLS]``, ``[SEP]`` or padding). Ties go to the smallest ``s``, then the smallest ``e``.

    Args:
        start_logits, end_logits: ``(B, T)`` float.
        context_mask: bool ``(B, T)``, True at the context's tokens; each row has at least one.
        max_answer_length: ``>= 1``.

    Returns:
        ``(starts, ends, scores)``: int64 ``(B,)``, int64 ``(B,)`` and the best scores ``(B,)`` (logits' dtype).
    """
    # BEGIN SOLUTION: scores (B, T, T) = start[:, :, None] + end[:, None, :]; -inf where not allowed (e < s, too long, outside the context); argmax over the flattened (s, e).
    length = start_logits.shape[1]
    s = torch.arange(length, device=start_logits.device)[:, None]
    e = torch.arange(length, device=start_logits.device)[None, :]
    allowed = (e >= s) & (e - s < max_answer_length)  # (T, T)
    allowed = allowed & context_mask[:, :, None] & context_mask[:, None, :]  # (B, T, T)
    scores = start_logits[:, :, None] + end_logits[:, None, :]
    scores = scores.masked_fill(~allowed, float("-inf"))
    best, flat = scores.flatten(1).max(dim=1)
    return flat // length, flat % length, best
    # END SOLUTION


# -- part 1: seq2seq fine-tuning on week 07's T5 --------------------------------------------


def shift_right(labels: Tensor, decoder_start_token_id: int, pad_token_id: int) -> Tensor:
    """The decoder's input for teacher forcing: ``labels`` shifted one step right, the start token in front.

    ``out[:, 0] = decoder_start_token_id`` and ``out[:, t] = labels[:, t - 1]``; ``-100`` (ignored
    labels) becomes ``pad_token_id``, a token the embedding can look up. ``(B, Tt)`` -> ``(B, Tt)``
    int64, a new tensor (``labels`` is the caller's). Hugging Face's T5 does the same (``_shift_right``).
    """
    # BEGIN SOLUTION: a new tensor: start token in column 0, labels[:, :-1] after it; then -100 -> pad_token_id.
    shifted = labels.new_full(labels.shape, pad_token_id)
    shifted[:, 0] = decoder_start_token_id
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)
    # END SOLUTION


class T5ForSeq2SeqLM(T5Style):
    """Week 07's ``T5Style`` with an output layer: ``transformers.T5ForConditionalGeneration`` with untied embeddings.

    ``lm_head`` is ``nn.Linear(D, V, bias=False)``; ``logits = lm_head(T5Style.forward(...))``
    (no rescaling: that is only for a head tied to ``shared``). Same arguments as ``T5Style``.
    """

    def __init__(self, vocab_size: int, d_model: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(vocab_size, d_model, *args, **kwargs)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)

    def seq2seq_loss(
        self,
        src: Tensor,
        src_lengths: Tensor,
        labels: Tensor,
        decoder_start_token_id: int = 0,
        pad_token_id: int = 0,
    ) -> tuple[Tensor, Tensor]:
        """One teacher-forced step of summarization-style fine-tuning.

        Args:
            src: ``(B, Ts)`` source ids, real tokens first; ``src_lengths`` ``(B,)`` counts them.
            labels: ``(B, Tt)`` the target ids (``EOS`` included), ``-100`` after each row's end.
            decoder_start_token_id, pad_token_id: T5 uses 0 for both.

        The decoder reads ``shift_right(labels, ...)``, whose first ``n_b`` positions are real
        (``n_b`` the number of labels of row ``b`` that are not ``-100``), so it never sees the
        token it must predict. The loss is the mean cross-entropy over the labels that are not ``-100``.

        Returns:
            ``(logits (B, Tt, V), loss)``.
        """
        # BEGIN SOLUTION: decoder input = shift_right(labels); target lengths = labels that are not -100; self(...) then lm_head; cross-entropy ignoring -100.
        decoder_input = shift_right(labels, decoder_start_token_id, pad_token_id)
        tgt_lengths = (labels != IGNORE_INDEX).sum(dim=1)
        logits: Tensor = self.lm_head(self(src, decoder_input, src_lengths, tgt_lengths))  # (B, Tt, V)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        return logits, loss
        # END SOLUTION


# -- part 2: a classifier on the pretrained decoder -------------------------------------------


def last_token_index(attention_mask: Tensor) -> Tensor:
    """The position of each row's last real token: ``(B, T)`` 0/1 -> ``(B,)`` int64.

    Works for right padding (``[x x x 0 0]`` -> 2) and left padding (``[0 0 x x x]`` -> 4).
    A causal model has read the whole row only there, so that is where a decoder classifier pools.
    """
    # BEGIN SOLUTION: the largest t with mask[b, t] != 0: argmax of arange(T) * (mask != 0).
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * (attention_mask != 0).long()).argmax(dim=1)
    # END SOLUTION


class GPTForSequenceClassification(nn.Module):
    """A classifier on week 06's ``GPT``: the final hidden state of each row's last real token, then ``score``.

    ==========  ===============================================================
    ``gpt``     ``GPT(vocab_size, max_len, d_model, n_heads, n_layers, ...)``
    ``score``   ``nn.Linear(D, C, bias=False)`` (Hugging Face's name)
    ==========  ===============================================================
    """

    def __init__(self, num_labels: int, vocab_size: int, max_len: int, d_model: int, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.gpt = GPT(vocab_size, max_len, d_model, *args, **kwargs)
        self.score = nn.Linear(d_model, num_labels, bias=False)

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """The GPT's last hidden states ``(B, T, D)`` (after ``norm_f``), caught with a forward hook (given)."""
        caught: list[Tensor] = []
        handle = self.gpt.norm_f.register_forward_hook(lambda module, args, output: caught.append(output))
        try:
            self.gpt(input_ids, attention_mask=attention_mask)
        finally:
            handle.remove()
        return caught[-1]

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, labels: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``(logits (B, C), loss)``: the mean cross-entropy for ``labels`` ``(B,)``, else None.

        ``attention_mask`` may pad on either side; None means no padding (the last position).
        """
        # BEGIN SOLUTION: hidden states; gather each row's last real token (last_token_index); score; cross-entropy.
        hidden = self.hidden_states(input_ids, attention_mask)  # (B, T, D)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        last = last_token_index(attention_mask)  # (B,)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, D)
        logits: Tensor = self.score(pooled)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return logits, loss
        # END SOLUTION


# -- part 2: fine-tuning done right ---------------------------------------------------------

FREEZE_MODES = ("full", "embeddings", "head")
# The first name under the backbone of an embedding table: BERT's, and GPT's two tables.
EMBEDDING_NAMES = ("embeddings", "token_embedding", "position_embedding")
LAYER_LISTS = ("layers", "blocks")  # BERT's and GPT's lists of layers


def freeze(model: nn.Module, mode: str, backbone: str = "bert") -> list[str]:
    """Choose what trains: set ``requires_grad`` on every parameter of ``model`` and return the trainable names.

    ``backbone`` is the attribute holding the pretrained model (``"bert"`` or ``"gpt"``);
    everything else (pooler, classifier, heads) is the task's.

    * ``"full"``: every parameter trains.
    * ``"embeddings"``: the backbone's embedding tables (parameter names ``{backbone}.<e>.…`` with
      ``<e>`` in ``EMBEDDING_NAMES``) are frozen; everything else trains.
    * ``"head"``: every parameter under ``{backbone}.`` is frozen; only the task's own train.
    * anything else: ``ValueError``.

    Returns:
        the names of the trainable parameters, in ``model.named_parameters()`` order.
    """
    # BEGIN SOLUTION: ValueError for an unknown mode; for each named parameter decide frozen from its name; set requires_grad accordingly.
    if mode not in FREEZE_MODES:
        raise ValueError(f"mode must be one of {FREEZE_MODES}, got {mode!r}")
    trainable = []
    for name, param in model.named_parameters():
        parts = name.split(".")
        in_backbone = parts[0] == backbone
        frozen = (mode == "head" and in_backbone) or (
            mode == "embeddings" and in_backbone and len(parts) > 1 and parts[1] in EMBEDDING_NAMES
        )
        param.requires_grad_(not frozen)
        if not frozen:
            trainable.append(name)
    return trainable
    # END SOLUTION


def layer_depth(name: str, n_layers: int, backbone: str = "bert") -> int:
    """How far below the task head a parameter sits (given): the exponent of layer-wise LR decay.

    0 for everything outside the backbone's embeddings and layers (the head, the pooler, GPT's
    ``norm_f``); ``L - i`` for ``{backbone}.layers.i.…`` / ``{backbone}.blocks.i.…`` (the top layer
    ``L - 1`` is 1, the bottom layer 0 is ``L``); ``L + 1`` for the embeddings.
    """
    parts = name.split(".")
    if parts[0] != backbone or len(parts) < 2:
        return 0
    if parts[1] in EMBEDDING_NAMES:
        return n_layers + 1
    if parts[1] in LAYER_LISTS:
        return n_layers - int(parts[2])
    return 0


def layerwise_lr_groups(
    model: nn.Module, base_lr: float, decay: float, weight_decay: float = 0.01, backbone: str = "bert"
) -> list[dict[str, Any]]:
    """AdamW parameter groups with layer-wise learning-rate decay (Howard & Ruder, 2018; ELECTRA).

    A parameter at depth ``k = layer_depth(name, L, backbone)`` gets ``lr = base_lr * decay ** k``: the head
    learns at ``base_lr``, each layer below it ``decay`` times slower, the embeddings slowest.
    ``L`` is the number of layers of the backbone's ``layers`` (or ``blocks``) list.
    Parameters with fewer than 2 dims (biases, norm weights) get ``weight_decay`` 0, the others
    ``weight_decay``. **Only trainable parameters** (``requires_grad``) appear: a frozen one in the
    optimizer would still be decayed by some optimizers and costs state memory in all.

    Returns:
        a list of groups ``{"params": [...], "names": [...], "lr": float, "weight_decay": float}``, one per
        (depth, decayed or not) pair that has parameters, each parameter in exactly one group.
        ``torch.optim.AdamW(groups)`` takes it as it is (it keeps the extra ``"names"`` key).
    """
    # BEGIN SOLUTION: L = len(getattr(model[backbone], "layers" or "blocks")); group trainable parameters by (depth, dim >= 2); lr = base_lr * decay ** depth.
    body = getattr(model, backbone)
    n_layers = len(next(getattr(body, name) for name in LAYER_LISTS if hasattr(body, name)))
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = layer_depth(name, n_layers, backbone)
        decayed = param.dim() >= 2
        group = groups.setdefault(
            (depth, decayed),
            {"params": [], "names": [], "lr": base_lr * decay**depth, "weight_decay": weight_decay if decayed else 0.0},
        )
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())
    # END SOLUTION


def group_settings(groups: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """``{name: (lr, weight_decay)}`` of ``layerwise_lr_groups``'s result (given: what the tests compare)."""
    return {name: (float(group["lr"]), float(group["weight_decay"])) for group in groups for name in group["names"]}


# -- part 3: multi-task training ---------------------------------------------------------------


def task_probabilities(sizes: Sequence[int], temperature: float = 1.0) -> Tensor:
    """Temperature-scaled task sampling (Arivazhagan et al., 2019; mT5): ``p_i ∝ n_i ** (1 / T)``.

    ``T = 1`` samples in proportion to the data sizes ``n_i``; larger ``T`` flattens the distribution
    towards uniform (``T = inf`` is uniform), so small tasks are seen more often. ``temperature <= 0``
    raises ``ValueError``. Returns float64 ``(K,)`` summing to 1.
    """
    # BEGIN SOLUTION: ValueError unless temperature > 0; weights = n ** (1 / T) in float64; normalise.
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    weights = torch.tensor(sizes, dtype=torch.float64) ** (1.0 / temperature)
    return weights / weights.sum()
    # END SOLUTION


def sample_tasks(sizes: Sequence[int], n: int, temperature: float = 1.0, seed: int = 0) -> Tensor:
    """The task of each of ``n`` training steps, seeded: int64 ``(n,)`` in ``[0, K)``.

    Exactly: ``torch.multinomial(task_probabilities(sizes, temperature), n, replacement=True,
    generator=torch.Generator().manual_seed(seed))``; the global generator is left alone.
    """
    # BEGIN SOLUTION: a fresh generator seeded with seed; multinomial with replacement over task_probabilities.
    generator = torch.Generator().manual_seed(seed)
    return torch.multinomial(task_probabilities(sizes, temperature), n, replacement=True, generator=generator)
    # END SOLUTION


class MultiTaskClassifier(nn.Module):
    """One shared encoder, one linear head per task: ``logits = heads[task](mean_pool(bert(...)))``.

    ==========  ================================================================
    ``bert``    ``BertForMaskedLM(**bert_config)``, shared by every task
    ``heads``   ``nn.ModuleDict``: ``task -> nn.Linear(D, classes)`` for ``task_classes``
    ==========  ================================================================
    """

    def __init__(self, task_classes: Mapping[str, int], **bert_config: Any) -> None:
        super().__init__()
        self.bert = BertForMaskedLM(**bert_config)
        d_model = self.bert.embeddings.word_embeddings.weight.shape[1]
        self.heads = nn.ModuleDict({task: nn.Linear(d_model, classes) for task, classes in task_classes.items()})

    def forward(self, task: str, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """``(B, T)`` ids of one task's batch -> that task's logits ``(B, classes)``."""
        # BEGIN SOLUTION: the shared encoder's hidden states, masked mean pooling, the task's head.
        hidden, _ = self.bert(input_ids, None, attention_mask)
        logits: Tensor = self.heads[task](mean_pool(hidden, attention_mask))
        return logits
        # END SOLUTION


def multitask_loss(
    model: MultiTaskClassifier,
    batches: Mapping[str, tuple[Tensor, Tensor, Tensor]],
    weights: Mapping[str, float] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The combined loss of one step that holds a batch of several tasks.

    Args:
        model: a ``MultiTaskClassifier``.
        batches: ``task -> (input_ids (B, T), attention_mask (B, T), labels (B,))``.
        weights: ``task -> w``; None or a missing task means 1.

    Returns:
        ``(total, per_task)``: ``total = sum over tasks of w_task * loss_task`` (a weighted **sum**, not
        a mean), each ``loss_task`` the mean cross-entropy of its batch; ``per_task`` the unweighted losses.
    """
    # BEGIN SOLUTION: for each task: logits from model(task, ...), cross-entropy; total = sum of weight * loss.
    per_task: dict[str, Tensor] = {}
    total: Tensor | None = None
    for task, (input_ids, attention_mask, labels) in batches.items():
        loss = F.cross_entropy(model(task, input_ids, attention_mask), labels)
        per_task[task] = loss
        weight = 1.0 if weights is None else float(weights.get(task, 1.0))
        total = weight * loss if total is None else total + weight * loss
    if total is None:
        raise ValueError("batches is empty")
    return total, per_task
    # END SOLUTION


# -- part 4: a minimal encoder on a toy task, and a forecaster --------------------------------


class TinyEncoderClassifier(nn.Module):
    """A single-layer transformer encoder for sequence classification, trained from scratch.

    ``x = embed(ids) + position(0..T-1)``; one pre-norm ``TransformerBlock(D, H, F, activation="gelu")``
    with the padding mask; ``norm``; masked mean pooling; ``classifier``: ``(B, T)`` -> ``(B, C)``.
    Submodules: ``embed`` (``nn.Embedding(V, D)``), ``position`` (``nn.Embedding(max_len, D)``),
    ``block``, ``norm`` (``LayerNorm(D)``), ``classifier`` (``nn.Linear(D, C)``).
    """

    def __init__(
        self, vocab_size: int, num_labels: int, max_len: int = 64, d_model: int = 32, n_heads: int = 4, d_ff: int = 64
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(max_len, d_model)
        self.block = TransformerBlock(d_model, n_heads, d_ff, norm_first=True, activation="gelu")
        self.norm = LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, num_labels)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """``(B, T)`` ids (and mask) -> logits ``(B, C)``."""
        # BEGIN SOLUTION: embeddings + positions; the block with the key padding mask (B, 1, 1, T); norm; mean_pool; classifier.
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embed(input_ids) + self.position(positions)
        mask = None if attention_mask is None else (attention_mask != 0)[:, None, None, :]
        x = self.norm(self.block(x, mask=mask))
        logits: Tensor = self.classifier(mean_pool(x, attention_mask))
        return logits
        # END SOLUTION


def toy_task(n: int, length: int = 16, vocab_size: int = 12, seed: int = 0) -> tuple[Tensor, Tensor]:
    """The toy task (given): is token 1 more frequent than token 2 in the sequence? ``(n, T)`` ids, ``(n,)`` labels.

    Ids are uniform in ``[1, vocab_size)``; a tie counts as 0. About 45% of the labels are 1, so always
    answering 0 (the majority class) scores about 0.55.
    """
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab_size, (n, length), generator=generator)
    labels = ((ids == 1).sum(dim=1) > (ids == 2).sum(dim=1)).long()
    return ids, labels


def minibatch_indices(n: int, batch_size: int, steps: int, seed: int) -> Iterator[Tensor]:
    """Seeded mini-batch indices (given): ``steps`` draws of ``batch_size`` indices in ``[0, n)``."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        yield torch.randint(n, (batch_size,), generator=generator)


@torch.enable_grad()
def train_classifier(
    model: nn.Module, input_ids: Tensor, labels: Tensor, steps: int = 300, lr: float = 3e-3, seed: int = 0
) -> list[float]:
    """Train ``model`` (``model(ids) -> logits``) with AdamW on mini-batches of 64 from ``minibatch_indices(..., seed)``.

    Leaves the model in eval mode; returns the loss of each step. Training needs autograd even when the
    caller runs under ``torch.no_grad()`` (the grader does): hence ``@torch.enable_grad()``.
    """
    # BEGIN SOLUTION: AdamW(lr); train mode; for each index batch: cross-entropy, zero_grad, backward, step; eval mode at the end.
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for index in minibatch_indices(len(labels), 64, steps, seed):
        loss = F.cross_entropy(model(input_ids[index]), labels[index])
        optimizer.zero_grad()
        torch.autograd.backward(loss)
        optimizer.step()
        losses.append(loss.item())
    model.train(mode=False)
    return losses
    # END SOLUTION


def seasonal_series(length: int, period: int = 12, noise: float = 0.1, ar: float = 0.9, seed: int = 0) -> Tensor:
    """A synthetic seasonal series (given): float32 ``(length,)``.

    ``s[t] = sin(2 pi t / period) + 0.5 sin(4 pi t / period + 1) + e[t]`` with a slowly wandering level
    ``e[t] = ar * e[t - 1] + noise * N(0, 1)`` (an AR(1) process). Neither baseline is good here: the last
    value misses the season, the seasonal-naive forecast misses how far the level moved in a season;
    the best forecast, ``season[t] + ar * (s[t - 1] - season[t - 1])``, combines both.
    """
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float64)
    season = torch.sin(2 * math.pi * t / period) + 0.5 * torch.sin(4 * math.pi * t / period + 1)
    shocks = noise * torch.randn(length, generator=generator, dtype=torch.float64)
    level = torch.zeros(length, dtype=torch.float64)
    for step in range(1, length):
        level[step] = ar * level[step - 1] + shocks[step]
    return (season + level).float()


def sliding_windows(series: Tensor, context: int, horizon: int) -> tuple[Tensor, Tensor]:
    """Every (input window, target window) pair of a series: ``(S,)`` -> ``X (M, W)``, ``Y (M, N)``.

    ``X[i] = series[i : i + W]`` and ``Y[i] = series[i + W : i + W + N]``, ``M = S - W - N + 1``
    windows (``W = context``, ``N = horizon``): the target never overlaps its input.
    """
    # BEGIN SOLUTION: unfold the series into windows of W + N with step 1; split each into its first W and last N values.
    windows = series.unfold(0, context + horizon, 1)  # (M, W + N)
    return windows[:, :context].clone(), windows[:, context:].clone()
    # END SOLUTION


def naive_forecast(x: Tensor, horizon: int) -> Tensor:
    """The "last value" baseline: every step ahead repeats the window's last value. ``(M, W)`` -> ``(M, N)``."""
    # BEGIN SOLUTION: the last column, repeated horizon times.
    return x[:, -1:].expand(-1, horizon).clone()
    # END SOLUTION


def seasonal_naive_forecast(x: Tensor, horizon: int, period: int) -> Tensor:
    """The seasonal-naive baseline: step ``h`` ahead (``h = 1 … N``) repeats the value one season earlier.

    ``forecast[:, h - 1] = x[:, W - period + ((h - 1) % period)]``: the last season of the window,
    repeated. Needs ``W >= period``. ``(M, W)`` -> ``(M, N)``.
    """
    # BEGIN SOLUTION: the index of each step's value in the last season of the window; index the columns.
    context = x.shape[1]
    index = torch.tensor([context - period + (h % period) for h in range(horizon)], device=x.device)
    return x[:, index]
    # END SOLUTION


class Forecaster(nn.Module):
    """A transformer encoder over a window of values that predicts the next ``N`` values at once.

    ``x = value_proj(window[..., None]) + position(0..W-1)`` ``(M, W, D)``; ``n_layers`` pre-norm
    ``TransformerBlock(D, H, F, activation="gelu")`` without a mask (the whole window is the past);
    ``norm``; ``head`` on the **last** position: ``(M, W)`` -> ``(M, N)``.
    Submodules: ``value_proj`` (``nn.Linear(1, D)``), ``position`` (``nn.Embedding(W, D)``),
    ``blocks`` (``nn.ModuleList``), ``norm`` (``LayerNorm(D)``), ``head`` (``nn.Linear(D, N)``).
    """

    def __init__(
        self, context: int, horizon: int = 1, d_model: int = 32, n_heads: int = 4, d_ff: int = 64, n_layers: int = 1
    ) -> None:
        super().__init__()
        self.value_proj = nn.Linear(1, d_model)
        self.position = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, d_ff, norm_first=True, activation="gelu") for _layer in range(n_layers)
        )
        self.norm = LayerNorm(d_model)
        self.head = nn.Linear(d_model, horizon)

    def forward(self, window: Tensor) -> Tensor:
        """``(M, W)`` values -> ``(M, N)`` forecasts."""
        # BEGIN SOLUTION: project each value to D, add positions, run the blocks, norm, head on position W - 1.
        positions = torch.arange(window.shape[1], device=window.device)
        states = self.value_proj(window.unsqueeze(-1)) + self.position(positions)  # (M, W, D)
        for block in self.blocks:
            states = block(states)
        forecast: Tensor = self.head(self.norm(states)[:, -1])  # (M, N)
        return forecast
        # END SOLUTION


@torch.enable_grad()
def train_forecaster(
    model: nn.Module, x: Tensor, y: Tensor, steps: int = 300, lr: float = 3e-3, seed: int = 0
) -> list[float]:
    """Train ``model`` (``(M, W) -> (M, N)``) on the MSE with AdamW, mini-batches of 64 from ``minibatch_indices(..., seed)``.

    Leaves the model in eval mode; returns the loss of each step.
    """
    # BEGIN SOLUTION: as train_classifier, with F.mse_loss against y[index].
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for index in minibatch_indices(len(y), 64, steps, seed):
        loss = F.mse_loss(model(x[index]), y[index])
        optimizer.zero_grad()
        torch.autograd.backward(loss)
        optimizer.step()
        losses.append(loss.item())
    model.train(mode=False)
    return losses
    # END SOLUTION


@torch.no_grad()
def recursive_forecast(model: nn.Module, x: Tensor, horizon: int) -> Tensor:
    """Multi-step forecasting with a one-step model: predict, append the prediction, slide, repeat.

    ``model`` maps ``(M, W)`` to ``(M, 1)``. Step ``h`` reads the last ``W`` values of the window
    extended by the ``h - 1`` forecasts so far. ``(M, W)`` -> ``(M, N)``.
    """
    # BEGIN SOLUTION: keep a window; horizon times: next = model(window)[:, :1]; window = cat(window[:, 1:], next).
    window = x
    forecasts = []
    for _ in range(horizon):
        step = model(window)[:, :1]  # (M, 1)
        forecasts.append(step)
        window = torch.cat([window[:, 1:], step], dim=1)
    return torch.cat(forecasts, dim=1)
    # END SOLUTION


# -- part 5: what heads learn, measured -------------------------------------------------------


@torch.no_grad()
def attention_maps(model: GPT, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Every head's attention weights in a week 06 ``GPT``: ``(L, B, H, T, T)``.

    ``maps[l, b, h, i, j]`` is how much query ``i`` of head ``h`` in block ``l`` attends to key ``j``
    (each row sums to 1 over the keys it may see). Catch them with a forward hook on each
    ``block.attn`` (week 02's ``MultiHeadAttention`` returns ``(output, weights)``); remove the hooks after.
    """
    # BEGIN SOLUTION: register a forward hook on every block.attn that keeps output[1]; run the model under no_grad; remove the hooks; stack.
    caught: list[Tensor] = []
    attentions: list[nn.Module] = [block.attn for block in model.blocks]  # type: ignore[misc]
    handles = [
        attn.register_forward_hook(lambda module, args, output: caught.append(output[1].detach()))
        for attn in attentions
    ]
    try:
        model(input_ids, attention_mask)
    finally:
        for hook in handles:
            hook.remove()
    return torch.stack(caught)
    # END SOLUTION


def previous_token_score(attn: Tensor) -> Tensor:
    """How much each head attends to the previous token: ``(B, H, T, T)`` -> ``(H,)``.

    The mean over the batch and the queries ``i = 1 … T-1`` of ``attn[b, h, i, i - 1]`` (query 0 has
    no previous token). A pure previous-token head scores 1; a head spreading evenly over ``T`` keys, ``1 / T``.
    """
    # BEGIN SOLUTION: the first sub-diagonal (diagonal(offset=-1) of the last two dims), mean over batch and positions.
    return attn.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, -1))
    # END SOLUTION


def repeated_random_tokens(batch: int, period: int, vocab_size: int, seed: int = 0) -> Tensor:
    """Random tokens repeated once (Olsson et al., 2022): ``(B, 2P)`` int64, ``x[:, P + t] == x[:, t]``.

    Exactly: ``first = torch.randint(vocab_size, (batch, period), generator=torch.Generator().manual_seed(seed))``,
    then ``first`` twice side by side.
    """
    # BEGIN SOLUTION: one seeded randint of (B, P); concatenate it with itself along T.
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(vocab_size, (batch, period), generator=generator)
    return torch.cat([first, first], dim=1)
    # END SOLUTION


def induction_score(attn: Tensor, period: int) -> Tensor:
    """The induction score of each head on a repeated sequence of period ``P``: ``(B, H, T, T)`` -> ``(H,)``.

    In the second copy, query ``i >= P`` holds the token seen at ``i - P``; an induction head attends
    to the token that came **after** it, at key ``i - P + 1``. The score is the mean over the batch and
    the queries ``i = P … T-1`` of ``attn[b, h, i, i - P + 1]``.
    """
    # BEGIN SOLUTION: the diagonal at offset -(P - 1), keeping the queries i >= P; mean over batch and those queries.
    diagonal = attn.diagonal(offset=-(period - 1), dim1=-2, dim2=-1)  # query i = j + P - 1, key j
    return diagonal[..., 1:].mean(dim=(0, -1))  # queries P … T-1
    # END SOLUTION


def attention_entropy(attn: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """The mean entropy (natural log) of each head's attention rows: ``(B, H, T, T)`` -> ``(H,)``.

    ``entropy[b, h, i] = -sum_j attn[b, h, i, j] * log attn[b, h, i, j]`` with ``0 log 0 = 0``, averaged
    over the batch and the real queries (``attention_mask`` ``(B, T)``; None: all). A head that attends
    to one key has entropy 0; one spread evenly over ``n`` keys, ``log n``.
    """
    # BEGIN SOLUTION: p log p with 0 where p == 0 (torch.xlogy); sum over keys; mean over real queries and the batch.
    row_entropy = -torch.xlogy(attn, attn).sum(dim=-1)  # (B, H, T)
    if attention_mask is None:
        return row_entropy.mean(dim=(0, 2))
    real = (attention_mask != 0).to(attn.dtype)[:, None, :]  # (B, 1, T)
    return (row_entropy * real).sum(dim=(0, 2)) / real.sum(dim=(0, 2))
    # END SOLUTION


@torch.no_grad()
def head_ablation_loss(model: GPT, input_ids: Tensor, layer: int, head: int) -> float:
    """How much the causal LM loss rises when head ``head`` of block ``layer`` is switched off.

    Switching off: the head's output (its ``Dh`` features of the merged heads, the input of that
    block's ``attn.out_proj``) is set to zero, with a forward pre-hook on ``out_proj``. Returns
    ``loss(ablated) - loss(intact)``, both with week 10's ``causal_lm_loss`` on ``input_ids``
    (no padding), computed under ``no_grad``. The model is left as it was.
    """
    # BEGIN SOLUTION: the intact loss; a pre-hook on blocks[layer].attn.out_proj zeroing features head*Dh:(head+1)*Dh; the ablated loss; remove the hook.
    attn: nn.Module = model.blocks[layer].attn  # type: ignore[assignment]
    out_proj: nn.Module = attn.out_proj  # type: ignore[assignment]
    d_head = int(attn.d_head)  # type: ignore[arg-type]

    def zero_head(module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        merged = args[0].clone()
        merged[..., head * d_head : (head + 1) * d_head] = 0.0
        return (merged,)

    intact = causal_lm_loss(model(input_ids), input_ids)
    handle = out_proj.register_forward_pre_hook(zero_head)
    try:
        ablated = causal_lm_loss(model(input_ids), input_ids)
    finally:
        handle.remove()
    return float(ablated - intact)
    # END SOLUTION


def head_scores(model: GPT, vocab_size: int, period: int = 16, batch: int = 8, seed: int = 0) -> dict[str, Tensor]:
    """The layer x head grids of a GPT on repeated random tokens (given): ``(L, H)`` each.

    ``"previous_token"``, ``"induction"`` and ``"entropy"`` from ``attention_maps`` on
    ``repeated_random_tokens(batch, period, vocab_size, seed)``.
    """
    tokens = repeated_random_tokens(batch, period, vocab_size, seed)
    maps = attention_maps(model, tokens)
    return {
        "previous_token": torch.stack([previous_token_score(m) for m in maps]),
        "induction": torch.stack([induction_score(m, period) for m in maps]),
        "entropy": torch.stack([attention_entropy(m) for m in maps]),
    }


# -- loading Hugging Face weights (given) ---------------------------------------------------


def from_hf_bert_task_state_dict(hf: Mapping[str, Tensor], mlm_head: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a Hugging Face ``BertFor{Sequence,Token}Classification`` / ``BertForQuestionAnswering`` state dict.

    ``bert.…`` goes through week 05's ``from_hf_state_dict`` (prefixed ``bert.``), the pooler to
    ``pooler``, ``classifier`` / ``qa_outputs`` keep their names. Those models have no MLM head:
    ``mlm_head`` gives ours (names as in ``BertForMaskedLM``, e.g. the model's own, unused here).
    """
    backbone = {name: value for name, value in hf.items() if name.startswith("bert.")}
    ours = {f"bert.{name}": value for name, value in from_hf_state_dict(dict(backbone)).items()}
    ours.update({f"bert.{name}": value for name, value in mlm_head.items()})
    for name, value in hf.items():
        if name.startswith("bert.pooler.dense."):
            ours["pooler." + name[len("bert.pooler.dense.") :]] = value
        elif not name.startswith("bert."):
            ours[name] = value
    return ours
