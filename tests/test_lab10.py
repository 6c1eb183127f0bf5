"""The week 10 training lab runs end to end (tiny settings), resumes, and writes what the grader reads.

It loads ``training.py`` with the earlier weeks' modules it imports (``gpt`` ...): the student's
own beside ``--impl`` (or in their earlier weeks' folders) where there is one, else the reference.

The hand-in checks of the hidden tests (``test_lab_report``, ``test_lab_loss_curve``,
``test_lab_train_log``) are run here on the lab's own outputs, with a stand-in for the
``handed_in`` fixture: the template report must fail until it is filled in, the plot and the
log must have the format the grader expects.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys

import pytest
import torch

from autograder import CheckFailed
from tests.helpers import REPO

spec = importlib.util.spec_from_file_location("lab_train_lm", REPO / "weeks" / "10-training" / "train_lm.py")
assert spec is not None
assert spec.loader is not None
lab = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = lab
spec.loader.exec_module(lab)

hidden_spec = importlib.util.spec_from_file_location(
    "hidden_training_for_lab", REPO / "autograder" / "hidden" / "10-training" / "test_training.py"
)
assert hidden_spec is not None
assert hidden_spec.loader is not None
hidden = importlib.util.module_from_spec(hidden_spec)
sys.modules[hidden_spec.name] = hidden
hidden_spec.loader.exec_module(hidden)

REFERENCE = REPO / "solutions" / "10-training" / "training.py"
TINY = ["--set", "n_layers=1", "--set", "d_model=16", "--set", "n_heads=2", "--set", "context=16", "--set", "batch=4"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("ROMEO:\nBut soft, what light through yonder window breaks?\n\n" * 80)
    return path


def run(corpus, out, *extra: str) -> int:
    argv = ["--corpus", str(corpus), "--out", str(out), "--impl", str(REFERENCE), "--quiet", "--sample", "30"]
    return lab.main([*argv, *TINY, *extra])


def handed_in_from(folder):
    def read(name: str) -> bytes | None:
        path = folder / name
        return path.read_bytes() if path.is_file() else None

    return read


def test_lab_trains_logs_plots_checkpoints_and_samples(corpus, tmp_path):
    out = tmp_path / "out"
    assert run(corpus, out, "--iters", "12", "--eval-interval", "4") == 0
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert [int(row["step"]) for row in rows] == [0, 4, 8, 12]
    assert rows[0]["train_loss"] == "nan"
    assert all(float(row["val_loss"]) > 0 for row in rows)
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    assert (out / "loss_curve.png").read_bytes()[:8] == hidden.PNG_SIGNATURE
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 12
    assert metrics["config"]["n_layers"] == 1
    sample = (out / "samples.txt").read_text()
    assert sample.startswith("ROMEO:\n")
    ref = lab.load_impl(REFERENCE)
    model, state = ref.load_checkpoint(str(out / "checkpoint.pt"))
    assert state["step"] == 12
    assert state["vocab"] == "".join(sorted(set(corpus.read_text())))
    assert state["config"]["max_len"] == 16
    assert state["optimizer"] is not None
    assert not model.training
    # the grader's checks of the hand-in: the plot and the log pass (the loss does not fall far enough in 12 steps)
    hidden.test_lab_loss_curve(handed_in_from(out))
    with pytest.raises(CheckFailed, match="validation loss"):
        hidden.test_lab_train_log(handed_in_from(out))
    # the template report is refused until its TODOs are replaced
    with pytest.raises(CheckFailed, match="TODO"):
        hidden.test_lab_report(handed_in_from(out))
    report = (out / "report.md").read_text()
    assert "loss_curve.png" in report
    assert "## What I changed and why" in report
    filled = report.replace(
        report[report.index("TODO: which") : report.index("## What I observed")],
        "I doubled the learning rate to 2e-3 and kept everything else as in the baseline. " * 3 + "\n\n",
    ).replace("TODO: describe", "I saw")
    (out / "report.md").write_text(filled)
    hidden.test_lab_report(handed_in_from(out))


def test_lab_uses_your_earlier_modules_where_you_have_them(tmp_path):
    """training.py imports gpt (week 06): the lab takes the one beside --impl, else the reference."""
    mine = tmp_path / "10-training"
    mine.mkdir()
    (mine / "training.py").write_bytes(REFERENCE.read_bytes())
    assert lab.load_impl(mine / "training.py").gpt.__file__ == str(REPO / "solutions" / "06-gpt2" / "gpt.py")
    gpt = (REPO / "solutions" / "06-gpt2" / "gpt.py").read_text()
    (mine / "gpt.py").write_text(gpt + "\nMINE = True\n")
    impl = lab.load_impl(mine / "training.py")
    assert impl.gpt.MINE
    assert issubclass(impl.GPT, impl.gpt.GPT)
    with pytest.raises(SystemExit, match="cannot import"):
        lab.load_impl(tmp_path / "missing.py")


def test_lab_resumes_from_its_checkpoint(corpus, tmp_path):
    out = tmp_path / "out"
    assert run(corpus, out, "--iters", "6", "--eval-interval", "3") == 0
    (out / "report.md").write_text("my own report")
    first = torch.load(out / "checkpoint.pt", weights_only=True)
    assert first["step"] == 6
    assert run(corpus, out, "--iters", "9", "--eval-interval", "3", "--resume") == 0
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert [int(row["step"]) for row in rows] == [0, 3, 6, 9]
    second = torch.load(out / "checkpoint.pt", weights_only=True)
    assert second["step"] == 9
    assert (out / "report.md").read_text() == "my own report"  # never overwritten
    # the optimiser state went on: Adam's step count is 9, not 3
    steps = {int(state["step"]) for state in second["optimizer"]["state"].values()}
    assert steps == {9}


def test_lab_time_budget_and_settings(corpus, tmp_path):
    out = tmp_path / "out"
    assert run(corpus, out, "--iters", "100000", "--eval-interval", "1000", "--max-seconds", "2") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 1 <= metrics["steps"] < 100000  # stopped by the clock, not by the schedule
    assert metrics["train_seconds"] >= 2.0
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert int(rows[-1]["step"]) == metrics["steps"]  # evaluated when the time ran out
    config = lab.apply_overrides(lab.CONFIGS["baseline"], ["lr=2e-3", "checkpointing=true", "amp_dtype=bfloat16"])
    assert (config.lr, config.checkpointing, config.amp_dtype) == (2e-3, True, "bfloat16")
    with pytest.raises(SystemExit):
        lab.apply_overrides(config, ["learning_rate=1"])


def test_baseline_is_nanogpts_cpu_configuration():
    config = lab.CONFIGS["baseline"]
    assert (config.n_layers, config.n_heads, config.d_model, config.context, config.batch) == (4, 4, 128, 64, 12)
    assert (config.iters, config.lr, config.min_lr, config.warmup, config.dropout) == (2000, 1e-3, 1e-4, 100, 0.0)
    assert (config.beta2, config.weight_decay, config.max_norm) == (0.99, 0.1, 1.0)


def test_corpus_windows_reach_the_last_character():
    """Every window of the split can be drawn, the last one included (``randint(len - length + 1)``).

    A text of 100 characters splits into 90 for training and 10 for validation. With windows of 89
    training characters there are exactly two (starts 0 and 1); with 90, one; the last start must come up.
    """
    corpus = lab.Corpus("".join(chr(ord("a") + i % 26) for i in range(100)))
    assert (len(corpus.train), len(corpus.val)) == (90, 10)
    generator = torch.Generator().manual_seed(0)
    windows = corpus.batch(64, 89, generator)
    assert windows.shape == (64, 89)
    starts = {int(window[0]) for window in windows}
    assert starts == {int(corpus.train[0]), int(corpus.train[1])}  # the window ending at the last character too
    whole = corpus.batch(3, 90, generator)  # as long as the split: one window, the whole split
    assert torch.equal(whole, corpus.train.expand(3, 90))
    val = corpus.val_windows(9, count=64)
    assert {int(window[0]) for window in val} == {int(corpus.val[0]), int(corpus.val[1])}
    assert torch.equal(corpus.val_windows(10, count=2), corpus.val.expand(2, 10))
