"""Public tests for week 07: run them with `course check 07`.

They compare your code with a loop over the prefix-LM mask's formula, PyTorch's own
nn.TransformerDecoderLayer and nn.Transformer (weights copied in, masks flipped
to PyTorch's polarity), F.cross_entropy, a greedy loop over single sentences, and
T5's attention written out with plain tensor ops. The hidden tests check more
(float32, other lengths and prefixes, gradients, whole T5-style models compared
with a reference that matches Hugging Face's T5Model, the forbidden built-ins).
"""

import math

import torch
import torch.nn.functional as F

from autograder import assert_close, assert_equal, expect_tensor

D, H, FF = 12, 3, 20
SRC_VOCAB, TGT_VOCAB = 11, 13
PAD, BOS = 0, 1


def rand(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def real(lengths, length):
    return torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]  # (B, T), True = a real token


def ids(lengths, length, vocab, seed):
    out = torch.randint(3, vocab, (len(lengths), length), generator=torch.Generator().manual_seed(seed))
    return out.masked_fill(~real(lengths, length), PAD)


def test_prefix_lm_mask_matches_its_formula(student):
    prefixes, length = [0, 2, 5], 5
    expected = torch.zeros(3, 1, length, length, dtype=torch.bool)
    for b, prefix in enumerate(prefixes):
        for i in range(length):
            for j in range(length):
                expected[b, 0, i, j] = j < prefix or j <= i
    assert_equal(
        student.prefix_lm_mask(torch.tensor(prefixes), length),
        expected,
        name="prefix_lm_mask([0, 2, 5], 5)",
        hint="key j is visible from query i iff j < prefix_length or j <= i",
    )


def join(*parts):
    return ".".join(part for part in parts if part)


def attention_state(prefix, seed):
    """Our names for one MultiHeadAttention, and the packed in_proj form of nn.MultiheadAttention."""
    q, k, v = (rand(D, D, seed=seed + i, scale=0.5) for i in range(3))
    qb, kb, vb = (rand(D, seed=seed + 3 + i, scale=0.5) for i in range(3))
    out_w, out_b = rand(D, D, seed=seed + 6, scale=0.5), rand(D, seed=seed + 7, scale=0.5)
    ours = {"q_proj.weight": q, "q_proj.bias": qb, "k_proj.weight": k, "k_proj.bias": kb}
    ours |= {"v_proj.weight": v, "v_proj.bias": vb, "out_proj.weight": out_w, "out_proj.bias": out_b}
    theirs = {"in_proj_weight": torch.cat([q, k, v]), "in_proj_bias": torch.cat([qb, kb, vb])}
    theirs |= {"out_proj.weight": out_w, "out_proj.bias": out_b}
    return {join(prefix, name): value for name, value in ours.items()}, theirs


def decoder_layer_states(prefix, theirs_prefix, seed):
    """One decoder layer's weights under our names and under nn.TransformerDecoderLayer's."""
    ours, theirs = {}, {}
    for mine, torch_name, offset in (("self_attn", "self_attn", 0), ("cross_attn", "multihead_attn", 10)):
        a, b = attention_state(join(prefix, mine), seed + offset)
        ours |= a
        theirs |= {join(theirs_prefix, torch_name, name): value for name, value in b.items()}
    pieces = {
        "ff.fc1.weight": ("linear1.weight", (FF, D)),
        "ff.fc1.bias": ("linear1.bias", (FF,)),
        "ff.fc2.weight": ("linear2.weight", (D, FF)),
        "ff.fc2.bias": ("linear2.bias", (D,)),
    }
    for norm in ("norm1", "norm2", "norm3"):
        pieces[f"{norm}.weight"] = (f"{norm}.weight", (D,))
        pieces[f"{norm}.bias"] = (f"{norm}.bias", (D,))
    for i, (mine, (torch_name, shape)) in enumerate(pieces.items()):
        is_norm_weight = mine.startswith("norm") and mine.endswith("weight")
        value = rand(*shape, seed=seed + 20 + i, scale=0.5) + (1.0 if is_norm_weight else 0.0)
        ours[join(prefix, mine)] = value
        theirs[join(theirs_prefix, torch_name)] = value
    return ours, theirs


def test_decoder_layer_matches_pytorch(student):
    ours, theirs = decoder_layer_states("", "", seed=100)
    oracle = torch.nn.TransformerDecoderLayer(
        D, H, FF, dropout=0.1, layer_norm_eps=0.01, batch_first=True, dtype=torch.float64
    ).eval()
    oracle.load_state_dict(theirs)
    layer = student.DecoderLayer(D, H, FF, dropout=0.1, eps=0.01)
    layer.double()
    layer.load_state_dict(ours)
    layer.eval()
    x, memory = rand(2, 4, D, seed=1), rand(2, 6, D, seed=2)
    tgt_real, src_real = real([4, 2], 4), real([6, 3], 6)
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    expected = oracle(
        x, memory, tgt_mask=~causal, tgt_key_padding_mask=~tgt_real, memory_key_padding_mask=~src_real
    ).detach()
    assert_close(
        layer(x, memory, causal & tgt_real[:, None, None, :], src_real[:, None, None, :]),
        expected,
        name="DecoderLayer against nn.TransformerDecoderLayer (Tt=4, Ts=6, padding on both sides)",
        hint="post-norm: self-attention (causal & target padding), cross-attention to memory (source padding), ff",
    )


