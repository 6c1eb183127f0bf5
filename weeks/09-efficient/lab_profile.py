"""Week 09 lab: how do time and memory grow with the sequence length and the number of heads?

Profiles *your* ``flash.py`` (and ``flash_triton.py`` when there is a GPU), from the
folder given by ``--impl``, with the week 02 ``multihead.py`` it imports: yours, beside
``flash.py`` or in ``assignments/02-multihead/`` (as ``course check`` finds it), else the
reference:

* ``naive``: ``naive_attention`` (the whole score matrix);
* ``tiled``: ``flash_attention_forward`` (your PyTorch FlashAttention);
* ``triton``: ``triton_flash_attention`` (GPU only: the interpreter is far too slow to time);
* ``sliding``: ``sliding_window_attention`` (local attention, ``--window``);
* ``linformer``: a ``Linformer`` module (``--linformer-k`` projected positions; includes its four projections);
* ``performer``: ``performer_attention`` (``--features`` random features);
* ``sdpa``: PyTorch's ``F.scaled_dot_product_attention``, the yardstick.

    python weeks/09-efficient/lab_profile.py --impl assignments/09-efficient --out build/lab09

For each method it measures the forward pass (median wall time of ``--repeats``
runs after a warm-up) and its peak memory beyond the inputs: on a GPU
``torch.cuda.max_memory_allocated``; on a CPU the largest total size of the
tensors alive at once, recorded op by op. At the longest length it runs each
method once under ``torch.profiler`` and keeps the ten most expensive ops. It
writes ``profile.png`` (time and memory against the length and the head count),
``results.csv`` and ``report.md`` into ``--out``. With the defaults it takes a
minute or two on a laptop CPU. It is not auto-graded: hand in the plot and a
short report (see the week's README).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from autograder import config, reference

HERE = Path(__file__).resolve().parent
DEFAULT_IMPL = HERE.parent.parent / "assignments" / "09-efficient"
METHODS = ("naive", "tiled", "triton", "sliding", "linformer", "performer", "sdpa")


def load_impl(folder: Path, name: str) -> ModuleType:
    """Import ``name``.py from ``folder`` (yours, or the reference) with the earlier weeks' modules it imports.

    Those are found as ``course check`` finds them: beside ``name``.py, then in each earlier
    week's folder next to ``folder`` (``assignments/02-multihead/``), else the reference
    (``solutions/``, or the copy a student edition provides).
    """
    path = folder / f"{name}.py"
    if not path.is_file():
        raise SystemExit(f"cannot import {path}")
    week = config.load(HERE.parent.parent).week("09")
    try:
        return reference.load_student_file(week, path, name=f"lab09_{name}")
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


class PeakMemory(TorchDispatchMode):
    """Peak bytes of the tensors created while active and still alive, counted op by op (CPU or GPU).

    A tensor counts from the op that creates its storage until the tensor is
    garbage; views of a counted storage are not counted again. Inputs created
    before the mode are not counted: the peak is what the computation adds.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._storages: set[int] = set()

    def _free(self, key: int, size: int) -> None:
        self._storages.discard(key)
        self.live -= size

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if not isinstance(value, torch.Tensor):
                continue
            storage = value.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
            if size == 0 or key in self._storages:
                continue
            self._storages.add(key)
            self.live += size
            self.peak = max(self.peak, self.live)
            weakref.finalize(value, self._free, key, size)
        return out


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure_time(run: Callable[[], Any], device: str, repeats: int) -> float:
    """Median seconds of ``repeats`` runs, after one warm-up run."""
    run()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_memory(run: Callable[[], Any], device: str) -> int:
    """Peak bytes the run allocates beyond what existed before it."""
    if device == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run()
        synchronize(device)
        return int(torch.cuda.max_memory_allocated() - before)
    with PeakMemory() as tracker:
        run()
    return tracker.peak


