"""Hidden tests for week 06 (GPT-2 and text generation).

Expected values come from the reference solution (``reference``) run here, in the
trusted grader. Model tests load the same weights into the reference ``GPT`` and
the student's: a random state dict under Hugging Face's ``GPT2LMHeadModel`` names
(Conv1D layouts included), mapped by the given ``from_hf_state_dict``.
``tests/test_week06_reference.py`` checks that reference against ``transformers``'
``GPT2LMHeadModel``, its ``generate`` (greedy, beam search and seeded sampling)
and its ``TopKLogitsWarper`` / ``TopPLogitsWarper`` / ``TemperatureLogitsWarper``.

Generation is graded on the student's own model: the expected tokens are what the
reference algorithm picks from the logits of the student's ``GPT`` (called through
``RemoteLM``), so a mistake in the model costs the model tests, not every
generation test as well.
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder import (
    assert_close,
    assert_equal,
    assert_global_rng_untouched,
    assert_no_forbidden_ops,
    expect_sequence,
    expect_tensor,
    randn,
    reference_grads,
)
from autograder.checks import MISTAKE_HINT
from autograder.student_errors import StudentException
from autograder.testing import DTYPE_IDS, DTYPE_NAMES, DTYPES, LOOSE, fails, forbidden, left_padded, token_ids
from autograder.testing import raises_value_error as rejects

FORBIDDEN = forbidden("06-gpt2")
# (vocab_size, max_len, d_model, n_heads, n_layers, d_ff, eps): GPT-2's defaults (F = 4D, eps 1e-5)
# and a variant with an explicit d_ff, three heads and a large eps.
CONFIGS = {
    "V97-D32-H4": (97, 40, 32, 4, 2, None, 1e-5),
    "V53-D24-H3-F40-eps0.01": (53, 24, 24, 3, 2, 40, 1e-2),
}
MAIN = "V97-D32-H4"


def hf_state_dict(config: str, dtype: torch.dtype, seed: int) -> dict[str, torch.Tensor]:
    """Random weights under GPT2LMHeadModel's names and Conv1D (in, out) layouts: std 0.5, LayerNorm weights 1 + 0.5 N(0, 1)."""
    vocab, max_len, d, _, n_layers, d_ff, _ = CONFIGS[config]
    f = d_ff or 4 * d
    shapes = {"transformer.wte.weight": (vocab, d), "transformer.wpe.weight": (max_len, d)}
    for i in range(n_layers):
        h = f"transformer.h.{i}."
        shapes |= {
            h + "ln_1.weight": (d,),
            h + "ln_1.bias": (d,),
            h + "attn.c_attn.weight": (d, 3 * d),
            h + "attn.c_attn.bias": (3 * d,),
            h + "attn.c_proj.weight": (d, d),
            h + "attn.c_proj.bias": (d,),
            h + "ln_2.weight": (d,),
            h + "ln_2.bias": (d,),
            h + "mlp.c_fc.weight": (d, f),
            h + "mlp.c_fc.bias": (f,),
            h + "mlp.c_proj.weight": (f, d),
            h + "mlp.c_proj.bias": (d,),
        }
    shapes |= {"transformer.ln_f.weight": (d,), "transformer.ln_f.bias": (d,)}
    state = {}
    for i, (name, shape) in enumerate(shapes.items()):
        is_norm_weight = ".ln_" in name and name.endswith("weight")
        state[name] = randn(*shape, dtype=dtype, seed=seed + i, scale=0.5) + (1.0 if is_norm_weight else 0.0)
    state["lm_head.weight"] = state["transformer.wte.weight"]  # tied, as GPT2LMHeadModel's state_dict has it
    return state


def build(student, reference, config: str, dtype: torch.dtype, seed: int, dropout: float = 0.1, train: bool = False):
    """The reference GPT and the student's, with the same mapped weights; eval mode unless ``train``."""
    vocab, max_len, d, heads, n_layers, d_ff, eps = CONFIGS[config]
    args, kwargs = (vocab, max_len, d, heads, n_layers), {"d_ff": d_ff, "dropout": dropout, "eps": eps}
    state = reference.from_hf_state_dict(hf_state_dict(config, dtype, seed))
    ref = reference.GPT(*args, **kwargs).to(dtype)
    ref.load_state_dict(state)
    mine = student.GPT(*args, **kwargs)
    if dtype == torch.float64:
        mine.double()
    mine.load_state_dict(state)
    if not train:
        ref.eval()
        mine.eval()
    return ref, mine


def describe(config: str, dtype: torch.dtype) -> str:
    vocab, max_len, d, heads, n_layers, d_ff, eps = CONFIGS[config]
    return (
        f"GPT(vocab_size={vocab}, max_len={max_len}, d_model={d}, n_heads={heads}, n_layers={n_layers}, "
        f"d_ff={d_ff}, dropout=0.1 in eval mode, eps={eps}), {DTYPE_NAMES[dtype]}"
    )


class RemoteLM:
    """The student's model, called from the reference's generation code: ``model(ids, attention_mask=mask)``."""

    def __init__(self, handle, dtype: torch.dtype = torch.float64) -> None:
        self.handle = handle
        self.dtype = dtype

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.handle(input_ids, attention_mask=attention_mask)
        return expect_tensor(out, name="your GPT's logits (called by the generation code)", dtype=self.dtype)


# -- what known mistakes produce, from the reference's own submodules ------------------------


