"""Public tests for week 06: run them with `course check 06`.

They compare your GPT with a decoder built from PyTorch's own
nn.TransformerEncoderLayer (pre-norm, tanh GELU, a causal mask) with the same
weights, check the processors on the handout's small examples, and check your
generation functions against step-by-step loops over your own model's logits.
The hidden tests check more (Hugging Face-style weights, float32, two model
sizes, gradients through the tied head, dropout, ties in top-k, exact seeded
samples and their frequencies, beam search with length penalties).
"""

import math

import torch
import torch.nn.functional as F

from autograder import assert_close, assert_equal

V, MAX_LEN, D, H, L = 50, 16, 24, 4, 2


def rand(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def random_state(student_model_state):
    """Random weights for every entry: std 0.5, LayerNorm weights around 1."""
    state = {}
    for i, (name, value) in enumerate(student_model_state.items()):
        is_norm_weight = "norm" in name and name.endswith("weight")
        state[name] = rand(*value.shape, seed=i, scale=0.5) + (1.0 if is_norm_weight else 0.0)
    return state


def make_model(student):
    model = student.GPT(V, MAX_LEN, D, H, L, dropout=0.1)
    model.double()
    state = random_state(model.state_dict())
    model.load_state_dict(state)
    model.train(False)  # eval mode: dropout off
    return model, dict(state)


def pytorch_decoder(state):
    """The same model from nn.TransformerEncoderLayer: pre-norm, tanh GELU, F = 4 D, a final LayerNorm, tied head."""
    layers = []
    for i in range(L):
        layer = torch.nn.TransformerEncoderLayer(
            D,
            H,
            4 * D,
            dropout=0.1,
            activation=lambda x: F.gelu(x, approximate="tanh"),
            batch_first=True,
            norm_first=True,
            dtype=torch.float64,
        ).eval()
        p = f"blocks.{i}."
        with torch.no_grad():
            layer.self_attn.in_proj_weight.copy_(
                torch.cat([state[p + f"attn.{n}_proj.weight"] for n in ("q", "k", "v")])
            )
            layer.self_attn.in_proj_bias.copy_(torch.cat([state[p + f"attn.{n}_proj.bias"] for n in ("q", "k", "v")]))
            for theirs, ours in [
                ("self_attn.out_proj", "attn.out_proj"),
                ("linear1", "ff.fc1"),
                ("linear2", "ff.fc2"),
                ("norm1", "norm1"),
                ("norm2", "norm2"),
            ]:
                module = layer.get_submodule(theirs)
                module.weight.copy_(state[p + ours + ".weight"])
                module.bias.copy_(state[p + ours + ".bias"])
        layers.append(layer)

    def run(ids):
        length = ids.shape[1]
        x = state["token_embedding.weight"][ids] + state["position_embedding.weight"][torch.arange(length)]
        future = torch.ones(length, length, dtype=torch.bool).triu(1)  # its masks: True = NOT allowed
        for layer in layers:
            x = layer(x, src_mask=future)
        x = F.layer_norm(x, (D,), state["norm_f.weight"], state["norm_f.bias"], eps=1e-5)
        return (x @ state["token_embedding.weight"].T).detach()

    return run


def test_logits_match_a_pytorch_decoder(student):
    model, state = make_model(student)
    oracle = pytorch_decoder(state)
    ids = torch.randint(V, (2, 7), generator=torch.Generator().manual_seed(1))
    assert_close(
        model(ids),
        oracle(ids),
        name="GPT(50, 16, 24, 4, 2) logits against nn.TransformerEncoderLayer (pre-norm, tanh GELU, causal)",
        hint="embeddings + positions, pre-norm blocks (activation='gelu_tanh') with a causal mask, norm_f, "
        "then @ token_embedding.weight.T",
    )


def test_left_padding_changes_nothing(student):
    model, state = make_model(student)
    oracle = pytorch_decoder(state)
    ids = torch.randint(V, (3, 6), generator=torch.Generator().manual_seed(2))
    lengths = [6, 4, 1]
    mask = (torch.arange(6)[None, :] >= 6 - torch.tensor(lengths)[:, None]).long()  # left padding
    out = model(ids, attention_mask=mask)
    for row, n in enumerate(lengths):
        assert_close(
            out[row, 6 - n :],
            oracle(ids[row : row + 1, 6 - n :])[0],
            name=f"row {row} of a left-padded batch (lengths {lengths}) against the same {n} tokens unpadded",
            hint="positions = cumsum(attention_mask) - 1, clamped at 0; mask = causal AND real keys",
        )


def test_position_ids_and_mask_small(student):
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert_equal(
        student.position_ids(mask),
        torch.tensor([[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]),
        name="position_ids([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])",
    )
    assert_equal(
        student.causal_mask(2, 4),
        torch.tensor([[[[True, True, True, False], [True, True, True, True]]]]),
        name="causal_mask(2, 4): the last 2 of 4 positions",
        hint="query i sits at position Tk - Tq + i",
    )


def test_processors_on_the_handout_examples(student):
    probs = torch.tensor([[0.1, 0.5, 0.15, 0.25]], dtype=torch.float64)
    logits = probs.log()
    inf = float("-inf")
    assert_close(
        student.top_p_filter(logits, 0.7),
        torch.tensor([[inf, logits[0, 1], inf, logits[0, 3]]], dtype=torch.float64),
        name="top_p_filter(log([0.1, 0.5, 0.15, 0.25]), 0.7)",
        hint="keep 0.5 (mass before it: 0) and 0.25 (mass before it: 0.5 < 0.7); drop 0.15 (0.75) and 0.1 (0.9)",
    )
    assert_close(
        student.top_k_filter(logits, 2),
        torch.tensor([[inf, logits[0, 1], inf, logits[0, 3]]], dtype=torch.float64),
        name="top_k_filter(log([0.1, 0.5, 0.15, 0.25]), 2)",
    )
    assert_close(student.apply_temperature(logits, 2.0), logits / 2, name="apply_temperature(logits, 2.0)")


def test_greedy_matches_a_step_by_step_argmax(student):
    model, _ = make_model(student)
    prompts = torch.randint(V, (2, 4), generator=torch.Generator().manual_seed(3))
    ids = prompts
    for _ in range(5):
        ids = torch.cat([ids, model(ids)[:, -1, :].argmax(-1, keepdim=True)], dim=1)
    assert_equal(student.greedy(model, prompts, 5), ids, name="greedy(model, prompts (2, 4), 5)")


def test_sampling_is_reproducible_and_stays_in_the_top_k(student):
    model, _ = make_model(student)
    prompts = torch.randint(V, (3, 3), generator=torch.Generator().manual_seed(4))
    first = student.sample(model, prompts, 6, temperature=0.8, top_k=3, seed=11)
    assert_equal(
        student.sample(model, prompts, 6, temperature=0.8, top_k=3, seed=11),
        first,
        name="sample(..., seed=11) twice",
        hint="make one torch.Generator().manual_seed(seed) per call",
    )
    for step in range(6):
        logits = model(first[:, : 3 + step])[:, -1, :]
        allowed = logits >= logits.topk(3, dim=-1).values[:, -1:]
        token = first[:, 3 + step]
        assert bool(allowed.gather(1, token[:, None]).all()), f"step {step}: a token outside the top 3 was drawn"


def test_beam_scores_are_mean_log_probs(student):
    model, _ = make_model(student)
    prompt = torch.randint(V, (1, 3), generator=torch.Generator().manual_seed(5))
    sequences, scores = student.beam_search(model, prompt, 3, 4, length_penalty=1.0)
    assert sequences.shape == (3, 7), f"sequences have shape {tuple(sequences.shape)}, expected (3, 7)"
    log_probs = torch.log_softmax(model(sequences[:, :-1]), dim=-1)  # (3, 6, V)
    new = sequences[:, 3:]
    summed = log_probs[:, 2:, :].gather(-1, new[..., None])[..., 0].sum(-1)
    assert_close(
        scores,
        summed / 4,
        name="beam_search scores: summed log-probs of the 4 new tokens / 4 ** 1.0",
    )
    assert bool((scores[:-1] >= scores[1:]).all()), "the beams should come best first"
    one, _ = student.beam_search(model, prompt, 1, 4)
    assert_equal(one, student.greedy(model, prompt, 4), name="beam_search with num_beams=1 against greedy")
    assert math.isfinite(float(scores[0]))
