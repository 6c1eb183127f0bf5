"""The week 06 attention-maps lab runs end to end (tiny settings) and writes a heatmap per layer and head."""

from __future__ import annotations

import csv
import math

import torch

from autograder import reference
from tests.helpers import REPO

lab = reference.load_file(REPO / "weeks" / "06-gpt2" / "lab_attention_maps.py", name="lab_attention_maps")

PNG = b"\x89PNG\r\n\x1a\n"
REFERENCE = REPO / "solutions" / "06-gpt2" / "gpt.py"


def test_lab_writes_a_heatmap_per_layer_and_head(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("KING HENRY:\nThe king is dead, long live the king!\n\n" * 60)
    out = tmp_path / "out"
    argv = ["--corpus", str(corpus), "--out", str(out), "--impl", str(REFERENCE)]
    argv += ["--steps", "3", "--batch", "4", "--length", "24", "--d-model", "16", "--n-heads", "2", "--n-layers", "2"]
    argv += ["--sentence", "The king is dead!\nLong live the queen"]  # q, u, L are not in the corpus: dropped
    assert lab.main(argv) == 0
    for layer in range(2):
        for head in range(2):
            assert (out / f"attention_L{layer}_H{head}.png").read_bytes()[:8] == PNG
    assert (out / "attention_grid.png").read_bytes()[:8] == PNG
    rows = list(csv.DictReader((out / "heads.csv").open()))
    assert [(row["layer"], row["head"]) for row in rows] == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    assert all(0.0 <= float(row[key]) <= 1.0 for row in rows for key in ("previous", "self", "first"))
    report = (out / "report.md").read_text()
    assert "attention_grid.png" in report
    assert "previous-token" in report
    assert (out / "sample.txt").read_text().strip()


def test_attention_maps_are_causal_rows_that_sum_to_one():
    gpt = lab.load_impl(REFERENCE)
    torch.manual_seed(0)
    model = gpt.GPT(11, 16, 8, 2, 3)
    lab.gpt2_init(model, std=0.5)
    maps = lab.attention_maps(model, torch.tensor([[1, 4, 2, 7, 7, 3]]))
    assert len(maps) == 3
    for weights in maps:
        assert weights.shape == (2, 6, 6)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 6))
        assert torch.equal(weights.triu(1), torch.zeros(2, 6, 6))
    stats = lab.head_statistics(maps[0][0], "ab cd\n")
    assert set(stats) == {"previous", "self", "first", "space_or_newline"}
    assert all(math.isfinite(v) for v in stats.values())
