"""Week 10 lab: train a character-level GPT on a plain-text corpus, on a laptop CPU.

Everything model- and step-shaped comes from *your* ``training.py`` (``--impl``): ``GPT``,
``configure_optimizer``, ``train_step`` (with your ``causal_lm_loss`` and ``clip_grad_norm``),
``cosine_with_warmup``, ``save_checkpoint`` / ``load_checkpoint`` and ``generate_text``, with
the earlier weeks' modules it imports (``gpt``, ``bert``, ``block``, ``multihead``) found as
``course check`` finds them: beside it, then in each earlier week's folder next to it
(``assignments/06-gpt2/gpt.py``), else the reference. This script only feeds it: batches of random windows from the training split (the first 90 % of
the corpus), the learning rate from the schedule before every step, the validation loss on
fixed windows of the last 10 % every ``eval_interval`` steps, a progress bar, checkpoints.

    python weeks/10-training/train_lm.py --corpus ../shared/data/tinyshakespeare.txt --out build/lab10

Two recipes (``--config``): ``baseline`` is nanoGPT's Shakespeare-on-a-CPU configuration
(4 layers, 4 heads, 128 wide, context 64, batch 12, 2000 iterations, lr 1e-3 with 100 warm-up
steps and cosine decay to 1e-4, AdamW with beta2 0.99, weight decay 0.1, clipping at 1, no
dropout); ``reference`` is the course's recipe for the same wall time. Change anything with
``--set key=value`` (e.g. ``--set lr=2e-3 --set batch=24``; ``--list`` prints the keys).
``--max-seconds S`` stops after ``S`` seconds of training and plans the cosine decay to end
then (the number of steps is estimated from the measured speed).

Writes into ``--out``: ``train_log.csv`` (``step,train_loss,val_loss``: one row per
evaluation, the training loss averaged since the previous one), ``loss_curve.png``,
``checkpoint.pt`` (model, optimizer, step, config, vocabulary: ``--resume`` continues from
it), ``samples.txt``, ``metrics.json`` and, if it does not exist yet, ``report.md``: a
template for your write-up. Hand in ``report.md``, ``loss_curve.png``, ``train_log.csv``
and ``checkpoint.pt`` beside ``training.py`` (see the week's README).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autograder import config, reference

HERE = Path(__file__).resolve().parent
DEFAULT_IMPL = HERE.parent.parent / "assignments" / "10-training" / "training.py"
VAL_FRACTION = 0.1
VAL_WINDOWS = 240  # fixed validation windows (20 batches of 12, as nanoGPT's eval_iters=20 on the CPU)


@dataclass
class Config:
    """A training recipe. The model part becomes ``GPT(...)``'s arguments; the rest drives the loop."""

    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 128
    d_ff: int = 0  # 0: 4 * d_model, GPT-2's choice
    context: int = 64  # max_len: the positions the model reads
    dropout: float = 0.0
    batch: int = 12
    iters: int = 2000  # the schedule's length (with --max-seconds: a cap)
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100
    schedule: str = "cosine"  # "cosine" (cosine_with_warmup) or "constant" (lr after a linear warm-up)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    max_norm: float = 1.0  # gradient clipping; 0 turns it off
    init_std: float = 0.02  # GPT-2's initialisation
    amp_dtype: str = ""  # "" (float32), "bfloat16" or "float16"
    checkpointing: bool = False  # gradient checkpointing of the blocks
    eval_interval: int = 250
    seed: int = 1337

    def model_kwargs(self, vocab_size: int) -> dict[str, Any]:
        return {
            "vocab_size": vocab_size,
            "max_len": self.context,
            "d_model": self.d_model,
            "n_heads": self.n_heads,
            "n_layers": self.n_layers,
            "d_ff": self.d_ff or None,
            "dropout": self.dropout,
        }


CONFIGS = {
    # nanoGPT README, "I only have a macbook": --block_size=64 --batch_size=12 --n_layer=4 --n_head=4
    # --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0, with config/train_shakespeare_char.py's
    # learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, beta2=0.99, weight_decay=0.1, grad_clip=1.0.
    "baseline": Config(),
    # The course's recipe for the same wall time (the README's table says what each change bought): a 3e-3 peak
    # rate, a shallower model with a narrower feed-forward layer (F = 2D) so that each step costs less, and a
    # slightly larger batch. 2800 steps take about as long as the baseline's 2000 on a CPU.
    "reference": Config(n_layers=3, d_ff=256, batch=16, lr=3e-3, min_lr=3e-4, iters=2800),
}


