"""Hidden tests for week 00 (why attention: RNNs, their gradients, the seq2seq bottleneck, attention).

Expected values come from the reference solution (``reference``) run here, in the
trusted grader; ``tests/test_week00_reference.py`` checks that reference against
PyTorch's own ``nn.RNN`` / ``nn.GRU`` (packed sequences for padding), float64
closed forms (the Jacobians of a linear RNN, the attention formulas written out)
and autograd. The sequence loop and the Jacobian norms are graded on PyTorch's
own cells built in the sandbox (``torch.nn.GRUCell``), so a wrong cell costs
points only in the cell tests.
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder import assert_close, assert_equal, expect_sequence, expect_tensor, randn, reference_grads
from autograder.student_errors import StudentException
from autograder.testing import real_tokens as lengths_mask

F64 = torch.float64


def cell_state(kind: str, input_size: int, hidden_size: int, seed: int) -> dict[str, torch.Tensor]:
    """Weights for an RNN (``kind`` "rnn") or GRU cell, PyTorch's names, drawn like PyTorch's init."""
    rows = hidden_size * (3 if kind == "gru" else 1)
    scale = hidden_size**-0.5
    return {
        "weight_ih": randn(rows, input_size, seed=seed, scale=scale),
        "weight_hh": randn(rows, hidden_size, seed=seed + 1, scale=scale),
        "bias_ih": randn(rows, seed=seed + 2, scale=scale),
        "bias_hh": randn(rows, seed=seed + 3, scale=scale),
    }


def torch_cell(kind: str, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """PyTorch's own cell with these weights, here in the grader."""
    rows, input_size = state["weight_ih"].shape
    hidden = state["weight_hh"].shape[1]
    cell = (torch.nn.GRUCell if kind == "gru" else torch.nn.RNNCell)(input_size, hidden, dtype=F64)
    cell.load_state_dict(state)
    return cell


def student_torch_cell(student, kind: str, state: dict[str, torch.Tensor]):
    """PyTorch's own cell built in the sandbox (from the student module's ``torch``), with these weights."""
    rows, input_size = state["weight_ih"].shape
    hidden = state["weight_hh"].shape[1]
    factory = student.torch.nn.GRUCell if kind == "gru" else student.torch.nn.RNNCell
    cell = factory(input_size, hidden)
    cell.double()
    cell.load_state_dict(state)
    return cell


def gru_mistakes(state: dict[str, torch.Tensor], x: torch.Tensor, h: torch.Tensor) -> dict[str, torch.Tensor]:
    gi = (x @ state["weight_ih"].T + state["bias_ih"]).chunk(3, -1)
    gh = (h @ state["weight_hh"].T + state["bias_hh"]).chunk(3, -1)
    b_hn = state["bias_hh"].chunk(3)[2]

    def step(r_i: int, z_i: int, reset_bias: bool, flip: bool) -> torch.Tensor:
        r = torch.sigmoid(gi[r_i] + gh[r_i])
        z = torch.sigmoid(gi[z_i] + gh[z_i])
        hn = gh[2] if reset_bias else gh[2] - b_hn
        n = torch.tanh(gi[2] + r * hn + (0 if reset_bias else b_hn))
        return z * n + (1 - z) * h if flip else (1 - z) * n + z * h

    return {
        "the gates are read in the order z, r, n; PyTorch's order is r, z, n": step(1, 0, True, False),
        "r multiplies h W_hn^T only; PyTorch's n-gate is tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))": step(
            0, 1, False, False
        ),
        "z and 1 - z are swapped: h' = (1 - z) * n + z * h": step(0, 1, True, True),
    }


# -- the cells -----------------------------------------------------------------------------


@pytest.mark.parametrize(("batch", "input_size", "hidden"), [(4, 3, 5), (1, 7, 7), (6, 16, 2)])
def test_rnn_cell(student, reference, batch, input_size, hidden):
    state = cell_state("rnn", input_size, hidden, seed=batch)
    mine = student.RNNCell(input_size, hidden)
    mine.double()
    mine.load_state_dict(state)
    x, h = randn(batch, input_size, seed=10), randn(batch, hidden, seed=11)
    pre = x @ state["weight_ih"].T + state["bias_ih"] + h @ state["weight_hh"].T + state["bias_hh"]
    assert_close(
        mine(x, h),
        torch_cell("rnn", state)(x, h),
        name=f"RNNCell({input_size}, {hidden}) on x {tuple(x.shape)}, h {tuple(h.shape)}",
        mistakes={
            "tanh is missing": pre,
            "bias_hh is missing": torch.tanh(pre - state["bias_hh"]),
        },
        hint="h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)",
    )


