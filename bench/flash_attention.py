"""Week 09 benchmark: FlashAttention implementations against F.scaled_dot_product_attention.

For each sequence length it times the forward pass and the forward plus backward
pass of

* ``naive``: the reference ``naive_attention`` (the whole score matrix; skipped when it would not fit),
* ``tiled``: the tiled PyTorch ``flash_attention`` (an ``autograd.Function``),
* ``triton``: the Triton kernel ``triton_flash_attention`` (forward only; CUDA only),
* ``sdpa``: ``F.scaled_dot_product_attention``, the yardstick,

and prints milliseconds, achieved TFLOP/s, the speed as a ratio to SDPA
(``sdpa_time / time``: above 1 is faster than SDPA) and the peak memory the call
adds (``torch.cuda.max_memory_allocated`` on a GPU; on a CPU the largest total
size of live tensors, recorded op by op by the week's lab).

    python bench/flash_attention.py                      # the reference, every length this machine can do
    python bench/flash_attention.py --impl DIR --causal  # another flash.py / flash_triton.py

``flash.py`` imports week 02's ``multihead``: the lab's loader takes ``DIR/multihead.py``,
else ``DIR/../02-multihead/multihead.py``, else the reference.

FLOPs follow the FlashAttention-2 paper: forward ``4 B H Tq Tk D`` (two matrix
products), halved when causal; backward 2.5 times the forward. On a GPU the
default is fp16, head size 64, 16 heads and ``B = 16384 / T`` (16k tokens per
call, as in the paper's plots) over lengths 512 to 16k; on a CPU fp32, one
sequence of 4 heads, lengths 512 to 2048 (a couple of minutes).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F

from autograder import reference

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMPL = ROOT / "solutions" / "09-efficient"
LAB = ROOT / "weeks" / "09-efficient" / "lab_profile.py"
METHODS = ("naive", "tiled", "triton", "sdpa")


lab = reference.load_file(LAB, name="lab_profile_for_bench")


def flops(batch: int, heads: int, length: int, d_head: int, causal: bool, backward: bool) -> float:
    forward = 4.0 * batch * heads * length * length * d_head / (2 if causal else 1)
    return forward * (3.5 if backward else 1.0)  # forward + backward = 1 + 2.5 forwards


def runs(flash: ModuleType, triton: ModuleType | None, args: Any, causal: bool, block: int):
    """name -> (forward callable, forward-and-backward callable or None), given q, k, v, grad."""

    def naive(q, k, v):
        return flash.naive_attention(q, k, v, causal)[0]

    def tiled(q, k, v):
        return flash.flash_attention(q, k, v, causal, block, block)

    def sdpa(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    table: dict[str, Callable[..., torch.Tensor]] = {"naive": naive, "tiled": tiled, "sdpa": sdpa}
    if triton is not None:
        table["triton"] = lambda q, k, v: triton.triton_flash_attention(q, k, v, causal)[0]
    return {name: table[name] for name in args.methods if name in table}


def timed(run: Callable[[], Any], device: str, repeats: int) -> float:
    return lab.measure_time(run, device, repeats)


def measure(
    attend: Callable[..., torch.Tensor], tensors: tuple[torch.Tensor, ...], device: str, args: Any, backward: bool
) -> dict[str, float]:
    """Forward time and peak memory; forward-and-backward time when ``backward``."""
    q, k, v, grad = tensors
    row = {}
    with torch.no_grad():
        row["fwd_s"] = timed(lambda: attend(q, k, v), device, args.repeats)
        row["fwd_mb"] = lab.measure_memory(lambda: attend(q, k, v), device) / 2**20
    if backward:
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]

        def forward_backward() -> None:
            for leaf in leaves:
                leaf.grad = None
            attend(*leaves).backward(grad)

        row["bwd_s"] = timed(forward_backward, device, args.repeats)
    return row


def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype)
    flash = lab.load_impl(args.impl, "flash")
    triton = lab.load_impl(args.impl, "flash_triton") if device == "cuda" and "triton" in args.methods else None
    block = args.block or (128 if device == "cuda" else 64)
    rows = []
    for length in args.lengths:
        batch = args.batch or (max(1, args.tokens // length) if device == "cuda" else 1)
        generator = torch.Generator().manual_seed(0)
        q, k, v, grad = (
            torch.randn(batch, args.heads, length, args.d_head, generator=generator).to(device, dtype) for _ in range(4)
        )
        score_bytes = batch * args.heads * length * length * q.element_size()
        results: dict[str, dict[str, Any]] = {}
        for name, attend in runs(flash, triton, args, args.causal, block).items():
            if name == "naive" and 3 * score_bytes > args.max_naive_mb * 2**20:
                continue
            if name == "tiled" and length > args.max_tiled_length:
                continue
            row = {"length": length, "batch": batch, "method": name}
            row.update(measure(attend, (q, k, v, grad), device, args, backward=args.backward and name != "triton"))
            results[name] = row
        reference = results.get("sdpa")
        for row in results.values():
            row["fwd_tflops"] = flops(batch, args.heads, length, args.d_head, args.causal, False) / row["fwd_s"] / 1e12
            row["fwd_ratio"] = reference["fwd_s"] / row["fwd_s"] if reference else float("nan")
            if "bwd_s" in row:
                work = flops(batch, args.heads, length, args.d_head, args.causal, True)
                row["bwd_tflops"] = work / row["bwd_s"] / 1e12
                ratio = reference["bwd_s"] / row["bwd_s"] if reference and "bwd_s" in reference else float("nan")
                row["bwd_ratio"] = ratio
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


HEADER = (
    f"{'T':>6} {'B':>3} {'method':>7} | {'fwd ms':>9} {'TFLOP/s':>8} {'x SDPA':>7} {'peak MB':>9} | "
    f"{'fwd+bwd ms':>10} {'TFLOP/s':>8} {'x SDPA':>7}"
)


def format_row(row: dict[str, Any]) -> str:
    text = (
        f"{row['length']:>6} {row['batch']:>3} {row['method']:>7} | {row['fwd_s'] * 1e3:>9.2f} "
        f"{row['fwd_tflops']:>8.3f} {row['fwd_ratio']:>7.2f} {row['fwd_mb']:>9.1f} | "
    )
    if "bwd_s" in row:
        return text + f"{row['bwd_s'] * 1e3:>10.2f} {row['bwd_tflops']:>8.3f} {row['bwd_ratio']:>7.2f}"
    return text + f"{'n/a':>10} {'':>8} {'':>7}"


def parse(argv: list[str] | None) -> argparse.Namespace:
    gpu = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", type=Path, default=DEFAULT_IMPL, help="folder with flash.py and flash_triton.py")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    lengths = [512, 1024, 2048, 4096, 8192, 16384] if gpu else [512, 1024, 2048]
    parser.add_argument("--lengths", type=int, nargs="+", default=lengths)
    parser.add_argument("--heads", type=int, default=16 if gpu else 4)
    parser.add_argument("--d-head", type=int, default=64)
    parser.add_argument("--batch", type=int, default=None, help="default: 16384 / T on a GPU, 1 on a CPU")
    parser.add_argument("--tokens", type=int, default=16384, help="tokens per call on a GPU when --batch is not given")
    parser.add_argument("--block", type=int, default=None, help="tiles of the PyTorch version (128 GPU, 64 CPU)")
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--no-backward", dest="backward", action="store_false")
    parser.add_argument("--repeats", type=int, default=5 if gpu else 2)
    parser.add_argument("--dtype", default="float16" if gpu else "float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--max-naive-mb", type=float, default=16384 if gpu else 2048)
    parser.add_argument("--max-tiled-length", type=int, default=16384 if gpu else 2048)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (no CUDA: Triton skipped)"
    print(
        f"{device}; {args.dtype}, head size {args.d_head}, {args.heads} heads, "
        f"{'causal' if args.causal else 'not causal'}; torch {torch.__version__}"
    )
    print(HEADER)
    start = time.perf_counter()
    bench(args)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
