"""The week 07 reference against independent oracles.

* the prefix-LM mask against its formula written with loops;
* ``DecoderLayer`` against ``nn.TransformerDecoderLayer`` and the whole
  ``EncoderDecoder`` against ``nn.Transformer`` with copied weights (their mask
  polarity flipped), embedded by an independent sinusoidal formula: source and
  target of different lengths, padding on both sides, float32 and float64;
* the teacher-forcing loss against ``F.cross_entropy`` on the oracle's logits and
  against a loop over the real tokens; greedy translation against a loop that
  decodes each sentence alone, unpadded, with the oracle;
* ``T5Style`` against ``transformers.T5Model`` built offline from a tiny config,
  through the given ``from_hf_t5_state_dict``, with unequal lengths on both sides;
* gradcheck through a decoder layer, and the settings the hidden tests rely on
  (the greedy test's sentences stop at different steps; its arg-max margins are
  far above rounding noise).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder import config, reference
from tests.helpers import REPO, randn

# encdec.py, with the reference attention (01), multihead (02), positional (03) and block (04) it imports
ref = reference.load(config.load(REPO).week("07"))

DTYPES = [torch.float32, torch.float64]
D_MODEL, N_HEADS, D_FF = 24, 4, 40


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    # whole models in float32: different kernels sum in different orders
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-4}


def randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter ~ N(0, 0.5^2); norm weights 1 + N(0, 0.5^2)."""
    with torch.no_grad():
        for i, (name, parameter) in enumerate(module.named_parameters()):
            is_norm_weight = name.endswith("weight") and ("norm" in name or "layer_norm" in name)
            value = randn(*parameter.shape, seed=seed + i, scale=0.5) + (1.0 if is_norm_weight else 0.0)
            parameter.copy_(value.to(parameter.dtype))
    return module


def real(lengths: list[int], length: int) -> torch.Tensor:
    """``(B, T)`` bool, True = a real token."""
    return torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]


def tokens(lengths: list[int], length: int, vocab: int, seed: int, pad_id: int = 0) -> torch.Tensor:
    """Random ids in ``[3, vocab)`` (0, 1, 2 are PAD, BOS, EOS), ``pad_id`` after each length."""
    ids = torch.randint(3, vocab, (len(lengths), length), generator=torch.Generator().manual_seed(seed))
    return ids.masked_fill(~real(lengths, length), pad_id)


# -- the prefix-LM mask (causal_mask and padding_mask are week 01's, tested there) ------


@pytest.mark.parametrize(("prefixes", "length"), [([0, 3, 7], 7), ([5, 1], 5), ([0], 1), ([1], 1), ([2, 4, 0, 6], 6)])
def test_prefix_lm_mask_matches_loops(prefixes, length):
    mask = ref.prefix_lm_mask(torch.tensor(prefixes), length)
    assert mask.dtype == torch.bool
    assert mask.shape == (len(prefixes), 1, length, length)
    for b, prefix in enumerate(prefixes):
        for i in range(length):
            for j in range(length):
                assert bool(mask[b, 0, i, j]) == (j < prefix or j <= i), (b, i, j)


def test_prefix_lm_mask_extremes():
    length = 6
    mask = ref.prefix_lm_mask(torch.tensor([0, length]), length)
    assert torch.equal(mask[0, 0], torch.ones(length, length, dtype=torch.bool).tril())  # a causal LM
    assert bool(mask[1].all())  # an encoder: everything sees everything


# -- the original architecture against nn.Transformer ---------------------------------


def copy_attention(ours, theirs: torch.nn.MultiheadAttention) -> None:
    theirs.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
    theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
    theirs.out_proj.load_state_dict(ours.out_proj.state_dict())


def copy_decoder_layer(ours, theirs: torch.nn.TransformerDecoderLayer) -> None:
    with torch.no_grad():
        copy_attention(ours.self_attn, theirs.self_attn)
        copy_attention(ours.cross_attn, theirs.multihead_attn)
        theirs.linear1.load_state_dict(ours.ff.fc1.state_dict())
        theirs.linear2.load_state_dict(ours.ff.fc2.state_dict())
        for name in ("norm1", "norm2", "norm3"):
            getattr(theirs, name).load_state_dict(getattr(ours, name).state_dict())


