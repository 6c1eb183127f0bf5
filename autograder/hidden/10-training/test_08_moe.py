"""Hidden tests for week 10, mixture of experts (handout section 8).

How the week is graded: conftest.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder import (
    assert_close,
    assert_equal,
    expect_sequence,
    randn,
)
from autograder.testing import (
    DTYPE_IDS,
    DTYPE_NAMES,
    DTYPES,
    LOOSE,
    fails,
    student_grads,
)

# -- mixture of experts --------------------------------------------------------------------------------------

# (d_model, d_ff, n_experts, top_k, capacity_factor, norm_topk_prob, activation, bias)
MOE_CASES = {
    "E4-k2-cf1.0": (24, 40, 4, 2, 1.0, True, "gelu", True),
    "E5-k1-cf0.8-switch": (24, 40, 5, 1, 0.8, False, "relu", True),
    "E4-k2-nocap-swiglu": (24, 40, 4, 2, None, True, "swiglu", False),
    "E6-k3-cf0.5": (24, 32, 6, 3, 0.5, True, "gelu_tanh", True),
    "E4-k2-cf1.1-raw-gates": (24, 40, 4, 2, 1.1, False, "gelu", True),  # norm_topk_prob=False with k = 2
    "E3-k1-cf1.0-normalised": (24, 40, 3, 1, 1.0, True, "relu", True),  # norm_topk_prob=True with k = 1: gates 1
}
MOE_TOKENS = (3, 7)  # N = 21 tokens


def moe_kwargs(case: str) -> dict:
    d, f, e, k, cf, norm, activation, bias = MOE_CASES[case]
    return {
        "d_model": d,
        "d_ff": f,
        "n_experts": e,
        "top_k": k,
        "capacity_factor": cf,
        "norm_topk_prob": norm,
        "activation": activation,
        "bias": bias,
    }


def build_moe(student, reference, case: str, dtype: torch.dtype, seed: int):
    kwargs = moe_kwargs(case)
    ref = reference.MoEFeedForward(**kwargs).to(dtype)
    state = {
        name: randn(*v.shape, dtype=dtype, seed=seed + i, scale=0.5)
        for i, (name, v) in enumerate(ref.state_dict().items())
    }
    ref.load_state_dict(state)
    mine = student.MoEFeedForward(**kwargs)
    if dtype == torch.float64:
        mine.double()
    mine.load_state_dict(state)
    return ref, mine


def moe_input(case: str, dtype: torch.dtype, seed: int) -> torch.Tensor:
    return randn(*MOE_TOKENS, MOE_CASES[case][0], dtype=dtype, seed=seed)


def route_variant(ref, tokens: torch.Tensor, variant: str = ""):
    """The routing of ``ref`` for ``tokens`` (N, D), or a known mistake of it, written with plain loops."""
    probs = torch.softmax(ref.router(tokens), dim=0 if variant == "softmax_over_tokens" else -1)
    top, index = probs.topk(ref.top_k, dim=-1)
    normalise = ref.norm_topk_prob if variant != "no_renormalisation" else False
    gates = top / top.sum(-1, keepdim=True) if normalise else top
    n, k = index.shape
    capacity = ref.capacity(n) + (1 if variant == "capacity_plus_one" else 0)
    if variant == "no_capacity":
        capacity = n * k
    order = (
        [(t, j) for t in range(n) for j in range(k)]
        if variant == "token_major"
        else [(t, j) for j in range(k) for t in range(n)]
    )
    used = [0] * ref.n_experts
    kept = torch.zeros(n, k, dtype=torch.bool)
    for t, j in order:
        e = int(index[t, j])
        if used[e] < capacity:
            kept[t, j] = True
            used[e] += 1
    return probs, index, gates, kept


def combine(ref, tokens: torch.Tensor, index, gates, kept) -> torch.Tensor:
    """Every expert on every token, weighted by the (kept) gates: the dense form of the MoE output."""
    weights = torch.zeros(tokens.shape[0], ref.n_experts, dtype=tokens.dtype)
    weights = weights.scatter_add(1, index, gates * kept)
    outputs = torch.stack([expert(tokens) for expert in ref.experts], dim=1)  # (N, E, D)
    return (weights[:, :, None] * outputs).sum(1)


ROUTE_MISTAKES = {
    "softmax over the tokens (dim 0); the router's softmax is over the experts (dim -1)": "softmax_over_tokens",
    "the top-k gates were not renormalised to sum to 1 (norm_topk_prob=True)": "no_renormalisation",
    "no capacity limit: an expert takes at most C = ceil(capacity_factor * N * k / E) assignments": "no_capacity",
    "capacity C + 1: an assignment is kept when fewer than C came before it": "capacity_plus_one",
    "token-major priority; all first choices come before any second choice (GShard)": "token_major",
}


@pytest.mark.parametrize("case", list(MOE_CASES))
def test_moe_route(student, reference, case):
    ref, mine = build_moe(student, reference, case, torch.float64, seed=150)
    tokens = moe_input(case, torch.float64, seed=151).flatten(0, 1)
    result = expect_sequence(mine.route(tokens), 4, name=f"MoEFeedForward.route, {case}")
    probs, index, gates, kept = result
    want = ref.route(tokens)
    variants = {text: route_variant(ref, tokens, v) for text, v in ROUTE_MISTAKES.items()}
    what = f"MoEFeedForward({', '.join(f'{k}={v!r}' for k, v in moe_kwargs(case).items())}).route on 21 tokens"
    assert_close(
        probs,
        want[0],
        name=f"{what}: probs",
        mistakes={t: v[0] for t, v in variants.items()},
        hint="softmax(router(x), dim=-1)",
    )
    assert_equal(index, want[1], name=f"{what}: expert_index", hint="probs.topk(top_k, dim=-1), largest first")
    gate_mistakes = {t: v[2] for t, v in variants.items()}
    if not ref.norm_topk_prob and ref.top_k > 1:
        top = want[0].gather(1, want[1])
        gate_mistakes["the gates were renormalised although norm_topk_prob=False"] = top / top.sum(-1, keepdim=True)
    assert_close(
        gates,
        want[2],
        name=f"{what}: gates",
        mistakes=gate_mistakes,
        hint="the top-k probabilities, divided by their sum when norm_topk_prob (whatever top_k)",
    )
    assert_equal(
        kept,
        want[3],
        name=f"{what}: kept (capacity {ref.capacity(21)} per expert)",
        mistakes={t: v[3] for t, v in variants.items() if t in list(ROUTE_MISTAKES)[2:]},
        hint="assignments claim places in order: all first choices by token, then all second choices ...; "
        "an expert's assignments beyond its capacity are dropped",
    )


def aux_mistakes(ref, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    probs, index, gates, kept = ref.route(tokens)
    n, e = probs.shape
    top_k = torch.zeros(n, e, dtype=probs.dtype).scatter(1, index, 1.0)
    after_drops = torch.zeros(n, e, dtype=probs.dtype).scatter(1, index[:, :1], kept[:, :1].to(probs.dtype))
    gate_mass = torch.zeros(n, e, dtype=probs.dtype).scatter(1, index, gates)
    top1 = F.one_hot(index[:, 0], e).to(probs.dtype)
    return {
        "f_e counts all k choices of each token (the top-1 choice only, before drops)": e
        * (top_k.mean(0) / ref.top_k * probs.mean(0)).sum(),
        "f_e counts all k choices of each token, not divided by k": e * (top_k.mean(0) * probs.mean(0)).sum(),
        "f_e counted after capacity drops (count the top-1 choices before any drop)": e
        * (after_drops.mean(0) * probs.mean(0)).sum(),
        "P_e from the gates; use the router probabilities of all experts": e * (top1.mean(0) * gate_mass.mean(0)).sum(),
        "missing the factor E (n_experts)": (top1.mean(0) * probs.mean(0)).sum(),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(MOE_CASES))
def test_moe_forward(student, reference, case, dtype):
    ref, mine = build_moe(student, reference, case, dtype, seed=160)
    x = moe_input(case, dtype, seed=161)
    out, aux = expect_sequence(mine(x), 2, name=f"MoEFeedForward forward, {case}")
    expected_out, expected_aux = ref(x)
    tokens = x.flatten(0, 1)
    variants = {text: route_variant(ref, tokens, v) for text, v in ROUTE_MISTAKES.items()}
    loose = LOOSE if dtype == torch.float32 else {}
    what = f"MoEFeedForward({', '.join(f'{k}={v!r}' for k, v in moe_kwargs(case).items())}) on (3, 7, 24), {DTYPE_NAMES[dtype]}"
    assert_close(
        out,
        expected_out.detach(),
        name=f"{what}: the output",
        mistakes={t: combine(ref, tokens, *v[1:]).view_as(x).detach() for t, v in variants.items()},
        hint="sum over kept assignments of gate * expert(x); a dropped assignment contributes nothing",
        **loose,
    )
    assert_close(
        aux,
        expected_aux.detach(),
        name=f"{what}: the load-balancing loss",
        mistakes={t: v.detach() for t, v in aux_mistakes(ref, tokens).items()},
        hint="E * sum_e f_e * P_e: f_e the fraction of tokens whose top-1 expert is e, P_e the mean router probability",
        **loose,
    )


def test_moe_gradients(student, reference):
    case = "E4-k2-cf1.0"
    ref, mine = build_moe(student, reference, case, torch.float64, seed=170)
    x = moe_input(case, torch.float64, seed=171).requires_grad_()
    grad_out = randn(*x.shape, seed=172)
    grad_aux = torch.tensor(0.7, dtype=torch.float64)
    _, grads = mine.vjp(x, grad_outputs=(grad_out, grad_aux))
    out, aux = ref(x)
    params = dict(ref.named_parameters())
    expected = torch.autograd.grad((out * grad_out).sum() + grad_aux * aux, [x, *params.values()])
    hint = "keep the gates (and the router probabilities in the auxiliary loss) differentiable: no .detach() or .item()"
    assert_close(grads[0], expected[0], name=f"MoEFeedForward ({case}): gradient with respect to x", hint=hint)
    mine_grads = student_grads(student, mine, dict(zip(params, expected[1:], strict=True)), name="MoEFeedForward")
    for (name, _), want in zip(params.items(), expected[1:], strict=True):
        assert_close(mine_grads[name], want, name=f"MoEFeedForward ({case}): gradient of {name}", hint=hint)


def test_moe_capacity(student, reference):
    checks = [
        ("E4-k2-cf1.0", 21),
        ("E4-k2-cf1.0", 16),
        ("E5-k1-cf0.8-switch", 21),
        ("E4-k2-nocap-swiglu", 21),
        ("E6-k3-cf0.5", 10),
    ]
    for case, n in checks:
        got = student.MoEFeedForward(**moe_kwargs(case)).capacity(n)
        want = reference.MoEFeedForward(**moe_kwargs(case)).capacity(n)
        _, _, e, k, cf, *_ = MOE_CASES[case]
        if got != want or not isinstance(got, int) or isinstance(got, bool):
            fails(
                f"MoEFeedForward(n_experts={e}, top_k={k}, capacity_factor={cf}).capacity({n}) returned {got!r}, "
                f"expected {want} (ceil(capacity_factor * n_tokens * top_k / n_experts), an int; "
                "n_tokens * top_k without a capacity factor)"
            )
