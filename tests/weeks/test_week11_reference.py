"""The week 11 reference against independent oracles.

``transformers``' ``BertForSequenceClassification``, ``BertForTokenClassification`` and
``BertForQuestionAnswering`` built offline from a tiny config with random weights, renamed by
``from_hf_bert_task_state_dict``: logits and losses. ``T5ForConditionalGeneration`` (untied head,
ReLU feed-forward) through week 07's ``from_hf_t5_state_dict``: its own label shifting
(``_shift_right``), logits and the loss with ``-100`` labels. Brute-force float64 loops for the
span search, masked mean pooling, sliding windows and the baselines; each row run on its own,
unpadded, for the decoder classifier; hand-built attention patterns and a hand-built GPT with a
previous-token head for the analysis; zeroed ``out_proj`` columns for head ablation; exact
frequencies for the sampler.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder import config, reference
from autograder.testing import BERT_CONFIG
from tests.helpers import REPO, randn

ref = reference.load(config.load(REPO).week("11"))
encdec = reference.load(config.load(REPO).week("07"))

V, D, LAYERS, HEADS, FF, MAX_LEN = 99, 32, 2, 4, 37, 64
BERT = dict(BERT_CONFIG)  # the hidden tests' tiny BERT


def randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    with torch.no_grad():
        for i, (name, parameter) in enumerate(module.named_parameters()):
            is_norm = name.endswith("weight") and ("norm" in name.lower())
            parameter.copy_(
                (randn(*parameter.shape, seed=seed + i, scale=0.5) + (1.0 if is_norm else 0.0)).to(parameter.dtype)
            )
    return module


def hf_bert(kind: str, seed: int, num_labels: int = 3):
    import transformers

    cfg = transformers.BertConfig(
        vocab_size=V,
        hidden_size=D,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FF,
        max_position_embeddings=MAX_LEN,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        num_labels=num_labels,
        pad_token_id=0,
    )
    cfg._attn_implementation = "eager"
    model = getattr(transformers, kind)(cfg).double()
    return randomise(model, seed).eval()


def ours_from(hf, model: torch.nn.Module) -> torch.nn.Module:
    model = model.double()
    mlm = {name: value for name, value in model.bert.state_dict().items() if name.startswith("mlm_head.")}
    model.load_state_dict(ref.from_hf_bert_task_state_dict(hf.state_dict(), mlm))  # strict
    return model.eval()


def batch(lengths: list[int], length: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (len(lengths), length), generator=generator)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        ids[b, 0], ids[b, n - 1] = 1, 2
        ids[b, n:] = 0
        types[b, n // 2 : n] = 1
        mask[b, :n] = 1
    return ids, types, mask


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


# -- part 1: heads against transformers ---------------------------------------------------


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_sequence_classification_matches_hf(pooling):
    hf = hf_bert("BertForSequenceClassification", seed=1)
    ours = ours_from(hf, ref.BertForSequenceClassification(3, pooling=pooling, **BERT))
    ids, types, mask = batch([9, 5, 7], 9, seed=2)
    labels = torch.tensor([0, 2, 1])
    logits, loss = ours(ids, types, mask, labels)
    if pooling == "cls":
        out = hf(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
        close(logits, out.logits)
        close(loss, out.loss)
    else:
        hidden = hf.bert(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
        pooled = torch.stack([hidden[b, : int(mask[b].sum())].mean(0) for b in range(3)])
        close(logits, hf.classifier(pooled))
        close(loss, F.cross_entropy(hf.classifier(pooled), labels))


def test_token_classification_matches_hf():
    hf = hf_bert("BertForTokenClassification", seed=3, num_labels=5)
    ours = ours_from(hf, ref.BertForTokenClassification(5, **BERT))
    ids, types, mask = batch([9, 5, 7], 9, seed=4)
    labels = torch.randint(5, ids.shape, generator=torch.Generator().manual_seed(5)).masked_fill(mask == 0, -100)
    labels[:, 0] = -100
    logits, loss = ours(ids, types, mask, labels)
    out = hf(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    real = mask.bool()
    close(logits[real], out.logits[real])
    close(loss, out.loss)
    _, none = ours(ids, types, mask, torch.full_like(labels, -100))
    assert none is not None
    assert none.item() == 0.0


def test_question_answering_matches_hf():
    hf = hf_bert("BertForQuestionAnswering", seed=6, num_labels=2)
    ours = ours_from(hf, ref.BertForQuestionAnswering(**BERT))
    ids, types, mask = batch([9, 6, 8], 9, seed=7)
    starts, ends = torch.tensor([4, 3, 5]), torch.tensor([6, 4, 5])
    s, e, loss = ours(ids, types, mask, starts, ends)
    out = hf(input_ids=ids, token_type_ids=types, attention_mask=mask, start_positions=starts, end_positions=ends)
    real = mask.bool()
    close(s[real], out.start_logits[real])
    close(e[real], out.end_logits[real])
    close(loss, out.loss)


@pytest.mark.parametrize("max_answer_length", [1, 3, 30])
def test_best_span_brute_force(max_answer_length):
    generator = torch.Generator().manual_seed(max_answer_length)
    start = torch.randn(6, 11, generator=generator, dtype=torch.float64)
    end = torch.randn(6, 11, generator=generator, dtype=torch.float64)
    context = torch.rand(6, 11, generator=generator) < 0.6
    context[:, 3] = True
    s, e, score = ref.best_span(start, end, context, max_answer_length)
    for b in range(6):
        best = max(
            (float(start[b, i] + end[b, j]), i, j)
            for i in range(11)
            for j in range(i, min(11, i + max_answer_length))
            if context[b, i] and context[b, j]
        )
        assert (int(s[b]), int(e[b])) == (best[1], best[2])
        assert math.isclose(float(score[b]), best[0], rel_tol=1e-12)


# -- part 1: seq2seq against T5ForConditionalGeneration ------------------------------------


def hf_t5(seed: int):
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(
        vocab_size=37,
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=16,
        relative_attention_max_distance=20,
        dropout_rate=0.1,
        feed_forward_proj="relu",
        tie_word_embeddings=False,
        decoder_start_token_id=0,
        pad_token_id=0,
    )
    cfg._attn_implementation = "eager"
    hf = T5ForConditionalGeneration(cfg).double()
    with torch.no_grad():
        for i, (name, parameter) in enumerate(hf.named_parameters()):
            is_norm = "layer_norm" in name
            parameter.copy_(randn(*parameter.shape, seed=seed + i, scale=0.25) + (1.0 if is_norm else 0.0))
    return hf.eval()


def test_shift_right_matches_hf():
    hf = hf_t5(seed=10)
    labels = torch.tensor([[5, 6, 7, 1], [8, 1, -100, -100], [9, 9, 1, -100]])
    assert torch.equal(ref.shift_right(labels, 0, 0), hf._shift_right(labels))


def test_seq2seq_loss_matches_hf():
    hf = hf_t5(seed=20)
    ours = ref.T5ForSeq2SeqLM(37, 32, 4, 8, 37, 2, 2, num_buckets=16, max_distance=20).double().eval()
    state = encdec.from_hf_t5_state_dict(hf.state_dict())
    state["lm_head.weight"] = hf.state_dict()["lm_head.weight"]
    ours.load_state_dict(state)
    generator = torch.Generator().manual_seed(21)
    src = torch.randint(2, 37, (3, 8), generator=generator)
    src_lengths = torch.tensor([8, 5, 3])
    src = src.masked_fill(torch.arange(8)[None] >= src_lengths[:, None], 0)
    labels = torch.randint(2, 37, (3, 6), generator=generator)
    labels[1, 4:] = -100
    labels[2, 2:] = -100
    logits, loss = ours.seq2seq_loss(src, src_lengths, labels)
    out = hf(input_ids=src, attention_mask=(src != 0).long(), labels=labels)
    real = labels != -100
    # T5LayerNorm computes its variance in float32 even for a float64 model: about 1e-6 apart.
    torch.testing.assert_close(logits[real], out.logits[real], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss, out.loss, rtol=1e-5, atol=1e-5)


# -- part 2: pooling and the decoder classifier ------------------------------------------


def test_mean_pool_loop():
    hidden = randn(3, 5, 4, seed=30)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 0]])
    expected = torch.stack([sum(hidden[b, t] for t in range(5) if mask[b, t]) / mask[b].sum() for b in range(3)])
    close(ref.mean_pool(hidden, mask), expected)
    close(ref.mean_pool(hidden, None), hidden.mean(1))


@pytest.mark.parametrize("side", ["left", "right"])
def test_gpt_classifier_pools_the_last_real_token(side):
    torch.manual_seed(0)
    model = randomise(ref.GPTForSequenceClassification(3, 41, 16, 32, 4, 2), seed=40).double().eval()
    lengths = [7, 4, 2]
    rows = [torch.randint(1, 41, (n,), generator=torch.Generator().manual_seed(41 + n)) for n in lengths]
    ids = torch.zeros(3, 7, dtype=torch.long)
    mask = torch.zeros(3, 7, dtype=torch.long)
    for b, row in enumerate(rows):
        where = slice(7 - len(row), 7) if side == "left" else slice(0, len(row))
        ids[b, where], mask[b, where] = row, 1
    logits, _ = model(ids, mask)
    for b, row in enumerate(rows):
        alone, _ = model(row[None])
        close(logits[b], alone[0])


# -- part 2: fine-tuning -------------------------------------------------------------------


def test_freeze_and_layerwise_groups():
    model = ref.BertForSequenceClassification(2, **BERT)
    trainable = ref.freeze(model, "embeddings")
    assert not any(name.startswith("bert.embeddings.") for name in trainable)
    assert "bert.layers.0.attn.q_proj.weight" in trainable
    settings = ref.group_settings(ref.layerwise_lr_groups(model, 1.0, 0.5, weight_decay=0.1))
    assert settings["classifier.weight"] == (1.0, 0.1)
    assert settings["classifier.bias"] == (1.0, 0.0)
    assert settings["bert.layers.1.ff.fc1.weight"] == (0.5, 0.1)
    assert settings["bert.layers.0.norm1.weight"] == (0.25, 0.0)
    assert set(settings) == set(trainable)
    ref.freeze(model, "embeddings")
    assert ref.freeze(model, "head") == ["pooler.weight", "pooler.bias", "classifier.weight", "classifier.bias"]
    torch.optim.AdamW(ref.layerwise_lr_groups(model, 1e-3, 0.8))  # AdamW takes the groups as they are


# -- part 3: multi-task --------------------------------------------------------------------


def test_task_probabilities():
    close(ref.task_probabilities([100, 300], 1.0), torch.tensor([0.25, 0.75], dtype=torch.float64))
    close(ref.task_probabilities([100, 400], 2.0), torch.tensor([1 / 3, 2 / 3], dtype=torch.float64))
    close(ref.task_probabilities([1, 1000], float("inf")), torch.tensor([0.5, 0.5], dtype=torch.float64))
    counts = torch.bincount(ref.sample_tasks([100, 400, 500], 100_000, 1.0, seed=3), minlength=3).double()
    close_enough = (counts / 100_000 - torch.tensor([0.1, 0.4, 0.5], dtype=torch.float64)).abs().max()
    assert close_enough < 0.01


def test_multitask_loss_is_the_weighted_sum():
    torch.manual_seed(0)
    model = ref.MultiTaskClassifier({"a": 2, "b": 3}, **BERT).double().eval()
    ids, _, mask = batch([6, 4], 6, seed=50)
    batches = {"a": (ids, mask, torch.tensor([0, 1])), "b": (ids, mask, torch.tensor([2, 0]))}
    total, per = ref.multitask_loss(model, batches, {"a": 0.3})
    close(total, 0.3 * per["a"] + per["b"])
    hidden, _ = model.bert(ids, None, mask)
    pooled = torch.stack([hidden[b, : int(mask[b].sum())].mean(0) for b in range(2)])
    close(per["b"], F.cross_entropy(model.heads["b"](pooled), torch.tensor([2, 0])))


# -- part 4: windows and baselines ---------------------------------------------------------


def test_windows_and_baselines_loops():
    series = torch.arange(30, dtype=torch.float64)
    x, y = ref.sliding_windows(series, 12, 4)
    assert x.shape == (15, 12)
    for i in range(15):
        assert torch.equal(x[i], series[i : i + 12])
        assert torch.equal(y[i], series[i + 12 : i + 16])
    naive = ref.naive_forecast(x, 4)
    seasonal = ref.seasonal_naive_forecast(x, 15, 5)
    for i in range(15):
        for h in range(1, 16):
            assert seasonal[i, h - 1] == series[i + 12 + h - 1 - 5 * math.ceil(h / 5)]
        assert torch.equal(naive[i], series[i + 11].repeat(4))


# -- part 5: analysis ----------------------------------------------------------------------


def test_scores_on_hand_built_patterns():
    t = 8
    previous = torch.zeros(1, 1, t, t, dtype=torch.float64)
    previous[0, 0, 0, 0] = 1
    previous[0, 0, torch.arange(1, t), torch.arange(t - 1)] = 1
    uniform = torch.full((1, 1, t, t), 1 / t, dtype=torch.float64)
    both = torch.cat([previous, uniform], dim=1)
    close(ref.previous_token_score(both), torch.tensor([1.0, 1 / t], dtype=torch.float64))
    close(ref.attention_entropy(both), torch.tensor([0.0, math.log(t)], dtype=torch.float64))
    p = 4
    induction = torch.zeros(1, 1, 2 * p, 2 * p, dtype=torch.float64)
    for i in range(2 * p):
        induction[0, 0, i, i - p + 1 if i >= p else 0] = 1
    close(
        ref.induction_score(torch.cat([induction, uniform], dim=1), p), torch.tensor([1.0, 1 / t], dtype=torch.float64)
    )
    tokens = ref.repeated_random_tokens(3, 5, 11, seed=1)
    assert torch.equal(tokens[:, :5], tokens[:, 5:])


def previous_token_gpt(t: int = 12) -> torch.nn.Module:
    """A one-layer GPT whose head 0 attends to the previous token: one-hot positions, q = shift(k)."""
    d = 32
    model = ref.GPT(5, t, d, 2, 1).double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.blocks[0].norm1.weight.fill_(1.0)
        model.norm_f.weight.fill_(1.0)
        model.position_embedding.weight[:, :t] = torch.eye(t, dtype=torch.float64) * 5
        attn = model.blocks[0].attn
        shift = torch.zeros(d // 2, d, dtype=torch.float64)
        for i in range(1, min(t, d // 2)):
            shift[i - 1, i] = 1.0  # the query at position i looks like the key at position i - 1
        attn.q_proj.weight[: d // 2] = shift
        key = torch.zeros(d // 2, d, dtype=torch.float64)
        for i in range(d // 2):
            key[i, i] = 1.0
        attn.k_proj.weight[: d // 2] = key
    return model


def test_previous_token_head_scores_about_one():
    model = previous_token_gpt()
    tokens = torch.randint(5, (2, 12), generator=torch.Generator().manual_seed(0))
    maps = ref.attention_maps(model, tokens)
    assert maps.shape == (1, 2, 2, 12, 12)
    assert float(ref.previous_token_score(maps[0])[0]) > 0.95
    # the maps are those of week 02's attention on the block's normed input
    block = model.blocks[0]
    x = model.position_embedding.weight[:12][None].expand(2, -1, -1) + model.token_embedding(tokens)
    _, weights = block.attn(block.norm1(x), mask=torch.ones(12, 12, dtype=torch.bool).tril())
    close(maps[0], weights)


def test_head_ablation_equals_zeroed_columns():
    model = randomise(ref.GPT(17, 12, 32, 4, 2), seed=60).double().eval()
    tokens = torch.randint(17, (3, 12), generator=torch.Generator().manual_seed(61))
    change = ref.head_ablation_loss(model, tokens, 1, 2)
    base = F.cross_entropy(model(tokens)[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
    with torch.no_grad():
        model.blocks[1].attn.out_proj.weight[:, 16:24] = 0
    ablated = F.cross_entropy(model(tokens)[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
    assert math.isclose(change, (ablated - base).item(), rel_tol=1e-9, abs_tol=1e-12)
    assert change != 0.0
