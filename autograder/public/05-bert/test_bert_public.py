"""Public tests for week 05: run them with `course check 05`.

They compare your code with PyTorch's own pieces (F.embedding, F.layer_norm,
nn.TransformerEncoderLayer in post-norm form with the exact GELU, F.gelu and
F.cross_entropy), using the same weights, and check the masking procedure's
rules and rates. The hidden tests check more cases (float32, a Hugging Face
checkpoint's weights, the exact tokens mask_tokens returns for given seeds,
gradients through the tied weights, the forbidden built-ins).
"""

import torch
import torch.nn.functional as F

from autograder import assert_close, assert_equal, expect_sequence

V, D, H, FF, LAYERS, MAX_LEN = 50, 16, 4, 24, 2, 20
PAD, CLS, SEP, MASK = 0, 1, 2, 3


def rand(*shape, seed=0, scale=0.5):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def course_state(seed=0):
    """Weights under this week's names: std 0.5, LayerNorm weights 1 + N(0, 0.25)."""
    shapes = {
        "embeddings.word_embeddings.weight": (V, D),
        "embeddings.position_embeddings.weight": (MAX_LEN, D),
        "embeddings.token_type_embeddings.weight": (2, D),
        "embeddings.norm.weight": (D,),
        "embeddings.norm.bias": (D,),
        "mlm_head.transform.weight": (D, D),
        "mlm_head.transform.bias": (D,),
        "mlm_head.norm.weight": (D,),
        "mlm_head.norm.bias": (D,),
        "mlm_head.bias": (V,),
    }
    for i in range(LAYERS):
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"layers.{i}.attn.{proj}.weight"] = (D, D)
            shapes[f"layers.{i}.attn.{proj}.bias"] = (D,)
        shapes[f"layers.{i}.ff.fc1.weight"] = (FF, D)
        shapes[f"layers.{i}.ff.fc1.bias"] = (FF,)
        shapes[f"layers.{i}.ff.fc2.weight"] = (D, FF)
        shapes[f"layers.{i}.ff.fc2.bias"] = (D,)
        for norm in ("norm1", "norm2"):
            shapes[f"layers.{i}.{norm}.weight"] = (D,)
            shapes[f"layers.{i}.{norm}.bias"] = (D,)
    return {
        name: rand(*shape, seed=seed + i) + (1.0 if "norm" in name and name.endswith("weight") else 0.0)
        for i, (name, shape) in enumerate(shapes.items())
    }


def sample_batch():
    """Two sequences, [CLS] A [SEP] B [SEP], the second padded: ids, segment ids, attention mask."""
    ids = torch.randint(5, V, (2, 9), generator=torch.Generator().manual_seed(1))
    ids[0, [0, 4, 8]] = torch.tensor([CLS, SEP, SEP])
    ids[1, [0, 3, 5]] = torch.tensor([CLS, SEP, SEP])
    ids[1, 6:] = PAD
    types = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1, 0, 0, 0]])
    attention_mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3])
    return ids, types, attention_mask


def oracle_embeddings(state, ids, types):
    x = (
        F.embedding(ids, state["embeddings.word_embeddings.weight"])
        + state["embeddings.position_embeddings.weight"][: ids.shape[1]]
        + F.embedding(types, state["embeddings.token_type_embeddings.weight"])
    )
    return F.layer_norm(x, (D,), state["embeddings.norm.weight"], state["embeddings.norm.bias"], eps=1e-12)


def oracle_layer(state, i):
    """nn.TransformerEncoderLayer is BERT's layer when post-norm with the exact GELU."""
    layer = torch.nn.TransformerEncoderLayer(
        D, H, FF, dropout=0.1, activation="gelu", layer_norm_eps=1e-12, batch_first=True, norm_first=False
    ).double()
    layer.eval()
    p = f"layers.{i}."
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(torch.cat([state[p + f"attn.{x}_proj.weight"] for x in "qkv"]))
        layer.self_attn.in_proj_bias.copy_(torch.cat([state[p + f"attn.{x}_proj.bias"] for x in "qkv"]))
        layer.self_attn.out_proj.weight.copy_(state[p + "attn.out_proj.weight"])
        layer.self_attn.out_proj.bias.copy_(state[p + "attn.out_proj.bias"])
        for theirs, ours in (("linear1", "ff.fc1"), ("linear2", "ff.fc2"), ("norm1", "norm1"), ("norm2", "norm2")):
            getattr(layer, theirs).weight.copy_(state[p + ours + ".weight"])
            getattr(layer, theirs).bias.copy_(state[p + ours + ".bias"])
    return layer


