"""The week 06 reference against independent oracles.

``transformers``' ``GPT2LMHeadModel`` built offline from a tiny config (vocab 97, 64
positions, width 32, 2 layers, 4 heads, every dropout 0.1 in eval mode, eager and SDPA
attention), with random weights renamed by ``from_hf_state_dict``: logits in float64 and
float32, with and without left padding; its ``generate`` for greedy decoding (batched,
left-padded), beam search (sequences and ``sequences_scores`` for three length penalties)
and sampling, which draws exactly the same tokens as ``sample`` under the same seed;
``TemperatureLogitsWarper``, ``TopKLogitsWarper`` and ``TopPLogitsWarper`` for the
processors. Also: sampling frequencies against the filtered distribution, causality and
padding invariance, the tied head's gradient, ``gradcheck``, the handout's worked examples,
and that the hidden tests' synthetic checkpoint has exactly ``GPT2LMHeadModel``'s names and shapes.
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder import config as course_config
from autograder import reference
from tests.helpers import REPO, randn

ref = reference.load(course_config.load(REPO).week("06"))  # gpt.py, with the reference block and multihead

hidden = reference.load_file(REPO / "autograder" / "hidden" / "06-gpt2" / "test_gpt.py", name="hidden_gpt")

V, MAX_LEN, D, LAYERS, HEADS = 97, 64, 32, 2, 4
PAD = 0
DTYPES = [torch.float32, torch.float64]


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    # whole models in float32: different kernels sum in different orders
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-4}


def hf_model(dtype: torch.dtype = torch.float64, seed: int = 0, attn: str = "eager"):
    """A tiny GPT2LMHeadModel, weights ~ N(0, 0.5^2) and LayerNorm weights 1 + N(0, 0.5^2), in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=V,
        n_positions=MAX_LEN,
        n_embd=D,
        n_layer=LAYERS,
        n_head=HEADS,
        activation_function="gelu_new",
        attn_pdrop=0.1,
        resid_pdrop=0.1,
        embd_pdrop=0.1,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=PAD,
    )
    config._attn_implementation = attn
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for i, (name, parameter) in enumerate(model.named_parameters()):
            is_norm_weight = ".ln_" in name and name.endswith("weight")
            parameter.copy_(randn(*parameter.shape, seed=seed + i, scale=0.5) + (1.0 if is_norm_weight else 0.0))
    return model.to(dtype).eval()


def ours_from(hf, dtype: torch.dtype = torch.float64):
    model = ref.GPT(V, MAX_LEN, D, HEADS, LAYERS, dropout=0.1).to(dtype)
    model.load_state_dict(ref.from_hf_state_dict(hf.state_dict()))
    return model.eval()


def left_padding(lengths: list[int], length: int) -> torch.Tensor:
    return (torch.arange(length)[None, :] >= length - torch.tensor(lengths)[:, None]).long()


def hf_position_ids(mask: torch.Tensor) -> torch.Tensor:
    """What GPT-2's generate uses for a left-padded batch (GenerationMixin._prepare_position_ids_for_generation)."""
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)


