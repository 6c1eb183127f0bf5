"""The week 00 reference against independent oracles.

PyTorch's own ``nn.RNN`` / ``nn.GRU`` (packed sequences for padding) with the same
weights copied in, float64 closed forms (the Jacobians of tanh and linear RNNs,
the attention formulas written out as loops), ``torch.func.jacrev``, autograd's
``gradcheck``, ``clip_grad_norm_``, ``F.cross_entropy`` and a brute-force longest
path through the dependency graph of a stacked RNN.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder import config, reference
from tests.helpers import REPO, randn

ref = reference.load(config.load(REPO).week("00"))
F64 = torch.float64


def copy_into_torch(cell: torch.nn.Module, kind: str) -> torch.nn.Module:
    oracle = (torch.nn.GRU if kind == "gru" else torch.nn.RNN)(
        cell.input_size, cell.hidden_size, batch_first=True, dtype=F64
    )
    oracle.load_state_dict({f"{name}_l0": value for name, value in cell.state_dict().items()})
    return oracle


def make_cell(kind: str, input_size: int, hidden: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return (ref.GRUCell if kind == "gru" else ref.RNNCell)(input_size, hidden).double()


# -- cells and the loop against nn.RNN / nn.GRU ----------------------------------------------


@pytest.mark.parametrize("kind", ["rnn", "gru"])
@pytest.mark.parametrize(("batch", "length", "input_size", "hidden"), [(3, 7, 4, 5), (1, 1, 2, 2), (5, 20, 8, 3)])
def test_run_rnn_matches_torch(kind, batch, length, input_size, hidden):
    cell = make_cell(kind, input_size, hidden, seed=length)
    oracle = copy_into_torch(cell, kind)
    x, h0 = randn(batch, length, input_size, seed=1), randn(batch, hidden, seed=2)
    outputs, last = ref.run_rnn(cell, x, h0)
    want_outputs, want_last = oracle(x, h0[None])
    torch.testing.assert_close(outputs, want_outputs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(last, want_last[0], rtol=1e-12, atol=1e-12)
    zeros_out, _ = ref.run_rnn(cell, x)
    torch.testing.assert_close(zeros_out, oracle(x)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_padding_matches_packed_sequences(kind):
    cell = make_cell(kind, 3, 4, seed=3)
    oracle = copy_into_torch(cell, kind)
    x, h0 = randn(4, 9, 3, seed=4), randn(4, 4, seed=5)
    lengths = torch.tensor([9, 5, 1, 3])
    mask = torch.arange(9)[None] < lengths[:, None]
    outputs, last = ref.run_rnn(cell, x, h0, mask)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    want_packed, want_last = oracle(packed, h0[None])
    want_outputs, _ = torch.nn.utils.rnn.pad_packed_sequence(want_packed, batch_first=True, total_length=9)
    torch.testing.assert_close(outputs, want_outputs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(last, want_last[0], rtol=1e-12, atol=1e-12)


def test_empty_sequence_keeps_h0():
    cell = make_cell("gru", 2, 3, seed=6)
    h0 = randn(2, 3, seed=7)
    mask = torch.tensor([[False, False], [True, False]])
    outputs, last = ref.run_rnn(cell, randn(2, 2, 2, seed=8), h0, mask)
    torch.testing.assert_close(last[0], h0[0])
    assert bool((outputs[0] == 0).all())


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_gradients_match_torch(kind):
    cell = make_cell(kind, 3, 4, seed=9)
    oracle = copy_into_torch(cell, kind)
    x = randn(2, 6, 3, seed=10).requires_grad_()
    outputs, last = ref.run_rnn(cell, x)
    want_outputs, want_last = oracle(x)
    g_out, g_last = randn(2, 6, 4, seed=11), randn(2, 4, seed=12)
    mine = torch.autograd.grad((outputs * g_out).sum() + (last * g_last).sum(), [x, *cell.parameters()])
    theirs = torch.autograd.grad(
        (want_outputs * g_out).sum() + (want_last[0] * g_last).sum(), [x, *oracle.parameters()]
    )
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_gru_gradcheck():
    cell = make_cell("gru", 2, 3, seed=13)
    x, h = randn(2, 2, seed=14).requires_grad_(), randn(2, 3, seed=15).requires_grad_()
    assert torch.autograd.gradcheck(cell, (x, h))


def test_cells_initialise_like_pytorch():
    for cell in (ref.RNNCell(5, 16), ref.GRUCell(5, 16)):
        for parameter in cell.parameters():
            parameter = parameter.detach()
            assert parameter.dtype == torch.float32
            assert float(parameter.abs().max()) <= 0.25
            assert float(parameter.abs().max()) > 0.2  # uniform in ±1/sqrt(16), not all zeros


# -- Jacobian norms against closed forms and jacrev ------------------------------------------


def test_tanh_jacobian_norms_match_the_product_of_jacobians():
    cell = make_cell("rnn", 3, 5, seed=16)
    with torch.no_grad():
        cell.weight_hh.mul_(3)
    x, h0 = randn(10, 3, seed=17), randn(5, seed=18)
    states = [h0]
    with torch.no_grad():
        for t in range(10):
            states.append(cell(x[t][None], states[-1][None])[0])
    expected = []
    for t in range(11):
        jacobian = torch.eye(5, dtype=F64)
        for s in range(t + 1, 11):  # dh_s/dh_(s-1) = diag(1 - h_s^2) W_hh
            jacobian = torch.diag(1 - states[s] ** 2) @ cell.weight_hh.detach() @ jacobian
        expected.append(torch.linalg.matrix_norm(jacobian, ord=2))
    torch.testing.assert_close(ref.state_jacobian_norms(cell, x, h0), torch.stack(expected), rtol=1e-10, atol=1e-14)


def test_gru_jacobian_norms_match_jacrev():
    cell = make_cell("gru", 2, 4, seed=19)
    x, h0 = randn(6, 2, seed=20), randn(4, seed=21)
    got = ref.state_jacobian_norms(cell, x, h0)

    def final_from(t: int, h: torch.Tensor) -> torch.Tensor:
        for s in range(t, 6):
            h = cell(x[s][None], h[None])[0]
        return h

    with torch.no_grad():
        states = [h0]
        for t in range(6):
            states.append(cell(x[t][None], states[-1][None])[0])
    expected = [
        torch.linalg.matrix_norm(torch.func.jacrev(lambda h, t=t: final_from(t, h))(states[t]), ord=2) for t in range(7)
    ]
    torch.testing.assert_close(got, torch.stack(expected), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5])
def test_linear_rnn_norms_are_the_bound_for_scaled_orthogonal(scale):
    cell = make_cell("rnn", 2, 6, seed=22)
    cell.nonlinearity = "linear"
    q, _ = torch.linalg.qr(randn(6, 6, seed=23))
    with torch.no_grad():
        cell.weight_hh.copy_(scale * q)
    got = ref.state_jacobian_norms(cell, randn(12, 2, seed=24), randn(6, seed=25))
    expected = scale ** torch.arange(12, -1, -1, dtype=F64)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=0)
    torch.testing.assert_close(
        ref.linear_jacobian_norm_bound(cell.weight_hh.detach(), 12), expected, rtol=1e-12, atol=0
    )


def test_bound_holds_for_a_non_normal_matrix():
    weight = randn(5, 5, seed=26, scale=0.4)
    weight[0, 4] = 2.0
    bound = ref.linear_jacobian_norm_bound(weight, 8)
    powers = [torch.linalg.matrix_norm(torch.linalg.matrix_power(weight, 8 - t), ord=2) for t in range(9)]
    assert all(float(p) <= float(b) * (1 + 1e-12) for p, b in zip(powers, bound, strict=True))
    sigma = float(torch.linalg.svdvals(weight)[0])
    torch.testing.assert_close(bound, torch.tensor([sigma ** (8 - t) for t in range(9)], dtype=F64))


def test_clip_matches_clip_grad_norm():
    grads = [randn(3, 4, seed=27), randn(7, seed=28, scale=3.0)]
    for max_norm in (0.5, 1e3):
        params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        want_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        clipped, norm = ref.clip_by_global_norm(grads, max_norm)
        torch.testing.assert_close(norm, want_norm)
        for c, p in zip(clipped, params, strict=True):
            # clip_grad_norm_ divides by (norm + 1e-6); the reference scales exactly
            torch.testing.assert_close(c, p.grad, rtol=1e-5, atol=1e-9)


# -- sequential cost against a brute-force longest path -------------------------------------


def longest_chain(length: int, layers: int) -> int:
    """Longest path (in cell evaluations) through the grid where (l, t) needs (l, t-1) and (l-1, t)."""
    depth = [[0] * (length + 1) for _ in range(layers + 1)]
    for layer in range(1, layers + 1):
        for t in range(1, length + 1):
            depth[layer][t] = 1 + max(depth[layer][t - 1], depth[layer - 1][t])
    return max((max(row) for row in depth), default=0)


@pytest.mark.parametrize("length", [0, 1, 2, 9, 64])
@pytest.mark.parametrize("layers", [1, 3, 12])
def test_sequential_steps_is_the_longest_path(length, layers):
    assert ref.sequential_steps("rnn", length, layers) == longest_chain(length, layers)
    assert ref.sequential_steps("attention", length, layers) == (layers if length else 0)


def test_max_path_length():
    assert [ref.max_path_length("rnn", n) for n in (0, 1, 2, 50)] == [0, 0, 1, 49]
    assert [ref.max_path_length("attention", n) for n in (0, 1, 2, 50)] == [0, 0, 1, 1]
    with pytest.raises(ValueError):
        ref.sequential_steps("cnn", 3)


# -- attention against the formulas written out ----------------------------------------------


def loop_attend(scores: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    weights = torch.zeros_like(scores)
    for b in range(scores.shape[0]):
        real = [s for s in range(scores.shape[1]) if mask[b, s]]
        total = sum(math.exp(float(scores[b, s])) for s in real)
        for s in real:
            weights[b, s] = math.exp(float(scores[b, s])) / total
    return torch.einsum("bs,bsh->bh", weights, values), weights


def test_attend_matches_the_formula():
    scores, values = randn(4, 5, seed=30, scale=2.0), randn(4, 5, 3, seed=31)
    mask = torch.arange(5)[None] < torch.tensor([5, 2, 1, 0])[:, None]
    context, weights = ref.attend(scores, values, mask)
    want_context, want_weights = loop_attend(scores, values, mask)
    torch.testing.assert_close(weights, want_weights, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(context, want_context, rtol=1e-12, atol=1e-15)


def test_attend_gradcheck_with_a_fully_masked_row():
    scores, values = randn(3, 4, seed=32).requires_grad_(), randn(3, 4, 2, seed=33).requires_grad_()
    mask = torch.arange(4)[None] < torch.tensor([4, 1, 0])[:, None]
    assert torch.autograd.gradcheck(lambda s, v: ref.attend(s, v, mask), (scores, values))
    context, weights = ref.attend(scores, values, mask)
    grads = torch.autograd.grad(context.sum() + weights.sum(), [scores, values])
    assert all(bool(torch.isfinite(g).all()) for g in grads)


def test_additive_matches_the_formula():
    torch.manual_seed(34)
    layer = ref.AdditiveAttention(3, 4, 5).double()
    q, k = randn(2, 3, seed=35), randn(2, 6, 4, seed=36)
    w_q, w_k, v = layer.query_proj.weight, layer.key_proj.weight, layer.v.weight[0]
    with torch.no_grad():
        expected = torch.tensor(
            [[float(v @ torch.tanh(w_q @ q[b] + w_k @ k[b, s])) for s in range(6)] for b in range(2)], dtype=F64
        )
        torch.testing.assert_close(layer.score(q, k), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("kind", "query", "key"), [("dot", 4, 4), ("general", 3, 5)])
def test_multiplicative_matches_the_formula(kind, query, key):
    torch.manual_seed(37)
    layer = ref.MultiplicativeAttention(query, key, kind).double()
    q, k = randn(2, query, seed=38), randn(2, 6, key, seed=39)
    with torch.no_grad():
        matrix = layer.weight if kind == "general" else torch.eye(query, dtype=F64)
        expected = torch.tensor([[float(q[b] @ matrix @ k[b, s]) for s in range(6)] for b in range(2)], dtype=F64)
        torch.testing.assert_close(layer.score(q, k), expected, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError):
        ref.MultiplicativeAttention(3, 4, "dot")


# -- the encoder-decoder ---------------------------------------------------------------------


def manual_forward(model: torch.nn.Module, src: torch.Tensor, mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
    """The class docstring's recurrences with nn.GRU / nn.GRUCell and the attention formulas written out."""
    encoder = copy_into_torch(model.encoder, "gru")
    decoder = torch.nn.GRUCell(model.decoder.input_size, model.decoder.hidden_size, dtype=F64)
    decoder.load_state_dict(model.decoder.state_dict())
    lengths = mask.sum(1)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        model.src_embed(src), lengths, batch_first=True, enforce_sorted=False
    )
    enc_packed, h_last = encoder(packed)
    enc, _ = torch.nn.utils.rnn.pad_packed_sequence(enc_packed, batch_first=True, total_length=src.shape[1])
    state, logits = h_last[0], []
    for t in range(tgt_in.shape[1]):
        embedded = model.tgt_embed(tgt_in[:, t])
        if model.kind == "none":
            state = decoder(embedded, state)
            logits.append(model.out(state))
            continue
        if model.kind == "additive":
            att = model.attention
            scores = att.v(torch.tanh(att.query_proj(state)[:, None] + att.key_proj(enc)))[..., 0]
        elif model.kind == "dot":
            scores = torch.einsum("bh,bsh->bs", state, enc)
        else:
            scores = torch.einsum("bh,hk,bsk->bs", state, model.attention.weight, enc)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)
        context = torch.einsum("bs,bsh->bh", weights, enc)
        state = decoder(torch.cat([embedded, context], -1), state)
        logits.append(model.out(torch.cat([state, context], -1)))
    return torch.stack(logits, 1)