def variant_logits(
    reference,
    ref,
    ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    padded_positions: bool = True,
    causal: bool = True,
    padding_keys: bool = True,
    post_norm: bool = False,
    exact_gelu: bool = False,
    final_norm: bool = True,
    positions: bool = True,
    detach_head: bool = False,
    detach_lookup: bool = False,
) -> torch.Tensor:
    """The reference GPT's forward (eval mode) with one piece changed."""
    batch, length = ids.shape
    mask = torch.ones(batch, length, dtype=torch.long) if attention_mask is None else attention_mask
    pos = (mask.cumsum(-1) - 1).clamp(min=0) if padded_positions else torch.arange(length).expand(batch, length)
    table = ref.token_embedding.weight
    x = (table.detach() if detach_lookup else table)[ids]
    if positions:
        x = x + ref.position_embedding(pos)
    allowed = torch.ones(length, length, dtype=torch.bool)
    if causal:
        allowed = allowed.tril()
    allowed = allowed[None, None]
    if padding_keys:
        allowed = allowed & mask.bool()[:, None, None, :]
    for block in ref.blocks:

        def attn(h, block=block):
            return block.attn(h, mask=allowed)[0]

        def ff(h, block=block):
            if exact_gelu:
                hidden = block.ff.fc1(h)
                return block.ff.fc2(0.5 * hidden * (1.0 + torch.erf(hidden / math.sqrt(2.0))))  # the exact GELU
            return block.ff(h)

        if post_norm:
            x = block.norm1(x + attn(x))
            x = block.norm2(x + ff(x))
        else:
            x = x + attn(block.norm1(x))
            x = x + ff(block.norm2(x))
    if final_norm:
        x = ref.norm_f(x)
    return x @ (table.detach() if detach_head else table).T


def model_mistakes(reference, ref, ids, attention_mask=None) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        mistakes = {
            "the blocks are post-norm; GPT-2's are pre-norm (norm_first=True)": variant_logits(
                reference, ref, ids, attention_mask, post_norm=True
            ),
            "no final LayerNorm: norm_f belongs between the last block and the head": variant_logits(
                reference, ref, ids, attention_mask, final_norm=False
            ),
            "the exact GELU; GPT-2 uses the tanh approximation (activation='gelu_tanh')": variant_logits(
                reference, ref, ids, attention_mask, exact_gelu=True
            ),
            "no causal mask: a position must not attend to later positions": variant_logits(
                reference, ref, ids, attention_mask, causal=False
            ),
            "the position embeddings are not added": variant_logits(
                reference, ref, ids, attention_mask, positions=False
            ),
        }
        if attention_mask is not None:
            mistakes |= {
                "positions 0..T-1 that ignore the left padding; use cumsum(attention_mask) - 1": variant_logits(
                    reference, ref, ids, attention_mask, padded_positions=False
                ),
                "padding keys are not masked out (the attention mask must be causal AND key padding)": variant_logits(
                    reference, ref, ids, attention_mask, padding_keys=False
                ),
            }
    return mistakes


# -- position ids and the mask -------------------------------------------------------


def test_position_ids(student, reference):
    masks = {
        "no padding (2, 6)": torch.ones(2, 6, dtype=torch.long),
        "left padding, lengths [7, 4, 1]": left_padded([7, 4, 1], 7),
        "left padding as bool, lengths [5, 2]": left_padded([5, 2], 5).bool(),
    }
    for label, mask in masks.items():
        expected = reference.position_ids(mask)
        counted = mask.long().cumsum(-1)
        assert_equal(
            student.position_ids(mask),
            expected,
            name=f"position_ids for {label}",
            mistakes={
                "positions 0..T-1 that ignore the padding": torch.arange(mask.shape[1]).expand(mask.shape),
                "cumsum(mask) without the - 1 (positions start at 1)": counted,
                "not clamped at 0: padding gets -1": counted - 1,
            },
            hint="(cumsum(attention_mask, -1) - 1).clamp(min=0), as int64",
        )


@pytest.mark.parametrize(
    ("query_length", "key_length", "lengths"),
    [(6, 6, None), (6, 6, [6, 4, 1]), (3, 7, None), (2, 5, [5, 3])],
    ids=["T6", "T6-padded", "Tq3-Tk7", "Tq2-Tk5-padded"],
)
def test_causal_mask(student, reference, query_length, key_length, lengths):
    attention_mask = None if lengths is None else left_padded(lengths, key_length)
    expected = reference.causal_mask(query_length, key_length, attention_mask)
    plain = torch.ones(query_length, key_length, dtype=torch.bool).tril()[None, None]
    mistakes = {"tril without the Tk - Tq shift: the queries are the LAST Tq positions": plain}
    if attention_mask is not None:
        mistakes["the padding keys are not masked out"] = reference.causal_mask(query_length, key_length).expand(
            len(lengths), 1, -1, -1
        )
    assert_equal(
        student.causal_mask(query_length, key_length, attention_mask),
        expected,
        name=f"causal_mask({query_length}, {key_length}, attention_mask for lengths {lengths})",
        mistakes=mistakes,
        hint="ones(Tq, Tk).tril(diagonal=Tk - Tq), shaped (1, 1, Tq, Tk); with a mask, AND the real keys: (B, 1, Tq, Tk)",
    )


# -- the model -----------------------------------------------------------------------------