# -- the model -----------------------------------------------------------------------


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_match_gpt2_lm_head_model(dtype, attn):
    hf = hf_model(dtype, seed=1, attn=attn)
    model = ours_from(hf, dtype)
    ids = torch.randint(V, (3, 11), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = hf(ids).logits
        torch.testing.assert_close(model(ids), expected, **tolerance(dtype))
    assert expected.abs().max() > 5  # non-trivial logits


@pytest.mark.parametrize("dtype", DTYPES)
def test_left_padded_logits_match_gpt2_on_real_tokens(dtype):
    hf = hf_model(dtype, seed=3)
    model = ours_from(hf, dtype)
    lengths = [10, 6, 1]
    mask = left_padding(lengths, 10)
    ids = torch.randint(V, (3, 10), generator=torch.Generator().manual_seed(4)).masked_fill(mask == 0, PAD)
    real = mask.bool()
    with torch.no_grad():
        expected = hf(ids, attention_mask=mask, position_ids=hf_position_ids(mask)).logits
        mine = model(ids, attention_mask=mask)
    # HF gives a fully masked (padding) query uniform weights, ours zeros: only real tokens are defined.
    torch.testing.assert_close(mine[real], expected[real], **tolerance(dtype))
    assert torch.equal(ref.position_ids(mask)[real], hf_position_ids(mask)[real])


def test_from_hf_state_dict_names_and_layouts():
    hf = hf_model(seed=5)
    state = hf.state_dict()
    mapped = ref.from_hf_state_dict(state)
    assert set(mapped) == set(ref.GPT(V, MAX_LEN, D, HEADS, LAYERS).state_dict())
    c_attn = state["transformer.h.1.attn.c_attn.weight"]  # Conv1D: (in, out) = (D, 3D)
    assert c_attn.shape == (D, 3 * D)
    torch.testing.assert_close(mapped["blocks.1.attn.q_proj.weight"], c_attn[:, :D].T, rtol=0, atol=0)
    torch.testing.assert_close(mapped["blocks.1.attn.k_proj.weight"], c_attn[:, D : 2 * D].T, rtol=0, atol=0)
    torch.testing.assert_close(mapped["blocks.1.attn.v_proj.weight"], c_attn[:, 2 * D :].T, rtol=0, atol=0)
    torch.testing.assert_close(
        mapped["blocks.0.ff.fc1.weight"], state["transformer.h.0.mlp.c_fc.weight"].T, rtol=0, atol=0
    )
    # the head is tied in transformers too, so nothing is lost by dropping lm_head.weight
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()
    # a GPT2Model state dict (no "transformer." prefix, no head) maps the same way
    body = {k.removeprefix("transformer."): v for k, v in state.items() if k != "lm_head.weight"}
    assert ref.from_hf_state_dict(body).keys() == mapped.keys()


def test_hidden_tests_synthetic_checkpoint_has_gpt2_names_and_shapes():
    from transformers import GPT2Config, GPT2LMHeadModel

    for config in hidden.CONFIGS:
        vocab, max_len, d, heads, n_layers, d_ff, eps = hidden.CONFIGS[config]
        hf = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=vocab,
                n_positions=max_len,
                n_embd=d,
                n_layer=n_layers,
                n_head=heads,
                n_inner=d_ff,
                layer_norm_epsilon=eps,
                bos_token_id=None,
                eos_token_id=None,
            )
        ).double()
        synthetic = hidden.hf_state_dict(config, torch.float64, seed=0)
        assert {k: tuple(v.shape) for k, v in synthetic.items()} == {
            k: tuple(v.shape) for k, v in hf.state_dict().items()
        }
        hf.load_state_dict(synthetic)
        model = ref.GPT(vocab, max_len, d, heads, n_layers, d_ff=d_ff, eps=eps).double().eval()
        model.load_state_dict(ref.from_hf_state_dict(synthetic))
        ids = torch.randint(vocab, (2, 7), generator=torch.Generator().manual_seed(6))
        with torch.no_grad():
            torch.testing.assert_close(model(ids), hf.eval()(ids).logits, rtol=1e-10, atol=1e-10)


def test_position_ids_and_causal_mask_by_hand():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert torch.equal(ref.position_ids(mask), torch.tensor([[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]))
    assert ref.position_ids(mask.bool()).dtype == torch.int64
    causal = ref.causal_mask(4, 4)
    assert causal.shape == (1, 1, 4, 4)
    assert torch.equal(causal[0, 0], torch.ones(4, 4, dtype=torch.bool).tril())
    assert torch.equal(ref.causal_mask(2, 4)[0, 0], torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool))
    padded = ref.causal_mask(5, 5, mask)
    assert padded.shape == (2, 1, 5, 5)
    assert not padded[0, 0, :, :2].any()
    assert torch.equal(padded[1, 0], torch.ones(5, 5, dtype=torch.bool).tril())


def test_model_is_causal_and_padding_changes_nothing():
    model = ours_from(hf_model(seed=7))
    ids = torch.randint(V, (2, 12), generator=torch.Generator().manual_seed(8))
    changed = ids.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % V
    with torch.no_grad():
        torch.testing.assert_close(model(ids)[:, :7], model(changed)[:, :7], rtol=0, atol=1e-12)
        assert not torch.allclose(model(ids)[:, 7:], model(changed)[:, 7:])
        mask = left_padding([12, 5], 12)
        padded = model(ids, attention_mask=mask)
        torch.testing.assert_close(padded[1, 7:], model(ids[1:, 7:])[0], rtol=1e-10, atol=1e-10)


