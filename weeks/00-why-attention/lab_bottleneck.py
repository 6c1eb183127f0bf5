"""Week 00 lab: what RNNs cannot do, measured, and what attention changes.

Uses *your* ``rnn.py`` (``--impl``) for three measurements:

1. **The bottleneck.** Trains a seq2seq without attention and one with attention on the
   synthetic copy task (vocabulary 20, source lengths 5-40), then plots exact-match
   accuracy against source length (``accuracy_vs_length.png``).
2. **Vanishing and exploding gradients.** ``‖∂h_T/∂h_t‖`` against distance ``T - t`` for
   tanh RNNs whose ``W_hh`` is a scaled orthogonal matrix, a GRU, and the linear RNN's
   closed form ``σ^(T-t)`` (``gradient_vs_distance.png``), plus what clipping by global
   norm does to an exploding gradient.
3. **Sequential cost.** The dependency depth of an RNN vs one self-attention layer, and the
   wall-clock of each, as the sequence grows.

    python weeks/00-why-attention/lab_bottleneck.py --impl solutions/00-why-attention/rnn.py --out build/lab00

Writes ``accuracy_vs_length.png``, ``gradient_vs_distance.png``, ``results.json`` and
``report.md`` into ``--out``. Seeded; with the defaults about 4 minutes on 2 CPU cores.
It is not auto-graded (the hidden tests run their own short training).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from autograder import config, reference

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VOCAB = 20


def load_impl(path: Path) -> ModuleType:
    """Import an ``rnn.py`` from a path (yours, or the reference)."""
    week = config.load(REPO).week("00")
    return reference.load_student_file(week, path)


# -- 1. the bottleneck ---------------------------------------------------------------------


def bottleneck(rnn: ModuleType, args: argparse.Namespace) -> dict[str, Any]:
    found: dict[str, Any] = {"lengths": args.eval_lengths, "models": {}}
    for kind in ("none", args.attention):
        torch.manual_seed(args.seed)
        model = rnn.Seq2Seq(VOCAB, args.hidden, kind, embed_size=args.embed)
        started = time.perf_counter()
        losses = rnn.train_seq2seq(
            model,
            task=args.task,
            steps=args.steps,
            batch_size=args.batch_size,
            min_len=args.min_len,
            max_len=args.max_len,
            lr=args.lr,
            seed=args.seed,
        )
        seconds = time.perf_counter() - started
        model.eval()
        exact, tokens = [], []
        for length in args.eval_lengths:
            batch = rnn.make_batch(args.task, args.eval_size, length, length, VOCAB, torch.Generator().manual_seed(1))
            predicted = model.greedy_decode(batch["src"], batch["src_mask"], length)
            exact.append(float(rnn.exact_match(predicted, batch["tgt"], batch["src_mask"]).float().mean()))
            tokens.append(float((predicted == batch["tgt"]).float().mean()))
        found["models"][kind] = {
            "exact_match": exact,
            "token_accuracy": tokens,
            "final_loss": sum(losses[-20:]) / len(losses[-20:]),
            "train_seconds": seconds,
        }
        print(
            f"{kind:>9}: {seconds:.0f} s, exact match "
            + " ".join(f"{length}:{e:.2f}" for length, e in zip(args.eval_lengths, exact, strict=True)),
            flush=True,
        )
    return found


# -- 2. gradients across distance ----------------------------------------------------------


def gradients(rnn: ModuleType, length: int) -> dict[str, Any]:
    torch.manual_seed(0)
    hidden = 32
    q, _ = torch.linalg.qr(torch.randn(hidden, hidden, dtype=torch.float64))
    x = torch.randn(length, 4, dtype=torch.float64) * 0.5
    h0 = torch.zeros(hidden, dtype=torch.float64)
    curves: dict[str, list[float]] = {}
    for scale in (0.5, 1.0, 1.5):
        for nonlinearity in ("linear", "tanh"):
            cell = rnn.RNNCell(4, hidden, nonlinearity).double()
            with torch.no_grad():
                cell.weight_hh.copy_(scale * q)
            curves[f"{nonlinearity} W=x{scale:g}"] = rnn.state_jacobian_norms(cell, x, h0).tolist()
        curves[f"bound x{scale:g}"] = rnn.linear_jacobian_norm_bound(scale * q, length).tolist()
    gru = rnn.GRUCell(4, hidden).double()
    curves["GRU (default init)"] = rnn.state_jacobian_norms(gru, x, h0).tolist()

    # clipping: one backward pass through an exploding linear RNN (W = 1.5 x orthogonal)
    cell = rnn.RNNCell(4, hidden, "linear").double()
    with torch.no_grad():
        cell.weight_hh.copy_(1.5 * q)
    _, last = rnn.run_rnn(cell, x[None])
    grads = torch.autograd.grad(last.pow(2).sum(), list(cell.parameters()))
    clipped, norm = rnn.clip_by_global_norm(list(grads), 1.0)
    after = math.sqrt(sum(float(g.pow(2).sum()) for g in clipped))
    cosine = float(torch.cat([g.flatten() for g in grads]) @ torch.cat([g.flatten() for g in clipped])) / (
        float(norm) * after
    )
    return {"length": length, "curves": curves, "clip": {"before": float(norm), "after": after, "cosine": cosine}}


# -- 3. sequential cost --------------------------------------------------------------------


def self_attention(x: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor) -> torch.Tensor:
    """One single-head self-attention layer, all positions at once: (B, T, D) -> (B, T, D)."""
    scores = (x @ wq) @ (x @ wk).transpose(-2, -1) / math.sqrt(x.shape[-1])  # (B, T, T)
    return torch.softmax(scores, dim=-1) @ (x @ wv)


def best_of(repeats: int, fn: Any) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def sequential_cost(rnn: ModuleType, lengths: list[int]) -> dict[str, Any]:
    torch.manual_seed(0)
    width, batch = 64, 8
    cell = rnn.GRUCell(width, width)
    wq, wk, wv = (torch.randn(width, width) / math.sqrt(width) for _ in range(3))
    rows = []
    with torch.no_grad():
        for length in lengths:
            x = torch.randn(batch, length, width)
            rows.append(
                {
                    "length": length,
                    "rnn_steps": rnn.sequential_steps("rnn", length),
                    "attention_steps": rnn.sequential_steps("attention", length),
                    "rnn_path": rnn.max_path_length("rnn", length),
                    "attention_path": rnn.max_path_length("attention", length),
                    "rnn_ms": 1000 * best_of(3, lambda x=x: rnn.run_rnn(cell, x)),
                    "attention_ms": 1000 * best_of(3, lambda x=x: self_attention(x, wq, wk, wv)),
                }
            )
    return {"batch": batch, "width": width, "rows": rows}


# -- plots and report ----------------------------------------------------------------------


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bottleneck_results = results["bottleneck"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, values in bottleneck_results["models"].items():
        label = "no attention (final state only)" if kind == "none" else f"{kind} attention"
        ax.plot(bottleneck_results["lengths"], values["exact_match"], marker="o", label=label)
    ax.axvspan(results["settings"]["min_len"], results["settings"]["max_len"], color="0.92", zorder=0)
    ax.set_xlabel("source length")
    ax.set_ylabel("exact-match accuracy")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"{results['settings']['task']} task: the seq2seq bottleneck")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_length.png", dpi=110)
    plt.close(fig)

    grads = results["gradients"]
    distance = list(range(grads["length"], -1, -1))  # entry t is T - t steps back
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = {"0.5": "tab:blue", "1": "tab:green", "1.5": "tab:red"}
    for name, values in grads["curves"].items():
        if name.startswith("GRU"):
            ax.plot(distance, values, color="black", label=name)
            continue
        kind, scale = name.split(" ", 1)[0], name.rsplit("x", 1)[1]
        style = {"linear": "-", "tanh": "--", "bound": ":"}[kind]
        ax.plot(
            distance,
            values,
            style,
            color=colors[scale],
            label=name if kind != "linear" else f"linear, W = {scale} x orth.",
        )
    ax.set_yscale("log")
    ax.set_xlabel("distance T - t (steps back)")
    ax.set_ylabel("||dh_T / dh_t||  (spectral norm)")
    ax.set_title("gradients vanish or explode with distance")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "gradient_vs_distance.png", dpi=110)
    plt.close(fig)


def report(results: dict[str, Any]) -> str:
    s = results["settings"]
    b = results["bottleneck"]
    lines = [
        "# Week 00 lab: why attention",
        "",
        f"Task: {s['task']}, vocabulary {VOCAB}, trained on lengths {s['min_len']}-{s['max_len']} for {s['steps']} steps "
        f"(batch {s['batch_size']}, hidden {s['hidden']}, Adam lr {s['lr']}, seed {s['seed']}).",
        "",
        "![accuracy vs length](accuracy_vs_length.png)",
        "",
        "| model | " + " | ".join(str(length) for length in b["lengths"]) + " | train s |",
        "|---|" + "---|" * (len(b["lengths"]) + 1),
    ]
    for kind, values in b["models"].items():
        cells = " | ".join(f"{e:.2f}" for e in values["exact_match"])
        lines.append(f"| {kind} | {cells} | {values['train_seconds']:.0f} |")
    g = results["gradients"]
    lines += [
        "",
        "![gradient vs distance](gradient_vs_distance.png)",
        "",
        f"||dh_T/dh_0|| after T = {g['length']} steps:",
        "",
        "| cell | norm |",
        "|---|---|",
    ]
    for name, values in g["curves"].items():
        lines.append(f"| {name} | {values[0]:.3g} |")
    c = g["clip"]
    lines += [
        "",
        f"Clipping (linear RNN, W = 1.5 x orthogonal, T = {g['length']}): global gradient norm {c['before']:.3g} "
        f"before, {c['after']:.3g} after clipping to 1.0; cosine between the two {c['cosine']:.6f} (same direction).",
        "",
        f"Sequential cost (batch {results['cost']['batch']}, width {results['cost']['width']}, one layer, CPU):",
        "",
        "| length | RNN steps | attention steps | RNN path | attention path | RNN ms | attention ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["cost"]["rows"]:
        lines.append(
            f"| {row['length']} | {row['rnn_steps']} | {row['attention_steps']} | {row['rnn_path']} | "
            f"{row['attention_path']} | {row['rnn_ms']:.1f} | {row['attention_ms']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", type=Path, default=REPO / "solutions" / "00-why-attention" / "rnn.py")
    parser.add_argument("--out", type=Path, default=Path("build/lab00"))
    parser.add_argument("--task", choices=["copy", "reverse"], default="copy")
    parser.add_argument("--attention", choices=["additive", "dot", "general"], default="additive")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--embed", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--min-len", type=int, default=5)
    parser.add_argument("--max-len", type=int, default=40)
    parser.add_argument("--eval-lengths", type=int, nargs="+", default=[5, 10, 15, 20, 25, 30, 35, 40])
    parser.add_argument("--eval-size", type=int, default=100)
    parser.add_argument("--gradient-length", type=int, default=40)
    parser.add_argument("--cost-lengths", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    rnn = load_impl(args.impl)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {
        "settings": {
            key: getattr(args, key)
            for key in ("task", "steps", "batch_size", "hidden", "lr", "min_len", "max_len", "seed")
        },
        "bottleneck": bottleneck(rnn, args),
        "gradients": gradients(rnn, args.gradient_length),
        "cost": sequential_cost(rnn, args.cost_lengths),
    }
    results["seconds"] = time.perf_counter() - started
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, args.out)
    (args.out / "report.md").write_text(report(results))
    print(f"wrote {args.out}/accuracy_vs_length.png, gradient_vs_distance.png, report.md in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