def test_gpt_state_dict(student, reference):
    config = "V53-D24-H3-F40-eps0.01"
    vocab, max_len, d, heads, n_layers, d_ff, eps = CONFIGS[config]
    for label, kwargs in (("d_ff=40", {"d_ff": d_ff}), ("d_ff=None (4 * d_model)", {})):
        expected = {
            name: tuple(v.shape)
            for name, v in reference.GPT(vocab, max_len, d, heads, n_layers, **kwargs).state_dict().items()
        }
        state = student.GPT(vocab, max_len, d, heads, n_layers, **kwargs).state_dict()
        if not isinstance(state, dict):
            fails("GPT.state_dict() did not return a dict of tensors")
        got = {name: tuple(v.shape) for name, v in state.items() if isinstance(v, torch.Tensor)}
        missing, extra = sorted(expected.keys() - got.keys()), sorted(got.keys() - expected.keys())
        if extra and any("head" in name for name in extra):
            fails(
                f"GPT({vocab}, {max_len}, {d}, {heads}, {n_layers}, {label}) has parameters {extra}: the LM head is "
                "tied, so it has no weight of its own; multiply by token_embedding.weight.T instead"
            )
        if missing or extra:
            fails(
                f"GPT({vocab}, {max_len}, {d}, {heads}, {n_layers}, {label}): state_dict names differ from the "
                f"specification; missing {missing[:6]}, unexpected {extra[:6]}"
            )
        wrong = {name: (got[name], shape) for name, shape in expected.items() if got[name] != shape}
        if wrong:
            name, (shape, want) = next(iter(wrong.items()))
            fails(f"GPT(..., {label}): {name} has shape {shape}, expected {want} (d_ff defaults to 4 * d_model)")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_gpt_logits(student, reference, config, dtype):
    ref, mine = build(student, reference, config, dtype, seed=10)
    length = 9 if config == MAIN else 7
    ids = token_ids(2, length, CONFIGS[config][0], seed=11)
    with torch.no_grad():
        expected = ref(ids)
    mistakes = model_mistakes(reference, ref, ids)
    assert_close(
        mine(ids),
        expected,
        name=f"{describe(config, dtype)}: logits for input_ids (2, {length}), no attention_mask",
        mistakes={k: v.to(dtype) for k, v in mistakes.items()},
        hint="embeddings + positions, the pre-norm blocks with a causal mask, norm_f, then @ token_embedding.weight.T",
        **(LOOSE if dtype == torch.float32 else {}),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_gpt_left_padding(student, reference, config, dtype):
    ref, mine = build(student, reference, config, dtype, seed=20)
    lengths = [9, 5, 1] if config == MAIN else [6, 2, 4]
    length = max(lengths)
    ids = token_ids(3, length, CONFIGS[config][0], seed=21)
    mask = left_padded(lengths, length)
    ids = ids.masked_fill(mask == 0, 0)  # the pad token: any id would do
    real = mask.bool()
    with torch.no_grad():
        expected = ref(ids, attention_mask=mask)
    label = f"{describe(config, dtype)}: logits of the real tokens of a left-padded batch, lengths {lengths}"
    out = expect_tensor(mine(ids, attention_mask=mask), name=label, shape=tuple(expected.shape), dtype=dtype)
    mistakes = model_mistakes(reference, ref, ids, mask)
    assert_close(
        out[real],
        expected[real],
        name=label,
        mistakes={k: v[real].to(dtype) for k, v in mistakes.items()},
        hint="positions = cumsum(attention_mask) - 1 (clamped at 0); mask = causal AND the real keys",
        **(LOOSE if dtype == torch.float32 else {}),
    )
    # Padding must change nothing: each row alone, unpadded, gives the same logits.
    for row, n in enumerate(lengths):
        alone = expect_tensor(
            mine(ids[row : row + 1, length - n :]), name=f"row {row} alone", shape=(1, n, expected.shape[-1])
        )
        assert_close(
            out[row, length - n :],
            alone[0],
            name=f"{label}: row {row} padded against the same {n} tokens without padding",
            hint="left padding must not change a real token's logits: check the positions and the key mask",
            **(LOOSE if dtype == torch.float32 else {}),
        )


def test_gpt_is_causal(student, reference):
    ref, mine = build(student, reference, MAIN, torch.float64, seed=30)
    ids = token_ids(2, 10, CONFIGS[MAIN][0], seed=31)
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 7) % CONFIGS[MAIN][0]
    with torch.no_grad():
        expected = ref(changed)
    first = expect_tensor(mine(ids), name="logits", shape=tuple(expected.shape), dtype=torch.float64)
    second = mine(changed)
    assert_close(
        second,
        expected,
        name="GPT logits for (2, 10) input_ids",
        mistakes=model_mistakes(reference, ref, changed),
        hint="the mask must be causal: position t attends to positions 0..t only",
    )
    assert_close(
        second[:, :6],
        first[:, :6],
        name="logits at positions 0..5 after changing the tokens at positions 6..9",
        hint="the mask must be causal: a later token may not change an earlier position's logits",
    )


