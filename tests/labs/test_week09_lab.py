"""Week 09's lab (profiling) and benchmark run end to end on tiny settings, with the reference solution."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

from autograder import reference
from tests.helpers import REPO

IMPL = REPO / "solutions" / "09-efficient"


lab = reference.load_file(REPO / "weeks" / "09-efficient" / "lab_profile.py", name="lab_profile")
bench = reference.load_file(REPO / "bench" / "flash_attention.py", name="bench_flash_attention")


def test_lab_writes_plot_csv_and_report(tmp_path):
    out = tmp_path / "out"
    argv = ["--impl", str(IMPL), "--out", str(out), "--lengths", "32", "64", "--heads", "1", "2"]
    argv += ["--heads-fixed", "2", "--length-fixed", "32", "--d-head", "16", "--block", "16", "--window", "4"]
    argv += ["--linformer-k", "8", "--features", "16", "--repeats", "1", "--dtype", "float32"]
    assert lab.main(argv) == 0
    assert (out / "profile.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((out / "results.csv").open()))
    methods = {row["method"] for row in rows}
    assert methods == {"naive", "tiled", "sliding", "linformer", "performer", "sdpa"} | (
        {"triton"} if torch.cuda.is_available() else set()
    )
    assert len(rows) == len(methods) * 4  # two lengths and two head counts
    assert all(math.isfinite(float(row["ms"])) and float(row["mb"]) >= 0 for row in rows)
    naive = {int(r["length"]): float(r["mb"]) for r in rows if r["method"] == "naive" and r["sweep"] == "length"}
    tiled = {int(r["length"]): float(r["mb"]) for r in rows if r["method"] == "tiled" and r["sweep"] == "length"}
    assert naive[64] > 3 * naive[32]  # the score matrix: quadratic
    assert tiled[64] < naive[64] / 2
    report = (out / "report.md").read_text()
    assert "| naive |" in report
    assert "profile.png" in report
    assert "### tiled" in report  # a profiler table


def test_lab_loads_the_students_own_week_02_module(tmp_path):
    """flash.py imports multihead: the lab takes the student's (beside it, else in 02-multihead/), else the reference."""
    mine = tmp_path / "09-efficient"
    mine.mkdir()
    (mine / "flash.py").write_bytes((IMPL / "flash.py").read_bytes())
    flash = lab.load_impl(mine, "flash")
    reference = REPO / "solutions" / "02-multihead" / "multihead.py"  # no multihead.py of the student's
    assert Path(flash.split_heads.__code__.co_filename) == reference
    assert flash.split_heads(torch.zeros(1, 2, 6), 3).shape == (1, 3, 2, 2)
    own = tmp_path / "02-multihead"
    own.mkdir()
    (own / "multihead.py").write_text(
        "def split_heads(x, n_heads):\n    return 'mine'\n\n\ndef merge_heads(x):\n    return x\n"
    )
    assert lab.load_impl(mine, "flash").split_heads(None, 1) == "mine"
    (mine / "multihead.py").write_text(
        "def split_heads(x, n_heads):\n    return 'beside'\n\n\ndef merge_heads(x):\n    return x\n"
    )
    assert lab.load_impl(mine, "flash").split_heads(None, 1) == "beside"


def test_peak_memory_counts_live_tensors_only():
    with lab.PeakMemory() as tracker:
        a = torch.zeros(1000)  # 4000 bytes, kept
        for _ in range(3):
            b = torch.ones(2000)  # 8000 bytes, freed when replaced
            del b
        a.add_(1)  # in place: nothing new
    assert tracker.peak == 12000
    assert tracker.live == 4000


def test_bench_prints_every_method(capsys):
    assert bench.main(["--lengths", "64", "--heads", "2", "--d-head", "16", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for method in ("naive", "tiled", "sdpa"):
        assert f" {method} |" in out
    assert "x SDPA" in out
    assert ("triton" in out) == torch.cuda.is_available() or "Triton skipped" in out


def test_flops_convention():
    assert bench.flops(1, 1, 4, 2, causal=False, backward=False) == 4 * 16 * 2
    assert bench.flops(1, 1, 4, 2, causal=True, backward=True) == 4 * 16 * 2 / 2 * 3.5