def test_rnn_cell_linear(student):
    state = cell_state("rnn", 3, 4, seed=20)
    mine = student.RNNCell(3, 4, "linear")
    mine.double()
    mine.load_state_dict(state)
    x, h = randn(2, 3, seed=21), randn(2, 4, seed=22)
    expected = x @ state["weight_ih"].T + state["bias_ih"] + h @ state["weight_hh"].T + state["bias_hh"]
    assert_close(
        mine(x, h),
        expected,
        name="RNNCell(3, 4, nonlinearity='linear')",
        mistakes={"tanh is applied in the linear case too": torch.tanh(expected)},
        hint="'linear' means no squashing: h' = x W_ih^T + b_ih + h W_hh^T + b_hh",
    )


def test_cell_parameters(student):
    """Names and shapes are PyTorch's, so nn.RNN / nn.GRU weights load directly."""
    for kind, cls, rows in (("RNNCell", student.RNNCell, 5), ("GRUCell", student.GRUCell, 15)):
        names = cls(3, 5).attr("state_dict")()
        shapes = {name: tuple(value.shape) for name, value in names.items()}
        expected = {"weight_ih": (rows, 3), "weight_hh": (rows, 5), "bias_ih": (rows,), "bias_hh": (rows,)}
        if shapes != expected:
            raise AssertionError(
                f"{kind}(3, 5) has parameters {shapes}; expected {expected}\n"
                "Hint: use PyTorch's names (weight_ih, weight_hh, bias_ih, bias_hh) with the gates stacked on dim 0"
            )


@pytest.mark.parametrize(("batch", "input_size", "hidden"), [(4, 3, 5), (1, 6, 6), (5, 2, 9)])
def test_gru_cell(student, reference, batch, input_size, hidden):
    state = cell_state("gru", input_size, hidden, seed=30 + batch)
    mine = student.GRUCell(input_size, hidden)
    mine.double()
    mine.load_state_dict(state)
    x, h = randn(batch, input_size, seed=31), randn(batch, hidden, seed=32)
    assert_close(
        mine(x, h),
        torch_cell("gru", state)(x, h),
        name=f"GRUCell({input_size}, {hidden}) on x {tuple(x.shape)}, h {tuple(h.shape)} (against nn.GRUCell)",
        mistakes=gru_mistakes(state, x, h),
        hint="chunk both projections into (r, z, n); n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))",
    )


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_cell_gradients(student, reference, kind):
    state = cell_state(kind, 4, 3, seed=40)
    mine = (student.GRUCell if kind == "gru" else student.RNNCell)(4, 3)
    mine.double()
    mine.load_state_dict(state)
    oracle = torch_cell(kind, state)
    x, h = randn(5, 4, seed=41).requires_grad_(), randn(5, 3, seed=42).requires_grad_()
    grad_out = randn(5, 3, seed=43)
    _, grads = mine.vjp(x, h, grad_outputs=grad_out)
    expected = reference_grads(oracle(x, h), [x, h, oracle.weight_hh, oracle.bias_hh], grad_out)
    assert_close(grads[0], expected[0], name=f"{kind} cell: gradient with respect to x")
    assert_close(grads[1], expected[1], name=f"{kind} cell: gradient with respect to h")
    assert_close(mine.weight_hh.grad.fetch(), expected[2], name=f"{kind} cell: gradient of weight_hh")
    assert_close(mine.bias_hh.grad.fetch(), expected[3], name=f"{kind} cell: gradient of bias_hh")