def test_gpt_tied_head_gradients(student, reference):
    ref, mine = build(student, reference, MAIN, torch.float64, seed=40)
    ids = token_ids(2, 8, CONFIGS[MAIN][0], seed=41)
    mask = left_padded([8, 5], 8)
    grad_output = randn(2, 8, CONFIGS[MAIN][0], seed=42) * mask[..., None]
    _, grads = mine.vjp(ids, grad_outputs=grad_output, attention_mask=mask)
    names = [name for name, _ in ref.named_parameters()]
    expected = dict(
        zip(names, reference_grads(ref(ids, attention_mask=mask), list(ref.parameters()), grad_output), strict=True)
    )
    table = ref.token_embedding.weight
    lookup_only = reference_grads(variant_logits(reference, ref, ids, mask, detach_head=True), table, grad_output)[0]
    head_only = reference_grads(variant_logits(reference, ref, ids, mask, detach_lookup=True), table, grad_output)[0]
    hint = (
        "keep everything differentiable; the head multiplies by token_embedding.weight itself (no copy, no .detach())"
    )
    got = mine.token_embedding.weight.attr("grad").fetch()
    assert_close(
        got,
        expected["token_embedding.weight"],
        name="gradient of token_embedding.weight (used by the lookup AND the tied head)",
        mistakes={
            "only the lookup's share of the gradient: the head does not use token_embedding.weight itself (untied, copied or detached)": lookup_only,
            "only the head's share of the gradient: the embedding lookup is detached": head_only,
        },
        hint=hint,
    )
    for name in ("position_embedding.weight", "norm_f.weight", "blocks.0.attn.q_proj.weight", "blocks.1.ff.fc1.bias"):
        got = mine
        for part in name.split("."):
            got = got.attr(part)
        assert_close(got.attr("grad").fetch(), expected[name], name=f"gradient of {name}", hint=hint)


def test_gpt_dropout_in_training(student, reference):
    """With dropout = 1 in training mode the embeddings and every branch are dropped: logits = norm_f(0) @ E.T."""
    ref, mine = build(student, reference, MAIN, torch.float64, seed=50, dropout=1.0, train=True)
    ids = token_ids(2, 5, CONFIGS[MAIN][0], seed=51)
    with torch.no_grad():
        expected = ref(ids)
        x = ref.token_embedding(ids) + ref.position_embedding(torch.arange(5))
        undropped = ref.norm_f(x) @ ref.token_embedding.weight.T
    assert_close(
        mine(ids),
        expected,
        name="GPT(dropout=1.0) in training mode",
        mistakes={"no dropout on the summed embeddings (drop)": undropped},
        hint="drop applies to token_embedding(ids) + position_embedding(positions); the blocks get `dropout` too",
    )


DROPOUT_ROWS = 400


def test_gpt_dropout_rescaled(student, reference):
    """Embedding dropout in training mode keeps the expected activation: survivors are divided by 1 - p.

    The blocks' output projections are zero (every block is then the identity, whatever its dropout) and the
    embeddings tiny (1e-4), so that norm_f is linear in its input and the expected logits under dropout are the
    eval-mode logits exactly. 400 rows of the same ids in training mode, dropout 0.5: the mean logits must
    have the eval-mode logits' size (a ratio near 1; without the rescale, 1 - p = 0.5). Any random numbers pass.
    """
    vocab, max_len, d, heads, n_layers, d_ff, eps = CONFIGS[MAIN]
    p = 0.5
    state = reference.from_hf_state_dict(hf_state_dict(MAIN, torch.float64, seed=55))
    for name in list(state):
        if name.endswith(("attn.out_proj.weight", "attn.out_proj.bias", "ff.fc2.weight", "ff.fc2.bias")):
            state[name] = torch.zeros_like(state[name])
        elif name in ("token_embedding.weight", "position_embedding.weight"):
            state[name] = state[name] * 2e-4
    ref = reference.GPT(vocab, max_len, d, heads, n_layers, d_ff=d_ff, dropout=p, eps=eps).double()
    ref.load_state_dict(state)
    ref.eval()
    mine = student.GPT(vocab, max_len, d, heads, n_layers, d_ff=d_ff, dropout=p, eps=eps)
    mine.double()
    mine.load_state_dict(state)
    ids = token_ids(1, 6, vocab, seed=56)
    label = (
        f"GPT(dropout={p}) in training mode, blocks that add nothing (zero output projections), "
        f"the mean logits of {DROPOUT_ROWS} rows of the same input_ids (1, 6)"
    )
    out = expect_tensor(
        mine(ids.repeat(DROPOUT_ROWS, 1)), name=label, shape=(DROPOUT_ROWS, 6, vocab), dtype=torch.float64
    )
    with torch.no_grad():
        expected = ref(ids) - ref.norm_f.bias @ ref.token_embedding.weight.T  # (1, 6, V), norm_f's bias removed
        mean = out.mean(dim=0, keepdim=True) - ref.norm_f.bias @ ref.token_embedding.weight.T
    if not bool(out.isfinite().all()):
        fails(f"{label}: the logits contain NaN or inf")
    ratio = float((mean * expected).sum() / (expected * expected).sum())
    if abs(ratio - 1.0) > 0.15:
        hint = "drop must be week 04's Dropout(dropout): zero each element with probability p, divide the rest by 1 - p"
        mistake = None
        if abs(ratio - (1.0 - p)) < 0.15:
            mistake = (
                "the embedding dropout zeroes elements but does not divide "
                "the survivors by 1 - p (use week 04's Dropout as self.drop)"
            )
            hint = MISTAKE_HINT + mistake
        fails(
            f"{label}: the mean logits are {ratio:.3f} times the eval-mode logits, expected 1 (dropout must keep "
            f"the expected activation).\nHint: {hint}",
            mistake,
        )


def test_gpt_uses_no_builtin(student, reference):
    _, mine = build(student, reference, MAIN, torch.float32, seed=60, dropout=0.3, train=True)
    ids = token_ids(2, 6, CONFIGS[MAIN][0], seed=61)
    out = mine(ids, attention_mask=left_padded([6, 3], 6))
    assert_no_forbidden_ops(
        student.last_ops,
        FORBIDDEN,
        name="GPT.forward in training mode (dropout=0.3)",
        hint="build GPT from week 04's Dropout, LayerNorm and TransformerBlock (your own code, no PyTorch built-ins)",
    )
    expect_tensor(out, name="GPT logits", shape=(2, 6, CONFIGS[MAIN][0]), dtype=torch.float32)