def original_model(student):
    """The student's EncoderDecoder and nn.Transformer with the same (random) weights, both in eval mode."""
    oracle = torch.nn.Transformer(
        D, H, 2, 2, FF, dropout=0.1, layer_norm_eps=0.01, batch_first=True, dtype=torch.float64
    ).eval()
    theirs = {}
    ours = {
        "src_embed.weight": rand(SRC_VOCAB, D, seed=1, scale=0.5),
        "tgt_embed.weight": rand(TGT_VOCAB, D, seed=2, scale=0.5),
        "generator.weight": rand(TGT_VOCAB, D, seed=3, scale=0.5),
        "generator.bias": rand(TGT_VOCAB, seed=4, scale=0.5),
    }
    for n in range(2):
        a, b = decoder_layer_states(f"decoder.layers.{n}", f"decoder.layers.{n}", seed=200 + 50 * n)
        ours |= a
        theirs |= b
        a, b = decoder_layer_states(f"encoder.layers.{n}", f"encoder.layers.{n}", seed=400 + 50 * n)
        ours |= {k.replace("self_attn", "attn"): v for k, v in a.items() if "cross_attn" not in k and "norm3" not in k}
        theirs |= {k: v for k, v in b.items() if "multihead_attn" not in k and "norm3" not in k}
    for stack in ("encoder", "decoder"):
        ours[f"{stack}.norm.weight"] = theirs[f"{stack}.norm.weight"] = 1 + rand(D, seed=7, scale=0.5)
        ours[f"{stack}.norm.bias"] = theirs[f"{stack}.norm.bias"] = rand(D, seed=8, scale=0.5)
    oracle.load_state_dict(theirs)
    model = student.EncoderDecoder(SRC_VOCAB, TGT_VOCAB, D, H, FF, 2, 2, dropout=0.1, eps=0.01)
    model.double()
    model.load_state_dict(ours)
    model.eval()
    return model, oracle, ours


def sinusoids(length):
    position = torch.arange(length, dtype=torch.float64)[:, None]
    div_term = torch.exp(torch.arange(0, D, 2, dtype=torch.float64) * -(math.log(10000.0) / D))
    table = torch.zeros(length, D, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * div_term), torch.cos(position * div_term)
    return table


def oracle_logits(oracle, ours, src, tgt, src_lengths, tgt_lengths):
    src_x = ours["src_embed.weight"][src] * math.sqrt(D) + sinusoids(src.shape[1])
    tgt_x = ours["tgt_embed.weight"][tgt] * math.sqrt(D) + sinusoids(tgt.shape[1])
    src_real, tgt_real = real(src_lengths, src.shape[1]), real(tgt_lengths, tgt.shape[1])
    causal = torch.ones(tgt.shape[1], tgt.shape[1], dtype=torch.bool).tril()
    out = oracle(  # its masks: True = NOT allowed
        src_x,
        tgt_x,
        tgt_mask=~causal,
        src_key_padding_mask=~src_real,
        tgt_key_padding_mask=~tgt_real,
        memory_key_padding_mask=~src_real,
    )
    return F.linear(out, ours["generator.weight"], ours["generator.bias"]).detach()


def test_encoder_decoder_matches_nn_transformer(student):
    model, oracle, ours = original_model(student)
    src_lengths, tgt_lengths = [6, 3], [3, 5]
    src, tgt = ids(src_lengths, 6, SRC_VOCAB, seed=10), ids(tgt_lengths, 5, TGT_VOCAB, seed=11)
    expected = oracle_logits(oracle, ours, src, tgt, src_lengths, tgt_lengths)
    logits = model(src, tgt, torch.tensor(src_lengths), torch.tensor(tgt_lengths))
    logits = expect_tensor(logits, name="EncoderDecoder logits", shape=expected.shape, dtype=expected.dtype)
    keep = real(tgt_lengths, 5)
    assert_close(
        logits[keep],
        expected[keep],
        name="EncoderDecoder logits at the real target positions, against nn.Transformer",
        hint="embeddings * sqrt(d_model) + sinusoidal positions; the masks; encoder.norm and decoder.norm; generator",
    )


def test_teacher_forcing_matches_cross_entropy(student):
    model, oracle, ours = original_model(student)
    src_lengths, tgt_lengths = [6, 4], [5, 3]
    src, tgt = ids(src_lengths, 6, SRC_VOCAB, seed=12), ids(tgt_lengths, 5, TGT_VOCAB, seed=13)
    tgt[:, 0] = BOS
    logits = oracle_logits(oracle, ours, src, tgt[:, :-1], src_lengths, [n - 1 for n in tgt_lengths])
    expected = F.cross_entropy(logits.transpose(1, 2), tgt[:, 1:], ignore_index=PAD)
    assert_close(
        model.teacher_forcing_loss(src, tgt, torch.tensor(src_lengths), torch.tensor(tgt_lengths), PAD),
        expected,
        name="teacher_forcing_loss",
        hint="decoder input tgt[:, :-1], targets tgt[:, 1:], padding ignored, mean over the real tokens",
    )