# -- the loop over time --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "batch", "length", "with_h0"),
    [("rnn", 3, 9, True), ("gru", 2, 12, True), ("gru", 4, 5, False)],
    ids=["rnn-h0", "gru-h0", "gru-zeros"],
)
def test_run_rnn(student, reference, kind, batch, length, with_h0):
    state = cell_state(kind, 3, 4, seed=50)
    x = randn(batch, length, 3, seed=51)
    h0 = randn(batch, 4, seed=52) if with_h0 else None
    got = expect_sequence(
        student.run_rnn(student_torch_cell(student, kind, state), x, h0), 2, name="run_rnn(cell, x, h0)"
    )
    cell = torch_cell(kind, state)
    outputs, last = reference.run_rnn(cell, x, h0)
    every_step_from_h0 = torch.stack(
        [cell(x[:, t], h0 if h0 is not None else torch.zeros(batch, 4, dtype=F64)) for t in range(length)], 1
    )
    label = f"run_rnn({kind} cell, x {tuple(x.shape)}, {'h0' if with_h0 else 'h0=None'})"
    assert_close(
        got[0],
        outputs,
        name=f"{label}: outputs (B, T, H)",
        mistakes={"the state is not carried: every step starts from h0": every_step_from_h0},
        hint="h_t = cell(x[:, t], h_{t-1}); outputs stack every h_t on dim 1",
    )
    assert_close(got[1], last, name=f"{label}: h_last (B, H)")


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_run_rnn_padding(student, reference, kind):
    """Unequal lengths (5, 9, 1, 0 of 9): padded steps keep the state; outputs are zero there."""
    state = cell_state(kind, 3, 4, seed=60)
    x = randn(4, 9, 3, seed=61)
    h0 = randn(4, 4, seed=62)
    mask = torch.arange(9)[None, :] < torch.tensor([5, 9, 1, 0])[:, None]
    got = expect_sequence(
        student.run_rnn(student_torch_cell(student, kind, state), x, h0, mask), 2, name="run_rnn with a mask"
    )
    outputs, last = reference.run_rnn(torch_cell(kind, state), x, h0, mask)
    unmasked_out, unmasked_last = reference.run_rnn(torch_cell(kind, state), x, h0)
    label = f"run_rnn({kind} cell) on lengths 5, 9, 1, 0 (right-padded to 9)"
    assert_close(
        got[1],
        last,
        name=f"{label}: h_last",
        mistakes={
            "padded steps advance the state (the mask is ignored)": unmasked_last,
            "h_last is the output at the last position (zero for a padded sequence)": outputs[:, -1],
        },
        hint="at a padded step keep the old state: torch.where(mask[:, t, None], new, h)",
    )
    assert_close(
        got[0],
        outputs,
        name=f"{label}: outputs",
        mistakes={
            "padded positions hold the carried state instead of zeros": torch.where(
                mask[..., None], outputs, last[:, None]
            )
        },
        hint="outputs are zero at padded positions, as pad_packed_sequence gives",
    )


def test_run_rnn_gradients(student, reference):
    state = cell_state("gru", 3, 4, seed=70)
    x, h0 = randn(3, 6, 3, seed=71).requires_grad_(), randn(3, 4, seed=72).requires_grad_()
    mask = torch.arange(6)[None, :] < torch.tensor([6, 2, 4])[:, None]
    g_out, g_last = randn(3, 6, 4, seed=73), randn(3, 4, seed=74)
    _, grads = student.run_rnn.vjp(student_torch_cell(student, "gru", state), x, h0, mask, grad_outputs=(g_out, g_last))
    outputs, last = reference.run_rnn(torch_cell("gru", state), x, h0, mask)
    expected = reference_grads([outputs, last], [x, h0], [g_out, g_last])
    assert_close(grads[1], expected[0], name="run_rnn with a mask: gradient with respect to x (zero at padded steps)")
    assert_close(grads[2], expected[1], name="run_rnn with a mask: gradient with respect to h0")


# -- vanishing and exploding gradients ----------------------------------------------------


