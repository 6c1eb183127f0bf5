"""Hidden tests for week 07 (encoder-decoder models, the prefix LM, a T5-style variant).

Expected values come from the reference solution (``reference``) run here, in the
trusted grader, with the same weights loaded into the student's modules by name;
``tests/test_week07_reference.py`` checks that reference against loops for the
masks, ``nn.TransformerDecoderLayer`` and ``nn.Transformer`` (padding on both
sides, source and target of different lengths), ``F.cross_entropy``, a greedy
decoder that translates one unpadded sentence at a time, and
``transformers.T5Model`` built from a tiny config (with the options test's settings too).

Training mode is graded without seeding the worker's generator: with ``dropout=1`` every dropout
gives zeros (exact results), ``embed`` with ``dropout=0.5`` is exact element by element (0 or twice
the eval value), and T5's stacks are checked by statistics with bounds far outside their spread.

Known mistakes are computed by running a copy of the reference with the mistake
made (``variant``), so the feedback can name them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import pytest
import torch

from autograder import (
    CheckFailed,
    assert_close,
    assert_equal,
    assert_no_forbidden_ops,
    expect_tensor,
    randn,
    reference_grads,
)
from autograder.testing import DTYPE_IDS, DTYPE_NAMES, DTYPES, LOOSE, fails, forbidden
from autograder.testing import key_padding as padding
from autograder.testing import real_tokens as real

FORBIDDEN = forbidden("07-encdec")
D_MODEL, N_HEADS, D_FF = 24, 4, 40
SRC_VOCAB, TGT_VOCAB = 23, 19
PAD, BOS = 0, 1
# The original model: 2 + 2 layers, dropout 0.1 (tests run it in eval mode), eps 0.02.
ORIGINAL = (SRC_VOCAB, TGT_VOCAB, D_MODEL, N_HEADS, D_FF, 2, 2)
ORIGINAL_KWARGS = {"dropout": 0.1, "eps": 0.02}
# The T5 variant: vocabulary 37, D 32, 4 heads of 8, d_ff 37, 2 + 2 layers; 16 buckets up to distance 20
# so that the source (11) and target (9) lengths reach the logarithmic buckets.
T5_ARGS = (37, 32, 4, 8, 37, 2, 2)
T5_KWARGS = {"num_buckets": 16, "max_distance": 20, "dropout": 0.1}
T5_SCALE = 0.25  # weights ~ N(0, 0.25^2): T5's unscaled scores stay out of the one-hot regime


def build(student, reference, cls: str, args: tuple, kwargs: dict, dtype: torch.dtype, seed: int, scale: float = 0.5):
    """The reference module with non-trivial weights (std ``scale``; norm weights 1 + 0.5 N(0, 1); T5's relative
    bias tables N(0, 1)), in eval mode, and the student's with the same weights, in eval mode."""
    ref = getattr(reference, cls)(*args, **kwargs).to(dtype)
    state = {}
    for i, (name, value) in enumerate(ref.state_dict().items()):
        is_norm_weight = name.endswith("weight") and (cls in ("LayerNorm", "RMSNorm") or "norm" in name)
        std = 0.5 if is_norm_weight else 1.0 if "relative_attention_bias" in name else scale
        state[name] = randn(*value.shape, dtype=dtype, seed=seed + i, scale=std) + (1.0 if is_norm_weight else 0.0)
    ref.load_state_dict(state)
    ref.eval()
    mine = getattr(student, cls)(*args, **kwargs)
    if dtype == torch.float64:
        mine.double()
    mine.load_state_dict(state)
    mine.eval()
    return ref, mine


def variant(module: torch.nn.Module, change: Callable[[torch.nn.Module], None]) -> torch.nn.Module:
    """A copy of the reference ``module`` with a known mistake made by ``change``."""
    twin = copy.deepcopy(module)
    change(twin)
    return twin


def tokens(lengths: list[int], length: int, vocab: int, seed: int, pad_id: int = PAD) -> torch.Tensor:
    """Random ids in ``[3, vocab)`` (0, 1, 2 are PAD, BOS, EOS), ``pad_id`` after each length."""
    ids = torch.randint(3, vocab, (len(lengths), length), generator=torch.Generator().manual_seed(seed))
    return ids.masked_fill(~real(lengths, length), pad_id)


def causal(rows: int, columns: int | None = None) -> torch.Tensor:
    return torch.ones(rows, rows if columns is None else columns, dtype=torch.bool).tril()


def at_real(value, expected: torch.Tensor, keep: torch.Tensor, name: str) -> torch.Tensor:
    """The student's ``value`` at the real positions ``keep`` ``(B, T)``, after checking its type, shape and dtype."""
    value = expect_tensor(value, name=name, shape=tuple(expected.shape), dtype=expected.dtype)
    return value[keep]


def check(actual, expected: torch.Tensor, mistakes: Callable[[], dict[str, torch.Tensor]], **kwargs) -> None:
    """``assert_close`` (``assert_equal`` for integers) that works out the known mistakes' values only when the
    student's value is wrong: each one is a whole forward pass of a changed reference, which a right answer
    should not pay for."""
    compare = assert_close if expected.is_floating_point() else assert_equal
    try:
        compare(actual, expected, **kwargs)
    except CheckFailed:
        with torch.no_grad():
            known = mistakes()
        compare(actual, expected, mistakes=known, **kwargs)


# -- the prefix-LM mask -----------------------------------------------------------


PREFIX_CASES = {
    "prefixes [0, 3, 7] of T=7": ([0, 3, 7], 7),
    "prefixes [5, 1, 2] of T=5": ([5, 1, 2], 5),
    "prefixes [2, 6, 0, 4] of T=6": ([2, 6, 0, 4], 6),
}


@pytest.mark.parametrize("case", list(PREFIX_CASES))
def test_prefix_lm_mask(student, reference, case):
    prefixes, length = PREFIX_CASES[case]
    lengths = torch.tensor(prefixes)
    expected = reference.prefix_lm_mask(lengths, length)
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    p = lengths[:, None, None, None]
    assert_equal(
        student.prefix_lm_mask(lengths, length),
        expected,
        name=f"prefix_lm_mask with {case}",
        mistakes={
            "off by one: the prefix is keys j < prefix_length, not j <= prefix_length": (j <= p) | (j <= i),
            "the prefix is ignored: that is the plain causal mask": (j <= i).expand(len(prefixes), 1, -1, -1),
            "the prefix's queries see the whole sequence; only keys inside the prefix are visible both ways": (i < p)
            | (j <= i),
        },
        hint="query i may attend to key j iff j < prefix_lengths[b] or j <= i; shape (B, 1, T, T)",
    )