def test_tied_head_gradient_is_the_sum_of_both_uses():
    model = ours_from(hf_model(seed=9))
    assert not any("head" in name for name in model.state_dict())
    ids = torch.randint(V, (2, 6), generator=torch.Generator().manual_seed(10))
    grad_output = randn(2, 6, V, seed=11)
    table = model.token_embedding.weight
    (total,) = torch.autograd.grad(model(ids), table, grad_output)
    lookup = torch.autograd.grad(
        hidden.variant_logits(ref, model, ids, detach_head=True), table, grad_output, allow_unused=True
    )[0]
    head = torch.autograd.grad(hidden.variant_logits(ref, model, ids, detach_lookup=True), table, grad_output)[0]
    torch.testing.assert_close(total, lookup + head, rtol=1e-10, atol=1e-10)
    assert head.abs().sum() > 0
    assert lookup.abs().sum() > 0
    # the hidden tests' "variant" forward is the reference itself when nothing is changed
    torch.testing.assert_close(hidden.variant_logits(ref, model, ids), model(ids), rtol=1e-12, atol=1e-12)


def test_hf_gradient_of_the_tied_embedding_matches():
    hf = hf_model(seed=12)
    model = ours_from(hf)
    ids = torch.randint(V, (2, 6), generator=torch.Generator().manual_seed(13))
    grad_output = randn(2, 6, V, seed=14)
    (mine,) = torch.autograd.grad(model(ids), model.token_embedding.weight, grad_output)
    (theirs,) = torch.autograd.grad(hf(ids).logits, hf.transformer.wte.weight, grad_output)
    torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-9)


def test_gradcheck_through_the_model():
    model = ref.GPT(11, 8, 8, 2, 1).double().eval()
    with torch.no_grad():
        for i, parameter in enumerate(model.parameters()):
            parameter.add_(randn(*parameter.shape, seed=20 + i, scale=0.3))
    ids = torch.tensor([[1, 5, 3, 7], [2, 2, 9, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]])
    names = ["token_embedding.weight", "norm_f.weight", "blocks.0.attn.q_proj.weight"]
    start = [dict(model.named_parameters())[name].detach().clone().requires_grad_() for name in names]

    def run(*weights: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(
            model, dict(zip(names, weights, strict=True)), (ids,), {"attention_mask": mask}
        )
        return out[mask.bool()]

    assert torch.autograd.gradcheck(run, tuple(start))


def test_dropout_one_in_training_leaves_only_the_final_norm_bias():
    model = ours_from(hf_model(seed=15))
    model.drop.p = 1.0
    for block in model.blocks:
        block.dropout1.p = block.dropout2.p = 1.0
    model.train()
    ids = torch.randint(V, (2, 4), generator=torch.Generator().manual_seed(16))
    expected = (model.norm_f.bias @ model.token_embedding.weight.T).expand(2, 4, V)
    torch.testing.assert_close(model(ids), expected, rtol=1e-12, atol=1e-12)


def test_dropout_rescale_statistic_of_the_hidden_tests():
    """test_gpt_dropout_rescaled's oracle: with zero block outputs and tiny embeddings norm_f is linear, so the
    mean train-mode logits are the eval-mode logits (ratio 1) and a dropout without the rescale gives 1 - p."""
    vocab, max_len, d, heads, n_layers, d_ff, eps = hidden.CONFIGS[hidden.MAIN]
    state = ref.from_hf_state_dict(hidden.hf_state_dict(hidden.MAIN, torch.float64, seed=55))
    for name in list(state):
        if name.endswith(("attn.out_proj.weight", "attn.out_proj.bias", "ff.fc2.weight", "ff.fc2.bias")):
            state[name] = torch.zeros_like(state[name])
        elif name in ("token_embedding.weight", "position_embedding.weight"):
            state[name] = state[name] * 2e-4
    model = ref.GPT(vocab, max_len, d, heads, n_layers, d_ff=d_ff, dropout=0.5, eps=eps).double()
    model.load_state_dict(state)
    ids = hidden.token_ids(1, 6, vocab, seed=56)
    with torch.no_grad():
        base = model.norm_f.bias @ model.token_embedding.weight.T
        eval_logits = model.eval()(ids) - base
        # linear: halving the embeddings' input halves the logits (to 1e-3), so a missing 1 / (1 - p) shows
        x = model.token_embedding(ids) + model.position_embedding(torch.arange(6))
        half = model.norm_f(0.5 * x) @ model.token_embedding.weight.T - base
        assert float((half * eval_logits).sum() / (eval_logits * eval_logits).sum()) == pytest.approx(0.5, abs=1e-3)
        model.train()
        torch.manual_seed(0)
        ratios = []
        for _ in range(20):
            mean = model(ids.repeat(hidden.DROPOUT_ROWS, 1)).mean(0, keepdim=True) - base
            ratios.append(float((mean * eval_logits).sum() / (eval_logits * eval_logits).sum()))
    assert max(abs(r - 1.0) for r in ratios) < 0.05  # the test fails beyond 0.15


# -- logits processors against transformers' warpers ---------------------------------------


def processor_inputs() -> torch.Tensor:
    return randn(4, V, seed=30) * torch.tensor([[0.3], [1.0], [3.0], [8.0]], dtype=torch.float64)


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
def test_temperature_matches_hf(temperature):
    from transformers import TemperatureLogitsWarper

    logits = processor_inputs()
    expected = TemperatureLogitsWarper(temperature)(None, logits)
    torch.testing.assert_close(ref.apply_temperature(logits, temperature), expected, rtol=0, atol=0)
    with pytest.raises(ValueError):
        ref.apply_temperature(logits, 0.0)


@pytest.mark.parametrize("k", [1, 2, 10, 96, 97, 200])
def test_top_k_matches_hf(k):
    from transformers import TopKLogitsWarper

    for logits in (processor_inputs(), processor_inputs().round()):  # rounding makes ties
        expected = TopKLogitsWarper(k)(None, logits)
        assert torch.equal(ref.top_k_filter(logits, k), expected)
    with pytest.raises(ValueError):
        ref.top_k_filter(logits, 0)


def test_top_k_ties_are_kept_as_hf():
    from transformers import TopKLogitsWarper

    for inputs in hidden.top_k_inputs(torch.float64).values():
        for k in (1, 2, 3, 5):
            flat = inputs.reshape(-1, inputs.shape[-1])
            assert torch.equal(ref.top_k_filter(inputs, k).reshape(flat.shape), TopKLogitsWarper(k)(None, flat))
    ties = torch.tensor([[1.0, 3.0, 2.0, 3.0, 0.5, 2.0, 2.0, -1.0]])
    assert int(ref.top_k_filter(ties, 3).isfinite().sum()) == 5  # 3, 3 and all three 2s


@pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 0.5, 0.75, 0.9, 0.99, 1.0])
def test_top_p_matches_hf(p):
    from transformers import TopPLogitsWarper

    logits = processor_inputs()
    expected = TopPLogitsWarper(p)(None, logits)
    torch.testing.assert_close(ref.top_p_filter(logits, p), expected, rtol=0, atol=0)
    filtered = ref.top_p_filter(logits, p)
    assert bool(filtered.isfinite().any(-1).all())  # at least one token survives