def orthogonal(size: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(randn(size, size, seed=seed))
    return q


@pytest.mark.parametrize(("kind", "length"), [("rnn", 12), ("gru", 10)])
def test_state_jacobian_norms(student, reference, kind, length):
    state = cell_state(kind, 3, 5, seed=80)
    state["weight_hh"] = state["weight_hh"] * 3  # big enough that tanh saturates somewhere
    x, h0 = randn(length, 3, seed=81), randn(5, seed=82)
    expected = reference.state_jacobian_norms(torch_cell(kind, state), x, h0)
    assert_close(
        student.state_jacobian_norms(student_torch_cell(student, kind, state), x, h0),
        expected,
        name=f"state_jacobian_norms({kind} cell, T={length}) -> (T+1,)",
        mistakes={
            "shifted by one step: entry t is the norm for h_(t+1)": torch.cat([expected[1:], expected.new_ones(1)]),
            "the norms are listed from h_T back to h_0": expected.flip(0),
        },
        hint="entry t is the largest singular value of dh_T/dh_t, with h_0 = h0 and entry T = 1",
    )


@pytest.mark.parametrize("scale", [0.6, 1.0, 1.3])
def test_state_jacobian_norms_linear(student, scale):
    """A linear RNN with W_hh = scale * orthogonal: ||dh_T/dh_t|| = scale^(T-t) exactly."""
    state = cell_state("rnn", 2, 6, seed=90)
    state["weight_hh"] = scale * orthogonal(6, seed=91)
    mine = student.RNNCell(2, 6, "linear")
    mine.double()
    mine.load_state_dict(state)
    length = 15
    expected = scale ** torch.arange(length, -1, -1, dtype=F64)
    assert_close(
        student.state_jacobian_norms(mine, randn(length, 2, seed=92), randn(6, seed=93)),
        expected,
        name=f"state_jacobian_norms of a linear RNN with W_hh = {scale} x orthogonal, T={length}",
        mistakes={"the Frobenius norm instead of the spectral norm": expected * math.sqrt(6)},
        hint="the spectral norm: torch.linalg.matrix_norm(J, ord=2)",
    )


@pytest.mark.parametrize("length", [0, 1, 20])
def test_linear_jacobian_norm_bound(student, reference, length):
    weight = randn(5, 5, seed=100 + length, scale=0.5)
    weight[0, 4] = 3.0  # not normal: the spectral radius is below the spectral norm
    expected = reference.linear_jacobian_norm_bound(weight, length)
    radius = torch.linalg.eigvals(weight).abs().max()
    sigma = torch.linalg.matrix_norm(weight, ord=2)
    exponents = torch.arange(length, -1, -1, dtype=F64)
    assert_close(
        student.linear_jacobian_norm_bound(weight, length),
        expected,
        name=f"linear_jacobian_norm_bound(a non-normal 5x5 W_hh, T={length}) -> (T+1,)",
        mistakes={
            "the largest |eigenvalue| (spectral radius) instead of the largest singular value": radius**exponents,
            "the exponents run the wrong way (sigma^t instead of sigma^(T-t))": sigma ** exponents.flip(0),
            "the exponent is off by one (sigma^(T-t+1))": sigma ** (exponents + 1),
        },
        hint="sigma = torch.linalg.matrix_norm(W_hh, ord=2); entry t is sigma^(T-t)",
    )


@pytest.mark.parametrize(("max_norm", "clipped"), [(1.0, True), (100.0, False)], ids=["above", "below"])
def test_clip_by_global_norm(student, reference, max_norm, clipped):
    grads = [randn(3, 4, seed=110), randn(7, seed=111, scale=2.0), randn(2, 2, 2, seed=112)]
    result = expect_sequence(student.clip_by_global_norm(grads, max_norm), 2, name="clip_by_global_norm")
    want, want_norm = reference.clip_by_global_norm(grads, max_norm)
    assert_close(result[1], want_norm, name="the global norm before clipping (a 0-dim tensor)")
    got = expect_sequence(result[0], len(grads), name="the clipped gradients")
    norms = [g.norm() for g in grads]
    for i, (mine, expected) in enumerate(zip(got, want, strict=True)):
        mistakes = {}
        if clipped:
            mistakes["each tensor is clipped by its own norm, not the global one"] = grads[i] * min(
                1.0, max_norm / float(norms[i])
            )
        else:
            mistakes["gradients are always rescaled to max_norm, even below it"] = grads[i] * max_norm / want_norm
        assert_close(
            mine,
            expected,
            name=f"clipped gradient {i} (max_norm={max_norm:g}, global norm {float(want_norm):.3g})",
            mistakes=mistakes,
            hint="one scale min(1, max_norm / global_norm) for every tensor",
        )


# -- sequential cost -----------------------------------------------------------------------


def test_sequential_steps(student, reference):
    cases = [(kind, length, layers) for kind in ("rnn", "attention") for length in (0, 1, 7, 512) for layers in (1, 6)]
    got = torch.tensor([student.sequential_steps(*case) for case in cases])
    expected = torch.tensor([reference.sequential_steps(*case) for case in cases])
    assert_equal(
        got,
        expected,
        name="sequential_steps for rnn/attention, lengths 0, 1, 7, 512, 1 and 6 layers",
        mistakes={
            "stacked RNN layers multiply (length x layers); as a wavefront they add (length + layers - 1)": torch.tensor(
                [
                    length * layers if kind == "rnn" else reference.sequential_steps(kind, length, layers)
                    for kind, length, layers in cases
                ]
            )
        },
        hint="rnn: length + n_layers - 1 (0 for an empty sequence); attention: n_layers",
    )


def test_max_path_length(student, reference):
    cases = [(kind, length) for kind in ("rnn", "attention") for length in (0, 1, 2, 100)]
    got = torch.tensor([student.max_path_length(*case) for case in cases])
    expected = torch.tensor([reference.max_path_length(*case) for case in cases])
    assert_equal(got, expected, name="max_path_length for rnn/attention, lengths 0, 1, 2, 100")


def test_cost_rejects_unknown_kind(student):
    for call in (lambda: student.sequential_steps("cnn", 5), lambda: student.max_path_length("lstm", 5)):
        try:
            call()
        except StudentException as exc:
            if "raised ValueError" not in str(exc):
                raise AssertionError(f"an unknown kind should raise ValueError; instead {exc}") from None
            continue
        raise AssertionError("sequential_steps / max_path_length returned for an unknown kind; raise ValueError")


# -- attention over encoder states ---------------------------------------------------------


def test_attend(student, reference):
    scores, values = randn(4, 6, seed=120, scale=3.0), randn(4, 6, 5, seed=121)
    mask = lengths_mask([6, 3, 1, 0], 6)
    context, weights = expect_sequence(student.attend(scores, values, mask), 2, name="attend")
    want_context, want_weights = reference.attend(scores, values, mask)
    assert_close(
        weights,
        want_weights,
        name="attend weights (B, S) with lengths 6, 3, 1, 0 (the last fully masked)",
        mistakes={
            "the padded positions are attended (the mask is ignored)": torch.softmax(scores, -1),
            "the softmax is over the batch (dim 0), not the source positions": torch.softmax(
                scores.masked_fill(~mask, -1e9), 0
            ),
        },
        hint="fill masked scores with -inf, softmax over the last dim; a fully masked row gets zeros, not NaN",
    )
    assert_close(context, want_context, name="attend context (B, H): weights @ values, zero for a fully masked row")


def test_attend_gradients(student, reference):
    scores, values = randn(3, 5, seed=130).requires_grad_(), randn(3, 5, 2, seed=131).requires_grad_()
    mask = lengths_mask([5, 2, 0], 5)
    g_context, g_weights = randn(3, 2, seed=132), randn(3, 5, seed=133)
    _, grads = student.attend.vjp(scores, values, mask, grad_outputs=(g_context, g_weights))
    expected = reference_grads(reference.attend(scores, values, mask), [scores, values], [g_context, g_weights])
    assert_close(grads[0], expected[0], name="attend: gradient of the scores (zero at masked positions, no NaN)")
    assert_close(grads[1], expected[1], name="attend: gradient of the values")


def additive_state(query: int, key: int, size: int, seed: int) -> dict[str, torch.Tensor]:
    return {
        "query_proj.weight": randn(size, query, seed=seed, scale=0.7),
        "key_proj.weight": randn(size, key, seed=seed + 1, scale=0.7),
        "v.weight": randn(1, size, seed=seed + 2),
    }


@pytest.mark.parametrize(("query", "key", "size"), [(4, 6, 5), (3, 3, 8)])
def test_additive_attention(student, reference, query, key, size):
    state = additive_state(query, key, size, seed=140)
    ref = reference.AdditiveAttention(query, key, size).double()
    ref.load_state_dict(state)
    mine = student.AdditiveAttention(query, key, size)
    mine.double()
    mine.load_state_dict(state)
    q, k = randn(3, query, seed=141), randn(3, 7, key, seed=142)
    mask = lengths_mask([7, 4, 1], 7)
    with torch.no_grad():
        want_context, want_weights = ref(q, k, mask)
        hidden = torch.tanh(q[:, None] @ state["query_proj.weight"].T + k @ state["key_proj.weight"].T)
        no_v = hidden.sum(-1)
        no_tanh = (q[:, None] @ state["query_proj.weight"].T + k @ state["key_proj.weight"].T) @ state["v.weight"][0]
    context, weights = expect_sequence(mine(q, k, mask), 2, name="AdditiveAttention")
    label = f"AdditiveAttention(query {query}, key {key}, size {size})"
    assert_close(
        weights,
        want_weights,
        name=f"{label}: weights over 7 keys, lengths 7, 4, 1",
        mistakes={
            "v is missing: the score sums tanh(W_q q + W_k k) over its features": reference.attend(no_v, k, mask)[1],
            "tanh is missing: the score is linear, v^T (W_q q + W_k k)": reference.attend(no_tanh, k, mask)[1],
        },
        hint="score(q, k_s) = v^T tanh(W_q q + W_k k_s); the query projection broadcasts over the S keys",
    )
    assert_close(context, want_context, name=f"{label}: context")


def general_state(query: int, key: int, seed: int) -> dict[str, torch.Tensor]:
    return {"weight": randn(query, key, seed=seed, scale=0.5)}


@pytest.mark.parametrize(("kind", "query", "key"), [("dot", 5, 5), ("general", 5, 5), ("general", 3, 6)])
def test_multiplicative_attention(student, reference, kind, query, key):
    state = general_state(query, key, seed=150) if kind == "general" else {}
    ref = reference.MultiplicativeAttention(query, key, kind).double()
    ref.load_state_dict(state)
    mine = student.MultiplicativeAttention(query, key, kind)
    mine.double()
    mine.load_state_dict(state)
    q, k = randn(4, query, seed=151), randn(4, 6, key, seed=152)
    mask = lengths_mask([6, 2, 5, 1], 6)
    with torch.no_grad():
        want_context, want_weights = ref(q, k, mask)
    mistakes = {
        "the scores are scaled by 1/sqrt(d): that is week 01's scaled dot product, not Luong's": (
            reference.attend(
                (k @ (q @ state["weight"] if kind == "general" else q)[:, :, None])[..., 0] / math.sqrt(key), k, mask
            )[1]
        )
    }
    if kind == "general" and query == key:
        transposed = (k @ (q @ state["weight"].T)[:, :, None])[..., 0]
        mistakes["W is transposed: the score is q^T W^T k, not q^T W k"] = reference.attend(transposed, k, mask)[1]
    context, weights = expect_sequence(mine(q, k, mask), 2, name="MultiplicativeAttention")
    label = f"MultiplicativeAttention({query}, {key}, '{kind}')"
    assert_close(
        weights,
        want_weights,
        name=f"{label}: weights over 6 keys, lengths 6, 2, 5, 1",
        mistakes=mistakes,
        hint="dot: q . k_s; general: (q W) . k_s with W of shape (Hq, Hk)",
    )
    assert_close(context, want_context, name=f"{label}: context")


def test_multiplicative_rejects_bad_settings(student):
    for args, why in (((4, 6, "dot"), "dot with query 4 and key 6"), ((4, 4, "cosine"), "kind 'cosine'")):
        try:
            student.MultiplicativeAttention(*args)
        except StudentException as exc:
            if "raised ValueError" not in str(exc):
                raise AssertionError(f"MultiplicativeAttention({why}) should raise ValueError; instead {exc}") from None
            continue
        raise AssertionError(f"MultiplicativeAttention({why}) was built; raise ValueError")


@pytest.mark.parametrize("kind", ["additive", "general"])
def test_attention_gradients(student, reference, kind):
    if kind == "additive":
        state, args = additive_state(4, 4, 3, seed=160), (4, 4, 3)
        ref, mine = reference.AdditiveAttention(*args).double(), student.AdditiveAttention(*args)
    else:
        state, args = general_state(4, 4, seed=160), (4, 4, "general")
        ref, mine = reference.MultiplicativeAttention(*args).double(), student.MultiplicativeAttention(*args)
    ref.load_state_dict(state)
    mine.double()
    mine.load_state_dict(state)
    q, k = randn(3, 4, seed=161).requires_grad_(), randn(3, 5, 4, seed=162).requires_grad_()
    mask = lengths_mask([5, 3, 0], 5)
    g_context, g_weights = randn(3, 4, seed=163), randn(3, 5, seed=164)
    _, grads = mine.vjp(q, k, mask, grad_outputs=(g_context, g_weights))
    params = [p for _, p in ref.named_parameters()]
    expected = reference_grads(ref(q, k, mask), [q, k, *params], [g_context, g_weights])
    assert_close(grads[0], expected[0], name=f"{kind} attention: gradient of the query")
    assert_close(grads[1], expected[1], name=f"{kind} attention: gradient of the keys")
    for (name, _), want in zip(ref.named_parameters(), expected[2:], strict=True):
        got = mine
        for part in name.split("."):
            got = getattr(got, part)
        assert_close(got.grad.fetch(), want, name=f"{kind} attention: gradient of {name}")


# -- the encoder-decoder -------------------------------------------------------------------

VOCAB, HIDDEN, EMBED = 11, 6, 4


def seq2seq_pair(student, reference, kind: str, seed: int):
    ref = reference.Seq2Seq(VOCAB, HIDDEN, kind, embed_size=EMBED).double()
    state = {
        name: randn(*value.shape, seed=seed + i, scale=0.6) for i, (name, value) in enumerate(ref.state_dict().items())
    }
    ref.load_state_dict(state)
    mine = student.Seq2Seq(VOCAB, HIDDEN, kind, embed_size=EMBED)
    mine.double()
    mine.load_state_dict(state)
    return mine, ref


def source_batch(seed: int, lengths: list[int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mask = lengths_mask(lengths, size)
    src = torch.where(mask, torch.randint(2, VOCAB, (len(lengths), size), generator=generator), 0)
    return src, mask


@pytest.mark.parametrize("kind", ["none", "additive", "dot", "general"])
def test_seq2seq_parameters(student, reference, kind):
    ref = reference.Seq2Seq(VOCAB, HIDDEN, kind, embed_size=EMBED)
    expected = {name: tuple(v.shape) for name, v in ref.state_dict().items()}
    got = {
        name: tuple(v.shape)
        for name, v in student.Seq2Seq(VOCAB, HIDDEN, kind, embed_size=EMBED).attr("state_dict")().items()
    }
    if got != expected:
        raise AssertionError(
            f"Seq2Seq(attention={kind!r}) has parameters {got}; expected {expected}\n"
            "Hint: the names and sizes are in the class docstring (the decoder reads [emb(y); context])"
        )


@pytest.mark.parametrize("kind", ["none", "additive", "dot", "general"])
def test_seq2seq_forward(student, reference, kind):
    mine, ref = seq2seq_pair(student, reference, kind, seed=170)
    src, mask = source_batch(171, [7, 4, 1], 7)
    tgt_in = torch.randint(0, VOCAB, (3, 5), generator=torch.Generator().manual_seed(172))
    with torch.no_grad():
        want_logits, want_weights = ref(src, mask, tgt_in)
    got = expect_sequence(mine(src, mask, tgt_in), 2, name=f"Seq2Seq(attention={kind!r}) forward")
    assert_close(
        got[0],
        want_logits,
        name=f"Seq2Seq(attention={kind!r}) teacher-forced logits (B, T, V), sources of lengths 7, 4, 1",
        hint="the decoder starts from the encoder's h_last; with attention the query is the previous decoder state",
    )
    if want_weights is None:
        if got[1] is not None:
            raise AssertionError(
                f"Seq2Seq(attention='none') returned attention weights {type(got[1]).__name__}; expected None"
            )
    else:
        assert_close(got[1], want_weights, name=f"Seq2Seq(attention={kind!r}) attention weights (B, T, S)")


@pytest.mark.parametrize("kind", ["none", "additive", "general"])
def test_seq2seq_ignores_source_padding(student, reference, kind):
    """Changing the tokens at padded source positions changes nothing (state and attention both)."""
    mine, ref = seq2seq_pair(student, reference, kind, seed=180)
    src, mask = source_batch(181, [3, 6, 2], 6)
    noisy = torch.where(mask, src, torch.randint(2, VOCAB, src.shape, generator=torch.Generator().manual_seed(182)))
    tgt_in = torch.randint(2, VOCAB, (3, 4), generator=torch.Generator().manual_seed(183))
    with torch.no_grad():
        want = ref(src, mask, tgt_in)[0]
    got = expect_sequence(mine(noisy, mask, tgt_in), 2, name="Seq2Seq forward")
    assert_close(
        got[0],
        want,
        name=f"Seq2Seq(attention={kind!r}) logits with other tokens at the padded source positions",
        hint="padded steps must not advance the encoder (pass src_mask to run_rnn) nor be attended",
    )


@pytest.mark.parametrize("kind", ["none", "dot"])
def test_seq2seq_greedy_decode(student, reference, kind):
    mine, ref = seq2seq_pair(student, reference, kind, seed=190)
    src, mask = source_batch(191, [5, 5, 2, 4], 5)
    assert_equal(
        mine.greedy_decode(src, mask, 6),
        ref.greedy_decode(src, mask, 6),
        name=f"Seq2Seq(attention={kind!r}).greedy_decode(steps=6) -> (B, 6) long",
        hint="start from BOS; feed each step's argmax back as the next input",
    )


@pytest.mark.parametrize("kind", ["none", "additive"])
def test_seq2seq_gradients(student, reference, kind):
    mine, ref = seq2seq_pair(student, reference, kind, seed=200)
    src, mask = source_batch(201, [4, 2], 4)
    tgt_in = torch.randint(0, VOCAB, (2, 3), generator=torch.Generator().manual_seed(202))
    g_logits = randn(2, 3, VOCAB, seed=203)
    mine.vjp(src, mask, tgt_in, grad_outputs=(g_logits, None))
    names = [n for n, _ in ref.named_parameters()]
    expected = reference_grads(ref(src, mask, tgt_in)[0], [p for _, p in ref.named_parameters()], g_logits)
    for name, want in zip(names, expected, strict=True):
        if name not in (
            "src_embed.weight",
            "encoder.weight_hh",
            "decoder.weight_ih",
            "out.weight",
            "attention.v.weight",
        ):
            continue
        got = mine
        for part in name.split("."):
            got = getattr(got, part)
        assert_close(got.grad.fetch(), want, name=f"Seq2Seq(attention={kind!r}): gradient of {name}")


def test_sequence_loss(student, reference):
    logits = randn(3, 5, 7, seed=210)
    targets = torch.randint(0, 7, (3, 5), generator=torch.Generator().manual_seed(211))
    mask = lengths_mask([5, 2, 3], 5)
    everywhere = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    assert_close(
        student.sequence_loss(logits, targets, mask),
        reference.sequence_loss(logits, targets, mask),
        name="sequence_loss over lengths 5, 2, 3 (a 0-dim tensor)",
        mistakes={"padded positions are counted in the mean": everywhere},
        hint="sum the cross-entropy at real positions, divide by their number",
    )


# -- training: the bottleneck, measured ---------------------------------------------------

# A short seeded run (about 3 s of CPU each): reversal of lengths 2-6, 150 Adam steps of batch 32,
# hidden 32, dot attention. Length 20 would need thousands of steps, far beyond a grading call.
# The reference reaches 0.45-0.62 exact-match on length-6 reversal over model seeds 0-2 and the
# no-attention model 0.00-0.015; the thresholds leave room for another order of float operations.
TRAIN = {"task": "reverse", "steps": 150, "batch_size": 32, "min_len": 2, "max_len": 6, "lr": 1e-2, "seed": 0}
TRAIN_HIDDEN, TRAIN_EMBED, TRAIN_VOCAB, EVAL_LENGTH = 32, 16, 20, 6
ATTENTION_AT_LEAST, BOTTLENECK_AT_MOST = 0.3, 0.1


def trained_exact_match(student, reference, kind: str) -> tuple[float, list[float]]:
    """Train the student's model in the sandbox, then score its weights in the reference model here."""
    torch.manual_seed(0)
    ref = reference.Seq2Seq(TRAIN_VOCAB, TRAIN_HIDDEN, kind, embed_size=TRAIN_EMBED)
    mine = student.Seq2Seq(TRAIN_VOCAB, TRAIN_HIDDEN, kind, embed_size=TRAIN_EMBED)
    mine.load_state_dict(ref.state_dict())  # the same start for everyone
    losses = student.train_seq2seq(mine, **TRAIN)
    trained = mine.attr("state_dict")()
    ref.load_state_dict({name: expect_tensor(value, name=f"trained {name}") for name, value in trained.items()})
    batch = reference.make_batch(
        "reverse", 200, EVAL_LENGTH, EVAL_LENGTH, TRAIN_VOCAB, torch.Generator().manual_seed(123)
    )
    predicted = ref.greedy_decode(batch["src"], batch["src_mask"], EVAL_LENGTH)
    return float(reference.exact_match(predicted, batch["tgt"], batch["src_mask"]).float().mean()), list(losses)


def test_training_attention_learns_reversal(student, reference):
    accuracy, losses = trained_exact_match(student, reference, "dot")
    if not accuracy >= ATTENTION_AT_LEAST:
        raise AssertionError(
            f"after train_seq2seq(steps=150) your dot-attention Seq2Seq reverses {accuracy:.0%} of length-6 sources "
            f"exactly (final loss {losses[-1]:.3f}); expected at least {ATTENTION_AT_LEAST:.0%}\n"
            "Hint: check the gradients flow (no .detach(), no torch.no_grad() in forward) and the mask in attend"
        )


def test_training_bottleneck_stays_below(student, reference):
    accuracy, losses = trained_exact_match(student, reference, "none")
    start = math.log(TRAIN_VOCAB - 2)  # about the loss of a uniform guess over the task tokens
    if not losses[-1] < 0.8 * start:
        raise AssertionError(
            f"your no-attention Seq2Seq did not train: final loss {losses[-1]:.3f}, a uniform guess is {start:.3f}"
        )
    if not accuracy <= BOTTLENECK_AT_MOST:
        raise AssertionError(
            f"your no-attention Seq2Seq reverses {accuracy:.0%} of length-6 sources exactly after 150 steps; the "
            f"final state alone should not carry that much (expected at most {BOTTLENECK_AT_MOST:.0%})\n"
            "Hint: without attention the decoder may read the source only through the encoder's h_last"
        )