def copy_model(model, oracle: torch.nn.Transformer) -> None:
    with torch.no_grad():
        for block, layer in zip(model.encoder.layers, oracle.encoder.layers, strict=True):
            copy_attention(block.attn, layer.self_attn)
            layer.linear1.load_state_dict(block.ff.fc1.state_dict())
            layer.linear2.load_state_dict(block.ff.fc2.state_dict())
            layer.norm1.load_state_dict(block.norm1.state_dict())
            layer.norm2.load_state_dict(block.norm2.state_dict())
        oracle.encoder.norm.load_state_dict(model.encoder.norm.state_dict())
        for ours, theirs in zip(model.decoder.layers, oracle.decoder.layers, strict=True):
            copy_decoder_layer(ours, theirs)
        oracle.decoder.norm.load_state_dict(model.decoder.norm.state_dict())


@pytest.mark.parametrize("dtype", DTYPES)
def test_decoder_layer_matches_transformer_decoder_layer(dtype):
    layer = randomise(ref.DecoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.1, eps=0.01).to(dtype), seed=1).eval()
    oracle = torch.nn.TransformerDecoderLayer(
        D_MODEL, N_HEADS, D_FF, dropout=0.1, layer_norm_eps=0.01, batch_first=True, dtype=dtype
    ).eval()
    copy_decoder_layer(layer, oracle)
    x, memory = randn(3, 6, D_MODEL, seed=2, dtype=dtype), randn(3, 9, D_MODEL, seed=3, dtype=dtype)
    tgt_real, src_real = real([6, 4, 1], 6), real([9, 3, 7], 9)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    mine = layer(x, memory, tgt_mask=causal & tgt_real[:, None, None, :], memory_mask=src_real[:, None, None, :])
    expected = oracle(  # its masks mean True = NOT allowed
        x, memory, tgt_mask=~causal, tgt_key_padding_mask=~tgt_real, memory_key_padding_mask=~src_real
    )
    torch.testing.assert_close(mine, expected, **tolerance(dtype))


