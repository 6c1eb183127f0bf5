"""Public tests for week 00: run them with `course check 00`.

They check small cases against PyTorch's own cells and the formulas of the papers,
written out here. The hidden tests check more (other shapes, gradients, fully
masked sources, the Jacobian norms of tanh and GRU cells, every attention kind
inside the encoder-decoder, and a short training run).
"""

import torch

from autograder import assert_close, assert_equal, expect_sequence


def gru_weights(input_size, hidden):
    generator = torch.Generator().manual_seed(0)
    shapes = {"weight_ih": (3 * hidden, input_size), "weight_hh": (3 * hidden, hidden)}
    shapes |= {"bias_ih": (3 * hidden,), "bias_hh": (3 * hidden,)}
    return {name: torch.randn(*shape, generator=generator, dtype=torch.float64) * 0.5 for name, shape in shapes.items()}


def test_gru_cell_matches_pytorch(student):
    state = gru_weights(3, 4)
    mine = student.GRUCell(3, 4)
    mine.double()
    mine.load_state_dict(state)
    oracle = torch.nn.GRUCell(3, 4, dtype=torch.float64)
    oracle.load_state_dict(state)
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    assert_close(mine(x, h), oracle(x, h), name="GRUCell(3, 4) against nn.GRUCell", hint="gate order r, z, n")


def test_padding_keeps_the_last_state(student):
    cell = student.RNNCell(2, 3)
    cell.double()
    x = torch.randn(2, 4, 2, dtype=torch.float64)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    outputs, last = expect_sequence(student.run_rnn(cell, x, None, mask), 2, name="run_rnn")
    assert_close(last[0], outputs[0, 1], name="h_last of a length-2 sequence is its state after step 2")
    assert_close(outputs[0, 2:], torch.zeros(2, 3, dtype=torch.float64), name="outputs at padded steps are zero")


def test_linear_rnn_jacobian_norms(student):
    cell = student.RNNCell(1, 2, "linear")
    cell.double()
    weight_hh = torch.tensor([[0.0, -0.5], [0.5, 0.0]], dtype=torch.float64)  # 0.5 x a rotation
    state = {
        "weight_ih": torch.ones(2, 1),
        "weight_hh": weight_hh,
        "bias_ih": torch.zeros(2),
        "bias_hh": torch.zeros(2),
    }
    cell.load_state_dict({k: v.double() for k, v in state.items()})
    norms = student.state_jacobian_norms(
        cell, torch.randn(4, 1, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    )
    expected = torch.tensor([0.0625, 0.125, 0.25, 0.5, 1.0], dtype=torch.float64)
    assert_close(norms, expected, name="||dh_4/dh_t|| of a linear RNN with W_hh = 0.5 x rotation, t = 0…4")
    assert_close(student.linear_jacobian_norm_bound(weight_hh, 4), expected, name="linear_jacobian_norm_bound(W, 4)")


def test_attend_masks_padding(student):
    scores = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]], dtype=torch.float64)
    values = torch.arange(6, dtype=torch.float64).reshape(1, 3, 2).expand(2, 3, 2)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    context, weights = expect_sequence(student.attend(scores, values, mask), 2, name="attend")
    e = torch.tensor([1.0, 2.0], dtype=torch.float64).exp()
    want = torch.tensor([[e[0] / e.sum(), e[1] / e.sum(), 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    assert_close(weights, want, name="attend weights (padding gets 0; a fully masked row is all 0)")
    assert_close(context, want @ values[0], name="attend context")


def test_additive_score_formula(student):
    layer = student.AdditiveAttention(2, 3, 4)
    layer.double()
    generator = torch.Generator().manual_seed(1)
    w_q, w_k, v = (torch.randn(*s, generator=generator, dtype=torch.float64) for s in ((4, 2), (4, 3), (1, 4)))
    layer.load_state_dict({"query_proj.weight": w_q, "key_proj.weight": w_k, "v.weight": v})
    q, k = torch.randn(1, 2, dtype=torch.float64), torch.randn(1, 5, 3, dtype=torch.float64)
    expected = torch.tensor(
        [[float(v[0] @ torch.tanh(w_q @ q[0] + w_k @ k[0, s])) for s in range(5)]], dtype=torch.float64
    )
    assert_close(layer.score(q, k), expected, name="AdditiveAttention.score: v^T tanh(W_q q + W_k k_s)")


def test_sequential_steps_small(student):
    got = torch.tensor([student.sequential_steps("rnn", 10), student.sequential_steps("attention", 10)])
    assert_equal(got, torch.tensor([10, 1]), name="sequential_steps for 10 tokens, one layer: rnn and attention")
