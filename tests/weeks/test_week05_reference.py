"""The week 05 reference against independent oracles.

``transformers``' ``BertForMaskedLM`` built offline from a tiny config (random weights,
eager and SDPA attention) with its weights renamed by ``from_hf_state_dict``: embeddings,
hidden states, logits, the loss it returns for given labels and the gradients of the tied
embedding matrix; its attention masks against ``key_padding_mask``; its "gelu"
against ours. ``F.cross_entropy(ignore_index=-100)`` for the loss, and
``DataCollatorForLanguageModeling`` for the masking statistics (its draws differ from the
documented order, so only rates are compared); the documented order itself is re-derived
here from the docstring. Also: the hidden tests' synthetic checkpoint has exactly
``BertForMaskedLM``'s names and shapes.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder import config, reference
from autograder.testing import BERT_CONFIG
from tests.helpers import REPO, randn

ref = reference.load(config.load(REPO).week("05"))  # bert.py, with the reference week 04 block and week 02 multihead

hidden = reference.load_file(REPO / "autograder" / "hidden" / "05-bert" / "test_bert.py", name="hidden_bert")

V, D, LAYERS, HEADS, FF, MAX_LEN = 99, 32, 2, 4, 37, 64
PAD, CLS, SEP, MASK = 0, 1, 2, 3
OURS = dict(BERT_CONFIG)  # the hidden tests' tiny BERT


def hf_config(attn: str = "eager"):
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=V,
        hidden_size=D,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FF,
        max_position_embeddings=MAX_LEN,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        pad_token_id=PAD,
    )
    config._attn_implementation = attn
    return config


def hf_model(dtype: torch.dtype, seed: int, attn: str = "eager"):
    """A tiny BertForMaskedLM with std-0.5 weights (LayerNorm weights 1 + 0.5 N(0, 1)), eval mode."""
    from transformers import BertForMaskedLM

    model = BertForMaskedLM(hf_config(attn)).to(dtype)
    with torch.no_grad():
        for i, (name, parameter) in enumerate(model.named_parameters()):  # tied weights appear once
            offset = 1.0 if name.endswith("LayerNorm.weight") else 0.0
            parameter.copy_(randn(*parameter.shape, seed=seed + i, dtype=dtype, scale=0.5) + offset)
    return model.eval()


def ours_from(hf, dtype: torch.dtype):
    model = ref.BertForMaskedLM(**OURS).to(dtype)
    model.load_state_dict(ref.from_hf_state_dict(hf.state_dict()))  # strict: every name accounted for
    return model.eval()


def batch(lengths: list[int], length: int, seed: int):
    ids, token_types, attention_mask = hidden.batch(lengths, length, seed=seed)
    return ids, token_types, attention_mask


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-4}


# -- names and weights --------------------------------------------------------------


def test_hidden_tests_checkpoint_has_hf_names_and_shapes():
    expected = {name: tuple(value.shape) for name, value in hf_model(torch.float64, seed=0).state_dict().items()}
    assert hidden.hf_shapes() == expected
    synthetic = hidden.hf_state_dict(seed=1)
    assert synthetic["cls.predictions.decoder.weight"] is synthetic["bert.embeddings.word_embeddings.weight"]
    assert synthetic["cls.predictions.decoder.bias"] is synthetic["cls.predictions.bias"]
    assert hidden.CONFIG == OURS


def test_mapping_covers_every_parameter_once():
    hf = hf_model(torch.float64, seed=0)
    mapped = ref.from_hf_state_dict(hf.state_dict())
    model = ref.BertForMaskedLM(**OURS).double()
    assert set(mapped) == set(model.state_dict())
    # the same number of parameters as Hugging Face's model, whose tied output matrix counts once
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in hf.parameters())
    assert all(p.shape != (V, D) for name, p in model.named_parameters() if name.startswith("mlm_head"))


def test_mapping_skips_pretraining_heads_and_rejects_unknown_names():
    from transformers import BertForPreTraining

    pretraining = BertForPreTraining(hf_config())
    model = ref.BertForMaskedLM(**OURS)
    model.load_state_dict(ref.from_hf_state_dict(pretraining.state_dict()))  # pooler and NSP head dropped
    with pytest.raises(KeyError, match="no counterpart"):
        ref.from_hf_state_dict({"bert.encoder.layer.0.attention.self.rotary.weight": torch.zeros(1)})


def test_state_dict_names():
    names = set(ref.BertForMaskedLM(**OURS).state_dict())
    per_layer = {
        *(f"attn.{p}_proj.{w}" for p in ("q", "k", "v", "out") for w in ("weight", "bias")),
        *(f"{m}.{w}" for m in ("norm1", "norm2", "ff.fc1", "ff.fc2") for w in ("weight", "bias")),
    }
    assert names == {
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.norm.weight",
        "embeddings.norm.bias",
        *(f"layers.{i}.{name}" for i in range(LAYERS) for name in per_layer),
        "mlm_head.transform.weight",
        "mlm_head.transform.bias",
        "mlm_head.norm.weight",
        "mlm_head.norm.bias",
        "mlm_head.bias",
    }


# -- the model against BertForMaskedLM ------------------------------------------------------


def test_gelu_is_hugging_face_gelu():
    from transformers.activations import ACT2FN

    x = randn(500, seed=3, scale=3.0)
    torch.testing.assert_close(ref.gelu(x), ACT2FN["gelu"](x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_embeddings_match_bert_embeddings(dtype):
    hf = hf_model(dtype, seed=10)
    model = ours_from(hf, dtype)
    ids, token_types, _ = batch([13, 9, 4], 13, seed=11)
    with torch.no_grad():
        expected = hf.bert.embeddings(input_ids=ids, token_type_ids=token_types)
        torch.testing.assert_close(model.embeddings(ids, token_types), expected, **tolerance(dtype))
        expected_default = hf.bert.embeddings(input_ids=ids)
        torch.testing.assert_close(model.embeddings(ids), expected_default, **tolerance(dtype))


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_key_padding_mask_matches_hugging_face_mask(attn):
    """Hugging Face's (B, 1, T, T) mask: bool True = attend (SDPA), or 0 = attend / min = blocked (eager)."""
    from transformers.masking_utils import create_bidirectional_mask

    _, _, attention_mask = batch([7, 4, 1], 7, seed=13)
    theirs = create_bidirectional_mask(
        config=hf_config(attn),
        inputs_embeds=torch.zeros(3, 7, D, dtype=torch.float64),
        attention_mask=attention_mask,
        allow_is_bidirectional_skip=False,
    )
    allowed = theirs if theirs.dtype == torch.bool else theirs == 0
    assert allowed.shape == (3, 1, 7, 7)
    for mask in (attention_mask, attention_mask.bool()):
        ours = ref.key_padding_mask(mask)
        assert ours.shape == (3, 1, 1, 7)
        assert torch.equal(ours.expand(3, 1, 7, 7), allowed)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_model_matches_bert_for_masked_lm(dtype, attn):
    hf = hf_model(dtype, seed=20, attn=attn)
    model = ours_from(hf, dtype)
    ids, token_types, attention_mask = batch([13, 9, 4], 13, seed=21)
    with torch.no_grad():
        out = hf(input_ids=ids, token_type_ids=token_types, attention_mask=attention_mask, output_hidden_states=True)
        hidden_states, logits = model(ids, token_types, attention_mask)
    # A padded query attends to the real keys in both implementations, so every position agrees here;
    # the hidden tests still compare real tokens only (masking padded queries too is allowed).
    torch.testing.assert_close(hidden_states, out.hidden_states[-1], **tolerance(dtype))
    torch.testing.assert_close(logits, out.logits, **tolerance(dtype))
    assert logits.abs().max() > 5  # std-0.5 weights give logits far from zero: a real test