@pytest.mark.parametrize("kind", ["none", "additive", "dot", "general"])
def test_seq2seq_matches_the_recurrences(kind):
    torch.manual_seed(40)
    model = ref.Seq2Seq(9, 5, kind, embed_size=3).double()
    mask = torch.arange(6)[None] < torch.tensor([6, 3, 1])[:, None]
    src = torch.where(mask, torch.randint(2, 9, (3, 6)), 0)
    tgt_in = torch.randint(0, 9, (3, 4))
    logits, weights = model(src, mask, tgt_in)
    torch.testing.assert_close(logits, manual_forward(model, src, mask, tgt_in), rtol=1e-10, atol=1e-12)
    if kind == "none":
        assert weights is None
    else:
        assert weights.shape == (3, 4, 6)
        assert bool((weights[~mask[:, None, :].expand(3, 4, 6)] == 0).all())


def test_greedy_decode_matches_teacher_forcing_on_its_own_output():
    torch.manual_seed(41)
    model = ref.Seq2Seq(9, 5, "general", embed_size=3).double()
    mask = torch.ones(2, 4, dtype=torch.bool)
    src = torch.randint(2, 9, (2, 4))
    tokens = model.greedy_decode(src, mask, 5)
    tgt_in = torch.cat([torch.full((2, 1), ref.BOS), tokens[:, :-1]], 1)
    logits, _ = model(src, mask, tgt_in)
    assert torch.equal(logits.argmax(-1), tokens)


