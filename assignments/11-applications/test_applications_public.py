"""Public tests for week 11: run them with `course check 11`.

They check small cases written out by hand or in plain Python loops: pooling, span search,
label shifting, the last real token, freezing, task probabilities, windows and baselines, and
the scores of hand-built attention patterns. The hidden tests check more (every head against
the reference with the same weights, which ``transformers``' models reproduce; losses with
``-100``; layer-wise learning rates; the sampler's frequencies; short training runs that must
beat the baselines; head ablation).
"""

import math

import torch

from autograder import assert_close, assert_equal, expect_sequence


def test_mean_pool_ignores_padding(student):
    hidden = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    expected = torch.stack([hidden[0, :2].mean(0), hidden[1, 1:].mean(0)])
    assert_close(student.mean_pool(hidden, mask), expected, name="mean_pool with right and left padding")


def test_best_span_small(student):
    start = torch.tensor([[5.0, 0.1, 0.2, 3.0, 0.0]], dtype=torch.float64)
    end = torch.tensor([[5.0, 2.0, 0.1, 0.0, 1.0]], dtype=torch.float64)
    context = torch.tensor([[False, True, True, True, True]])
    # position 0 ([CLS]) is not context; the best allowed span is 3..4 (3.0 + 1.0), not 3..1 (start > end)
    starts, ends, scores = expect_sequence(student.best_span(start, end, context, 3), 3, name="best_span")
    assert_equal(starts, torch.tensor([3]), name="best_span start")
    assert_equal(ends, torch.tensor([4]), name="best_span end")
    assert_close(scores, torch.tensor([4.0], dtype=torch.float64), name="best_span score")


def test_shift_right_small(student):
    labels = torch.tensor([[7, 8, 1], [9, 1, -100]])
    assert_equal(student.shift_right(labels, 0, 0), torch.tensor([[0, 7, 8], [0, 9, 1]]), name="shift_right")


def test_last_token_index_both_sides(student):
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]])
    assert_equal(student.last_token_index(mask), torch.tensor([2, 4]), name="last_token_index")


def test_freeze_head(student):
    model = student.BertForSequenceClassification(2, vocab_size=20, d_model=8, n_layers=1, n_heads=2, d_ff=8, max_len=8)
    names = student.freeze(model, "head")
    assert_equal(
        torch.tensor([len(names)]),
        torch.tensor([4]),
        name="freeze 'head': trainable parameter count (pooler, classifier)",
    )


def test_task_probabilities_small(student):
    got = student.task_probabilities([100, 400], 2.0)
    assert_close(got, torch.tensor([1 / 3, 2 / 3], dtype=torch.float64), name="task_probabilities([100, 400], T=2)")


def test_windows_and_baselines(student):
    series = torch.arange(10, dtype=torch.float64)
    x, y = expect_sequence(student.sliding_windows(series, 4, 2), 2, name="sliding_windows")
    assert_equal(x[0], series[:4], name="first input window")
    assert_equal(y[-1], series[8:], name="last target window")
    assert_equal(student.naive_forecast(x[:1], 2), torch.tensor([[3.0, 3.0]], dtype=torch.float64), name="naive")
    assert_equal(
        student.seasonal_naive_forecast(x[:1], 3, 2),
        torch.tensor([[2.0, 3.0, 2.0]], dtype=torch.float64),
        name="seasonal",
    )


def test_hand_built_heads(student):
    t = 6
    previous = torch.zeros(1, 1, t, t, dtype=torch.float64)
    previous[0, 0, 0, 0] = 1
    previous[0, 0, torch.arange(1, t), torch.arange(t - 1)] = 1
    uniform = torch.full((1, 1, t, t), 1 / t, dtype=torch.float64)
    maps = torch.cat([previous, uniform], dim=1)
    assert_close(student.previous_token_score(maps), torch.tensor([1.0, 1 / t], dtype=torch.float64), name="previous")
    assert_close(student.attention_entropy(maps), torch.tensor([0.0, math.log(t)], dtype=torch.float64), name="entropy")