def sinusoids(length: int, d_model: int, dtype: torch.dtype) -> torch.Tensor:
    """The table of the Annotated Transformer (exp/log form), written independently of week 03's."""
    position = torch.arange(length, dtype=torch.float64)[:, None]
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * -(math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table.to(dtype)


SRC_VOCAB, TGT_VOCAB = 23, 19


def model_and_oracle(dtype: torch.dtype, seed: int, eps: float = 1e-5):
    model = ref.EncoderDecoder(SRC_VOCAB, TGT_VOCAB, D_MODEL, N_HEADS, D_FF, 2, 2, dropout=0.1, eps=eps)
    model = randomise(model.to(dtype), seed=seed).eval()
    oracle = torch.nn.Transformer(
        D_MODEL,
        N_HEADS,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dim_feedforward=D_FF,
        dropout=0.1,
        layer_norm_eps=eps,
        batch_first=True,
        dtype=dtype,
    ).eval()
    copy_model(model, oracle)
    return model, oracle


def oracle_logits(model, oracle, src, tgt, src_lengths, tgt_lengths) -> torch.Tensor:
    dtype = model.generator.weight.dtype
    scale = math.sqrt(D_MODEL)
    src_x = F.embedding(src, model.src_embed.weight) * scale + sinusoids(src.shape[1], D_MODEL, dtype)
    tgt_x = F.embedding(tgt, model.tgt_embed.weight) * scale + sinusoids(tgt.shape[1], D_MODEL, dtype)
    src_real, tgt_real = real(src_lengths, src.shape[1]), real(tgt_lengths, tgt.shape[1])
    causal = torch.ones(tgt.shape[1], tgt.shape[1], dtype=torch.bool).tril()
    out = oracle(
        src_x,
        tgt_x,
        tgt_mask=~causal,
        src_key_padding_mask=~src_real,
        tgt_key_padding_mask=~tgt_real,
        memory_key_padding_mask=~src_real,
    )
    return F.linear(out, model.generator.weight, model.generator.bias)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")  # nn.Transformer's eval fast path
@pytest.mark.parametrize("dtype", DTYPES)
def test_encoder_decoder_matches_nn_transformer(dtype):
    model, oracle = model_and_oracle(dtype, seed=10, eps=0.02)
    src_lengths, tgt_lengths = [7, 5, 3], [4, 6, 2]
    src, tgt = tokens(src_lengths, 7, SRC_VOCAB, seed=11), tokens(tgt_lengths, 6, TGT_VOCAB, seed=12)
    mine = model(src, tgt, torch.tensor(src_lengths), torch.tensor(tgt_lengths))
    # With gradients enabled the oracle takes its ordinary path, where padded positions are defined as ours.
    expected = oracle_logits(model, oracle, src, tgt, src_lengths, tgt_lengths)
    torch.testing.assert_close(mine, expected, **tolerance(dtype))
    # Under no_grad it may take the fused fast path: compare the real target positions only.
    with torch.no_grad():
        fast = oracle_logits(model, oracle, src, tgt, src_lengths, tgt_lengths)
    keep = real(tgt_lengths, 6)
    torch.testing.assert_close(mine[keep], fast[keep], **tolerance(dtype))
    # The encoder alone, against nn.Transformer's encoder on the same embedded source.
    src_x = F.embedding(src, model.src_embed.weight) * math.sqrt(D_MODEL) + sinusoids(7, D_MODEL, dtype)
    memory = oracle.encoder(src_x, src_key_padding_mask=~real(src_lengths, 7))
    torch.testing.assert_close(model.encode(src, torch.tensor(src_lengths)), memory, **tolerance(dtype))


def test_embed_is_scaled_and_positioned():
    model = randomise(ref.EncoderDecoder(SRC_VOCAB, TGT_VOCAB, D_MODEL, N_HEADS, D_FF, 1, 1).double(), seed=20)
    model.eval()
    src = tokens([5, 3], 5, SRC_VOCAB, seed=21)
    expected = model.src_embed.weight[src] * math.sqrt(D_MODEL) + sinusoids(5, D_MODEL, torch.float64)
    torch.testing.assert_close(model.embed(src, model.src_embed), expected, rtol=1e-12, atol=1e-12)


def test_state_dict_names_follow_nn_transformer_layout():
    names = set(ref.EncoderDecoder(SRC_VOCAB, TGT_VOCAB, D_MODEL, N_HEADS, D_FF, 2, 1).state_dict())
    assert "encoder.layers.1.attn.q_proj.weight" in names
    assert "encoder.norm.weight" in names
    assert "decoder.layers.0.cross_attn.out_proj.bias" in names
    assert "decoder.layers.0.norm3.bias" in names
    assert "decoder.norm.bias" in names
    assert "decoder.layers.1.norm1.weight" not in names  # one decoder layer
    assert {"src_embed.weight", "tgt_embed.weight", "generator.weight", "generator.bias"} <= names


PAD, BOS, EOS = 0, 1, 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_teacher_forcing_loss_matches_cross_entropy(dtype):
    model, oracle = model_and_oracle(dtype, seed=30)
    src_lengths, tgt_lengths = [6, 4, 2], [7, 3, 5]
    src = tokens(src_lengths, 6, SRC_VOCAB, seed=31)
    tgt = tokens(tgt_lengths, 7, TGT_VOCAB, seed=32)
    tgt[:, 0] = BOS
    lengths = torch.tensor(tgt_lengths)
    loss = model.teacher_forcing_loss(src, tgt, torch.tensor(src_lengths), lengths, PAD)
    shifted = [n - 1 for n in tgt_lengths]
    logits = oracle_logits(model, oracle, src, tgt[:, :-1], src_lengths, shifted)
    expected = F.cross_entropy(logits.transpose(1, 2), tgt[:, 1:], ignore_index=PAD)
    torch.testing.assert_close(loss, expected, **tolerance(dtype))
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    terms = [-log_probs[b, t, tgt[b, t + 1]] for b in range(3) for t in range(tgt_lengths[b] - 1)]
    torch.testing.assert_close(loss.double(), torch.stack(terms).mean(), **tolerance(dtype))


# The hidden greedy test's settings: (seed, eos_id, pad_id); weights std 0.2 (norm weights 1 + 0.5 N(0, 1)), where
# random models still vary their output from step to step, and an EOS id that sentences reach at different steps.
GREEDY_CASES = {"a": (45, 3, 0), "b": (58, 10, 11), "c": (63, 7, 12)}
GREEDY_STOPS = {"a": [None, 2, 2, 6], "b": [5, 4, None, None], "c": [2, 5, 3, 1]}  # the column of each EOS
GREEDY_SRC_LENGTHS = [7, 5, 3, 6]


def greedy_model(dtype: torch.dtype, seed: int):
    model, oracle = model_and_oracle(dtype, seed=seed)
    with torch.no_grad():
        for i, (name, parameter) in enumerate(model.named_parameters()):
            is_norm_weight = name.endswith("weight") and "norm" in name
            scale = 0.5 if is_norm_weight else 0.2
            parameter.copy_(randn(*parameter.shape, seed=seed + i, scale=scale, dtype=dtype) + float(is_norm_weight))
    copy_model(model, oracle)
    return model, oracle


def greedy_by_hand(model, oracle, src, src_lengths, max_len, eos_id, pad_id):
    """Each sentence alone, unpadded, with the oracle; a plain list of ids, stopping after EOS."""
    results = []
    for b, n in enumerate(src_lengths):
        ids = [BOS]
        while len(ids) <= max_len:
            logits = oracle_logits(model, oracle, src[b : b + 1, :n], torch.tensor([ids]), [n], [len(ids)])
            ids.append(int(logits[0, -1].argmax()))
            if ids[-1] == eos_id:
                break
        results.append(ids + [pad_id] * (1 + max_len - len(ids)))
    return torch.tensor(results)


@pytest.mark.parametrize("case", list(GREEDY_CASES))
def test_greedy_translate_matches_one_sentence_at_a_time(case):
    seed, eos_id, pad_id = GREEDY_CASES[case]
    model, oracle = greedy_model(torch.float64, seed)
    src = tokens(GREEDY_SRC_LENGTHS, 7, SRC_VOCAB, seed=41)
    with torch.no_grad():
        out = model.greedy_translate(src, torch.tensor(GREEDY_SRC_LENGTHS), BOS, eos_id, max_len=8, pad_id=pad_id)
        expected = greedy_by_hand(model, oracle, src, GREEDY_SRC_LENGTHS, 8, eos_id, pad_id)
    assert out.dtype == torch.long
    assert torch.equal(out, expected)
    # What the hidden test relies on: sentences stop at different steps (in "c" all of them before max_len, so
    # the loop ends early and the rest is padding; in "a" and "b" some never stop).
    stops = [(row == eos_id).nonzero()[0].item() if (row == eos_id).any() else None for row in out]
    assert stops == GREEDY_STOPS[case]
    assert all(pad_id not in row[: (s or 9)] for row, s in zip(out.tolist(), stops, strict=True))


@pytest.mark.parametrize("max_len", [0, 1])
def test_greedy_translate_shortest_runs(max_len):
    """max_len=0 gives the BOS column alone, max_len=1 one step, as the one-sentence-at-a-time oracle does."""
    seed, eos_id, pad_id = GREEDY_CASES["a"]
    model, oracle = greedy_model(torch.float64, seed)
    src = tokens(GREEDY_SRC_LENGTHS, 7, SRC_VOCAB, seed=41)
    with torch.no_grad():
        out = model.greedy_translate(src, torch.tensor(GREEDY_SRC_LENGTHS), BOS, eos_id, max_len, pad_id=pad_id)
        expected = greedy_by_hand(model, oracle, src, GREEDY_SRC_LENGTHS, max_len, eos_id, pad_id)
    assert out.shape == (4, 1 + max_len)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(GREEDY_CASES))