def make_runs(
    flash: ModuleType, triton: ModuleType | None, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, args: Any
) -> dict[str, Callable[[], Any]]:
    """One zero-argument callable per method, all on the same q, k, v (B, H, T, D)."""
    batch, heads, length, d_head = q.shape
    block = args.block
    linformer = flash.Linformer(heads * d_head, heads, length, args.linformer_k).to(q.device, q.dtype)
    x = q.transpose(1, 2).reshape(batch, length, heads * d_head)  # (B, T, H * D): the module's input
    projection = flash.random_projection(args.features, d_head, seed=0).to(q.device, q.dtype)
    runs: dict[str, Callable[[], Any]] = {
        "naive": lambda: flash.naive_attention(q, k, v),
        "tiled": lambda: flash.flash_attention_forward(q, k, v, False, block, block),
        "sliding": lambda: flash.sliding_window_attention(q, k, v, args.window, block),
        "linformer": lambda: linformer(x),
        "performer": lambda: flash.performer_attention(q, k, v, projection),
        "sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
    }
    if triton is not None:
        runs["triton"] = lambda: triton.triton_flash_attention(q, k, v)
    return {name: runs[name] for name in args.methods if name in runs}


def naive_fits(batch: int, heads: int, length: int, element_size: int, args: Any) -> bool:
    return batch * heads * length * length * element_size * 3 <= args.max_naive_mb * 2**20


def sweep(flash, triton, device: str, dtype: torch.dtype, args: Any) -> list[dict[str, Any]]:
    """Rows of results: one per (sweep, method, length, heads)."""
    rows = []
    points = [("length", length, args.heads_fixed) for length in args.lengths]
    points += [("heads", args.length_fixed, heads) for heads in args.heads]
    for kind, length, heads in points:
        generator = torch.Generator().manual_seed(0)
        q, k, v = (
            torch.randn(args.batch, heads, length, args.d_head, generator=generator).to(device, dtype) for _ in range(3)
        )
        with torch.no_grad():
            for name, run in make_runs(flash, triton, q, k, v, args).items():
                if name == "naive" and not naive_fits(args.batch, heads, length, q.element_size(), args):
                    continue
                seconds = measure_time(run, device, args.repeats)
                memory = measure_memory(run, device)
                rows.append(
                    {
                        "sweep": kind,
                        "method": name,
                        "length": length,
                        "heads": heads,
                        "ms": seconds * 1e3,
                        "mb": memory / 2**20,
                    }
                )
                print(
                    f"{kind:>6} {name:>9}  T={length:<6} H={heads:<3} {seconds * 1e3:9.2f} ms {memory / 2**20:9.1f} MB"
                )
    return rows


def profile_tables(flash, triton, device: str, dtype: torch.dtype, args: Any) -> dict[str, str]:
    """torch.profiler's ten most expensive ops of each method, at the longest length."""
    length = max(args.lengths)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    generator = torch.Generator().manual_seed(1)
    q, k, v = (
        torch.randn(args.batch, args.heads_fixed, length, args.d_head, generator=generator).to(device, dtype)
        for _ in range(3)
    )
    tables = {}
    sort_by = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    with torch.no_grad():
        for name, run in make_runs(flash, triton, q, k, v, args).items():
            if name == "naive" and not naive_fits(args.batch, args.heads_fixed, length, q.element_size(), args):
                continue
            run()  # warm-up
            with torch.profiler.profile(activities=activities, profile_memory=True) as profiler:
                run()
                synchronize(device)
            tables[name] = profiler.key_averages().table(sort_by=sort_by, row_limit=10, max_name_column_width=40)
    return tables