def test_greedy_matches_one_sentence_at_a_time(student):
    model, oracle, ours = original_model(student)
    src_lengths = [6, 3, 5]
    src = ids(src_lengths, 6, SRC_VOCAB, seed=14)
    max_len = 6
    rows = []
    for b, n in enumerate(src_lengths):  # no EOS yet: what each sentence would say
        sentence = [BOS]
        for _ in range(max_len):
            logits = oracle_logits(oracle, ours, src[b : b + 1, :n], torch.tensor([sentence]), [n], [len(sentence)])
            sentence.append(int(logits[0, -1].argmax()))
        rows.append(sentence)
    eos = rows[0][3]  # an EOS that the first sentence reaches by step 3
    pad = 12
    expected = []
    for sentence in rows:
        stop = sentence.index(eos, 1) + 1 if eos in sentence[1:] else len(sentence)
        expected.append(sentence[:stop] + [pad] * (len(sentence) - stop))
    assert_equal(
        model.greedy_translate(src, torch.tensor(src_lengths), BOS, eos, max_len, pad_id=pad),
        torch.tensor(expected),
        name=f"greedy_translate(eos_id={eos}, pad_id={pad}, max_len={max_len}), against one sentence at a time",
        hint="BOS, then the arg-max of the last position's logits; after a sentence's EOS, pad_id only",
    )


def test_t5_attention_matches_its_formula(student):
    weights = {name: rand(8, 10, seed=i, scale=0.4) for i, name in enumerate(("q_proj", "k_proj", "v_proj"))}
    state = {f"{name}.weight": value for name, value in weights.items()}
    state["out_proj.weight"] = rand(10, 8, seed=3, scale=0.4)
    attn = student.T5Attention(10, 2, 4)
    attn.double()
    attn.load_state_dict(state)
    x, bias = rand(2, 3, 10, seed=4), rand(1, 2, 3, 3, seed=5)
    mask = torch.ones(3, 3, dtype=torch.bool).tril()

    def heads(name):
        return F.linear(x, state[f"{name}.weight"]).view(2, 3, 2, 4).transpose(1, 2)

    scores = heads("q_proj") @ heads("k_proj").transpose(-1, -2) + bias  # no 1/sqrt(d_head): T5 does not scale
    probabilities = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    merged = (probabilities @ heads("v_proj")).transpose(1, 2).reshape(2, 3, 8)
    output, attn_weights = attn(x, mask=mask, position_bias=bias)
    assert_close(attn_weights, probabilities, name="T5Attention weights", hint="q k^T + position_bias, unscaled")
    assert_close(output, F.linear(merged, state["out_proj.weight"]), name="T5Attention output")


def test_t5_encoder_layer_is_pre_norm(student):
    d, heads, d_head, d_ff = 8, 2, 4, 10
    layer = student.T5Layer(d, heads, d_head, d_ff, dropout=0.1)
    layer.double()
    shapes = {
        "self_attn.q_proj.weight": (8, d),
        "self_attn.k_proj.weight": (8, d),
        "self_attn.v_proj.weight": (8, d),
        "self_attn.out_proj.weight": (d, 8),
        "self_attn_norm.weight": (d,),
        "ff.fc1.weight": (d_ff, d),
        "ff.fc2.weight": (d, d_ff),
        "ff_norm.weight": (d,),
    }
    state = {name: rand(*shape, seed=20 + i, scale=0.5) for i, (name, shape) in enumerate(shapes.items())}
    layer.load_state_dict(state)
    layer.eval()
    x, bias = rand(2, 5, d, seed=30), rand(1, heads, 5, 5, seed=31)

    def rms(h, weight):
        return h * torch.rsqrt(h.square().mean(-1, keepdim=True) + 1e-6) * weight

    def project(h, name):
        return F.linear(h, state[f"self_attn.{name}.weight"]).view(2, 5, heads, d_head).transpose(1, 2)

    normed = rms(x, state["self_attn_norm.weight"])
    scores = project(normed, "q_proj") @ project(normed, "k_proj").transpose(-1, -2) + bias
    attended = (torch.softmax(scores, dim=-1) @ project(normed, "v_proj")).transpose(1, 2).reshape(2, 5, 8)
    h = x + F.linear(attended, state["self_attn.out_proj.weight"])
    hidden = torch.relu(F.linear(rms(h, state["ff_norm.weight"]), state["ff.fc1.weight"]))
    expected = h + F.linear(hidden, state["ff.fc2.weight"])
    assert_close(
        layer(x, position_bias=bias),
        expected,
        name="T5Layer (encoder) by hand",
        hint="pre-norm with RMSNorm: x + attn(norm(x)) with the bias, then x + ff(norm(x)); no biases, no scaling",
    )
