"""Hidden tests for week 05 (BERT: embeddings, the post-norm encoder, the tied MLM head, masking, the MLM loss).

Expected values come from the reference solution (``reference``) run here, in the
trusted grader. Weights are made as a Hugging Face ``BertForMaskedLM`` checkpoint
of a tiny configuration would name them (``hf_state_dict``), renamed with the
week's ``from_hf_state_dict`` and loaded, by name, into the reference and into the
student's model. ``tests/test_week05_reference.py`` checks that the names here are
those of ``transformers``' ``BertForMaskedLM`` and that the reference with those
weights reproduces its hidden states, logits and loss, and compares ``mask_tokens``'s
statistics with ``DataCollatorForLanguageModeling``.

Padded positions: every test compares real tokens only. What a padded query
computes is not part of the API (a student may also mask padded queries, whose
rows then have no key), and no loss ever reads it.

``mask_tokens`` is seeded and its docstring fixes the order of the random draws,
so its results are compared exactly; its statistics are checked separately, on a
large batch, with tolerances of about eight standard deviations that hold for any
draw order. It must leave torch's global random generator alone
(``student.last_used_global_rng``), and, like every call, must not change its
tensor arguments in place (the engine compares them before and after each call).

Training mode: dropout draws in the student's process, so the tests use what holds
for every draw: with ``dropout = 1`` every dropout gives zeros (the whole model is
then deterministic), with ``dropout = 0`` none acts, and a kept element of the
embeddings' output is exactly the eval-mode value divided by ``1 - p``.
"""

from __future__ import annotations

import copy
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
from autograder.testing import BERT_CONFIG, DTYPE_IDS, DTYPE_NAMES, DTYPES, LOOSE, fails, forbidden

FORBIDDEN = forbidden("05-bert")
LOSS_FORBIDDEN = ["*cross_entropy*", "*nll_loss*"]

# A tiny BERT: Hugging Face's BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
# num_attention_heads=4, intermediate_size=37, max_position_embeddings=64, type_vocab_size=2,
# hidden_act="gelu", layer_norm_eps=1e-12, hidden_dropout_prob=0.1) in this week's arguments.
CONFIG = BERT_CONFIG
V, D = CONFIG["vocab_size"], CONFIG["d_model"]
PAD, CLS, SEP, MASK = 0, 1, 2, 3
FIRST_WORD = 5  # ids 0-4 are special ([PAD], [CLS], [SEP], [MASK], [UNK])