def plot(rows: list[dict[str, Any]], path: Path, device_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    for column, (kind, x_key, x_label) in enumerate(
        [("length", "length", "sequence length T"), ("heads", "heads", "heads H")]
    ):
        for row_index, (y_key, y_label) in enumerate([("ms", "forward time (ms)"), ("mb", "peak extra memory (MB)")]):
            axis = axes[row_index][column]
            for method in METHODS:
                points = [(r[x_key], r[y_key]) for r in rows if r["sweep"] == kind and r["method"] == method]
                if points:
                    xs, ys = zip(*points, strict=True)
                    axis.plot(xs, [max(y, 1e-3) for y in ys], marker="o", label=method)
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xlabel(x_label)
            axis.set_ylabel(y_label)
            axis.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(f"Attention forward passes on {device_name}")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


REPORT_QUESTIONS = """
## Questions (answer in your report, half a page to a page)

1. Fit the slope of time and of memory against `T` on the log-log plot for
   each method. Which are quadratic, which linear? Does the tiled PyTorch
   version save memory, time, or both, and why is it slower than `naive` on
   this machine although it does the same arithmetic (look at its profiler
   table: how many ops does it launch)?
2. How does the head count change the picture? Which costs grow with `H` and
   which do not?
3. `sliding`, `linformer` and `performer` are linear in `T` but compute
   something else than exact attention. For a task where every token must
   see a token far away, which of the three would you trust, and why?
4. With a GPU: how close does your Triton kernel come to `sdpa`? What would you
   change first (tile sizes, `num_warps`, `num_stages`, causal tiles skipped)?
"""


def write_report(rows, tables, path: Path, device_name: str, args: Any) -> None:
    lines = [
        "# Week 09 lab: time and memory of attention",
        "",
        f"Device: {device_name}; dtype {args.dtype}; batch {args.batch}, head size {args.d_head}; tiles "
        f"{args.block}, window {args.window}, Linformer K = {args.linformer_k}, Performer M = {args.features}.",
        "",
        "![time and memory](profile.png)",
        "",
    ]
    for kind, key, fixed in [
        ("length", "length", f"H = {args.heads_fixed}"),
        ("heads", "heads", f"T = {args.length_fixed}"),
    ]:
        values = sorted({r[key] for r in rows if r["sweep"] == kind})
        methods = [m for m in METHODS if any(r["method"] == m and r["sweep"] == kind for r in rows)]
        lines += [f"## Against {key} ({fixed}): forward ms / peak extra MB", ""]
        lines.append("| method | " + " | ".join(str(x) for x in values) + " |")
        lines.append("|---|" + "---|" * len(values))
        for method in methods:
            cells = []
            for value in values:
                found = [r for r in rows if r["sweep"] == kind and r["method"] == method and r[key] == value]
                cells.append(f"{found[0]['ms']:.2f} / {found[0]['mb']:.1f}" if found else "skipped")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"## torch.profiler at T = {max(args.lengths)}, the ten most expensive ops", ""]
    for name, table in tables.items():
        lines += [f"### {name}", "", "```", table.rstrip(), "```", ""]
    lines.append(REPORT_QUESTIONS.strip())
    path.write_text("\n".join(lines) + "\n")


def parse(argv: list[str] | None) -> argparse.Namespace:
    gpu = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--impl", type=Path, default=DEFAULT_IMPL, help="folder with your flash.py (and flash_triton.py)"
    )
    parser.add_argument("--out", type=Path, default=Path("build/lab09"))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    default_lengths = [512, 1024, 2048, 4096, 8192] if gpu else [256, 512, 1024, 2048]
    parser.add_argument("--lengths", type=int, nargs="+", default=default_lengths)
    parser.add_argument("--heads", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--heads-fixed", type=int, default=4, help="heads in the length sweep")
    parser.add_argument("--length-fixed", type=int, default=1024, help="length in the heads sweep")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--d-head", type=int, default=64)
    parser.add_argument("--block", type=int, default=64, help="tile size of the tiled and sliding versions")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--linformer-k", type=int, default=128)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float16" if gpu else "float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--max-naive-mb", type=float, default=8192 if gpu else 1024, help="skip naive above this")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    device_name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    dtype = getattr(torch, args.dtype)
    flash = load_impl(args.impl, "flash")
    triton = load_impl(args.impl, "flash_triton") if device == "cuda" and "triton" in args.methods else None
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = sweep(flash, triton, device, dtype, args)
    tables = profile_tables(flash, triton, device, dtype, args)
    with (args.out / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sweep", "method", "length", "heads", "ms", "mb"])
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out / "profile.png", device_name)
    write_report(rows, tables, args.out / "report.md", device_name, args)
    print(f"wrote {args.out}/profile.png, results.csv and report.md in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