# -- logits processors -----------------------------------------------------------------------


def processor_logits(dtype: torch.dtype, seed: int) -> torch.Tensor:
    """(3, 40) logits of three rows with different spreads."""
    return (randn(3, 40, seed=seed) * torch.tensor([[0.5], [2.0], [5.0]], dtype=torch.float64)).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_apply_temperature(student, reference, temperature, dtype):
    logits = processor_logits(dtype, seed=70)
    assert_close(
        student.apply_temperature(logits, temperature),
        reference.apply_temperature(logits, temperature),
        name=f"apply_temperature(logits (3, 40), {temperature}), {DTYPE_NAMES[dtype]}",
        mistakes={
            "the logits are multiplied by the temperature; divide them": logits * temperature,
            "the probabilities are returned (softmax applied); return logits": torch.softmax(logits / temperature, -1),
        },
        hint="logits / temperature",
    )


def top_k_inputs(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    logits = processor_logits(dtype, seed=71)
    ties = torch.tensor(
        [[1.0, 3.0, 2.0, 3.0, 0.5, 2.0, 2.0, -1.0], [0.0, 0.0, 0.0, 4.0, 0.0, 1.0, -2.0, 0.0]], dtype=dtype
    )
    return {"random (3, 40)": logits, "ties (2, 8)": ties, "3-D (2, 3, 40)": torch.stack([logits, logits.flip(-1)])}


TOP_K_CASES = [("random (3, 40)", 1), ("random (3, 40)", 5), ("random (3, 40)", 39), ("random (3, 40)", 45)]
TOP_K_CASES += [("ties (2, 8)", 3), ("ties (2, 8)", 2), ("3-D (2, 3, 40)", 7)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("inputs", "k"), TOP_K_CASES, ids=[f"{name.split(' ')[0]}-k{k}" for name, k in TOP_K_CASES])
def test_top_k_filter(student, reference, inputs, k, dtype):
    logits = top_k_inputs(dtype)[inputs]
    expected = reference.top_k_filter(logits, k)
    size = logits.shape[-1]
    mistakes = {}
    if k > 1:
        mistakes["only k - 1 logits kept"] = reference.top_k_filter(logits, k - 1)
    if k < size:
        mistakes["k + 1 logits kept"] = reference.top_k_filter(logits, k + 1)
        index = torch.topk(logits, k, dim=-1).indices
        exactly_k = torch.full_like(logits, float("-inf")).scatter(-1, index, logits.gather(-1, index))
        mistakes["exactly k kept: logits tied with the k-th largest must be kept too (as Hugging Face does)"] = (
            exactly_k
        )
        mistakes["the filtered logits are set to 0; set them to -inf"] = expected.masked_fill(expected.isinf(), 0.0)
    assert_close(
        student.top_k_filter(logits, k),
        expected,
        name=f"top_k_filter(logits {inputs}, k={k}), {DTYPE_NAMES[dtype]}",
        mistakes=mistakes,
        hint="-inf wherever a logit is below the k-th largest of its row (ties with it stay); k >= V keeps all",
    )


def top_p_cases(dtype: torch.dtype) -> dict[str, tuple[torch.Tensor, float]]:
    logits = processor_logits(torch.float64, seed=72)
    return {
        "p=0.5": (logits, 0.5),
        "p=0.9": (logits, 0.9),
        "p=0.05 (keeps only the top token)": (logits, 0.05),
        "p=0 (the likeliest token always stays)": (logits, 0.0),
        "p=1e-9 (the likeliest token always stays)": (logits, 1e-9),
        "p=1.0 (keeps everything)": (logits, 1.0),
        "p=0.8, 3-D (2, 3, 40)": (torch.stack([logits, logits.flip(-1) * 0.7]), 0.8),
        "p=0.6, rows already top-k filtered": (torch.where(logits > 0.3, logits, float("-inf")), 0.6),
    }


def top_p_mistakes(logits: torch.Tensor, p: float) -> dict[str, torch.Tensor]:
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    cumulative = probs.cumsum(-1)
    cut = float("-inf")

    def unsort(drop_sorted: torch.Tensor) -> torch.Tensor:
        return logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), cut)

    excluding = cumulative > p
    excluding[..., 0] = False
    unsorted_probs = torch.softmax(logits, -1)
    unsorted = unsorted_probs.cumsum(-1) - unsorted_probs >= p
    unsorted[..., 0] = False
    top_dropped = cumulative - probs >= p  # without the rule that the likeliest token stays
    return {
        "the likeliest token is removed too: it must always stay, whatever p (even p = 0)": unsort(top_dropped),
        "the token that crosses p is dropped; keep it (keep a token while the mass BEFORE it is below p)": unsort(
            excluding
        ),
        "the cumulative sum runs over the unsorted vocabulary; sort by probability first": logits.masked_fill(
            unsorted, cut
        ),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(top_p_cases(torch.float64)))