def test_greedy_margins_are_far_above_rounding(case, dtype):
    """The arg-max at every step of the hidden greedy test wins by far more than rounding noise."""
    seed, eos_id, pad_id = GREEDY_CASES[case]
    model, _ = greedy_model(dtype, seed)
    src, lengths = tokens(GREEDY_SRC_LENGTHS, 7, SRC_VOCAB, seed=41), torch.tensor(GREEDY_SRC_LENGTHS)
    with torch.no_grad():
        out = model.greedy_translate(src, lengths, BOS, eos_id, max_len=8, pad_id=pad_id)
        for step in range(1, out.shape[1]):
            logits = model(src, out[:, :step], lengths, torch.full((4,), step))[:, -1]
            top = logits.topk(2, dim=-1).values
            assert bool(((top[:, 0] - top[:, 1]) > 1e-3).all()), step


# -- the T5 variant against transformers.T5Model ------------------------------------------


def t5_pair(
    dtype: torch.dtype,
    seed: int,
    *,
    d_head: int = 8,
    layers: tuple[int, int] = (2, 2),
    num_buckets: int = 32,
    max_distance: int = 128,
    eps: float = 1e-6,
):
    from transformers import T5Config, T5Model

    config = T5Config(
        vocab_size=37,
        d_model=32,
        d_kv=d_head,
        d_ff=37,
        num_layers=layers[0],
        num_decoder_layers=layers[1],
        num_heads=4,
        relative_attention_num_buckets=num_buckets,
        relative_attention_max_distance=max_distance,
        layer_norm_epsilon=eps,
        dropout_rate=0.1,
        feed_forward_proj="relu",
    )
    config._attn_implementation = "eager"
    hf = randomise(T5Model(config).to(dtype), seed=seed).eval()
    options = {"num_buckets": num_buckets, "max_distance": max_distance, "dropout": 0.1, "eps": eps}
    ours = ref.T5Style(37, 32, 4, d_head, 37, *layers, **options).to(dtype).eval()
    ours.load_state_dict(ref.from_hf_t5_state_dict(hf.state_dict()))
    return ours, hf