def test_model_without_mask_or_segments_matches():
    hf = hf_model(torch.float64, seed=30)
    model = ours_from(hf, torch.float64)
    ids, _, _ = batch([10, 10], 10, seed=31)
    with torch.no_grad():
        out = hf(input_ids=ids, output_hidden_states=True)
        hidden_states, logits = model(ids)
    torch.testing.assert_close(hidden_states, out.hidden_states[-1], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(logits, out.logits, rtol=1e-10, atol=1e-10)


def test_each_layer_matches_bert_layer():
    """Each of our layers alone maps Hugging Face's hidden states before that layer to those after it."""
    hf = hf_model(torch.float64, seed=35)
    model = ours_from(hf, torch.float64)
    ids, token_types, attention_mask = batch([12, 8, 3], 12, seed=36)
    mask = ref.key_padding_mask(attention_mask)
    with torch.no_grad():
        states = hf(input_ids=ids, token_type_ids=token_types, attention_mask=attention_mask, output_hidden_states=True)
        for i, layer in enumerate(model.layers):
            torch.testing.assert_close(layer(states.hidden_states[i], mask=mask), states.hidden_states[i + 1])


def test_hidden_layer_variants_differ_from_the_reference():
    """Every mistake the hidden test_encoder_layers names changes a layer's float64 output at the real tokens."""
    model = ref.BertForMaskedLM(**OURS).double().eval()
    model.load_state_dict(ref.from_hf_state_dict(hidden.hf_state_dict(10)))
    x = randn(3, 11, D, seed=11)
    real = torch.arange(11)[None, :] < torch.tensor([[11], [6], [3]])
    with torch.no_grad():
        for layer in model.layers:
            expected = hidden.at_real(layer(x, mask=real[:, None, None, :]), real)
            for description, value in hidden.layer_variants(layer, x, real[:, None, None, :]).items():
                # ten times the hidden test's float64 tolerance (rtol 1e-7, atol 1e-10) still tells them apart
                assert not torch.allclose(hidden.at_real(value, real), expected, rtol=1e-6, atol=1e-9), description


def test_mlm_loss_matches_bert_for_masked_lm_loss():
    hf = hf_model(torch.float64, seed=40)
    model = ours_from(hf, torch.float64)
    ids, token_types, attention_mask = batch([13, 9, 4], 13, seed=41)
    special = (ids == CLS) | (ids == SEP) | (attention_mask == 0)
    inputs, labels = ref.mask_tokens(ids, V, MASK, special, seed=42, mlm_probability=0.3)
    assert (labels != -100).sum() > 3
    out = hf(input_ids=inputs, token_type_ids=token_types, attention_mask=attention_mask, labels=labels)
    _, logits = model(inputs, token_types, attention_mask)
    loss = ref.mlm_loss(logits, labels)
    torch.testing.assert_close(loss, out.loss, rtol=1e-10, atol=1e-10)
    # the tied matrix gets the same gradient (lookup + output projection) in both
    (mine,) = torch.autograd.grad(loss, [model.embeddings.word_embeddings.weight])
    (theirs,) = torch.autograd.grad(out.loss, [hf.bert.embeddings.word_embeddings.weight])
    torch.testing.assert_close(mine, theirs, rtol=1e-8, atol=1e-10)
    unused = torch.ones(V, dtype=torch.bool)
    unused[inputs.unique()] = False
    assert unused.any()
    assert mine[unused].abs().sum() > 0  # rows never looked up still learn, through the head


def options_model(seed: int, **changes):
    """A Hugging Face BertForMaskedLM with some config values changed, and ours built from it (float64)."""
    from transformers import BertConfig, BertForMaskedLM

    values = {**hf_config().to_dict(), **changes}
    hf = BertForMaskedLM(BertConfig(**values)).double()
    with torch.no_grad():
        for i, (name, parameter) in enumerate(hf.named_parameters()):
            offset = 1.0 if name.endswith("LayerNorm.weight") else 0.0
            parameter.copy_(randn(*parameter.shape, seed=seed + i, scale=0.5) + offset)
    ours = {
        **OURS,
        "type_vocab_size": values["type_vocab_size"],
        "eps": values["layer_norm_eps"],
        "dropout": values["hidden_dropout_prob"],
    }
    model = ref.BertForMaskedLM(**ours).double()
    model.load_state_dict(ref.from_hf_state_dict(hf.state_dict()))
    return hf, model


def test_model_options_match_bert_for_masked_lm():
    """The hidden test_model_options: three segments and eps = 0.05 in every LayerNorm, as Hugging Face builds them."""
    hf, model = options_model(seed=45, type_vocab_size=3, layer_norm_eps=0.05)
    hf.eval()
    model.eval()
    ids, _, attention_mask = batch([12, 8, 5], 12, seed=46)
    token_types = torch.randint(0, 3, ids.shape, generator=torch.Generator().manual_seed(47)) * attention_mask
    assert (token_types == 2).any()
    with torch.no_grad():
        out = hf(input_ids=ids, token_type_ids=token_types, attention_mask=attention_mask, output_hidden_states=True)
        hidden_states, logits = model(ids, token_types, attention_mask)
    torch.testing.assert_close(hidden_states, out.hidden_states[-1], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(logits, out.logits, rtol=1e-10, atol=1e-10)


def test_model_dropout_one_in_training_matches_bert_for_masked_lm():
    """With every dropout at p = 1 in training mode both models are deterministic, and agree."""
    hf, model = options_model(seed=48, hidden_dropout_prob=1.0, attention_probs_dropout_prob=1.0)
    hf.train()
    model.train()
    ids, token_types, attention_mask = batch([10, 7, 3], 10, seed=49)
    with torch.no_grad():
        out = hf(input_ids=ids, token_type_ids=token_types, attention_mask=attention_mask, output_hidden_states=True)
        hidden_states, logits = model(ids, token_types, attention_mask)
    torch.testing.assert_close(hidden_states, out.hidden_states[-1], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(logits, out.logits, rtol=1e-10, atol=1e-10)
    # the embeddings' output is 0, so every position has the same hidden state: norm2(norm1(...)) of the biases
    assert torch.allclose(hidden_states, hidden_states[:1, :1].expand_as(hidden_states), rtol=1e-12, atol=1e-12)


def test_model_with_a_sequence_of_padding_only():
    """A row of attention_mask that is all 0: the other sequences are unaffected and every output is finite."""
    hf = hf_model(torch.float64, seed=55)
    model = ours_from(hf, torch.float64)
    ids, token_types, attention_mask = batch([13, 9, 4, 0], 13, seed=56)
    assert attention_mask[3].sum() == 0
    with torch.no_grad():
        out = hf(input_ids=ids, token_type_ids=token_types, attention_mask=attention_mask, output_hidden_states=True)
        hidden_states, logits = model(ids, token_types, attention_mask)
        alone = model(ids[:3], token_types[:3], attention_mask[:3])
    assert torch.isfinite(hidden_states).all()
    assert torch.isfinite(logits).all()
    real = attention_mask.bool()
    torch.testing.assert_close(hidden_states[real], out.hidden_states[-1][real], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(logits[:3], alone[1], rtol=1e-12, atol=1e-12)


def test_dropout_is_active_in_training_mode_only():
    model = ref.BertForMaskedLM(**OURS).double()
    ids, token_types, attention_mask = batch([9, 5], 9, seed=50)
    torch.manual_seed(0)
    first = model(ids, token_types, attention_mask)[1]
    second = model(ids, token_types, attention_mask)[1]
    assert not torch.equal(first, second)
    model.eval()
    assert torch.equal(model(ids, token_types, attention_mask)[1], model(ids, token_types, attention_mask)[1])


# -- the MLM loss -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_mlm_loss_matches_f_cross_entropy(scale, dtype):
    logits = randn(3, 9, V, seed=60, dtype=dtype, scale=scale)
    labels = torch.randint(0, V, (3, 9), generator=torch.Generator().manual_seed(61))
    labels[torch.rand(3, 9, generator=torch.Generator().manual_seed(62)) < 0.6] = -100
    labels[0, 0] = 7
    expected = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    loss = ref.mlm_loss(logits, labels)
    assert loss.shape == ()
    assert loss.dtype == dtype
    torch.testing.assert_close(loss, expected, **({"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {}))


def test_mlm_loss_without_labels_is_zero_not_nan():
    logits = randn(2, 4, V, seed=63).requires_grad_()
    labels = torch.full((2, 4), -100)
    assert F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100).isnan()  # the built-in
    loss = ref.mlm_loss(logits, labels)
    assert loss.item() == 0.0
    (grad,) = torch.autograd.grad(loss, [logits])
    assert torch.equal(grad, torch.zeros_like(logits))


def test_mlm_loss_gradcheck():
    logits = randn(2, 5, 7, seed=64).requires_grad_()
    labels = torch.tensor([[1, -100, 6, 0, -100], [-100, -100, 3, 3, 2]])
    assert torch.autograd.gradcheck(lambda t: ref.mlm_loss(t, labels), (logits,))


# -- masking ---------------------------------------------------------------------------------


def documented_masking(ids, special, seed, p):
    """mask_tokens re-derived from its docstring's numbered steps."""
    g = torch.Generator()
    g.manual_seed(seed)
    u = torch.rand(ids.shape, generator=g)
    r = torch.rand(ids.shape, generator=g)
    tokens = torch.randint(V, ids.shape, generator=g)
    chosen = (u < p) & ~special
    out = ids.clone()
    out[chosen & (r < 0.8)] = MASK
    swap = chosen & (r >= 0.8) & (r < 0.9)
    out[swap] = tokens[swap]
    labels = torch.full_like(ids, -100)
    labels[chosen] = ids[chosen]
    return out, labels


@pytest.mark.parametrize(("seed", "p"), [(0, 0.15), (5, 0.15), (17, 0.5)])
def test_mask_tokens_follows_its_docstring(seed, p):
    ids, special = hidden.masking_batch(8, 40, seed=seed + 100)
    inputs, labels = ref.mask_tokens(ids, V, MASK, special, seed, mlm_probability=p)
    expected_inputs, expected_labels = documented_masking(ids, special, seed, p)
    assert torch.equal(inputs, expected_inputs)
    assert torch.equal(labels, expected_labels)
    assert inputs.dtype == labels.dtype == torch.long
    none_inputs, _ = ref.mask_tokens(ids, V, MASK, None, seed, mlm_probability=p)
    assert torch.equal(none_inputs, documented_masking(ids, torch.zeros_like(special), seed, p)[0])


def test_mask_tokens_does_not_touch_its_input_or_the_global_generator():
    ids, special = hidden.masking_batch(4, 30, seed=7)
    before = ids.clone()
    state = torch.get_rng_state()
    ref.mask_tokens(ids, V, MASK, special, 3)
    assert torch.equal(ids, before)
    assert torch.equal(torch.get_rng_state(), state)


def masking_rates(inputs, labels, ids, special):
    selected = labels != -100
    assert not (selected & special).any()
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(inputs[~selected], ids[~selected])
    chosen, originals = inputs[selected], ids[selected]
    return {
        "selected": selected.sum().item() / (~special).sum().item(),
        "mask": (chosen == MASK).double().mean().item(),
        "unchanged": (chosen == originals).double().mean().item(),
        "random": ((chosen != MASK) & (chosen != originals)).double().mean().item(),
    }


def test_mask_tokens_statistics_match_data_collator(tmp_path):
    from transformers import BertTokenizer, DataCollatorForLanguageModeling

    vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + [f"w{i}" for i in range(V - 5)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(tmp_path / "vocab.txt"))
    assert len(tokenizer) == V
    assert tokenizer.mask_token_id == MASK
    assert tokenizer.pad_token_id == PAD
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=0)
    ids, special = hidden.masking_batch(512, 120, seed=200)
    theirs = masking_rates(*collator.torch_mask_tokens(ids.clone(), special.clone()), ids, special)
    ours = masking_rates(*ref.mask_tokens(ids, V, MASK, special, 0), ids, special)
    n = (~special).sum().item()
    n_selected = n * 0.15
    expected = {"selected": 0.15, "mask": 0.8 + 0.1 / V, "unchanged": 0.1 + 0.1 / V, "random": 0.1 * (1 - 2 / V)}
    for key, rate in expected.items():
        count = n if key == "selected" else n_selected
        sigma = math.sqrt(rate * (1 - rate) / count)
        assert abs(ours[key] - rate) < 5 * sigma, (key, ours[key], rate)
        assert abs(theirs[key] - rate) < 5 * sigma, (key, theirs[key], rate)
        assert abs(ours[key] - theirs[key]) < 8 * sigma, (key, ours[key], theirs[key])


def test_hidden_statistics_tolerances_hold_for_many_seeds():
    """The hidden test's eight-sigma bounds, on the reference with seeds other than the graded one."""
    ids, special = hidden.masking_batch(256, 120, seed=300)
    for seed in range(5):
        rates = masking_rates(*ref.mask_tokens(ids, V, MASK, special, seed), ids, special)
        n = (~special).sum().item()
        assert abs(rates["selected"] - 0.15) < 8 * math.sqrt(0.15 * 0.85 / n)
        assert abs(rates["mask"] - 0.8) < 0.05