def test_top_p_filter(student, reference, case, dtype):
    logits, p = top_p_cases(dtype)[case]
    logits = logits.to(dtype)
    expected = reference.top_p_filter(logits, p)
    # A well-posed case: no token's preceding mass lies within 1e-4 of p, so float32 and any correct
    # formulation (ascending or descending sort) agree on which tokens stay. The likeliest token (mass
    # before it 0) always stays, so it does not count, which makes p = 0 and a tiny p well-posed too.
    probs = torch.softmax(torch.sort(logits.double(), dim=-1, descending=True).values, -1)
    margin = (probs.cumsum(-1) - probs - p)[..., 1:].abs().min().item()
    assert p == 1.0 or margin > 1e-4, f"ill-posed top-p case {case}: margin {margin}"
    assert_close(
        student.top_p_filter(logits, p),
        expected,
        name=f"top_p_filter(logits {tuple(logits.shape)}, {case}), {DTYPE_NAMES[dtype]}",
        mistakes={k: v.to(dtype) for k, v in top_p_mistakes(logits.double(), p).items()},
        hint="sort descending, softmax, mass before each token = cumsum - prob; -inf where that mass >= p "
        "(never the top token); scatter back to the original order",
    )


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("apply_temperature", (0.0,)),
        ("apply_temperature", (-1.0,)),
        ("top_k_filter", (0,)),
        ("top_p_filter", (-0.1,)),
        ("top_p_filter", (1.5,)),
    ],
    ids=["temperature-0", "temperature-negative", "k-0", "p-negative", "p-above-1"],
)
def test_processors_reject_bad_arguments(student, call, args):
    logits = processor_logits(torch.float64, seed=73)
    label = f"{call}(logits, {args[0]!r})"
    try:
        getattr(student, call)(logits, *args)
    except StudentException as exc:
        if "raised ValueError" not in str(exc):
            fails(f"{label} should raise ValueError; instead {exc}")
        return
    fails(f"{label} returned normally; it should raise ValueError")


# -- generation ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_greedy(student, reference, dtype):
    _, mine = build(student, reference, MAIN, dtype, seed=80)
    prompts = token_ids(2, 5, CONFIGS[MAIN][0], seed=81)
    remote = RemoteLM(mine, dtype)
    expected = reference.greedy(remote, prompts, 8)
    assert_equal(
        student.greedy(mine, prompts, 8),
        expected,
        name=f"greedy(your GPT in {DTYPE_NAMES[dtype]}, prompts (2, 5), max_new_tokens=8): the (2, 13) ids",
        mistakes={
            "the argmax of the first position's logits instead of the last": prompts_first_position(remote, prompts, 8)
        },
        hint="each step: model(ids)[:, -1, :].argmax(dim=-1), appended to ids; return the prompts and the new tokens",
    )


def prompts_first_position(model, prompts: torch.Tensor, steps: int) -> torch.Tensor:
    ids = prompts
    for _ in range(steps):
        ids = torch.cat([ids, model(ids)[:, 0, :].argmax(-1, keepdim=True)], dim=1)
    return ids


def test_greedy_left_padded(student, reference):
    _, mine = build(student, reference, MAIN, torch.float64, seed=90)
    lengths = [6, 3, 1]
    mask = left_padded(lengths, 6)
    prompts = token_ids(3, 6, CONFIGS[MAIN][0], seed=91).masked_fill(mask == 0, 0)
    remote = RemoteLM(mine)
    expected = reference.greedy(remote, prompts, 7, attention_mask=mask)
    assert_equal(
        student.greedy(mine, prompts, 7, attention_mask=mask),
        expected,
        name=f"greedy(your GPT, left-padded prompts of lengths {lengths}, max_new_tokens=7, attention_mask)",
        mistakes={
            "the attention_mask is not passed to the model": reference.greedy(remote, prompts, 7),
        },
        hint="pass attention_mask to the model every step and append a column of ones for each new token",
    )


SAMPLE_CASES = {
    "temperature=0.7, top_k=5, seed=3": {"temperature": 0.7, "top_k": 5, "seed": 3},
    "top_p=0.8, seed=4": {"top_p": 0.8, "seed": 4},
    "temperature=2.0, top_k=3, top_p=0.5, seed=5": {"temperature": 2.0, "top_k": 3, "top_p": 0.5, "seed": 5},
    "temperature=1.0, seed=6": {"seed": 6},
}


@pytest.mark.parametrize("case", list(SAMPLE_CASES))
def test_sample_seeded(student, reference, case):
    _, mine = build(student, reference, MAIN, torch.float64, seed=100)
    lengths = [5, 2, 4]
    mask = left_padded(lengths, 5)
    prompts = token_ids(3, 5, CONFIGS[MAIN][0], seed=101).masked_fill(mask == 0, 0)
    kwargs = SAMPLE_CASES[case]
    expected = reference.sample(RemoteLM(mine), prompts, 8, attention_mask=mask, **kwargs)
    label = f"sample(your GPT, left-padded prompts of lengths {lengths}, max_new_tokens=8, {case}, attention_mask)"
    first = student.sample(mine, prompts, 8, attention_mask=mask, **kwargs)
    assert_equal(
        first,
        expected,
        name=label,
        hint="each step: temperature, then top_k, then top_p, softmax, and ONE torch.multinomial(probs, 1, "
        "generator=generator) for the whole batch with the generator made once from the seed",
    )
    assert_equal(student.sample(mine, prompts, 8, attention_mask=mask, **kwargs), first, name=f"{label}, called again")


def test_sample_leaves_global_rng_alone(student, reference):
    """sample draws from its own seeded generator only: torch.manual_seed(seed) and a draw without generator=
    give the same tokens, but reset the caller's random state."""
    _, mine = build(student, reference, MAIN, torch.float64, seed=140)
    lengths = [5, 3]
    mask = left_padded(lengths, 5)
    prompts = token_ids(2, 5, CONFIGS[MAIN][0], seed=141).masked_fill(mask == 0, 0)
    for case in ("temperature=0.7, top_k=5, seed=3", "top_p=0.8, seed=4"):
        student.sample(mine, prompts, 4, attention_mask=mask, **SAMPLE_CASES[case])
        assert_global_rng_untouched(
            student.last_used_global_rng,
            name=f"sample(your GPT, prompts (2, 5), max_new_tokens=4, {case}, attention_mask)",
            hint="make one torch.Generator seeded with seed (given in the stub) and pass generator=generator to "
            "torch.multinomial; never call torch.manual_seed or draw without a generator",
        )


