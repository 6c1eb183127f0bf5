"""Week 10 lab: the nanoGPT baseline and the course's reference recipe, side by side, from one run.

Both recipes go through the course's own trainer (``weeks/10-training/train_lm.py``) with the
reference ``training.py`` (the trainer finds the earlier weeks' modules it imports, ``gpt``,
``bert``, ``block`` and ``multihead``, as ``course check`` does). By default the baseline trains for its 2000 iterations first; the
reference recipe then gets exactly the baseline's training time (``--max-seconds``) and plans
its cosine decay to end when that time runs out. Evaluation time is not counted for either.

    python bench/train_lm.py --corpus ../shared/data/tinyshakespeare.txt

``--seconds S`` gives each recipe ``S`` seconds instead (a quick A/B); with ``--parallel`` the
two run at the same time, one thread each, so that a busy machine slows both alike. The
figures printed are what the week's README records (nanoGPT's own code reaches about 1.88
in about 3 minutes on a laptop CPU with the baseline settings).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "weeks" / "10-training" / "train_lm.py"
REFERENCE = ROOT / "solutions" / "10-training" / "training.py"


def run(recipe: str, args: argparse.Namespace, seconds: float | None) -> subprocess.Popen[bytes]:
    out = args.out / recipe
    command = [sys.executable, str(LAB), "--corpus", str(args.corpus), "--out", str(out), "--impl", str(args.impl)]
    command += ["--config", recipe, "--quiet", "--sample", "200"]
    if seconds is not None:  # the time decides; the schedule is planned from the measured speed
        command += ["--max-seconds", f"{seconds:.1f}", "--iters", "1000000"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    for pair in args.set:
        command += ["--set", pair]
    if out.exists():
        for name in ("checkpoint.pt", "train_log.csv", "metrics.json", "report.md"):
            (out / name).unlink(missing_ok=True)
    return subprocess.Popen(command)


def metrics(recipe: str, args: argparse.Namespace) -> dict[str, float]:
    data = json.loads((args.out / recipe / "metrics.json").read_text())
    config = data["config"]
    data["tokens"] = data["steps"] * config["batch"] * config["context"]
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench10")
    parser.add_argument("--impl", type=Path, default=REFERENCE)
    parser.add_argument(
        "--seconds", type=float, help="give each recipe this much training time (default: the baseline's)"
    )
    parser.add_argument("--parallel", action="store_true", help="with --seconds: run both at once, one thread each")
    parser.add_argument("--threads", type=int, help="torch threads per run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to both recipes")
    args = parser.parse_args(argv)
    if args.parallel and args.seconds is None:
        parser.error("--parallel needs --seconds (each run's budget)")
    if args.parallel and not args.threads:
        args.threads = 1
    started = time.perf_counter()
    if args.parallel:
        runs = [run(recipe, args, args.seconds) for recipe in ("baseline", "reference")]
        codes = [p.wait() for p in runs]
    else:
        codes = [run("baseline", args, args.seconds).wait()]
        budget = args.seconds if args.seconds is not None else metrics("baseline", args)["train_seconds"]
        codes.append(run("reference", args, budget).wait())
    if any(codes):
        print(f"a training run failed (exit codes {codes})", file=sys.stderr)
        return 1
    rows = {recipe: metrics(recipe, args) for recipe in ("baseline", "reference")}
    print()
    print(f"{'recipe':<10} {'steps':>6} {'tokens':>10} {'train s':>8} {'val loss':>9}   settings")
    for recipe, data in rows.items():
        config = data["config"]
        settings = (
            f"L{config['n_layers']} D{config['d_model']} ctx{config['context']} batch {config['batch']} "
            f"lr {config['lr']:g}->{config['min_lr']:g} warmup {config['warmup']}"
        )
        print(
            f"{recipe:<10} {data['steps']:>6} {data['tokens']:>10,} {data['train_seconds']:>8.1f} "
            f"{data['val_loss']:>9.4f}   {settings}"
        )
    gain = rows["baseline"]["val_loss"] - rows["reference"]["val_loss"]
    print(f"\nreference - baseline: {-gain:+.4f} nats per character at equal training time")
    print("nanoGPT's own code with the baseline settings: about 1.88 in about 3 minutes on a laptop CPU")
    print(f"(whole benchmark: {time.perf_counter() - started:.0f} s; outputs in {args.out})")
    summary = {
        recipe: {k: data[k] for k in ("steps", "tokens", "train_seconds", "val_loss")} for recipe, data in rows.items()
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