def test_sequence_loss_matches_cross_entropy_with_ignore_index():
    logits, targets = randn(3, 5, 7, seed=42), torch.randint(0, 7, (3, 5))
    mask = torch.arange(5)[None] < torch.tensor([5, 2, 3])[:, None]
    expected = F.cross_entropy(logits.flatten(0, 1), torch.where(mask, targets, -100).flatten(), ignore_index=-100)
    torch.testing.assert_close(ref.sequence_loss(logits, targets, mask), expected)


def test_make_batch_reverses_within_each_length():
    batch = ref.make_batch("reverse", 6, 2, 7, 20, torch.Generator().manual_seed(43))
    for src, mask, tgt, tgt_in in zip(batch["src"], batch["src_mask"], batch["tgt"], batch["tgt_in"], strict=True):
        n = int(mask.sum())
        assert src[:n].flip(0).tolist() == tgt[:n].tolist()
        assert (src[n:] == ref.PAD).all()
        assert (tgt[n:] == ref.PAD).all()
        assert bool((src[:n] >= 2).all())
        assert tgt_in[0] == ref.BOS
        assert tgt_in[1:].tolist() == tgt[:-1].tolist()
    copy = ref.make_batch("copy", 4, 3, 3, 20, torch.Generator().manual_seed(44))
    assert torch.equal(copy["src"], copy["tgt"])