SAMPLE_EDGE_CASES = {
    "top_p=0.0 (only the likeliest token: greedy), seed=8": {"top_p": 0.0, "seed": 8},
    "top_k=150 (more than the 97 tokens: keeps all), temperature=1.3, seed=9": {
        "top_k": 150,
        "temperature": 1.3,
        "seed": 9,
    },
    "top_k=1, top_p=0.9, seed=10": {"top_k": 1, "top_p": 0.9, "seed": 10},
}


def test_sample_edge_cases(student, reference):
    """Filters given as 0 are applied, not skipped (None skips); k > V keeps everything; 0 new tokens return the prompts."""
    _, mine = build(student, reference, MAIN, torch.float64, seed=150)
    lengths = [5, 2, 4]
    mask = left_padded(lengths, 5)
    prompts = token_ids(3, 5, CONFIGS[MAIN][0], seed=151).masked_fill(mask == 0, 0)
    remote = RemoteLM(mine)
    for case, kwargs in SAMPLE_EDGE_CASES.items():
        expected = reference.sample(remote, prompts, 6, attention_mask=mask, **kwargs)
        unfiltered = {k: v for k, v in kwargs.items() if k not in ("top_p", "top_k") or v}
        mistakes = {}
        if unfiltered != kwargs:
            mistakes["top_p=0.0 is treated as 'no filter' (`if top_p:`); only None skips a filter"] = reference.sample(
                remote, prompts, 6, attention_mask=mask, **unfiltered
            )
        assert_equal(
            student.sample(mine, prompts, 6, attention_mask=mask, **kwargs),
            expected,
            name=f"sample(your GPT, left-padded prompts of lengths {lengths}, max_new_tokens=6, {case}, attention_mask)",
            mistakes=mistakes,
            hint="apply top_k_filter / top_p_filter whenever top_k / top_p is not None (test `is not None`, not "
            "truthiness): top_p=0 keeps only the likeliest token; top_k >= V keeps every token",
        )
    for call in ("greedy", "sample"):
        assert_equal(
            getattr(student, call)(mine, prompts, 0, attention_mask=mask),
            prompts,
            name=f"{call}(your GPT, prompts (3, 5), max_new_tokens=0, attention_mask): the prompts themselves",
            hint="no new tokens: return input_ids unchanged, (B, T0) int64",
        )


SAMPLES = 3000
FREQUENCY_CASES = {
    "temperature=0.5, top_k=8": {"temperature": 0.5, "top_k": 8},
    "top_p=0.6": {"top_p": 0.6},
    "temperature=2.0": {"temperature": 2.0},
    "temperature=2.0, top_k=3, top_p=0.5": {"temperature": 2.0, "top_k": 3, "top_p": 0.5},
}


@pytest.mark.parametrize("case", list(FREQUENCY_CASES))
def test_sample_frequencies(student, reference, case):
    """Any correct sampler passes: the first new token's frequencies over 3000 rows against the filtered distribution."""
    _, mine = build(student, reference, MAIN, torch.float64, seed=110)
    prompt = token_ids(1, 2, CONFIGS[MAIN][0], seed=111)
    kwargs = FREQUENCY_CASES[case]
    scores = reference.apply_temperature(RemoteLM(mine)(prompt)[0, -1], kwargs.get("temperature", 1.0))
    if "top_k" in kwargs:
        scores = reference.top_k_filter(scores, kwargs["top_k"])
    if "top_p" in kwargs:
        scores = reference.top_p_filter(scores, kwargs["top_p"])
    probs = torch.softmax(scores, dim=-1)
    label = f"sample(your GPT, the same prompt in {SAMPLES} rows, max_new_tokens=1, {case}, seed=7)"
    out = expect_tensor(
        student.sample(mine, prompt.repeat(SAMPLES, 1), 1, seed=7, **kwargs),
        name=label,
        shape=(SAMPLES, 3),
        dtype=torch.int64,
    )
    drawn = out[:, -1]
    if (drawn < 0).any() or (drawn >= probs.numel()).any():
        fails(f"{label}: token ids outside the vocabulary")
    counts = torch.bincount(drawn, minlength=probs.numel()).double()
    outside = (counts > 0) & (probs == 0)
    if outside.any():
        token = int(outside.nonzero()[0])
        fails(f"{label}: drew token {token}, which the filters remove (probability 0 after {case})")
    # Pearson's chi-square over the tokens with an expected count of at least 5 (the rest pooled):
    # a correct sampler stays below df + 8 sqrt(2 df) + 10 with overwhelming probability.
    expected = probs * SAMPLES
    big = expected >= 5
    observed_bins = torch.cat([counts[big], counts[~big].sum().reshape(1)])
    expected_bins = torch.cat([expected[big], expected[~big].sum().reshape(1)])
    keep = expected_bins > 0
    chi2 = float(((observed_bins - expected_bins)[keep] ** 2 / expected_bins[keep]).sum())
    df = int(keep.sum()) - 1
    if chi2 > df + 8 * math.sqrt(2 * max(df, 1)) + 10:
        top = int(probs.argmax())
        fails(
            f"{label}: the frequencies do not follow the filtered distribution (chi-square {chi2:.0f} with {df} "
            f"degrees of freedom); e.g. token {top} has probability {probs[top]:.3f} but was drawn "
            f"{counts[top] / SAMPLES:.3f} of the time. Apply the temperature to the logits, then the filters, "
            "then softmax, and draw each row independently"
        )