def test_top_p_matches_hf_on_the_hidden_cases():
    from transformers import TopPLogitsWarper

    for logits, p in hidden.top_p_cases(torch.float64).values():
        flat = logits.reshape(-1, logits.shape[-1])
        expected = TopPLogitsWarper(p)(None, flat)
        torch.testing.assert_close(ref.top_p_filter(logits, p).reshape(flat.shape), expected, rtol=0, atol=0)


def test_top_p_rejects_bad_p():
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError):
            ref.top_p_filter(processor_inputs(), p)


# -- generation against transformers' generate ------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_greedy_matches_generate(dtype):
    hf = hf_model(dtype, seed=40)
    model = ours_from(hf, dtype)
    prompts = torch.randint(V, (2, 5), generator=torch.Generator().manual_seed(41))
    expected = hf.generate(prompts, do_sample=False, num_beams=1, max_new_tokens=10, pad_token_id=PAD)
    assert torch.equal(ref.greedy(model, prompts, 10), expected)


def test_greedy_matches_generate_with_left_padding():
    hf = hf_model(torch.float64, seed=42)
    model = ours_from(hf)
    lengths = [7, 3, 1]
    mask = left_padding(lengths, 7)
    prompts = torch.randint(1, V, (3, 7), generator=torch.Generator().manual_seed(43)).masked_fill(mask == 0, PAD)
    expected = hf.generate(prompts, attention_mask=mask, do_sample=False, max_new_tokens=9, pad_token_id=PAD)
    got = ref.greedy(model, prompts, 9, attention_mask=mask)
    assert torch.equal(got, expected)
    for row, n in enumerate(lengths):  # each row as if it were alone
        assert torch.equal(got[row, 7 - n :], ref.greedy(model, prompts[row : row + 1, 7 - n :], 9)[0])