# -- the decoder layer -------------------------------------------------------------

DECODER_X, DECODER_MEMORY = (3, 6), (3, 9)  # (B, Tt) and (B, Ts)
TGT_LENGTHS, SRC_LENGTHS = [6, 4, 1], [9, 3, 7]


def decoder_inputs(dtype: torch.dtype, seed: int):
    x = randn(*DECODER_X, D_MODEL, dtype=dtype, seed=seed)
    memory = randn(*DECODER_MEMORY, D_MODEL, dtype=dtype, seed=seed + 1)
    tgt_mask = causal(6) & padding(TGT_LENGTHS, 6)
    memory_mask = padding(SRC_LENGTHS, 9)
    return x, memory, tgt_mask, memory_mask


def decoder_layer_mistakes(ref, x, memory, tgt_mask, memory_mask) -> dict[str, torch.Tensor]:
    def post(h, sublayer, norm):
        return norm(h + sublayer(h))

    def run(self_mask, cross_context, cross_mask):
        h = post(x, lambda a: ref.self_attn(a, mask=self_mask)[0], ref.norm1)
        h = post(h, lambda a: ref.cross_attn(a, context=cross_context(a), mask=cross_mask)[0], ref.norm2)
        return post(h, ref.ff, ref.norm3)

    pre = x + ref.self_attn(ref.norm1(x), mask=tgt_mask)[0]
    pre = pre + ref.cross_attn(ref.norm2(pre), context=memory, mask=memory_mask)[0]
    pre = pre + ref.ff(ref.norm3(pre))
    return {
        "the cross-attention reads the decoder's own states; its keys and values come from memory": run(
            tgt_mask, lambda a: a, tgt_mask
        ),
        "a causal mask on the cross-attention; it may see every real source token": run(
            tgt_mask, lambda a: memory, memory_mask & causal(6, 9)
        ),
        "the source padding is ignored in the cross-attention (memory_mask unused)": run(
            tgt_mask, lambda a: memory, None
        ),
        "the self-attention is not masked (tgt_mask unused)": run(None, lambda a: memory, memory_mask),
        "pre-norm where the original (post-norm) layer was asked for": pre,
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_decoder_layer(student, reference, dtype):
    kwargs = {"dropout": 0.1, "eps": 0.02}
    ref, mine = build(student, reference, "DecoderLayer", (D_MODEL, N_HEADS, D_FF), kwargs, dtype, seed=40)
    x, memory, tgt_mask, memory_mask = decoder_inputs(dtype, seed=41)
    with torch.no_grad():
        expected = ref(x, memory, tgt_mask, memory_mask)
    check(
        mine(x, memory, tgt_mask, memory_mask),
        expected,
        lambda: decoder_layer_mistakes(ref, x, memory, tgt_mask, memory_mask),
        name=f"DecoderLayer(24, 4, 40, dropout=0.1 in eval mode), Tt=6, Ts=9, padding on both sides, {DTYPE_NAMES[dtype]}",
        hint="x = norm1(x + self-attention(x, tgt_mask)); x = norm2(x + cross-attention(queries x, keys/values memory, "
        "memory_mask)); x = norm3(x + ff(x))",
        **(LOOSE if dtype == torch.float32 else {}),
    )


def test_decoder_layer_gradients(student, reference):
    kwargs = {"dropout": 0.1, "eps": 0.02}
    ref, mine = build(student, reference, "DecoderLayer", (D_MODEL, N_HEADS, D_FF), kwargs, torch.float64, seed=50)
    x, memory, tgt_mask, memory_mask = decoder_inputs(torch.float64, seed=51)
    x.requires_grad_()
    memory.requires_grad_()
    grad_output = randn(*DECODER_X, D_MODEL, seed=53)
    _, grads = mine.vjp(x, memory, tgt_mask, memory_mask, grad_outputs=grad_output)
    expected = reference_grads(ref(x, memory, tgt_mask, memory_mask), [x, memory, *ref.parameters()], grad_output)
    hint = "keep everything differentiable, memory included: no .detach(), .item() or .data"
    assert_close(grads[0], expected[0], name="DecoderLayer: gradient with respect to x", hint=hint)
    assert_close(grads[1], expected[1], name="DecoderLayer: gradient with respect to memory", hint=hint)
    for (name, _), want in zip(ref.named_parameters(), expected[2:], strict=True):
        got = mine
        for part in name.split("."):
            got = got.attr(part)
        assert_close(got.attr("grad").fetch(), want, name=f"DecoderLayer: gradient of {name}", hint=hint)


# -- the original encoder-decoder ----------------------------------------------------

MODEL_SRC, MODEL_TGT = [7, 5, 3], [4, 6, 2]


def model_inputs():
    src = tokens(MODEL_SRC, 7, SRC_VOCAB, seed=61)
    tgt = tokens(MODEL_TGT, 6, TGT_VOCAB, seed=62)
    tgt[:, 0] = BOS
    return src, tgt, torch.tensor(MODEL_SRC), torch.tensor(MODEL_TGT)


def embed_without(model: torch.nn.Module, reference, *, scale: bool = True, positions: bool = True) -> None:
    def embed(tokens, table):
        vectors = table(tokens) * (math.sqrt(model.d_model) if scale else 1.0)
        if positions:
            at = torch.arange(tokens.shape[1], dtype=vectors.dtype)
            vectors = vectors + reference.sinusoidal_encoding(at, model.d_model)
        return model.dropout(vectors)

    model.embed = embed


def without_final_norms(model: torch.nn.Module) -> None:
    model.encoder.norm = torch.nn.Identity()
    model.decoder.norm = torch.nn.Identity()


def decode_with(model: torch.nn.Module, reference, *, causal_self: bool = True, memory_padding: bool = True) -> None:
    def decode(tgt, memory, src_lengths, tgt_lengths):
        length = tgt.shape[1]
        self_mask = reference.padding_mask(tgt_lengths, length)
        if causal_self:
            self_mask = self_mask & reference.causal_mask(length)
        memory_mask = reference.padding_mask(src_lengths, memory.shape[1]) if memory_padding else None
        return model.decoder(model.embed(tgt, model.tgt_embed), memory, self_mask, memory_mask)

    model.decode = decode


def encode_without_padding(model: torch.nn.Module) -> None:
    def encode(src, src_lengths):
        return model.encoder(model.embed(src, model.src_embed))

    model.encode = encode


def model_mistakes(ref, reference, call: Callable[[torch.nn.Module], torch.Tensor]) -> dict[str, torch.Tensor]:
    changes = {
        "the embeddings are not multiplied by sqrt(d_model)": lambda m: embed_without(m, reference, scale=False),
        "no positional encoding is added to the embeddings": lambda m: embed_without(m, reference, positions=False),
        "the encoder's self-attention ignores the source padding": encode_without_padding,
        "the cross-attention ignores the source padding (memory mask)": lambda m: decode_with(
            m, reference, memory_padding=False
        ),
        "the decoder's self-attention is not causal": lambda m: decode_with(m, reference, causal_self=False),
        "the final LayerNorm after each stack is missing (nn.Transformer has encoder.norm and decoder.norm)": (
            without_final_norms
        ),
    }
    with torch.no_grad():
        return {description: call(variant(ref, change)) for description, change in changes.items()}


MODEL_HINT = (
    "embed: table(ids) * sqrt(d_model) + sinusoidal positions; encoder with the source padding mask; decoder with "
    "causal & target padding for self-attention and the source padding for cross-attention; final norms; generator"
)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_encode(student, reference, dtype):
    ref, mine = build(student, reference, "EncoderDecoder", ORIGINAL, ORIGINAL_KWARGS, dtype, seed=70)
    src, _, src_lengths, _ = model_inputs()
    keep = real(MODEL_SRC, 7)
    with torch.no_grad():
        expected = ref.encode(src, src_lengths)
    label = f"EncoderDecoder.encode, source lengths {MODEL_SRC} of 7, {DTYPE_NAMES[dtype]}"
    check(
        at_real(mine.encode(src, src_lengths), expected, keep, name=label),
        expected[keep],
        lambda: model_mistakes(ref, reference, lambda m: m.encode(src, src_lengths)[keep]),
        name=f"{label}: the memory at the real source positions",
        hint=MODEL_HINT,
        **(LOOSE if dtype == torch.float32 else {}),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_forward_logits(student, reference, dtype):
    ref, mine = build(student, reference, "EncoderDecoder", ORIGINAL, ORIGINAL_KWARGS, dtype, seed=80)
    src, tgt, src_lengths, tgt_lengths = model_inputs()
    keep = real(MODEL_TGT, 6)
    with torch.no_grad():
        expected = ref(src, tgt, src_lengths, tgt_lengths)
    label = (
        f"EncoderDecoder logits, source lengths {MODEL_SRC} of 7, target lengths {MODEL_TGT} of 6, {DTYPE_NAMES[dtype]}"
    )
    check(
        at_real(mine(src, tgt, src_lengths, tgt_lengths), expected, keep, name=label),
        expected[keep],
        lambda: model_mistakes(ref, reference, lambda m: m(src, tgt, src_lengths, tgt_lengths)[keep]),
        name=f"{label}: the logits at the real target positions",
        hint=MODEL_HINT,
        **(LOOSE if dtype == torch.float32 else {}),
    )


# -- teacher forcing -------------------------------------------------------------------

TF_SRC, TF_TGT = [6, 4, 2], [7, 3, 5]


def teacher_forcing_inputs(pad_id: int):
    src = tokens(TF_SRC, 6, SRC_VOCAB, seed=91, pad_id=pad_id)
    tgt = tokens(TF_TGT, 7, TGT_VOCAB, seed=92, pad_id=pad_id)
    tgt[:, 0] = BOS
    return src, tgt, torch.tensor(TF_SRC), torch.tensor(TF_TGT)


def teacher_forcing_mistakes(ref, src, tgt, src_lengths, tgt_lengths, pad_id) -> dict[str, torch.Tensor]:
    vocab = TGT_VOCAB
    with torch.no_grad():
        logits = ref(src, tgt[:, :-1], src_lengths, tgt_lengths - 1)
        per_token = torch.nn.functional.cross_entropy(
            logits.reshape(-1, vocab), tgt[:, 1:].reshape(-1), reduction="none"
        )
        counted = tgt[:, 1:].reshape(-1) != pad_id
        unshifted = ref(src, tgt, src_lengths, tgt_lengths)
        copy_loss = torch.nn.functional.cross_entropy(
            unshifted.reshape(-1, vocab), tgt.reshape(-1), ignore_index=pad_id
        )
        return {
            "the padding is counted: average over the real target tokens only (ignore pad_id)": per_token.mean(),
            "not shifted: the decoder reads tgt[:, :-1] and is scored on the next tokens tgt[:, 1:]": copy_loss,
            "the sum over tokens instead of the mean": per_token[counted].sum(),
        }


@pytest.mark.parametrize(
    ("dtype", "pad_id"),
    [(torch.float32, 0), (torch.float64, 0), (torch.float64, 17)],
    ids=["fp32", "fp64", "fp64-pad17"],
)
def test_teacher_forcing_loss(student, reference, dtype, pad_id):
    ref, mine = build(student, reference, "EncoderDecoder", ORIGINAL, ORIGINAL_KWARGS, dtype, seed=90)
    src, tgt, src_lengths, tgt_lengths = teacher_forcing_inputs(pad_id)
    with torch.no_grad():
        expected = ref.teacher_forcing_loss(src, tgt, src_lengths, tgt_lengths, pad_id)
    check(
        mine.teacher_forcing_loss(src, tgt, src_lengths, tgt_lengths, pad_id),
        expected,
        lambda: teacher_forcing_mistakes(ref, src, tgt, src_lengths, tgt_lengths, pad_id),
        name=f"teacher_forcing_loss, target lengths {TF_TGT} of 7, pad_id={pad_id}, {DTYPE_NAMES[dtype]}",
        hint="logits = model(src, tgt[:, :-1], src_lengths, tgt_lengths - 1); mean cross-entropy against tgt[:, 1:] "
        "over the tokens that are not pad_id",
        **(LOOSE if dtype == torch.float32 else {}),
    )


def test_teacher_forcing_gradients(student, reference):
    ref, mine = build(student, reference, "EncoderDecoder", ORIGINAL, ORIGINAL_KWARGS, torch.float64, seed=100)
    src, tgt, src_lengths, tgt_lengths = teacher_forcing_inputs(PAD)
    loss, _ = mine.teacher_forcing_loss.vjp(
        src, tgt, src_lengths, tgt_lengths, PAD, grad_outputs=torch.tensor(1.0, dtype=torch.float64)
    )
    expect_tensor(loss, name="teacher_forcing_loss", shape=(), dtype=torch.float64)
    expected = reference_grads(ref.teacher_forcing_loss(src, tgt, src_lengths, tgt_lengths, PAD), ref.parameters())
    hint = "keep the loss differentiable: no .detach(), .item() or .data anywhere on the way"
    for (name, _), want in zip(ref.named_parameters(), expected, strict=True):
        got = mine
        for part in name.split("."):
            got = got.attr(part)
        assert_close(got.attr("grad").fetch(), want, name=f"teacher_forcing_loss: gradient of {name}", hint=hint)


# -- greedy translation ---------------------------------------------------------------

# (seed, eos_id, pad_id): weights std 0.2, where a random model's output still changes from step to step, and
# an EOS id that the four sentences reach at different steps: in "a" and "b" some never do, in "c" all of them do
# before max_len. tests/test_week07_reference.py checks that, and that every arg-max wins by more than 1e-3.
GREEDY_CASES = {"a": (45, 3, 0), "b": (58, 10, 11), "c": (63, 7, 12)}
GREEDY_SRC = [7, 5, 3, 6]
MAX_LEN = 8


def greedy_mistakes(ref, src, src_lengths, eos_id, pad_id, expected) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        never_stops = ref.greedy_translate(src, src_lengths, BOS, -1, MAX_LEN, pad_id=pad_id)
    finished = (expected[:, 1:] == eos_id).any(dim=1)
    first = [int((row == eos_id).nonzero()[0]) for row, done in zip(expected, finished, strict=True) if done]
    all_stop = expected.clone()
    all_stop[:, min(first) + 1 :] = pad_id
    eos_after = expected.clone()
    eos_after[(expected == pad_id) & (torch.arange(1 + MAX_LEN) > 0)] = eos_id
    return {
        "tokens keep coming after EOS: a finished sentence gets pad_id at every later step": never_stops,
        "every sentence stops when the first one produces EOS; each must go on until its own EOS": all_stop,
        "finished sentences are filled with eos_id; fill them with pad_id": eos_after,
    }


@pytest.mark.parametrize("case", list(GREEDY_CASES))
def test_greedy_translate(student, reference, case):
    seed, eos_id, pad_id = GREEDY_CASES[case]
    ref, mine = build(student, reference, "EncoderDecoder", ORIGINAL, ORIGINAL_KWARGS, torch.float64, seed, scale=0.2)
    src, src_lengths = tokens(GREEDY_SRC, 7, SRC_VOCAB, seed=41), torch.tensor(GREEDY_SRC)
    with torch.no_grad():
        expected = ref.greedy_translate(src, src_lengths, BOS, eos_id, MAX_LEN, pad_id=pad_id)
    check(
        mine.greedy_translate(src, src_lengths, BOS, eos_id, MAX_LEN, pad_id=pad_id),
        expected,
        lambda: greedy_mistakes(ref, src, src_lengths, eos_id, pad_id, expected),
        name=f"greedy_translate of 4 sentences (source lengths {GREEDY_SRC}), eos_id={eos_id}, pad_id={pad_id}, "
        f"max_len={MAX_LEN}",
        hint="(B, 1 + max_len) long: BOS, then the arg-max of the last position's logits at each step; once a "
        "sentence has produced eos_id, pad_id at every later position",
    )


# -- the T5 variant -------------------------------------------------------------------

T5_SRC, T5_TGT = [11, 6, 9], [9, 4, 7]


def t5_inputs():
    src = tokens(T5_SRC, 11, 37, seed=111)
    tgt = tokens(T5_TGT, 9, 37, seed=112)
    return src, tgt, torch.tensor(T5_SRC), torch.tensor(T5_TGT)


def scaled_attention(model: torch.nn.Module) -> None:
    for module in model.modules():
        if hasattr(module, "scale") and hasattr(module, "q_proj"):
            module.scale = True


def norms_subtract_mean(model: torch.nn.Module) -> None:
    for module in model.modules():
        if module.__class__.__name__ == "RMSNorm":

            def forward(x, module=module):
                centred = x - x.mean(-1, keepdim=True)
                return centred * torch.rsqrt(centred.square().mean(-1, keepdim=True) + module.eps) * module.weight

            module.forward = forward


def post_norm_layers(model: torch.nn.Module) -> None:
    for layer in model.modules():
        if layer.__class__.__name__ == "T5Layer":

            def forward(x, mask=None, position_bias=None, memory=None, memory_mask=None, layer=layer):
                x = layer.self_attn_norm(x + layer.self_attn(x, mask=mask, position_bias=position_bias)[0])
                if layer.is_decoder:
                    x = layer.cross_attn_norm(x + layer.cross_attn(x, context=memory, mask=memory_mask)[0])
                return layer.ff_norm(x + layer.ff(x))

            layer.forward = forward


def bias_in_first_layer_only(model: torch.nn.Module) -> None:
    for stack in (model.encoder, model.decoder):

        def forward(x, mask=None, memory=None, memory_mask=None, stack=stack):
            bias = stack.relative_bias(x.shape[1], x.shape[1])
            h = stack.dropout(x)
            for i, layer in enumerate(stack.layers):
                h = layer(h, mask=mask, position_bias=bias if i == 0 else None, memory=memory, memory_mask=memory_mask)
            return stack.dropout(stack.final_norm(h))

        stack.forward = forward


def decoder_bias_bidirectional(model: torch.nn.Module) -> None:
    model.decoder.relative_bias.bidirectional = True


T5_MISTAKES: dict[str, Callable[[torch.nn.Module], None]] = {
    "attention scores scaled by 1/sqrt(d_head): T5 does not scale them": scaled_attention,
    "the norms subtract the mean: T5's norm is RMSNorm (no centring, no bias)": norms_subtract_mean,
    "post-norm layers: T5 normalises the input of each sublayer (pre-norm)": post_norm_layers,
    "the relative position bias is added in the first layer only; every layer of a stack adds the same bias": (
        bias_in_first_layer_only
    ),
    "the decoder's relative position bias is bidirectional; it must be causal (bidirectional=False)": (
        decoder_bias_bidirectional
    ),
}


def t5_mistakes(ref, call: Callable[[torch.nn.Module], torch.Tensor]) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {description: call(variant(ref, change)) for description, change in T5_MISTAKES.items()}


T5_HINT = (
    "shared embedding (no scale, no positions); pre-norm T5Layers with RMSNorm; unscaled attention plus one "
    "relative bias per stack (bidirectional in the encoder, causal in the decoder) added in every layer; final norm"
)


def t5_cross_attention(student, reference, key_lengths: list[int], seed: int):
    """T5Attention(32, 4, 8) from Tq=5 queries to Tk=7 keys with padding and a position bias, student and reference.

    Returns ``(ref, result, expected, (x, context, mask, bias))``; fails unless the student returns a pair.
    """
    ref, mine = build(student, reference, "T5Attention", (32, 4, 8), {}, torch.float64, seed=seed, scale=T5_SCALE)
    x, context = randn(3, 5, 32, seed=seed + 1), randn(3, 7, 32, seed=seed + 2)
    bias = randn(1, 4, 5, 7, seed=seed + 3)
    mask = padding(key_lengths, 7)
    with torch.no_grad():
        expected = ref(x, context=context, mask=mask, position_bias=bias)
    result = mine(x, context=context, mask=mask, position_bias=bias)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fails("T5Attention.forward should return (output, weights), like MultiHeadAttention")
    return ref, result, expected, (x, context, mask, bias)


def test_t5_attention(student, reference):
    ref, result, expected, (x, context, mask, bias) = t5_cross_attention(student, reference, [7, 2, 5], seed=120)
    label = "T5Attention(32, 4, 8) cross-attention, Tq=5, Tk=7, with padding and a position bias"

    def mistakes() -> dict[str, torch.Tensor]:
        scaled = variant(ref, scaled_attention)(x, context=context, mask=mask, position_bias=bias)
        return {
            "the scores are scaled by 1/sqrt(d_head); T5 does not scale them (scale=False)": scaled[1],
            "the position bias is not added to the scores": ref(x, context=context, mask=mask)[1],
        }

    hint = "scores = q k^T + position_bias (no 1/sqrt(d_head) unless scale=True), then the mask and the softmax"
    check(result[1], expected[1], mistakes, name=f"{label}: weights", hint=hint)
    assert_close(result[0], expected[0], name=f"{label}: output", hint="merge the heads and apply out_proj")


@pytest.mark.parametrize("is_decoder", [False, True], ids=["encoder-layer", "decoder-layer"])
def test_t5_layer(student, reference, is_decoder):
    args, kwargs = (32, 4, 8, 37), {"dropout": 0.1, "eps": 1e-6, "is_decoder": is_decoder}
    ref, mine = build(student, reference, "T5Layer", args, kwargs, torch.float64, seed=130, scale=T5_SCALE)
    x, memory = randn(3, 9, 32, seed=131), randn(3, 11, 32, seed=132)
    bias = randn(1, 4, 9, 9, seed=133)
    mask = causal(9) & padding(T5_TGT, 9) if is_decoder else padding([9, 4, 7], 9)
    extra = {"memory": memory, "memory_mask": padding(T5_SRC, 11)} if is_decoder else {}
    with torch.no_grad():
        expected = ref(x, mask=mask, position_bias=bias, **extra)
    layer_mistakes = (scaled_attention, norms_subtract_mean, post_norm_layers)
    check(
        mine(x, mask=mask, position_bias=bias, **extra),
        expected,
        lambda: {
            description: variant(ref, change)(x, mask=mask, position_bias=bias, **extra)
            for description, change in T5_MISTAKES.items()
            if change in layer_mistakes
        },
        name=f"T5Layer({'decoder' if is_decoder else 'encoder'}) with padding and a position bias",
        hint="pre-norm: x + dropout(sublayer(norm(x))) for self-attention (with the bias), cross-attention "
        "(decoder only, no bias) and the feed-forward network",
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_t5_encode(student, reference, dtype):
    ref, mine = build(student, reference, "T5Style", T5_ARGS, T5_KWARGS, dtype, seed=140, scale=T5_SCALE)
    src, _, src_lengths, _ = t5_inputs()
    keep = real(T5_SRC, 11)
    with torch.no_grad():
        expected = ref.encode(src, src_lengths)
    label = f"T5Style.encode, source lengths {T5_SRC} of 11, {DTYPE_NAMES[dtype]}"
    check(
        at_real(mine.encode(src, src_lengths), expected, keep, name=label),
        expected[keep],
        lambda: t5_mistakes(ref, lambda m: m.encode(src, src_lengths)[keep]),
        name=f"{label}: the real source positions",
        hint=T5_HINT,
        **(LOOSE if dtype == torch.float32 else {}),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_t5_forward(student, reference, dtype):
    ref, mine = build(student, reference, "T5Style", T5_ARGS, T5_KWARGS, dtype, seed=150, scale=T5_SCALE)
    src, tgt, src_lengths, tgt_lengths = t5_inputs()
    keep = real(T5_TGT, 9)
    with torch.no_grad():
        expected = ref(src, tgt, src_lengths, tgt_lengths)
    label = f"T5Style decoder output, source lengths {T5_SRC} of 11, target lengths {T5_TGT} of 9, {DTYPE_NAMES[dtype]}"
    check(
        at_real(mine(src, tgt, src_lengths, tgt_lengths), expected, keep, name=label),
        expected[keep],
        lambda: t5_mistakes(ref, lambda m: m(src, tgt, src_lengths, tgt_lengths)[keep]),
        name=f"{label}: the real target positions",
        hint=T5_HINT,
        **(LOOSE if dtype == torch.float32 else {}),
    )


def test_t5_gradients(student, reference):
    ref, mine = build(student, reference, "T5Style", T5_ARGS, T5_KWARGS, torch.float64, seed=160, scale=T5_SCALE)
    src, tgt, src_lengths, tgt_lengths = t5_inputs()
    grad_output = randn(3, 9, 32, seed=161) * real(T5_TGT, 9)[:, :, None]  # the real positions only
    _, _ = mine.vjp(src, tgt, src_lengths, tgt_lengths, grad_outputs=grad_output)
    expected = reference_grads(ref(src, tgt, src_lengths, tgt_lengths), ref.parameters(), grad_output)
    hint = "keep everything differentiable; the bias table of each stack gets gradient from every layer"
    for (name, _), want in zip(ref.named_parameters(), expected, strict=True):
        got = mine
        for part in name.split("."):
            got = got.attr(part)
        assert_close(got.attr("grad").fetch(), want, name=f"T5Style: gradient of {name}", hint=hint)


# -- training mode: the dropouts at model level -------------------------------------------
#
# The grader cannot seed the worker's random generator, so these checks hold for any draw: with
# dropout=1 every Dropout returns zeros (the output is exact), and with dropout=0.5 the embedding is
# exact element by element (0 or twice the eval value) and T5's output is checked by statistics.


def positions_without_dropout(model: torch.nn.Module, reference, *, before_positions: bool) -> None:
    """``embed`` with no dropout at all, or with the dropout applied before the positions are added."""

    def embed(tokens, table):
        vectors = table(tokens) * math.sqrt(model.d_model)
        if before_positions:
            vectors = model.dropout(vectors)
        at = torch.arange(tokens.shape[1], dtype=vectors.dtype)
        return vectors + reference.sinusoidal_encoding(at, model.d_model)

    model.embed = embed


DROPOUT_ONE_CASES = ["DecoderLayer", "EncoderDecoder", "T5Layer-encoder", "T5Layer-decoder"]


@pytest.mark.parametrize("case", DROPOUT_ONE_CASES)
def test_dropout_one_in_training_mode(student, reference, case):
    """dropout=1 in training mode: every Dropout gives zeros, so the result is exact whatever the random draw."""
    if case == "DecoderLayer":
        kwargs = {"dropout": 1.0, "eps": 0.02}
        ref, mine = build(student, reference, "DecoderLayer", (D_MODEL, N_HEADS, D_FF), kwargs, torch.float64, 170)
        x, memory, tgt_mask, memory_mask = decoder_inputs(torch.float64, seed=171)
        ref.train()
        mine.train()
        with torch.no_grad():
            expected = ref(x, memory, tgt_mask, memory_mask)
        check(
            mine(x, memory, tgt_mask, memory_mask),
            expected,
            lambda: {"the dropout comes after the norm; it drops the sublayer's output, inside the residual": 0 * x},
            name="DecoderLayer(24, 4, 40, dropout=1.0) in training mode",
            hint="every sublayer's output goes through its own dropout (dropout1, dropout2, dropout3) before the "
            "residual sum: with dropout=1 the layer is norm3(norm2(norm1(x)))",
        )
    elif case == "EncoderDecoder":
        ref, mine = build(
            student, reference, "EncoderDecoder", ORIGINAL, {"dropout": 1.0, "eps": 0.02}, torch.float64, 172
        )
        src, tgt, src_lengths, tgt_lengths = model_inputs()
        keep = real(MODEL_TGT, 6)
        ref.train()
        mine.train()
        with torch.no_grad():
            expected = ref(src, tgt, src_lengths, tgt_lengths)

        def mistakes() -> dict[str, torch.Tensor]:
            def run(change):
                twin = variant(ref, change)
                return twin(src, tgt, src_lengths, tgt_lengths)[keep]

            return {
                "the embeddings are not dropped out: embed = dropout(table(ids) * sqrt(D) + PE)": run(
                    lambda m: positions_without_dropout(m, reference, before_positions=False)
                ),
                "the dropout comes before the positions are added; it applies to the sum": run(
                    lambda m: positions_without_dropout(m, reference, before_positions=True)
                ),
            }

        label = "EncoderDecoder(dropout=1.0) logits in training mode"
        check(
            at_real(mine(src, tgt, src_lengths, tgt_lengths), expected, keep, name=label),
            expected[keep],
            mistakes,
            name=f"{label}, at the real target positions",
            hint="embed = dropout(table(ids) * sqrt(D) + PE) with the model's `dropout`; each decoder sublayer's "
            "output through its own dropout before the residual sum",
        )
    else:
        is_decoder = case == "T5Layer-decoder"
        args, kwargs = (32, 4, 8, 37), {"dropout": 1.0, "eps": 1e-6, "is_decoder": is_decoder}
        ref, mine = build(student, reference, "T5Layer", args, kwargs, torch.float64, seed=173, scale=T5_SCALE)
        x, memory = randn(3, 9, 32, seed=174), randn(3, 11, 32, seed=175)
        bias = randn(1, 4, 9, 9, seed=176)
        mask = causal(9) & padding(T5_TGT, 9) if is_decoder else padding([9, 4, 7], 9)
        extra = {"memory": memory, "memory_mask": padding(T5_SRC, 11)} if is_decoder else {}
        ref.train()
        mine.train()
        with torch.no_grad():
            expected = ref(x, mask=mask, position_bias=bias, **extra)
        assert_close(
            mine(x, mask=mask, position_bias=bias, **extra),
            expected,
            name=f"T5Layer({'decoder' if is_decoder else 'encoder'}, dropout=1.0) in training mode",
            hint="x + dropout(sublayer(norm(x))) for every sublayer (the cross-attention and the feed-forward "
            "network too): with dropout=1 each branch adds zero and the layer returns x",
        )


def test_embedding_dropout_rescaled(student, reference):
    """EncoderDecoder.embed in training mode with dropout=0.5: each element is 0 or 2 x its eval value."""
    ref, mine = build(student, reference, "EncoderDecoder", ORIGINAL, {"dropout": 0.5, "eps": 0.02}, torch.float64, 180)
    ids = tokens([12] * 16, 12, SRC_VOCAB, seed=181)  # 16 x 12 x 24 = 4608 elements
    with torch.no_grad():
        expected = ref.embed(ids, ref.src_embed)  # eval mode: no dropout
    mine.train()
    label = "EncoderDecoder(dropout=0.5).embed(ids (16, 12), src_embed) in training mode"
    out = expect_tensor(
        mine.embed(ids, mine.src_embed.fetch()), name=label, shape=(16, 12, D_MODEL), dtype=torch.float64
    )
    hint = "embed = dropout(table(ids) * sqrt(D) + PE): the model's Dropout(p) on the sum, survivors divided by 1 - p"
    dropped = out == 0
    fraction = float(dropped.double().mean())
    if not 0.4 <= fraction <= 0.6:
        fails(
            f"{label}: {fraction:.1%} of the elements are zero, expected about 50% (p = 0.5); the dropout must "
            f"apply to the whole sum, positions included. Hint: {hint}"
        )
    assert_close(
        out[~dropped],
        2 * expected[~dropped],
        name=f"{label}: the elements that survive dropout",
        hint=hint,
        mistakes={"the survivors are not rescaled: divide them by 1 - p (here: multiply by 2)": expected[~dropped]},
    )


T5_STATS_CASES = {"two layers": 2, "no layers": 0}


@pytest.mark.parametrize("case", list(T5_STATS_CASES))
def test_t5_dropout_statistics(student, reference, case):
    """T5Stack(dropout=0.5) in training mode: ``dropout(final_norm(layers(dropout(x))))``, checked by statistics.

    With its final norm's weight at 1, ``final_norm(h)`` has mean square 1 per position; after the final dropout
    about half the elements are 0 and the others average 1 / (1 - p)^2 = 4 in square. Without layers, two
    independent dropouts (input and output) leave about a quarter of the elements.
    """
    n_layers = T5_STATS_CASES[case]
    args, kwargs = (32, 4, 8, 37, n_layers), {"num_buckets": 16, "max_distance": 20, "dropout": 0.5}
    ref, mine = build(student, reference, "T5Stack", args, kwargs, torch.float64, seed=190, scale=T5_SCALE)
    state = {name: value.clone() for name, value in ref.state_dict().items()}
    state["final_norm.weight"] = torch.ones(32, dtype=torch.float64)
    mine.load_state_dict(state)
    mine.train()
    x = randn(16, 11, 32, seed=191)  # 5632 elements
    label = f"T5Stack(32, 4, 8, 37, n_layers={n_layers}, dropout=0.5) in training mode, final_norm weight 1"
    out = expect_tensor(mine(x, mask=padding([11] * 16, 11)), name=label, shape=(16, 11, 32), dtype=torch.float64)
    hint = (
        "h = dropout(x); every layer; out = dropout(final_norm(h)), with the stack's Dropout: it zeroes each "
        "element with probability p and divides the survivors by 1 - p"
    )
    if not bool(torch.isfinite(out).all()):
        fails(f"{label}: the output has NaN or inf. Hint: {hint}")
    zero = float((out == 0).double().mean())
    # two layers: 1 - (1 - 1/32) / 2 ~ 0.52 (an element of the residual stream is zero when all 5 dropouts on its
    # way drop it); no layers: 1 - 1/4 = 0.75. Standard deviation ~0.007, so these bounds hold for any draw.
    low, high, want = (0.44, 0.60, "about 52%") if n_layers else (0.68, 0.82, "about 75%")
    if not low <= zero <= high:
        where = (
            "after the final norm (T5 drops out the stack's output)"
            if n_layers
            else "at the stack's input and again after the final norm"
        )
        fails(f"{label}: {zero:.1%} of the output is zero, expected {want}: dropout belongs {where}. Hint: {hint}")
    if n_layers:
        square = float(out[out != 0].square().mean())
        if not 3.0 <= square <= 5.5:
            fails(
                f"{label}: the surviving elements have mean square {square:.2f}, expected about 4 = 1 / (1 - p)^2 "
                f"(about 1 means the survivors were not divided by 1 - p). Hint: {hint}"
            )


def finfo_min_fill(model: torch.nn.Module) -> None:
    """T5Attention that fills masked scores with the most negative float and does not zero fully masked rows."""
    for module in model.modules():
        if module.__class__.__name__ == "T5Attention":

            def forward(x, context=None, mask=None, position_bias=None, module=module):
                source = x if context is None else context
                q = split(module.q_proj(x), module.n_heads)
                k = split(module.k_proj(source), module.n_heads)
                v = split(module.v_proj(source), module.n_heads)
                scores = q @ k.transpose(-2, -1) + (0 if position_bias is None else position_bias)
                if mask is not None:
                    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
                weights = torch.softmax(scores, dim=-1)
                return module.out_proj(merge(weights @ v)), weights

            module.forward = forward


def split(x: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, width = x.shape
    return x.reshape(batch, length, heads, width // heads).transpose(1, 2)


def merge(x: torch.Tensor) -> torch.Tensor:
    batch, heads, length, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * d_head)


FULLY_MASKED_HINT = (
    "a query whose keys are all masked (a source of length 0) gets all-zero weights and a zero output, not NaN "
    "and not a uniform average: fill with -inf, then turn the NaN rows of the softmax into zeros"
)


@pytest.mark.parametrize("case", ["T5Attention", "T5Style"])
def test_t5_fully_masked_rows(student, reference, case):
    """A source of length 0: T5Attention's fully masked rows give zeros, at model level too (cross-attention)."""
    if case == "T5Attention":
        ref, result, expected, (x, context, mask, bias) = t5_cross_attention(student, reference, [7, 0, 5], seed=200)
        label = "T5Attention(32, 4, 8) cross-attention, key lengths [7, 0, 5] of 7 (the second row fully masked)"
        check(
            result[1],
            expected[1],
            lambda: {
                "a fully masked row gets uniform weights (a finite fill such as finfo.min); it must get zeros": variant(
                    ref, finfo_min_fill
                )(x, context=context, mask=mask, position_bias=bias)[1]
            },
            name=f"{label}: weights",
            hint=FULLY_MASKED_HINT,
        )
        assert_close(result[0], expected[0], name=f"{label}: output", hint=FULLY_MASKED_HINT)
    else:
        ref, mine = build(student, reference, "T5Style", T5_ARGS, T5_KWARGS, torch.float64, seed=204, scale=T5_SCALE)
        lengths = [11, 0, 9]
        src = tokens(lengths, 11, 37, seed=205)
        _, tgt, _, tgt_lengths = t5_inputs()
        src_lengths = torch.tensor(lengths)
        keep = real(T5_TGT, 9)
        with torch.no_grad():
            expected = ref(src, tgt, src_lengths, tgt_lengths)
        label = f"T5Style decoder output, source lengths {lengths} of 11 (one empty source), target lengths {T5_TGT}"
        check(
            at_real(mine(src, tgt, src_lengths, tgt_lengths), expected, keep, name=label),
            expected[keep],
            lambda: {
                "a fully masked row gets uniform weights (a finite fill such as finfo.min); it must get zeros": variant(
                    ref, finfo_min_fill
                )(src, tgt, src_lengths, tgt_lengths)[keep]
            },
            name=f"{label}: the real target positions",
            hint=f"the cross-attention of the sentence with no source sees no key: {FULLY_MASKED_HINT}",
        )


# -- constructor options ---------------------------------------------------------------

OPTION_CASES = [
    "T5Attention(scale=True, d_head=6)",
    "T5Style(d_head=6, 1+3 layers, 8 buckets, eps=0.05)",
    "EncoderDecoder(6 heads, 1+3 layers)",
]


def ignore_eps(model: torch.nn.Module) -> None:
    for module in model.modules():
        if module.__class__.__name__ == "RMSNorm":
            module.eps = 1e-6


def default_max_distance(model: torch.nn.Module) -> None:
    for module in model.modules():
        if module.__class__.__name__ == "RelativePositionBias":
            module.max_distance = 128


@pytest.mark.parametrize("case", OPTION_CASES)
def test_constructor_options(student, reference, case):
    """Every documented constructor option changes the result: none may be ignored or hard-coded."""
    if case.startswith("T5Attention"):
        ref, mine = build(
            student, reference, "T5Attention", (32, 4, 6), {"scale": True}, torch.float64, seed=210, scale=T5_SCALE
        )
        x, context = randn(3, 5, 32, seed=211), randn(3, 7, 32, seed=212)
        bias = randn(1, 4, 5, 7, seed=213)
        mask = padding([7, 2, 5], 7)
        with torch.no_grad():
            expected = ref(x, context=context, mask=mask, position_bias=bias)
        result = mine(x, context=context, mask=mask, position_bias=bias)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            fails("T5Attention.forward should return (output, weights), like MultiHeadAttention")

        def mistakes() -> dict[str, torch.Tensor]:
            unscaled = variant(ref, lambda m: setattr(m, "scale", False))
            by_width = variant(ref, lambda m: setattr(m, "d_head", 32 // 4))
            return {
                "scale=True is ignored: with it the scores are divided by sqrt(d_head)": unscaled(
                    x, context=context, mask=mask, position_bias=bias
                )[1],
                "the scores are divided by sqrt(d_model / n_heads); divide by sqrt(d_head) (here 6, not 8)": by_width(
                    x, context=context, mask=mask, position_bias=bias
                )[1],
            }

        label = "T5Attention(32, 4, d_head=6, scale=True), Tq=5, Tk=7, with padding and a position bias"
        check(
            result[1],
            expected[1],
            mistakes,
            name=f"{label}: weights",
            hint="scale=True: scores = q k^T / sqrt(d_head) + position_bias",
        )
        assert_close(result[0], expected[0], name=f"{label}: output", hint="merge the heads and apply out_proj")
    elif case.startswith("T5Style"):
        args = (37, 32, 4, 6, 37, 1, 3)
        kwargs = {"num_buckets": 8, "max_distance": 12, "dropout": 0.1, "eps": 0.05}
        ref, mine = build(student, reference, "T5Style", args, kwargs, torch.float64, seed=214, scale=T5_SCALE)
        src, tgt, src_lengths, tgt_lengths = t5_inputs()
        keep = real(T5_TGT, 9)
        with torch.no_grad():
            expected = ref(src, tgt, src_lengths, tgt_lengths)
        label = (
            "T5Style(37, 32, 4, d_head=6, 37, 1 encoder layer, 3 decoder layers, num_buckets=8, max_distance=12, "
            f"eps=0.05) decoder output, source lengths {T5_SRC}, target lengths {T5_TGT}"
        )
        check(
            at_real(mine(src, tgt, src_lengths, tgt_lengths), expected, keep, name=label),
            expected[keep],
            lambda: {
                "eps is ignored: every RMSNorm (the layers' and the final norms) takes the model's eps": variant(
                    ref, ignore_eps
                )(src, tgt, src_lengths, tgt_lengths)[keep],
                "max_distance is ignored: both stacks' RelativePositionBias take it": variant(
                    ref, default_max_distance
                )(src, tgt, src_lengths, tgt_lengths)[keep],
            },
            name=f"{label}: the real target positions",
            hint="pass every option on: d_head to each T5Attention, num_buckets and max_distance to each stack's "
            "RelativePositionBias, eps to every RMSNorm, n_encoder_layers and n_decoder_layers to their stacks",
        )
    else:
        args = (SRC_VOCAB, TGT_VOCAB, D_MODEL, 6, D_FF, 1, 3)
        ref, mine = build(student, reference, "EncoderDecoder", args, ORIGINAL_KWARGS, torch.float64, seed=215)
        src, tgt, src_lengths, tgt_lengths = model_inputs()
        keep = real(MODEL_TGT, 6)
        with torch.no_grad():
            expected = ref(src, tgt, src_lengths, tgt_lengths)
        label = "EncoderDecoder(23, 19, 24, 6 heads, 40, 1 encoder layer, 3 decoder layers) logits, eps=0.02"
        assert_close(
            at_real(mine(src, tgt, src_lengths, tgt_lengths), expected, keep, name=label),
            expected[keep],
            name=f"{label}: the real target positions",
            hint="pass n_heads, eps and dropout to every layer and n_encoder_layers / n_decoder_layers to their stacks",
        )


# -- greedy translation: the shortest runs ----------------------------------------------


@pytest.mark.parametrize("max_len", [0, 1], ids=["max_len-0", "max_len-1"])
def test_greedy_translate_short(student, reference, max_len):
    """max_len=0 gives the BOS column alone; max_len=1 one step (the loop never runs more than max_len steps)."""
    seed, eos_id, pad_id = GREEDY_CASES["a"]
    ref, mine = build(student, reference, "EncoderDecoder", ORIGINAL, ORIGINAL_KWARGS, torch.float64, seed, scale=0.2)
    src, src_lengths = tokens(GREEDY_SRC, 7, SRC_VOCAB, seed=41), torch.tensor(GREEDY_SRC)
    with torch.no_grad():
        expected = ref.greedy_translate(src, src_lengths, BOS, eos_id, max_len, pad_id=pad_id)
    assert_equal(
        mine.greedy_translate(src, src_lengths, BOS, eos_id, max_len, pad_id=pad_id),
        expected,
        name=f"greedy_translate of 4 sentences with max_len={max_len}, eos_id={eos_id}",
        hint="(B, 1 + max_len) long: BOS, then at most max_len steps (none when max_len is 0)",
    )


# -- no built-ins ------------------------------------------------------------------


@pytest.mark.parametrize("model", ["EncoderDecoder", "T5Style"])
def test_uses_no_builtin(student, reference, model):
    if model == "EncoderDecoder":
        args, kwargs, inputs = ORIGINAL, {"dropout": 0.3}, model_inputs()
    else:
        args, kwargs, inputs = T5_ARGS, {**T5_KWARGS, "dropout": 0.3}, t5_inputs()
    mine = getattr(student, model)(*args, **kwargs)  # training mode: dropout is active
    out = mine(*inputs)
    assert_no_forbidden_ops(
        student.last_ops,
        FORBIDDEN,
        name=f"{model}(dropout=0.3).forward in training mode",
        hint="use the attention, LayerNorm, RMSNorm and Dropout of weeks 02 and 04, not torch's built-ins",
    )
    width = args[2] if model == "EncoderDecoder" else args[1]
    shape = (3, 6, TGT_VOCAB) if model == "EncoderDecoder" else (3, 9, width)
    expect_tensor(out, name=f"{model} output", shape=shape, dtype=torch.float32)