# (num_beams, max_new_tokens, length_penalty, prompt seed): prompts on which the best beam differs from
# greedy decoding, from extending the best beam only, and from ranking by the last log-prob alone.
BEAM_CASES = {
    "K=3, N=5": (3, 5, 1.0, 124),
    "K=4, N=6, length_penalty=0.5": (4, 6, 0.5, 125),
    "K=2, N=4, length_penalty=2.0": (2, 4, 2.0, 129),
}


def beam_variant(model, prompt: torch.Tensor, num_beams: int, steps: int, mode: str) -> torch.Tensor:
    """Known-wrong beam searches: extend only the best beam, or rank by the last token's log-prob alone."""
    beams, totals = prompt, torch.zeros(1, dtype=torch.float64)
    for _ in range(steps):
        log_probs = torch.log_softmax(model(beams)[:, -1, :], dim=-1)
        if mode == "best-only":
            log_probs = log_probs[:1]
            beams, totals = beams[:1], totals[:1]
        candidates = log_probs if mode == "no-sum" else totals[:, None] + log_probs
        totals, flat = torch.topk(candidates.flatten(), num_beams)
        beams = torch.cat([beams[flat // log_probs.size(-1)], (flat % log_probs.size(-1))[:, None]], dim=1)
    return beams


@pytest.mark.parametrize("case", list(BEAM_CASES))
def test_beam_search(student, reference, case):
    num_beams, steps, length_penalty, prompt_seed = BEAM_CASES[case]
    _, mine = build(student, reference, MAIN, torch.float64, seed=120)
    prompt = token_ids(1, 4, CONFIGS[MAIN][0], seed=prompt_seed)
    remote = RemoteLM(mine)
    want_sequences, want_scores = reference.beam_search(remote, prompt, num_beams, steps, length_penalty)
    label = f"beam_search(your GPT, prompt (1, 4), num_beams={num_beams}, max_new_tokens={steps}, length_penalty={length_penalty})"
    sequences, scores = expect_sequence(
        student.beam_search(mine, prompt, num_beams, steps, length_penalty=length_penalty),
        2,
        name=label,
        hint="return (sequences (K, T0 + N), scores (K,))",
    )
    assert_equal(
        sequences,
        want_sequences,
        name=f"{label}: sequences, best first",
        mistakes={
            "only the best beam is extended each step; every beam proposes continuations": beam_variant(
                remote, prompt, num_beams, steps, "best-only"
            ),
            "the beams are ranked by the last token's log-probability; add it to the beam's running sum": beam_variant(
                remote, prompt, num_beams, steps, "no-sum"
            ),
        },
        hint="each step: running sum + log_softmax(last logits) for every (beam, token), topk over all k * V, "
        "each winner extends its own parent beam",
    )
    assert_close(
        scores,
        want_scores,
        name=f"{label}: scores",
        mistakes={
            "the scores are not divided by N ** length_penalty": want_scores * steps**length_penalty,
            "divided by the whole length (T0 + N) ** length_penalty; use the N new tokens": want_scores
            * steps**length_penalty
            / (steps + prompt.shape[1]) ** length_penalty,
        },
        hint="the summed log-probabilities of the N new tokens / N ** length_penalty",
    )


def test_beam_search_float32(student, reference):
    """A float32 model: the same beams, and scores in the logits' dtype (float32)."""
    _, mine = build(student, reference, MAIN, torch.float32, seed=120)
    prompt = token_ids(1, 4, CONFIGS[MAIN][0], seed=124)
    remote = RemoteLM(mine, torch.float32)
    want_sequences, want_scores = reference.beam_search(remote, prompt, 3, 4, 1.0)
    label = "beam_search(your GPT in float32, prompt (1, 4), num_beams=3, max_new_tokens=4)"
    sequences, scores = expect_sequence(
        student.beam_search(mine, prompt, 3, 4), 2, name=label, hint="return (sequences (K, T0 + N), scores (K,))"
    )
    assert_equal(sequences, want_sequences, name=f"{label}: sequences, best first")
    assert_close(
        scores,
        want_scores,
        name=f"{label}: scores",
        hint="the scores are in the logits' dtype (float32 here): accumulate in any precision, return logits.dtype",
    )


def test_generation_rejects_bad_arguments(student, reference):
    """The errors the handout documents: temperature <= 0 and top_k < 1 in sample, beam_search's one prompt and N >= 1."""
    _, mine = build(student, reference, MAIN, torch.float64, seed=160)
    prompts = token_ids(2, 4, CONFIGS[MAIN][0], seed=161)
    cases = {
        "sample(your GPT, prompts (2, 4), max_new_tokens=3, temperature=0.0)": lambda: student.sample(
            mine, prompts, 3, temperature=0.0
        ),
        "sample(your GPT, prompts (2, 4), max_new_tokens=3, top_k=0)": lambda: student.sample(
            mine, prompts, 3, top_k=0
        ),
        "beam_search(your GPT, a batch of 2 prompts (2, 4), 2, 3)": lambda: student.beam_search(mine, prompts, 2, 3),
        "beam_search(your GPT, prompt (1, 4), 2, max_new_tokens=0)": lambda: student.beam_search(
            mine, prompts[:1], 2, 0
        ),
    }
    for label, call in cases.items():
        rejects(call, label)