@pytest.mark.parametrize(("num_beams", "steps", "length_penalty"), [(3, 5, 1.0), (4, 6, 0.5), (2, 4, 2.0), (5, 3, 1.0)])
def test_beam_search_matches_generate(num_beams, steps, length_penalty):
    """No EOS (eos_token_id=None): every beam runs max_new_tokens, and generate's final scores are sum / N ** penalty."""
    hf = hf_model(torch.float64, seed=44)
    model = ours_from(hf)
    prompt = torch.randint(V, (1, 4), generator=torch.Generator().manual_seed(45 + num_beams))
    out = hf.generate(
        prompt,
        do_sample=False,
        num_beams=num_beams,
        num_return_sequences=num_beams,
        max_new_tokens=steps,
        length_penalty=length_penalty,
        early_stopping=False,
        pad_token_id=PAD,
        return_dict_in_generate=True,
        output_scores=True,
    )
    sequences, scores = ref.beam_search(model, prompt, num_beams, steps, length_penalty=length_penalty)
    assert torch.equal(sequences, out.sequences)
    # generate accumulates its log-probabilities in float32 whatever the model's dtype
    torch.testing.assert_close(scores.float(), out.sequences_scores, rtol=1e-5, atol=1e-5)


def test_beam_search_differs_from_greedy_on_the_hidden_tests_prompts():
    """The hidden beam tests must be able to tell beam search from greedy and from "extend the best beam only"."""
    for case, (num_beams, steps, penalty, prompt_seed) in hidden.BEAM_CASES.items():
        reference_model = ref.GPT(*hidden.CONFIGS[hidden.MAIN][:5], dropout=0.1).double().eval()
        reference_model.load_state_dict(
            ref.from_hf_state_dict(hidden.hf_state_dict(hidden.MAIN, torch.float64, seed=120))
        )
        prompt = hidden.token_ids(1, 4, V, seed=prompt_seed)
        sequences, _ = ref.beam_search(reference_model, prompt, num_beams, steps, penalty)
        best_only = hidden.beam_variant(reference_model, prompt, num_beams, steps, "best-only")
        no_sum = hidden.beam_variant(reference_model, prompt, num_beams, steps, "no-sum")
        assert not torch.equal(sequences, best_only), case
        assert not torch.equal(sequences, no_sum), case
        assert not torch.equal(sequences[:1], ref.greedy(reference_model, prompt, steps)), case


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 0.7, "top_k": 5},
        {"top_p": 0.8},
        {"temperature": 1.3, "top_k": 20, "top_p": 0.9},
        {"temperature": 2.0, "top_k": 3, "top_p": 0.5},
        {},
        {"top_p": 0.0},
        {"temperature": 1.3, "top_k": 150},
    ],
    ids=["t0.7-k5", "p0.8", "t1.3-k20-p0.9", "t2-k3-p0.5", "plain", "p0", "t1.3-k150"],
)
def test_sample_draws_what_generate_draws_under_the_same_seed(kwargs):
    """generate samples with torch.multinomial(probs, 1) on the global generator; ours on a Generator with the same seed.

    Both are the same Mersenne Twister stream, and generate's probabilities are float32, so a
    float32 model draws identical tokens. generate applies top_k=50 unless told otherwise: 0 turns it off.
    """
    hf = hf_model(torch.float32, seed=50)
    model = ours_from(hf, torch.float32)
    lengths = [6, 2, 4]
    mask = left_padding(lengths, 6)
    prompts = torch.randint(1, V, (3, 6), generator=torch.Generator().manual_seed(51)).masked_fill(mask == 0, PAD)
    torch.manual_seed(52)
    expected = hf.generate(
        prompts,
        attention_mask=mask,
        do_sample=True,
        max_new_tokens=12,
        pad_token_id=PAD,
        **{"top_k": 0, **kwargs},
    )
    assert torch.equal(ref.sample(model, prompts, 12, seed=52, attention_mask=mask, **kwargs), expected)


def test_sample_is_reproducible_and_seed_dependent():
    model = ours_from(hf_model(seed=53))
    prompts = torch.randint(V, (4, 3), generator=torch.Generator().manual_seed(54))
    first = ref.sample(model, prompts, 10, seed=1)
    assert torch.equal(first, ref.sample(model, prompts, 10, seed=1))
    assert not torch.equal(first, ref.sample(model, prompts, 10, seed=2))
    before = torch.random.get_rng_state()
    ref.sample(model, prompts, 3, seed=3)
    assert torch.equal(before, torch.random.get_rng_state())  # the global generator is untouched


