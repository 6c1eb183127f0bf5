"""The week 00 lab runs end to end (tiny settings) and writes its plots, numbers and report."""

from __future__ import annotations

import json

from autograder import reference
from tests.helpers import REPO

lab = reference.load_file(REPO / "weeks" / "00-why-attention" / "lab_bottleneck.py", name="lab_bottleneck")


def test_lab_writes_plots_numbers_and_report(tmp_path):
    out = tmp_path / "out"
    argv = ["--out", str(out), "--impl", str(REPO / "solutions" / "00-why-attention" / "rnn.py")]
    argv += ["--steps", "3", "--hidden", "8", "--embed", "4", "--max-len", "8", "--eval-lengths", "5", "8"]
    argv += ["--eval-size", "4", "--gradient-length", "6", "--cost-lengths", "4", "16"]
    assert lab.main(argv) == 0
    for name in ("accuracy_vs_length.png", "gradient_vs_distance.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((out / "results.json").read_text())
    assert set(results["bottleneck"]["models"]) == {"none", "additive"}
    assert all(0 <= e <= 1 for model in results["bottleneck"]["models"].values() for e in model["exact_match"])
    curves = results["gradients"]["curves"]
    assert curves["linear W=x0.5"][-1] == 1.0
    assert abs(curves["linear W=x0.5"][0] - 0.5**6) < 1e-12  # a scaled orthogonal W meets its bound
    assert results["gradients"]["clip"]["after"] <= 1.0 + 1e-9
    assert [row["rnn_steps"] for row in results["cost"]["rows"]] == [4, 16]
    assert [row["attention_steps"] for row in results["cost"]["rows"]] == [1, 1]
    report = (out / "report.md").read_text()
    assert "accuracy_vs_length.png" in report
    assert "| none |" in report
