"""Week 08's benchmark (bench/kv_cache.py) runs end to end on tiny settings with the reference solution."""

from __future__ import annotations

from autograder import reference
from tests.helpers import REPO

bench = reference.load_file(REPO / "bench" / "kv_cache.py", name="bench_kv_cache")


def test_bench_prints_speed_up_and_cache_memory(capsys):
    argv = ["--prompt", "5", "--new-tokens", "6", "--layers", "2", "--d-model", "16", "--heads", "4", "--vocab", "30"]
    assert bench.main([*argv, "--devices", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "warning" not in out  # cached and uncached generation agree
    lines = {
        line.split()[0] + " " + line.split()[1]: line.split() for line in out.splitlines() if len(line.split()) > 1
    }
    assert "cpu uncached" in lines
    assert "cpu cached" in lines
    per_token = {name: int(lines[name][2]) for name in ("MHA 4", "GQA-2 2", "MQA 1")}
    assert per_token == {"MHA 4": 2 * 2 * 4 * 4 * 4, "GQA-2 2": 2 * 2 * 2 * 4 * 4, "MQA 1": 2 * 2 * 1 * 4 * 4}
    for name in per_token:  # measured from a real cache = formula * tokens
        assert int(lines[name][4]) == per_token[name] * 11
