"""The week 03 length-extrapolation lab runs end to end (tiny settings) and writes its plot, CSV and report."""

from __future__ import annotations

import csv
import math

from autograder import reference
from tests.helpers import REPO

lab = reference.load_file(REPO / "weeks" / "03-positional" / "lab_extrapolation.py", name="lab_extrapolation")


def test_lab_writes_plot_csv_and_report_for_every_encoding(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 200)
    out = tmp_path / "out"
    argv = [
        "--corpus",
        str(corpus),
        "--out",
        str(out),
        "--impl",
        str(REPO / "solutions" / "03-positional" / "positional.py"),
    ]
    argv += [
        "--steps",
        "3",
        "--train-length",
        "16",
        "--eval-lengths",
        "16",
        "40",
        "--d-model",
        "16",
        "--eval-tokens",
        "200",
    ]
    assert lab.main(argv) == 0
    assert (out / "loss_vs_length.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.reader((out / "results.csv").open()))
    assert rows[0] == ["encoding", "16", "40"]
    assert [row[0] for row in rows[1:]] == list(lab.ENCODINGS)
    assert all(math.isfinite(float(value)) and float(value) > 0 for row in rows[1:] for value in row[1:])
    report = (out / "report.md").read_text()
    assert "| alibi |" in report
    assert "loss_vs_length.png" in report


def test_learned_table_covers_the_longest_evaluation():
    pe = lab.load_impl(REPO / "solutions" / "03-positional" / "positional.py")
    model = lab.TinyLM(lab.Config("learned", vocab=5, d_model=8, max_len=40), pe)
    assert model.positions is not None
    assert model.positions.weight.shape == (40, 8)