@pytest.mark.parametrize("kwargs", [{"temperature": 0.5, "top_k": 8}, {"top_p": 0.6}, {"temperature": 2.0}])
def test_sampling_frequencies_follow_the_filtered_distribution(kwargs):
    model = ours_from(hf_model(seed=55))
    prompt = torch.randint(V, (1, 2), generator=torch.Generator().manual_seed(56))
    n = 20000
    drawn = ref.sample(model, prompt.repeat(n, 1), 1, seed=57, **kwargs)[:, -1]
    with torch.no_grad():
        logits = ref.apply_temperature(model(prompt)[0, -1], kwargs.get("temperature", 1.0))
    from transformers import TopKLogitsWarper, TopPLogitsWarper

    if "top_k" in kwargs:
        logits = TopKLogitsWarper(kwargs["top_k"])(None, logits[None])[0]
    if "top_p" in kwargs:
        logits = TopPLogitsWarper(kwargs["top_p"])(None, logits[None])[0]
    probs = torch.softmax(logits, -1)
    counts = torch.bincount(drawn, minlength=V).double()
    assert not bool(((counts > 0) & (probs == 0)).any())
    # every token within 6 standard deviations (plus one count) of its expected frequency
    sd = (probs * (1 - probs) / n).sqrt()
    assert bool(((counts / n - probs).abs() <= 6 * sd + 1 / n).all())


# -- the handout's worked examples ------------------------------------------------------------


def test_handout_temperature_table():
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0], dtype=torch.float64)
    table = {
        0.5: [0.8292, 0.1122, 0.0413, 0.0152, 0.0021],
        1.0: [0.5630, 0.2071, 0.1256, 0.0762, 0.0280],
        2.0: [0.3745, 0.2272, 0.1769, 0.1378, 0.0836],
    }
    for temperature, probs in table.items():
        got = torch.softmax(ref.apply_temperature(logits, temperature), -1)
        torch.testing.assert_close(got, torch.tensor(probs, dtype=torch.float64), rtol=0, atol=6e-5)


def test_handout_top_k_and_top_p_examples():
    rows = {
        "peaked": [0.85, 0.06, 0.04, 0.03, 0.01, 0.01],
        "medium": [0.40, 0.25, 0.15, 0.10, 0.06, 0.04],
        "flat": [0.22, 0.20, 0.18, 0.16, 0.14, 0.10],
    }
    kept_top_p = {"peaked": 1, "medium": 3, "flat": 4}
    for name, probs in rows.items():
        logits = torch.tensor(probs, dtype=torch.float64).log()
        assert int(ref.top_k_filter(logits, 3).isfinite().sum()) == 3
        assert int(ref.top_p_filter(logits, 0.75).isfinite().sum()) == kept_top_p[name], name
    medium = torch.softmax(ref.top_k_filter(torch.tensor(rows["medium"], dtype=torch.float64).log(), 3), -1)
    torch.testing.assert_close(medium[:3], torch.tensor([0.5, 0.3125, 0.1875], dtype=torch.float64))
    example = torch.tensor([0.1, 0.5, 0.15, 0.25], dtype=torch.float64).log()  # top_p_filter's docstring
    assert ref.top_p_filter(example, 0.7).isfinite().tolist() == [False, True, False, True]


class Bigram:
    """The handout's toy language model: the next token depends on the last one only. Tokens a, b, c and a start s."""

    NEXT = torch.tensor(
        [
            [0.3, 0.3, 0.4, 0.0],  # after a
            [0.9, 0.05, 0.05, 0.0],  # after b
            [0.4, 0.4, 0.2, 0.0],  # after c
            [0.5, 0.4, 0.1, 0.0],  # after s (the prompt)
        ],
        dtype=torch.float64,
    ).log()

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.NEXT[input_ids]


def test_handout_beam_search_trace():
    prompt = torch.tensor([[3]])
    assert ref.greedy(Bigram(), prompt, 2).tolist() == [[3, 0, 2]]  # s a c, probability 0.5 * 0.4 = 0.20
    sequences, scores = ref.beam_search(Bigram(), prompt, 2, 2)
    assert sequences.tolist() == [[3, 1, 0], [3, 0, 2]]  # s b a (0.36), then s a c (0.20)
    torch.testing.assert_close(scores, torch.tensor([math.log(0.36), math.log(0.20)], dtype=torch.float64) / 2)
    sequences, _ = ref.beam_search(Bigram(), prompt, 1, 2)
    assert sequences.tolist() == [[3, 0, 2]]  # one beam is greedy