def test_padding_mask_shape_and_polarity(student):
    attention_mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    expected = torch.tensor([[True, True, True], [True, False, False]]).view(2, 1, 1, 3)
    assert_equal(
        student.key_padding_mask(attention_mask), expected, name="key_padding_mask", hint="(B, 1, 1, T), True = real"
    )


def test_embeddings_match_functional(student):
    state = course_state(seed=10)
    embeddings = student.BertEmbeddings(V, D, MAX_LEN, 2, eps=1e-12, dropout=0.1)
    embeddings.double()
    embeddings.load_state_dict(
        {name[len("embeddings.") :]: v for name, v in state.items() if name.startswith("embeddings.")}
    )
    embeddings.eval()
    ids, types, _ = sample_batch()
    assert_close(
        embeddings(ids, types),
        oracle_embeddings(state, ids, types),
        name="BertEmbeddings (eval mode)",
        hint="LayerNorm(word + position + token_type)",
    )
    assert_close(
        embeddings(ids),
        oracle_embeddings(state, ids, torch.zeros_like(ids)),
        name="BertEmbeddings with token_type_ids=None",
        hint="no token_type_ids means segment 0 everywhere",
    )


def test_bert_matches_pytorch_layers(student):
    state = course_state(seed=20)
    model = student.BertForMaskedLM(V, D, LAYERS, H, FF, max_len=MAX_LEN, dropout=0.1, eps=1e-12)
    model.double()
    model.load_state_dict(state)
    model.eval()
    ids, types, attention_mask = sample_batch()
    real = attention_mask.bool()
    x = oracle_embeddings(state, ids, types)
    for i in range(LAYERS):
        x = oracle_layer(state, i)(x, src_key_padding_mask=~real)  # its mask: True = NOT allowed
    h = F.gelu(F.linear(x, state["mlm_head.transform.weight"], state["mlm_head.transform.bias"]))
    h = F.layer_norm(h, (D,), state["mlm_head.norm.weight"], state["mlm_head.norm.bias"], eps=1e-12)
    logits = F.linear(h, state["embeddings.word_embeddings.weight"], state["mlm_head.bias"])
    hidden, mine = expect_sequence(model(ids, types, attention_mask), 2, name="BertForMaskedLM forward")
    assert_close(
        hidden[real],
        x.detach()[real],
        name="hidden states at the real tokens",
        hint="embeddings, then post-norm layers with exact GELU and a (B, 1, 1, T) padding mask",
    )
    assert_close(
        mine[real],
        logits.detach()[real],
        name="logits at the real tokens",
        hint="norm(gelu(transform(h))) @ embeddings.word_embeddings.weight.T + bias",
    )


def test_masking_rules_and_rates(student):
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(5, V, (64, 100), generator=generator)
    ids[:, 0], ids[:, 99] = CLS, SEP
    ids[::2, 80:] = PAD
    special = (ids == CLS) | (ids == SEP) | (ids == PAD)
    inputs, labels = expect_sequence(student.mask_tokens(ids, V, MASK, special, 5), 2, name="mask_tokens")
    again = expect_sequence(student.mask_tokens(ids, V, MASK, special, 5), 2, name="mask_tokens")
    assert_equal(again[1], labels, name="labels for the same seed twice", hint="use a Generator seeded with seed")
    selected = labels != -100
    assert_equal(selected[special], torch.zeros_like(selected[special]), name="special tokens selected")
    assert_equal(labels[selected], ids[selected], name="labels at the selected positions (the original ids)")
    assert_equal(inputs[~selected], ids[~selected], name="inputs at positions that were not selected")
    rate = float(selected.sum() / (~special).sum())
    assert abs(rate - 0.15) < 0.03, f"selected {rate:.1%} of the non-special tokens; expected about 15%"
    masked = (inputs[selected] == MASK).double().mean().item()
    kept = (inputs[selected] == ids[selected]).double().mean().item()
    assert abs(masked - 0.8) < 0.06, f"{masked:.1%} of the selected tokens became [MASK]; expected about 80%"
    assert abs(kept - 0.1) < 0.05, f"{kept:.1%} of the selected tokens stayed unchanged; expected about 10%"


def test_loss_matches_f_cross_entropy(student):
    logits = rand(3, 7, V, seed=30, scale=3.0)
    labels = torch.randint(0, V, (3, 7), generator=torch.Generator().manual_seed(31))
    labels[torch.rand(3, 7, generator=torch.Generator().manual_seed(32)) < 0.6] = -100
    labels[0, 0] = 4
    expected = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    assert_close(
        student.mlm_loss(logits, labels),
        expected,
        name="mlm_loss",
        hint="mean of -log softmax(logits)[label] over the positions whose label is not -100",
    )
