"""The week 11 lab runs end to end on tiny settings (``--quick``) and writes its plots, metrics and report.

A small synthetic corpus stands in for the real one (the lab reads any plain-text file); the
pretrained model is cached in the output folder and loaded by a second run with the same settings.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from autograder import reference
from tests.helpers import REPO

lab = reference.load_file(REPO / "weeks" / "11-applications" / "lab_finetune.py", name="lab_finetune")


def corpus(path: Path) -> Path:
    rng = random.Random(0)
    words = ["the", "king", "and", "queen", "speak", "of", "love", "war", "my", "lord", "good", "night", "sir"]
    path.write_text("\n".join(" ".join(rng.choice(words) for _ in range(9)) for _ in range(400)))
    return path


@pytest.mark.slow
def test_lab_quick_run(tmp_path, capsys):
    text = corpus(tmp_path / "corpus.txt")
    out = tmp_path / "out"
    impl = REPO / "solutions" / "11-applications" / "applications.py"
    args = ["--impl", str(impl), "--corpus", str(text), "--out", str(out), "--quick", "--threads", "1"]
    assert lab.main(args) == 0
    for name in ("accuracy_vs_steps.png", "head_scores.png", "metrics.json", "report.md", "pretrained.pt"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["final_accuracy"]) == {"sentiment", "scrambled"}
    for runs in metrics["final_accuracy"].values():
        assert set(runs) == {"pretrained", "scratch"}
        assert all(0.0 <= value <= 1.0 for value in runs.values())
    settings = lab.QUICK
    assert len(metrics["previous_token"]) == settings.n_layers
    assert len(metrics["induction"][0]) == settings.n_heads
    assert "| sentiment |" in (out / "report.md").read_text()
    capsys.readouterr()
    assert lab.main(args) == 0  # the second run loads the cached pretrained model
    assert "loaded the pretrained model" in capsys.readouterr().out