T5_SRC, T5_TGT = [11, 6, 9], [10, 4, 7]


def t5_inputs():
    src = tokens(T5_SRC, 11, 37, seed=51)
    tgt = tokens(T5_TGT, 10, 37, seed=52)
    return src, tgt, real(T5_SRC, 11), real(T5_TGT, 10)


@pytest.fixture
def t5_norm_in_input_dtype(monkeypatch):
    """T5LayerNorm computes the variance in float32 whatever the input; let it use the input's dtype."""
    from transformers.models.t5 import modeling_t5

    def forward(self, hidden_states):
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))

    monkeypatch.setattr(modeling_t5.T5LayerNorm, "forward", forward)


def check_t5(dtype: torch.dtype, seed: int = 50, **options) -> None:
    ours, hf = t5_pair(dtype, seed=seed, **options)
    src, tgt, src_real, tgt_real = t5_inputs()
    with torch.no_grad():
        expected = hf(
            input_ids=src,
            attention_mask=src_real.long(),
            decoder_input_ids=tgt,
            decoder_attention_mask=tgt_real.long(),
        )
        encoded = hf.encoder(input_ids=src, attention_mask=src_real.long()).last_hidden_state
        mine = ours(src, tgt, torch.tensor(T5_SRC), torch.tensor(T5_TGT))
        memory = ours.encode(src, torch.tensor(T5_SRC))
    tol = tolerance(dtype)
    torch.testing.assert_close(memory[src_real], encoded[src_real], **tol)
    torch.testing.assert_close(mine[tgt_real], expected.last_hidden_state[tgt_real], **tol)
    assert mine.shape == expected.last_hidden_state.shape


def test_t5_style_matches_t5_model_float32():
    check_t5(torch.float32)


@pytest.mark.usefixtures("t5_norm_in_input_dtype")
def test_t5_style_matches_t5_model_float64():
    check_t5(torch.float64)


def test_t5_style_options_match_t5_model():
    """The hidden options test's T5Style: d_kv 6 (not d_model / heads), 1 + 3 layers, 8 buckets to 12, eps 0.05."""
    check_t5(torch.float32, seed=55, d_head=6, layers=(1, 3), num_buckets=8, max_distance=12, eps=0.05)


def test_t5_empty_source_reads_nothing():
    """A source of length 0: the cross-attention gives zeros (week 02's rule; HF's finfo.min fill would average the
    padded keys instead), so that sentence's decoder output is the decoder's with a memory of zeros (keys and
    values 0: every cross-attention output is 0)."""
    model = randomise(ref.T5Style(37, 32, 4, 8, 37, 2, 2, num_buckets=16, max_distance=20).double(), seed=57).eval()
    src, tgt = tokens([11, 0, 9], 11, 37, seed=58), tokens([9, 4, 7], 9, 37, seed=59)
    with torch.no_grad():
        out = model(src, tgt, torch.tensor([11, 0, 9]), torch.tensor([9, 4, 7]))
        alone = model.decode(
            tgt[1:2], torch.zeros(1, 11, 32, dtype=torch.float64), torch.tensor([11]), torch.tensor([4])
        )
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1, :4], alone[0, :4], rtol=1e-12, atol=1e-12)
    _, weights = model.decoder.layers[0].cross_attn(
        randn(3, 9, 32, seed=60), context=randn(3, 11, 32, seed=61), mask=real([11, 0, 9], 11)[:, None, None, :]
    )
    assert torch.equal(weights[1], torch.zeros_like(weights[1]))