def load_impl(path: Path) -> ModuleType:
    """Import a ``training.py`` from a path (yours, or the reference) with the earlier weeks' modules it imports.

    Those are found as ``course check`` finds them: beside ``training.py``, then in each earlier
    week's folder next to its folder (``assignments/06-gpt2/``), else the reference
    (``solutions/``, or the copy a student edition provides).
    """
    if not path.is_file():
        raise SystemExit(f"cannot import {path}")
    week = config.load(HERE.parent.parent).week("10")
    try:
        return reference.load_student_file(week, path, name="lab_training")
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


def apply_overrides(config: Config, pairs: list[str]) -> Config:
    """``["lr=3e-3", "batch=32"]`` -> a copy of ``config`` with those fields, converted to each field's type."""
    types = {f.name: type(getattr(config, f.name)) for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"--set {pair}: unknown key {key!r}; keys: {', '.join(types)}")
        kind = types[key]
        if kind is bool:
            changes[key] = value.lower() in ("1", "true", "yes", "on")
        else:
            changes[key] = kind(value)
    return dataclasses.replace(config, **changes)


def init_weights(model: nn.Module, config: Config) -> None:
    """GPT-2's initialisation: N(0, std^2), the residual projections std / sqrt(2 L), biases 0, norm weights 1.

    ``nn.Embedding``'s default N(0, 1) would make the tied head's first logits about
    ``sqrt(d_model)`` in size: a confident, wrong model that takes a while to unlearn it.
    """
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.zero_()
            elif "norm" in name:
                parameter.fill_(1.0)
            elif name.endswith(("attn.out_proj.weight", "ff.fc2.weight")):
                parameter.normal_(0.0, config.init_std / math.sqrt(2 * config.n_layers))
            else:
                parameter.normal_(0.0, config.init_std)


class Corpus:
    """A text as character ids: the vocabulary (sorted characters), a training and a validation split."""

    def __init__(self, text: str) -> None:
        self.vocab = "".join(sorted(set(text)))
        lookup = {char: i for i, char in enumerate(self.vocab)}
        ids = torch.tensor([lookup[char] for char in text], dtype=torch.long)
        cut = int(len(ids) * (1 - VAL_FRACTION))
        self.train, self.val = ids[:cut], ids[cut:]

    def batch(self, size: int, length: int, generator: torch.Generator) -> Tensor:
        """``(size, length)`` random windows of the training split, each start in ``0 .. len(train) - length``.

        ``len(train) - length + 1`` windows fit (the last one ends at the split's last character).
        """
        starts = torch.randint(len(self.train) - length + 1, (size,), generator=generator)
        return torch.stack([self.train[s : s + length] for s in starts.tolist()])

    def val_windows(self, length: int, count: int = VAL_WINDOWS, seed: int = 0) -> Tensor:
        """``(count, length)`` fixed windows of the validation split: the same ones at every evaluation.

        Starts are drawn from all ``len(val) - length + 1`` windows, the last one included.
        """
        generator = torch.Generator().manual_seed(seed)
        starts = torch.randint(len(self.val) - length + 1, (count,), generator=generator)
        return torch.stack([self.val[s : s + length] for s in starts.tolist()])