def at_real(x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, T, ...)`` with the padded positions set to zero (their values are not part of the API)."""
    keep = real.reshape(*real.shape, *([1] * (x.dim() - real.dim())))
    return torch.where(keep, x, torch.zeros_like(x))


# -- weights and inputs ----------------------------------------------------------


def hf_shapes(n_layers: int = 2) -> dict[str, tuple[int, ...]]:
    """Names and shapes of ``transformers``' ``BertForMaskedLM(config).state_dict()`` for CONFIG."""
    f, max_len, types = CONFIG["d_ff"], CONFIG["max_len"], CONFIG["type_vocab_size"]
    shapes: dict[str, tuple[int, ...]] = {
        "bert.embeddings.word_embeddings.weight": (V, D),
        "bert.embeddings.position_embeddings.weight": (max_len, D),
        "bert.embeddings.token_type_embeddings.weight": (types, D),
        "bert.embeddings.LayerNorm.weight": (D,),
        "bert.embeddings.LayerNorm.bias": (D,),
    }
    for i in range(n_layers):
        prefix = f"bert.encoder.layer.{i}."
        for name, out_features, in_features in [
            ("attention.self.query", D, D),
            ("attention.self.key", D, D),
            ("attention.self.value", D, D),
            ("attention.output.dense", D, D),
            ("intermediate.dense", f, D),
            ("output.dense", D, f),
        ]:
            shapes[f"{prefix}{name}.weight"] = (out_features, in_features)
            shapes[f"{prefix}{name}.bias"] = (out_features,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{prefix}{name}.weight"] = (D,)
            shapes[f"{prefix}{name}.bias"] = (D,)
    shapes.update(
        {
            "cls.predictions.bias": (V,),
            "cls.predictions.transform.dense.weight": (D, D),
            "cls.predictions.transform.dense.bias": (D,),
            "cls.predictions.transform.LayerNorm.weight": (D,),
            "cls.predictions.transform.LayerNorm.bias": (D,),
            "cls.predictions.decoder.weight": (V, D),  # tied: the word embeddings
            "cls.predictions.decoder.bias": (V,),  # tied: cls.predictions.bias
        }
    )
    return shapes


def hf_state_dict(seed: int, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """A checkpoint as ``BertForMaskedLM`` names it: std 0.5 everywhere, LayerNorm weights 1 + 0.5 N(0, 1)."""
    state = {}
    for i, (name, shape) in enumerate(hf_shapes().items()):
        if name == "cls.predictions.decoder.weight":
            state[name] = state["bert.embeddings.word_embeddings.weight"]
        elif name == "cls.predictions.decoder.bias":
            state[name] = state["cls.predictions.bias"]
        else:
            offset = 1.0 if name.endswith("LayerNorm.weight") else 0.0
            state[name] = randn(*shape, dtype=dtype, seed=seed + i, scale=0.5) + offset
    return state


def load(mine, dtype: torch.dtype, state: dict[str, torch.Tensor]) -> None:
    if dtype == torch.float64:
        mine.double()
    mine.load_state_dict(state)


def build_model(student, reference, dtype: torch.dtype, seed: int):
    """The reference and the student's BertForMaskedLM with the same weights, both in eval mode."""
    state = reference.from_hf_state_dict(hf_state_dict(seed, dtype))
    ref = reference.BertForMaskedLM(**CONFIG).to(dtype)
    ref.load_state_dict(state)
    ref.eval()
    mine = student.BertForMaskedLM(**CONFIG)
    load(mine, dtype, state)
    mine.eval()
    return ref, mine, state


def sub_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name[len(prefix) :]: value for name, value in state.items() if name.startswith(prefix)}


def batch(lengths: list[int], length: int, seed: int):
    """``[CLS] A [SEP] B [SEP] [PAD]...``: ids, segment ids (0 for A, 1 for B) and the attention mask."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(FIRST_WORD, V, (len(lengths), length), generator=generator)
    token_types = torch.zeros(len(lengths), length, dtype=torch.long)
    attention_mask = torch.zeros(len(lengths), length, dtype=torch.long)
    for b, n in enumerate(lengths):
        middle = n // 2
        ids[b, 0], ids[b, middle], ids[b, n - 1] = CLS, SEP, SEP
        ids[b, n:] = PAD
        token_types[b, middle + 1 : n] = 1
        attention_mask[b, :n] = 1
    return ids, token_types, attention_mask


# -- the key padding mask --------------------------------------------------------


@pytest.mark.parametrize("kind", ["int", "bool"])
def test_key_padding_mask(student, reference, kind):
    _, _, attention_mask = batch([7, 4, 1], 7, seed=1)
    if kind == "bool":
        attention_mask = attention_mask.bool()
    expected = reference.key_padding_mask(attention_mask)
    assert_equal(
        student.key_padding_mask(attention_mask),
        expected,
        name=f"key_padding_mask of a ({kind}) attention_mask for lengths [7, 4, 1]",
        mistakes={"the polarity is inverted: True must mean a real token (may attend)": ~expected},
        hint="bool (B, 1, 1, T), True where attention_mask is nonzero",
    )


# -- the encoder layers, as BERT builds them ---------------------------------------------


def layer_variants(layer, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """What one of the model's layers returns when it is built with a known mistake, from copies (eval mode)."""
    pre, tanh, relu, default_eps = (copy.deepcopy(layer) for _ in range(4))
    pre.norm_first = True
    tanh.ff.activation = "gelu_tanh"
    relu.ff.activation = "relu"
    default_eps.norm1.eps = default_eps.norm2.eps = 1e-5
    return {
        "pre-norm layers (norm_first=True) where BERT's are post-norm": pre(x, mask=mask),
        "the tanh GELU in the feed-forward network where BERT uses the exact one": tanh(x, mask=mask),
        "ReLU, the block's default activation: BERT's layers take activation='gelu'": relu(x, mask=mask),
        "the norms have the block's default eps (1e-5), not the model's eps": default_eps(x, mask=mask),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_encoder_layers(student, reference, dtype):
    """Each of the model's layers on its own: the week 04 block as BertForMaskedLM must build it."""
    ref, mine, _ = build_model(student, reference, dtype, seed=10)
    x = randn(3, 11, D, dtype=dtype, seed=11)
    real = torch.arange(11)[None, :] < torch.tensor([[11], [6], [3]])
    mask = real[:, None, None, :]
    for i, layer in enumerate(ref.layers):
        with torch.no_grad():
            expected = layer(x, mask=mask)
            mistakes = layer_variants(layer, x, mask)
        label = (
            f"BertForMaskedLM(tiny: D=32, 4 heads, F=37, eps=1e-12, dropout=0.1 in eval mode).layers[{i}] "
            f"on its own, lengths [11, 6, 3], real tokens, {DTYPE_NAMES[dtype]}"
        )
        out = expect_tensor(mine.layers.attr(str(i))(x, mask=mask), name=label, shape=x.shape, dtype=dtype)
        assert_close(
            at_real(out, real),
            at_real(expected, real),
            name=label,
            mistakes={description: at_real(value, real) for description, value in mistakes.items()},
            hint="each layer is TransformerBlock(D, H, F, dropout=dropout, norm_first=False, activation='gelu', "
            "eps=eps): BERT's layers are post-norm with the exact GELU",
            **(LOOSE if dtype == torch.float32 else {}),
        )


# -- embeddings -------------------------------------------------------------------


def embedding_variants(ref, ids: torch.Tensor, token_types: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """What embeddings with a known mistake return, from the reference's own tables (eval mode)."""
    words = ref.word_embeddings.weight[ids]
    positions = ref.position_embeddings.weight[: ids.size(1)]
    segments = ref.token_type_embeddings.weight[token_types if token_types is not None else torch.zeros_like(ids)]
    shifted = ref.position_embeddings.weight[1 : ids.size(1) + 1]
    return {
        "the token_type (segment) embeddings are not added": ref.norm(words + positions),
        "positions counted from 1 instead of 0": ref.norm(words + shifted + segments),
        "the embedding LayerNorm is missing": words + positions + segments,
        "the position embeddings are not added": ref.norm(words + segments),
    }


@pytest.mark.parametrize("segments", ["given", "None"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_embeddings(student, reference, dtype, segments):
    state = sub_state(reference.from_hf_state_dict(hf_state_dict(20, dtype)), "embeddings.")
    args = (V, D, CONFIG["max_len"], CONFIG["type_vocab_size"])
    kwargs = {"eps": 1e-12, "dropout": 0.1}
    ref = reference.BertEmbeddings(*args, **kwargs).to(dtype)
    ref.load_state_dict(state)
    ref.eval()
    mine = student.BertEmbeddings(*args, **kwargs)
    load(mine, dtype, state)
    mine.eval()
    ids, token_types, _ = batch([13, 13, 8], 13, seed=21)
    types = token_types if segments == "given" else None
    with torch.no_grad():
        expected = ref(ids, types)
        mistakes = embedding_variants(ref, ids, types)
    assert_close(
        mine(ids, types),
        expected,
        name=f"BertEmbeddings(99, 32, max_len=64) on ids (3, 13), token_type_ids {segments}, "
        f"dropout=0.1 in eval mode, {DTYPE_NAMES[dtype]}",
        mistakes=mistakes,
        hint="norm(word_embeddings(ids) + position_embeddings(0..T-1) + token_type_embeddings(types)); "
        "token_type_ids=None means all zeros",
    )


def test_embeddings_dropout_after_norm(student, reference):
    """With dropout = 1 in training mode the output is all zeros only if dropout comes after the norm."""
    state = sub_state(reference.from_hf_state_dict(hf_state_dict(25)), "embeddings.")
    mine = student.BertEmbeddings(V, D, CONFIG["max_len"], CONFIG["type_vocab_size"], eps=1e-12, dropout=1.0)
    load(mine, torch.float64, state)
    ids, token_types, _ = batch([9, 6], 9, seed=26)
    assert_close(
        mine(ids, token_types),
        torch.zeros(2, 9, D, dtype=torch.float64),
        name="BertEmbeddings(dropout=1.0) in training mode",
        mistakes={
            "dropout before the LayerNorm; it comes after: dropout(norm(sum))": state["norm.bias"].expand(2, 9, D)
        },
        hint="the embeddings' output is dropout(norm(word + position + token_type))",
    )


@pytest.mark.parametrize("p", [0.5, 0.9])
def test_embeddings_dropout_in_training(student, reference, p):
    """In training mode each output element is 0 or the eval-mode value / (1 - p), and about p of them are 0."""
    state = sub_state(reference.from_hf_state_dict(hf_state_dict(27)), "embeddings.")
    args = (V, D, CONFIG["max_len"], CONFIG["type_vocab_size"])
    ref = reference.BertEmbeddings(*args, eps=1e-12, dropout=p).double()
    ref.load_state_dict(state)
    ref.eval()
    mine = student.BertEmbeddings(*args, eps=1e-12, dropout=p)
    load(mine, torch.float64, state)  # a fresh module: training mode
    ids, token_types, _ = batch([13] * 8, 13, seed=28)
    with torch.no_grad():
        evaluated = ref(ids, token_types)
    label = f"BertEmbeddings(dropout={p}) in training mode on ids (8, 13)"
    out = expect_tensor(mine(ids, token_types), name=label, shape=(8, 13, D), dtype=torch.float64)
    kept = out != 0
    assert_close(
        out,
        torch.where(kept, evaluated / (1 - p), torch.zeros_like(evaluated)),
        name=f"{label}: the elements it keeps",
        mistakes={"the kept elements are not divided by 1 - p": torch.where(kept, evaluated, 0.0)},
        hint="dropout(norm(sum)) with inverted dropout (week 04's Dropout): a kept element is norm(sum) / (1 - p)",
    )
    dropped, n = 1 - kept.double().mean().item(), kept.numel()
    tolerance = 8 * math.sqrt(p * (1 - p) / n)  # about eight standard deviations
    if abs(dropped - p) > tolerance:
        fails(f"{label}: {dropped:.1%} of {n} elements were dropped; expected {p:.0%} ± {tolerance:.1%}")


# -- the MLM head --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_mlm_head(student, reference, dtype):
    full = reference.from_hf_state_dict(hf_state_dict(30, dtype))
    state = sub_state(full, "mlm_head.")
    ref = reference.MLMHead(D, V, eps=1e-12).to(dtype)
    ref.load_state_dict(state)
    mine = student.MLMHead(D, V, eps=1e-12)
    load(mine, dtype, state)
    hidden = randn(3, 7, D, dtype=dtype, seed=31)
    decoder = full["embeddings.word_embeddings.weight"]
    with torch.no_grad():
        expected = ref(hidden, decoder)
        h = ref.transform(hidden)
        mistakes = {
            "the tanh GELU where BERT uses the exact one": ref.norm(reference.gelu(h, "tanh")) @ decoder.T + ref.bias,
            "no GELU in the transform": ref.norm(h) @ decoder.T + ref.bias,
            "the transform's LayerNorm is missing": reference.gelu(h) @ decoder.T + ref.bias,
            "the output bias is not added": ref.norm(reference.gelu(h)) @ decoder.T,
            "the transform is skipped: scores straight from the hidden states": hidden @ decoder.T + ref.bias,
        }
    assert_close(
        mine(hidden, decoder),
        expected,
        name=f"MLMHead(32, 99) on hidden (3, 7, 32) with a (99, 32) decoder_weight, {DTYPE_NAMES[dtype]}",
        mistakes=mistakes,
        hint="norm(gelu(transform(hidden))) @ decoder_weight.T + bias",
        **(LOOSE if dtype == torch.float32 else {}),
    )


# -- the whole model ---------------------------------------------------------------------


def test_state_dict_names(student, reference):
    expected = {name: tuple(value.shape) for name, value in reference.BertForMaskedLM(**CONFIG).state_dict().items()}
    got = student.BertForMaskedLM(**CONFIG).state_dict()
    if not isinstance(got, dict):
        fails("BertForMaskedLM(...).state_dict() did not return a dict of tensors")
    got_shapes = {name: tuple(value.shape) for name, value in got.items() if isinstance(value, torch.Tensor)}
    extra, missing = sorted(set(got_shapes) - set(expected)), sorted(set(expected) - set(got_shapes))
    if extra or missing:
        tied = [name for name in extra if got_shapes[name] == (V, D) and name.startswith("mlm_head")]
        message = f"BertForMaskedLM's state_dict has unexpected entries {extra[:6]} and lacks {missing[:6]}"
        if tied:
            message += (
                "; the MLM head must not own a (V, D) output matrix: it uses embeddings.word_embeddings.weight "
                "(weight tying)"
            )
        fails(message)
    wrong = [
        f"{name}: {got_shapes[name]}, expected {shape}" for name, shape in expected.items() if got_shapes[name] != shape
    ]
    if wrong:
        fails(f"BertForMaskedLM's state_dict has entries of the wrong shape: {wrong[:4]}")


def model_variants(ref, ids, token_types, attention_mask) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(hidden, logits) of a model with a known mistake, from copies of the reference (eval mode)."""
    variants = {}
    pre = copy.deepcopy(ref)
    for layer in pre.layers:
        layer.norm_first = True
    variants["pre-norm layers where BERT's are post-norm"] = pre(ids, token_types, attention_mask)
    tanh = copy.deepcopy(ref)
    for layer in tanh.layers:
        layer.ff.activation = "gelu_tanh"
    variants["the tanh GELU in the feed-forward network where BERT uses the exact one"] = tanh(
        ids, token_types, attention_mask
    )
    no_norm = copy.deepcopy(ref)
    no_norm.embeddings.norm = torch.nn.Identity()
    variants["the embedding LayerNorm is missing"] = no_norm(ids, token_types, attention_mask)
    shifted = copy.deepcopy(ref)
    table = shifted.embeddings.position_embeddings.weight.data
    table[:-1] = table[1:].clone()
    variants["positions counted from 1 instead of 0"] = shifted(ids, token_types, attention_mask)
    variants["the token_type_ids are not used (every token in segment 0)"] = ref(ids, None, attention_mask)
    no_types = copy.deepcopy(ref)
    no_types.embeddings.token_type_embeddings.weight.data.zero_()
    variants["the token_type (segment) embeddings are not added"] = no_types(ids, token_types, attention_mask)
    if attention_mask is not None:
        variants["the attention_mask is ignored: real tokens attend to padding"] = ref(ids, token_types, None)
        variants["the attention_mask's polarity is inverted"] = ref(ids, token_types, 1 - attention_mask.long())
    return variants


def assert_hidden_and_logits(
    hidden,
    logits,
    expected,
    variants,
    real,
    *,
    label: str,
    hint: str,
    logits_hint: str | None = None,
    where: str = "at the real tokens",
    **tolerance,
) -> None:
    """Compare the model's ``(hidden_states, logits)`` with ``expected`` at the real tokens, naming known ``variants``."""
    for index, (what, value) in enumerate((("hidden_states", hidden), ("logits", logits))):
        assert_close(
            at_real(value, real),
            at_real(expected[index], real),
            name=f"{label}: {what} {where}",
            mistakes={description: at_real(outputs[index], real) for description, outputs in variants.items()},
            hint=hint if index == 0 or logits_hint is None else logits_hint,
            **tolerance,
        )


def check_model(mine, ref, ids, token_types, attention_mask, label: str, dtype: torch.dtype) -> None:
    with torch.no_grad():
        expected_hidden, expected_logits = ref(ids, token_types, attention_mask)
        variants = model_variants(ref, ids, token_types, attention_mask)
    result = mine(ids, token_types, attention_mask)
    hidden, logits = expect_sequence(result, 2, name=label, hint="forward returns (hidden_states, logits)")
    b, t = ids.shape
    hidden = expect_tensor(hidden, name=f"{label}: hidden_states", shape=(b, t, D), dtype=dtype)
    logits = expect_tensor(logits, name=f"{label}: logits", shape=(b, t, V), dtype=dtype)
    real = torch.ones(b, t, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    loose = LOOSE if dtype == torch.float32 else {}
    hint = (
        "embeddings, then post-norm layers (exact GELU) with a (B, 1, 1, T) mask from attention_mask, "
        "then the head with embeddings.word_embeddings.weight as the output matrix"
    )
    assert_hidden_and_logits(
        hidden,
        logits,
        (expected_hidden, expected_logits),
        variants,
        real,
        label=label,
        hint=hint,
        logits_hint="norm(gelu(transform(h))) @ word_embeddings.weight.T + bias",
        where="at the real tokens (padded ones set to 0)",
        **loose,
    )
    for what, value in (("hidden_states", hidden), ("logits", logits)):
        if not bool(torch.isfinite(value).all()):
            fails(
                f"{label}: {what} contain NaN or inf at padded positions; their values are free, but they must be "
                "finite (a sequence of padding only has empty attention rows, which give zeros, not NaN)"
            )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_model_with_padding(student, reference, dtype):
    ref, mine, _ = build_model(student, reference, dtype, seed=40)
    lengths = [13, 9, 4, 0]  # the last sequence is all padding
    ids, token_types, attention_mask = batch(lengths, 13, seed=41)
    label = (
        f"BertForMaskedLM(tiny: V=99, D=32, 2 layers, 4 heads, F=37), dropout=0.1 in eval mode, "
        f"lengths {lengths} padded to 13, {DTYPE_NAMES[dtype]}"
    )
    check_model(mine, ref, ids, token_types, attention_mask, label, dtype)


def test_model_without_padding(student, reference):
    ref, mine, _ = build_model(student, reference, torch.float64, seed=50)
    ids, _, _ = batch([10, 10], 10, seed=51)
    label = "BertForMaskedLM on (2, 10) ids, token_type_ids=None, attention_mask=None, float64"
    check_model(mine, ref, ids, None, None, label, torch.float64)


def random_state(model, seed: int) -> dict[str, torch.Tensor]:
    """float64 weights for ``model``'s own names: std 0.5, LayerNorm weights 1 + 0.5 N(0, 1)."""
    state = {}
    for i, (name, value) in enumerate(model.state_dict().items()):
        is_norm_weight = name.endswith(".weight") and name.split(".")[-2].startswith("norm")
        state[name] = randn(*value.shape, seed=seed + i, scale=0.5) + (1.0 if is_norm_weight else 0.0)
    return state


def test_model_options(student, reference):
    """Every constructor argument reaches its module: eps=0.05 in every LayerNorm, three segments."""
    config = {**CONFIG, "type_vocab_size": 3, "eps": 0.05, "dropout": 0.2}
    ref = reference.BertForMaskedLM(**config).double()
    state = random_state(ref, seed=140)
    ref.load_state_dict(state)
    ref.eval()
    mine = student.BertForMaskedLM(**config)
    load(mine, torch.float64, state)
    mine.eval()
    ids, _, attention_mask = batch([12, 8, 5], 12, seed=141)
    generator = torch.Generator().manual_seed(142)
    token_types = torch.randint(0, 3, ids.shape, generator=generator) * attention_mask  # segments 0, 1 and 2
    real = attention_mask.bool()
    with torch.no_grad():
        expected_hidden, expected_logits = ref(ids, token_types, attention_mask)
        variants = {}
        for description, modules, eps in [
            ("the MLM head's LayerNorm does not get the model's eps", ["mlm_head.norm"], 1e-12),
            ("the embeddings' LayerNorm does not get the model's eps", ["embeddings.norm"], 1e-12),
            (
                "the layers' norms have the block's default eps (1e-5), not the model's",
                [f"layers.{i}.norm{j}" for i in range(config["n_layers"]) for j in (1, 2)],
                1e-5,
            ),
        ]:
            variant = copy.deepcopy(ref)
            for module in modules:
                variant.get_submodule(module).eps = eps
            variants[description] = variant(ids, token_types, attention_mask)
    label = "BertForMaskedLM(tiny, type_vocab_size=3, eps=0.05, dropout=0.2 in eval mode), float64"
    result = expect_sequence(mine(ids, token_types, attention_mask), 2, name=label)
    hidden = expect_tensor(result[0], name=f"{label}: hidden_states", shape=(3, 12, D), dtype=torch.float64)
    logits = expect_tensor(result[1], name=f"{label}: logits", shape=(3, 12, V), dtype=torch.float64)
    hint = (
        "pass every argument on: BertEmbeddings(V, D, max_len, type_vocab_size, eps=eps, dropout=dropout), "
        "TransformerBlock(..., eps=eps), MLMHead(D, V, eps=eps)"
    )
    assert_hidden_and_logits(hidden, logits, (expected_hidden, expected_logits), variants, real, label=label, hint=hint)


@pytest.mark.parametrize("p", [1.0, 0.0])
def test_model_dropout_in_training(student, reference, p):
    """The whole model in training mode. p = 1: every dropout gives zeros, so the embeddings' output is 0 and
    each post-norm layer returns norm2(norm1(x)), a known function. p = 0: the same as eval mode."""
    config = {**CONFIG, "dropout": p}
    state = reference.from_hf_state_dict(hf_state_dict(150))
    ref = reference.BertForMaskedLM(**config).double()
    ref.load_state_dict(state)  # training mode: with p = 1 or p = 0 no dropout draws anything
    mine = student.BertForMaskedLM(**config)
    load(mine, torch.float64, state)  # a fresh model: training mode
    ids, token_types, attention_mask = batch([10, 7, 3], 10, seed=151)
    real = attention_mask.bool()
    with torch.no_grad():
        expected_hidden, expected_logits = ref(ids, token_types, attention_mask)
        variants = {}
        if p == 1.0:
            no_layer_dropout = copy.deepcopy(ref)
            for layer in no_layer_dropout.layers:
                layer.dropout1.p = layer.dropout2.p = 0.0
            variants["the layers are built without dropout=dropout (the block's default is 0)"] = no_layer_dropout(
                ids, token_types, attention_mask
            )
            no_embedding_dropout = copy.deepcopy(ref)
            no_embedding_dropout.embeddings.dropout.p = 0.0
            variants["the embeddings' output is not dropped out"] = no_embedding_dropout(
                ids, token_types, attention_mask
            )
    label = f"BertForMaskedLM(tiny, dropout={p}) in training mode, lengths [10, 7, 3], float64"
    result = expect_sequence(mine(ids, token_types, attention_mask), 2, name=label)
    hidden = expect_tensor(result[0], name=f"{label}: hidden_states", shape=(3, 10, D), dtype=torch.float64)
    logits = expect_tensor(result[1], name=f"{label}: logits", shape=(3, 10, V), dtype=torch.float64)
    hint = (
        "every dropout gets the model's `dropout`: BertEmbeddings(..., dropout=dropout) and "
        "TransformerBlock(..., dropout=dropout), and there is no other dropout"
    )
    assert_hidden_and_logits(hidden, logits, (expected_hidden, expected_logits), variants, real, label=label, hint=hint)


def test_tied_output_matrix(student, reference):
    """The logits follow the word embeddings: load a second table and the scores change with it."""
    ref, mine, state = build_model(student, reference, torch.float64, seed=60)
    ids, token_types, attention_mask = batch([8, 5], 8, seed=61)
    real = attention_mask.bool()
    changed = dict(state)
    changed["embeddings.word_embeddings.weight"] = randn(V, D, seed=62, scale=0.5)
    ref.load_state_dict(changed)
    mine.load_state_dict(changed)
    with torch.no_grad():
        expected = ref(ids, token_types, attention_mask)[1]
    _, logits = expect_sequence(mine(ids, token_types, attention_mask), 2, name="BertForMaskedLM")
    logits = expect_tensor(logits, name="logits", shape=(2, 8, V), dtype=torch.float64)
    assert_close(
        at_real(logits, real),
        at_real(expected, real),
        name="logits after loading a new embeddings.word_embeddings.weight (everything else unchanged)",
        hint="the head's output matrix is embeddings.word_embeddings.weight itself, read at every forward",
    )


def test_tied_weight_gradient(student, reference):
    """A gradient on the logits alone reaches the word embeddings through the head, for every row."""
    ref, mine, _ = build_model(student, reference, torch.float64, seed=70)
    ids, token_types, attention_mask = batch([9, 6, 3], 9, seed=71)
    real = attention_mask.bool()
    grad_logits = randn(3, 9, V, seed=72) * real[..., None]
    mine.vjp(ids, token_types, attention_mask, grad_outputs=(None, grad_logits))
    _, logits = ref(ids, token_types, attention_mask)
    table = ref.embeddings.word_embeddings.weight
    (expected,) = reference_grads(logits, [table], grad_logits)
    detached = copy.deepcopy(ref)
    hidden = detached(ids, token_types, attention_mask)[0]
    head_detached = detached.mlm_head(hidden, detached.embeddings.word_embeddings.weight.detach())
    (lookup_only,) = reference_grads(head_detached, [detached.embeddings.word_embeddings.weight], grad_logits)
    assert_close(
        mine.embeddings.word_embeddings.weight.attr("grad").fetch(),
        expected,
        name="gradient of embeddings.word_embeddings.weight from the logits alone",
        mistakes={
            "the output matrix is detached (or a copy): the head's gradient never reaches the embeddings": lookup_only
        },
        hint="use embeddings.word_embeddings.weight itself (no .detach(), .data or .clone()) in the head",
    )


def test_model_gradients(student, reference):
    ref, mine, _ = build_model(student, reference, torch.float64, seed=80)
    ids, token_types, attention_mask = batch([11, 7, 4], 11, seed=81)
    real = attention_mask.bool()[..., None]
    grad_hidden = randn(3, 11, D, seed=82) * real  # padded positions carry no gradient: their values are free
    grad_logits = randn(3, 11, V, seed=83) * real
    mine.vjp(ids, token_types, attention_mask, grad_outputs=(grad_hidden, grad_logits))
    hidden, logits = ref(ids, token_types, attention_mask)
    names = [name for name, _ in ref.named_parameters()]
    expected = reference_grads((hidden, logits), list(ref.parameters()), (grad_hidden, grad_logits))
    hint = "keep everything differentiable: no .detach(), .item() or .data anywhere in the model"
    for name, want in zip(names, expected, strict=True):
        got = mine
        for part in name.split("."):
            got = got.attr(part)
        assert_close(got.attr("grad").fetch(), want, name=f"BertForMaskedLM: gradient of {name}", hint=hint)


def test_model_uses_no_builtin(student, reference):
    mine = student.BertForMaskedLM(**CONFIG)  # training mode: dropout is active
    ids, token_types, attention_mask = batch([9, 5], 9, seed=90)
    result = mine(ids, token_types, attention_mask)
    assert_no_forbidden_ops(
        student.last_ops,
        FORBIDDEN,
        name="BertForMaskedLM.forward in training mode",
        hint="use week 04's gelu, LayerNorm and Dropout (from block), not torch's",
    )
    expect_sequence(result, 2, name="BertForMaskedLM output")


# -- masking --------------------------------------------------------------------------


def masking_batch(batch_size: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids of sequences of random lengths, with [CLS], [SEP] and [PAD] marked as special."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, length + 1, (batch_size,), generator=generator).tolist()
    ids, _, attention_mask = batch(lengths, length, seed=seed + 1)
    special = (ids == CLS) | (ids == SEP) | (attention_mask == 0)
    return ids, special


def masking_variants(ids, special, seed: int, p: float) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, labels) of known mistakes, drawn in the documented order."""
    generator = torch.Generator().manual_seed(seed)
    draw = torch.rand(ids.shape, generator=generator) < p
    split = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(V, ids.shape, generator=generator)

    def result(selected, mask_below, random_below):
        inputs = torch.where(selected & (split < mask_below), MASK, ids)
        inputs = torch.where(selected & (split >= mask_below) & (split < random_below), random_ids, inputs)
        return inputs, torch.where(selected, ids, -100)

    selected = draw & ~special
    right_inputs, right_labels = result(selected, 0.8, 0.9)
    return {
        "special tokens ([CLS], [SEP], [PAD]) can be selected": result(draw, 0.8, 0.9),
        "the 80/10/10 split is swapped: 10% [MASK] and 80% random tokens": result(selected, 0.1, 0.9),
        "every selected token becomes [MASK] (no random or unchanged 10%)": result(selected, 1.0, 1.0),
        "labels are set at every position; only selected positions get the original id, the rest -100": (
            right_inputs,
            ids,
        ),
        "labels are the model's inputs (after masking); they must be the original ids": (
            right_inputs,
            torch.where(selected, right_inputs, -100),
        ),
        "the labels' -100 and ids are swapped": (right_inputs, torch.where(selected, -100, ids)),
    }


MASKING_CASES = {
    "seed 0, (4, 23), p=0.15": (0, 4, 23, 0.15),
    "seed 1234, (8, 50), p=0.15": (1234, 8, 50, 0.15),
    "seed 7, (3, 17), p=0.4": (7, 3, 17, 0.4),
    "seed 99, (5, 31), p=0.15, no special_tokens_mask": (99, 5, 31, 0.15),
}


@pytest.mark.parametrize("case", list(MASKING_CASES))
def test_mask_tokens_exact(student, reference, case):
    seed, batch_size, length, p = MASKING_CASES[case]
    ids, special = masking_batch(batch_size, length, seed=seed + 5)
    if "no special" in case:
        special = None
    expected_inputs, expected_labels = reference.mask_tokens(ids, V, MASK, special, seed, mlm_probability=p)
    variants = masking_variants(
        ids, special if special is not None else torch.zeros_like(ids, dtype=torch.bool), seed, p
    )
    result = student.mask_tokens(ids, V, MASK, special, seed, mlm_probability=p)
    inputs, labels = expect_sequence(result, 2, name=f"mask_tokens ({case})", hint="return (inputs, labels)")
    hint = (
        "follow the docstring's draws in order: rand for selection, rand for the 80/10/10 split, randint for the "
        "random ids, each at the full (B, T) shape, from torch.Generator().manual_seed(seed)"
    )
    assert_equal(
        labels,
        expected_labels,
        name=f"mask_tokens ({case}): labels",
        mistakes={description: lab for description, (_, lab) in variants.items()},
        hint=hint,
    )
    assert_equal(
        inputs,
        expected_inputs,
        name=f"mask_tokens ({case}): inputs",
        mistakes={description: inp for description, (inp, _) in variants.items()},
        hint=hint,
    )


def check_rate(what: str, got: float, want: float, n: int, label: str) -> None:
    tolerance = 8 * math.sqrt(want * (1 - want) / n)  # about eight standard deviations
    if abs(got - want) > tolerance:
        fails(f"{label}: {what} is {got:.2%} (of {n}); expected {want:.2%} ± {tolerance:.2%}")


@pytest.mark.parametrize("p", [0.15, 0.3])
def test_mask_tokens_statistics(student, p):
    ids, special = masking_batch(256, 120, seed=300)
    label = f"mask_tokens(p={p}) on 256 sequences of up to 120 tokens"
    inputs, labels = expect_sequence(student.mask_tokens(ids, V, MASK, special, 2024, mlm_probability=p), 2, name=label)
    inputs = expect_tensor(inputs, name=f"{label}: inputs", shape=ids.shape, dtype=torch.long)
    labels = expect_tensor(labels, name=f"{label}: labels", shape=ids.shape, dtype=torch.long)
    selected = labels != -100
    if (selected & special).any():
        fails(f"{label}: {int((selected & special).sum())} special tokens ([CLS], [SEP], [PAD]) were selected")
    if not torch.equal(labels[selected], ids[selected]):
        fails(f"{label}: a selected position's label must be its original id")
    if not torch.equal(inputs[~selected], ids[~selected]):
        fails(f"{label}: inputs changed at positions that were not selected (their label is -100)")
    if ((inputs < 0) | (inputs >= V)).any():
        fails(f"{label}: inputs contain ids outside [0, {V})")
    n_candidates, n_selected = int((~special).sum()), int(selected.sum())
    check_rate("the fraction of non-special tokens selected", n_selected / n_candidates, p, n_candidates, label)
    chosen_inputs, originals = inputs[selected], ids[selected]
    masked = chosen_inputs == MASK
    unchanged = chosen_inputs == originals
    replaced = ~masked & ~unchanged
    # A random id equals the original with probability 1/V, and is [MASK] with probability 1/V.
    check_rate(
        "the fraction of selected tokens replaced by [MASK]",
        masked.double().mean().item(),
        0.8 + 0.1 / V,
        n_selected,
        label,
    )
    check_rate(
        "the fraction of selected tokens replaced by a random id",
        replaced.double().mean().item(),
        0.1 * (1 - 2 / V),
        n_selected,
        label,
    )
    check_rate(
        "the fraction of selected tokens left unchanged",
        unchanged.double().mean().item(),
        0.1 + 0.1 / V,
        n_selected,
        label,
    )
    distinct = len(set(chosen_inputs[replaced].tolist()))
    if distinct < 40:
        fails(f"{label}: the random replacements use only {distinct} distinct ids; draw them uniformly from [0, {V})")


def test_mask_tokens_never_selects_special(student):
    """Half the tokens special and p = 0.9: no special token may ever be selected or changed."""
    ids, _ = masking_batch(16, 40, seed=400)
    special = randn(16, 40, seed=401) > 0
    for seed in (1, 2, 3):
        inputs, labels = expect_sequence(
            student.mask_tokens(ids, V, MASK, special, seed, mlm_probability=0.9), 2, name="mask_tokens"
        )
        label = f"mask_tokens(p=0.9, seed={seed}) with half the positions special"
        labels = expect_tensor(labels, name=f"{label}: labels", shape=ids.shape, dtype=torch.long)
        inputs = expect_tensor(inputs, name=f"{label}: inputs", shape=ids.shape, dtype=torch.long)
        assert_equal(
            labels[special],
            torch.full_like(ids[special], -100),
            name=f"{label}: labels at the special positions",
            hint="a position where special_tokens_mask is True is never selected: its label is -100",
        )
        assert_equal(inputs[special], ids[special], name=f"{label}: inputs at the special positions")
        if (labels[~special] == -100).double().mean() > 0.25:
            fails(f"{label}: far fewer than 90% of the other positions were selected")


def test_mask_tokens_is_seeded(student):
    ids, special = masking_batch(6, 30, seed=500)
    runs = {}
    for name, seed in (("first", 11), ("again", 11), ("other", 12)):
        inputs, labels = expect_sequence(student.mask_tokens(ids, V, MASK, special, seed), 2, name="mask_tokens")
        runs[name] = (
            expect_tensor(inputs, name=f"mask_tokens(seed={seed}): inputs", shape=ids.shape, dtype=torch.long),
            expect_tensor(labels, name=f"mask_tokens(seed={seed}): labels", shape=ids.shape, dtype=torch.long),
        )
    hint = "draw from a torch.Generator seeded with `seed`, never from the global generator"
    assert_equal(runs["again"][0], runs["first"][0], name="mask_tokens inputs for the same seed twice", hint=hint)
    assert_equal(runs["again"][1], runs["first"][1], name="mask_tokens labels for the same seed twice", hint=hint)
    if torch.equal(runs["other"][1], runs["first"][1]):
        fails("mask_tokens gave the same labels for seeds 11 and 12: use the seed")


def test_mask_tokens_leaves_global_rng_alone(student, reference):
    """Reproducible from `seed` alone: no torch.manual_seed, no draw from the global generator."""
    ids, special = masking_batch(6, 30, seed=510)
    for seed in (11, 12):
        label = f"mask_tokens(seed={seed})"
        result = student.mask_tokens(ids, V, MASK, special, seed)
        used_global_rng = student.last_used_global_rng
        inputs, labels = expect_sequence(result, 2, name=label, hint="return (inputs, labels)")
        expected_inputs, expected_labels = reference.mask_tokens(ids, V, MASK, special, seed)
        assert_equal(labels, expected_labels, name=f"{label}: labels")
        assert_equal(inputs, expected_inputs, name=f"{label}: inputs")
        assert_global_rng_untouched(
            used_global_rng,
            name=label,
            hint="draw everything from generator = torch.Generator().manual_seed(seed) (generator=generator); "
            "torch.manual_seed(seed) would reset every other random draw in the caller's program",
        )


# -- the MLM loss -----------------------------------------------------------------------


def loss_inputs(dtype: torch.dtype, seed: int, scale: float = 3.0):
    logits = randn(3, 9, V, dtype=dtype, seed=seed, scale=scale)
    generator = torch.Generator().manual_seed(seed + 1)
    labels = torch.randint(0, V, (3, 9), generator=generator)
    ignored = torch.rand(3, 9, generator=generator) < 0.7
    ignored[0, 0] = False
    return logits, labels.masked_fill(ignored, -100)


def loss_mistakes(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    labelled = labels != -100
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    picked = log_probs.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    total = -(picked * labelled).sum()
    with_ignored_as_zero = -log_probs.gather(-1, labels.clamp(min=0)[..., None])[..., 0].mean()
    return {
        "the mean over all B * T positions; average over the labelled ones only": total / labels.numel(),
        "the sum over labelled positions, not their mean": total,
        "ignored positions (-100) counted as class 0": with_ignored_as_zero,
        "the sign is flipped (the loss is -log p, a positive number)": -total / labelled.sum(),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("seed", [1, 2])
def test_mlm_loss(student, reference, seed, dtype):
    logits, labels = loss_inputs(dtype, seed=100 + seed)
    expected = reference.mlm_loss(logits, labels)
    assert_close(
        student.mlm_loss(logits, labels),
        expected,
        name=f"mlm_loss on logits (3, 9, 99) with {int((labels != -100).sum())} of 27 positions labelled, "
        f"{DTYPE_NAMES[dtype]}",
        mistakes={description: value.to(dtype) for description, value in loss_mistakes(logits, labels).items()},
        hint="-log softmax(logits)[label], averaged over the positions whose label is not -100; a scalar",
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_mlm_loss_large_logits(student, reference, dtype):
    logits, labels = loss_inputs(dtype, seed=110, scale=1e4)
    expected = reference.mlm_loss(logits, labels)
    assert_close(
        student.mlm_loss(logits, labels),
        expected,
        name=f"mlm_loss on logits of size ~1e4, {DTYPE_NAMES[dtype]}",
        hint="log softmax as logits - logsumexp(logits): exp of 1e4 overflows",
    )


def test_mlm_loss_without_labels(student):
    logits, _ = loss_inputs(torch.float64, seed=120)
    labels = torch.full((3, 9), -100)
    assert_close(
        student.mlm_loss(logits, labels),
        torch.tensor(0.0, dtype=torch.float64),
        name="mlm_loss when every label is -100",
        mistakes={"0 / 0: divide by the number of labelled positions only when it is not zero": torch.tensor(math.nan)},
        hint="with no labelled position the loss is 0, not NaN (clamp the count to at least 1)",
    )


def test_mlm_loss_gradient(student, reference):
    logits, labels = loss_inputs(torch.float64, seed=130)
    logits.requires_grad_()
    _, grads = student.mlm_loss.vjp(logits, labels, grad_outputs=torch.tensor(1.0, dtype=torch.float64))
    (expected,) = reference_grads(reference.mlm_loss(logits, labels), [logits])
    assert_close(
        grads[0],
        expected,
        name="gradient of mlm_loss with respect to the logits",
        hint="(softmax - one_hot(label)) / N at labelled positions, 0 at ignored ones; keep it differentiable",
    )


def test_mlm_loss_uses_no_builtin(student, reference):
    logits, labels = loss_inputs(torch.float32, seed=140)
    result = student.mlm_loss(logits, labels)
    assert_no_forbidden_ops(
        student.last_ops,
        LOSS_FORBIDDEN,
        name="mlm_loss",
        hint="write the cross-entropy yourself: logsumexp (or log_softmax), gather, mean over labelled positions",
    )
    assert_close(result, reference.mlm_loss(logits, labels), name="mlm_loss (float32)")