def test_t5_state_dict_mapping_covers_every_parameter():
    ours, hf = t5_pair(torch.float32, seed=60)
    mapped = ref.from_hf_t5_state_dict(hf.state_dict())
    assert set(mapped) == set(ours.state_dict())
    shared = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}  # tied to shared.weight
    hf_names = set(hf.state_dict()) - shared
    assert len(mapped) == len(hf_names)


def test_t5_attention_is_unscaled_with_bias():
    attn = randomise(ref.T5Attention(16, 2, 5).double(), seed=70)
    x, context = randn(2, 3, 16, seed=71), randn(2, 4, 16, seed=72)
    bias = randn(1, 2, 3, 4, seed=73)
    keep = real([4, 2], 4)[:, None, None, :]
    out, weights = attn(x, context=context, mask=keep, position_bias=bias)

    def heads(t, w):
        return (t @ w.T).view(2, -1, 2, 5).transpose(1, 2)

    q, k, v = heads(x, attn.q_proj.weight), heads(context, attn.k_proj.weight), heads(context, attn.v_proj.weight)
    scores = (q @ k.transpose(-1, -2) + bias).masked_fill(~keep, float("-inf"))
    expected_weights = torch.softmax(scores, dim=-1)
    expected = (expected_weights @ v).transpose(1, 2).reshape(2, 3, 10) @ attn.out_proj.weight.T
    torch.testing.assert_close(weights, expected_weights, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    scaled = ref.T5Attention(16, 2, 5, scale=True).double()
    scaled.load_state_dict(attn.state_dict())
    unbiased = torch.softmax((q @ k.transpose(-1, -2) / math.sqrt(5)).masked_fill(~keep, float("-inf")), dim=-1)
    torch.testing.assert_close(scaled(x, context=context, mask=keep)[1], unbiased, rtol=1e-12, atol=1e-12)


def test_t5_stack_shares_one_bias_table():
    model = ref.T5Style(37, 32, 4, 8, 37, 2, 2)
    names = set(model.state_dict())
    tables = sorted(name for name in names if "relative_attention_bias" in name)
    assert tables == [
        "decoder.relative_bias.relative_attention_bias.weight",
        "encoder.relative_bias.relative_attention_bias.weight",
    ]
    assert model.encoder.relative_bias.bidirectional
    assert not model.decoder.relative_bias.bidirectional
    assert not any(name.endswith(".bias") and "relative" not in name for name in names)  # no biases anywhere


# -- training mode: what the hidden dropout tests rely on -------------------------------------


def test_dropout_one_is_exact_in_training_mode():
    """dropout=1: every Dropout gives zeros, so the hidden test's results do not depend on the random draw."""
    layer = randomise(ref.DecoderLayer(8, 2, 12, dropout=1.0, eps=0.1).double(), seed=130).train()
    x, memory = randn(2, 3, 8, seed=131), randn(2, 4, 8, seed=132)
    torch.testing.assert_close(layer(x, memory), layer.norm3(layer.norm2(layer.norm1(x))), rtol=0, atol=0)
    for is_decoder in (False, True):
        t5 = randomise(ref.T5Layer(8, 2, 4, 12, dropout=1.0, is_decoder=is_decoder).double(), seed=133).train()
        assert torch.equal(t5(x, memory=memory if is_decoder else None), x)
    model = randomise(ref.EncoderDecoder(SRC_VOCAB, TGT_VOCAB, D_MODEL, N_HEADS, D_FF, 2, 2, dropout=1.0), 134)
    model = model.double().train()
    src, tgt = tokens([5, 3], 5, SRC_VOCAB, seed=135), tokens([4, 6], 6, TGT_VOCAB, seed=136)
    lengths = (torch.tensor([5, 3]), torch.tensor([4, 6]))
    assert torch.equal(model.embed(src, model.src_embed), torch.zeros(2, 5, D_MODEL, dtype=torch.float64))
    assert torch.equal(model(src, tgt, *lengths), model(src, tgt, *lengths))


def test_embedding_dropout_is_zero_or_doubled():
    """dropout=0.5: every element of the embedding is 0 or twice its eval value; about half are 0."""
    model = randomise(ref.EncoderDecoder(SRC_VOCAB, TGT_VOCAB, D_MODEL, N_HEADS, D_FF, 2, 2, dropout=0.5), 140)
    model = model.double()
    ids = tokens([12] * 16, 12, SRC_VOCAB, seed=141)
    expected = model.eval().embed(ids, model.src_embed)
    assert not (expected == 0).any()
    model.train()
    for seed in range(20):
        torch.manual_seed(seed)
        out = model.embed(ids, model.src_embed)
        dropped = out == 0
        assert 0.45 <= dropped.double().mean() <= 0.55
        torch.testing.assert_close(out[~dropped], 2 * expected[~dropped], rtol=1e-15, atol=0)


@pytest.mark.parametrize(("n_layers", "zeros"), [(2, (0.48, 0.56)), (0, (0.72, 0.78))])
def test_t5_dropout_statistics_have_margins(n_layers, zeros):
    """The hidden statistics test's bounds (zeros 0.44-0.60 / 0.68-0.82, mean square 3-5.5) hold with room to spare."""
    stack = ref.T5Stack(32, 4, 8, 37, n_layers, num_buckets=16, max_distance=20, dropout=0.5)
    stack = randomise(stack.double(), seed=150).train()
    with torch.no_grad():
        stack.final_norm.weight.fill_(1.0)
    x = randn(16, 11, 32, seed=151)
    for seed in range(20):
        torch.manual_seed(seed)
        with torch.no_grad():
            out = stack(x)
        assert zeros[0] <= (out == 0).double().mean() <= zeros[1]
        if n_layers:
            assert 3.6 <= out[out != 0].square().mean() <= 4.6


# -- gradients ------------------------------------------------------------------------------


def test_decoder_layer_gradcheck():
    layer = randomise(ref.DecoderLayer(8, 2, 12, dropout=0.1, eps=0.1).double(), seed=80).eval()
    x, memory = randn(2, 3, 8, seed=81).requires_grad_(), randn(2, 4, 8, seed=82).requires_grad_()
    tgt_mask = torch.ones(3, 3, dtype=torch.bool).tril() & real([3, 2], 3)[:, None, None, :]
    memory_mask = real([4, 1], 4)[:, None, None, :]
    assert torch.autograd.gradcheck(lambda a, m: layer(a, m, tgt_mask, memory_mask), (x, memory))


def test_teacher_forcing_loss_gradient_matches_oracle():
    model, oracle = model_and_oracle(torch.float64, seed=90)
    src_lengths, tgt_lengths = [5, 3], [6, 4]
    src, tgt = tokens(src_lengths, 5, SRC_VOCAB, seed=91), tokens(tgt_lengths, 6, TGT_VOCAB, seed=92)
    loss = model.teacher_forcing_loss(src, tgt, torch.tensor(src_lengths), torch.tensor(tgt_lengths), PAD)
    mine = torch.autograd.grad(loss, [model.generator.weight, model.encoder.layers[0].attn.q_proj.weight])
    logits = oracle_logits(model, oracle, src, tgt[:, :-1], src_lengths, [n - 1 for n in tgt_lengths])
    theirs_loss = F.cross_entropy(logits.transpose(1, 2), tgt[:, 1:], ignore_index=PAD)
    (generator_grad,) = torch.autograd.grad(theirs_loss, [model.generator.weight])
    (q_grad,) = torch.autograd.grad(
        F.cross_entropy(
            oracle_logits(model, oracle, src, tgt[:, :-1], src_lengths, [n - 1 for n in tgt_lengths]).transpose(1, 2),
            tgt[:, 1:],
            ignore_index=PAD,
        ),
        [oracle.encoder.layers[0].self_attn.in_proj_weight],
    )
    torch.testing.assert_close(mine[0], generator_grad, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(mine[1], q_grad[:D_MODEL], rtol=1e-9, atol=1e-10)