@torch.no_grad()
def evaluate(model: nn.Module, windows: Tensor, batch: int = 12) -> float:
    """The mean causal LM loss over ``windows`` (every target of every window counts the same)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(windows), batch):
        ids = windows[start : start + batch]
        logits = model(ids)
        total += float(F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten(), reduction="sum"))
        count += ids[:, 1:].numel()
    model.train()
    return total / count


def learning_rate(impl: ModuleType, config: Config, step: int, total: int) -> float:
    if config.schedule == "constant":
        return config.lr * min(1.0, step / config.warmup) if config.warmup else config.lr
    return float(impl.cosine_with_warmup(step, config.warmup, total, config.lr, config.min_lr))


def read_log(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with path.open() as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def write_log(path: Path, rows: list[dict[str, float]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "train_loss", "val_loss"])
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    "step": int(row["step"]),
                    "train_loss": f"{row['train_loss']:.4f}",
                    "val_loss": f"{row['val_loss']:.4f}",
                }
            )


def plot_log(rows: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2))
    steps = [row["step"] for row in rows]
    trained = [(row["step"], row["train_loss"]) for row in rows if row["step"] > 0]
    axes.plot([s for s, _ in trained], [v for _, v in trained], "o-", label="train (mean since the last point)")
    axes.plot(steps, [row["val_loss"] for row in rows], "s-", label="validation")
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy (nats per character)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


REPORT = """# Week 10 lab report

## Results

| | |
|---|---|
| recipe | `{recipe}` |
| final validation loss | {val_loss:.3f} nats per character |
| steps | {steps} in {seconds:.0f} s of training |
| corpus | `{corpus}` ({chars:,} characters, vocabulary of {vocab}) |

![loss curves](loss_curve.png)

## What I changed and why

TODO: which settings did you change from the baseline (`--config baseline`) and why? What did
each change do to the validation loss and to the time per step? Give numbers.

## What I observed

TODO: describe the loss curves (warm-up, decay, any gap between training and validation loss)
and the samples.

## Sample

```
{sample}
```
"""


@dataclass
class Result:
    val_loss: float
    steps: int
    seconds: float
    rows: list[dict[str, float]]


def train(
    impl: ModuleType,
    corpus: Corpus,
    config: Config,
    out: Path,
    *,
    max_seconds: float | None = None,
    resume: bool = False,
    quiet: bool = False,
    recipe: str = "",
    corpus_name: str = "",
    sample_chars: int = 300,
) -> Result:
    """Train (or resume), evaluating and checkpointing every ``eval_interval`` steps; write the artefacts."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    checkpoint_path, log_path = out / "checkpoint.pt", out / "train_log.csv"
    model_kwargs = config.model_kwargs(len(corpus.vocab))
    model = impl.GPT(**model_kwargs)
    init_weights(model, config)
    model.set_gradient_checkpointing(config.checkpointing)
    optimizer = impl.configure_optimizer(model, config.lr, config.weight_decay, (config.beta1, config.beta2))
    scaler = impl.DynamicLossScaler() if config.amp_dtype == "float16" else None
    step, rows, seconds = 0, [], 0.0
    if resume and checkpoint_path.is_file():
        model, state = impl.load_checkpoint(str(checkpoint_path))
        model.set_gradient_checkpointing(config.checkpointing)
        model.train()
        optimizer = impl.configure_optimizer(model, config.lr, config.weight_decay, (config.beta1, config.beta2))
        if state.get("optimizer") is not None:
            optimizer.load_state_dict(state["optimizer"])
        step, rows = int(state["step"]), [row for row in read_log(log_path) if row["step"] <= state["step"]]
        if (out / "metrics.json").is_file():
            seconds = float(json.loads((out / "metrics.json").read_text()).get("train_seconds", 0.0))
    model.train()
    windows = corpus.val_windows(config.context)
    generator = torch.Generator().manual_seed(config.seed + step)
    if not rows:
        rows.append({"step": 0.0, "train_loss": math.nan, "val_loss": evaluate(model, windows)})
    total = config.iters
    pending: list[float] = []

    def save() -> None:
        impl.save_checkpoint(str(checkpoint_path), model, optimizer, step, model_kwargs, corpus.vocab)
        write_log(log_path, rows)
        metrics = {"recipe": recipe, "val_loss": rows[-1]["val_loss"], "steps": step, "train_seconds": seconds}
        (out / "metrics.json").write_text(
            json.dumps({**metrics, "config": dataclasses.asdict(config)}, indent=2) + "\n"
        )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("loss {task.fields[loss]:.3f}  val {task.fields[val]:.3f}  lr {task.fields[lr]:.2e}"),
        TimeElapsedColumn(),
        disable=quiet,
    )
    with progress:
        task = progress.add_task(
            recipe or "training", total=total, completed=step, loss=math.nan, val=rows[-1]["val_loss"], lr=0.0
        )
        while step < total:
            if max_seconds is not None and seconds >= max_seconds:
                break
            lr = learning_rate(impl, config, step, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            ids = corpus.batch(config.batch, config.context, generator)
            started = time.perf_counter()
            stats = impl.train_step(
                model,
                optimizer,
                ids,
                max_norm=config.max_norm or None,
                amp_dtype=config.amp_dtype or None,
                scaler=scaler,
            )
            seconds += time.perf_counter() - started
            step += 1
            pending.append(float(stats["loss"]))
            if max_seconds is not None and step >= 10:
                # plan the schedule to end when the time runs out, from the speed so far (capped at config.iters)
                total = min(config.iters, max(step + 1, round(step * max_seconds / seconds)))
                progress.update(task, total=total)
            done = step >= total or (max_seconds is not None and seconds >= max_seconds)
            if step % config.eval_interval == 0 or done:
                val = evaluate(model, windows)
                rows.append({"step": float(step), "train_loss": sum(pending) / len(pending), "val_loss": val})
                pending = []
                save()
            progress.update(task, completed=step, loss=float(stats["loss"]), val=rows[-1]["val_loss"], lr=lr)
    if pending:  # stopped between evaluations (time ran out)
        rows.append(
            {"step": float(step), "train_loss": sum(pending) / len(pending), "val_loss": evaluate(model, windows)}
        )
    save()
    write_log(log_path, rows)
    plot_log(
        rows,
        out / "loss_curve.png",
        f"{recipe or 'training'}: validation loss {rows[-1]['val_loss']:.3f} after {step} steps",
    )
    model.eval()
    sample = impl.generate_text(model, corpus.vocab, "ROMEO:\n", sample_chars, temperature=0.8, seed=config.seed)
    (out / "samples.txt").write_text(sample + "\n")
    report = out / "report.md"
    if not report.exists():
        report.write_text(
            REPORT.format(
                recipe=recipe,
                val_loss=rows[-1]["val_loss"],
                steps=step,
                seconds=seconds,
                corpus=corpus_name,
                chars=len(corpus.train) + len(corpus.val),
                vocab=len(corpus.vocab),
                sample=sample.strip(),
            )
        )
    return Result(val_loss=rows[-1]["val_loss"], steps=step, seconds=seconds, rows=rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a plain-text file")
    parser.add_argument("--out", type=Path, default=Path("build/lab10"))
    parser.add_argument("--impl", type=Path, default=DEFAULT_IMPL, help="your training.py")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="reference")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="change one setting")
    parser.add_argument("--iters", type=int, help="the same as --set iters=N")
    parser.add_argument("--eval-interval", type=int, help="the same as --set eval_interval=N")
    parser.add_argument("--max-seconds", type=float, help="stop after this much training time")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--sample", type=int, default=300, metavar="N", help="characters to sample at the end")
    parser.add_argument("--threads", type=int, help="torch threads (default: PyTorch's choice, one per core)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--list", action="store_true", help="print the recipe's settings and exit")
    args = parser.parse_args(argv)
    config = apply_overrides(CONFIGS[args.config], args.set)
    if args.iters is not None:
        config = dataclasses.replace(config, iters=args.iters)
    if args.eval_interval is not None:
        config = dataclasses.replace(config, eval_interval=args.eval_interval)
    if args.list:
        for key, value in dataclasses.asdict(config).items():
            print(f"{key} = {value!r}")
        return 0
    impl = load_impl(args.impl)
    corpus = Corpus(args.corpus.read_text(encoding="utf-8"))
    if args.threads:
        torch.set_num_threads(args.threads)
    result = train(
        impl,
        corpus,
        config,
        args.out,
        max_seconds=args.max_seconds,
        resume=args.resume,
        quiet=args.quiet,
        recipe=args.config + "".join(f" {pair}" for pair in args.set),
        corpus_name=args.corpus.name,
        sample_chars=args.sample,
    )
    print(f"validation loss {result.val_loss:.4f} after {result.steps} steps ({result.seconds:.0f} s of training)")
    print(f"wrote {args.out}/train_log.csv, loss_curve.png, checkpoint.pt, samples.txt, metrics.json, report.md")
    print((args.out / "samples.txt").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
