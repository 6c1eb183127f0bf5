"""Week 06 lab: what do the attention heads of a small trained GPT look at?

Trains a tiny character-level GPT, built from *your* ``gpt.py`` (``--impl``) and the
week 04 ``block.py`` and week 02 ``multihead.py`` it imports (yours, beside it or in
``assignments/04-block/`` and ``assignments/02-multihead/``, else the reference), on a
text corpus for a few minutes on a CPU, then draws the attention weights of every
layer and head on a sample sentence as heatmaps, and measures how much each head
attends to the previous character, to itself, to the first character and to
spaces and newlines.

    python weeks/06-gpt2/lab_attention_maps.py --corpus PATH/TO/tinyshakespeare.txt --out build/lab06

Writes into ``--out``: ``attention_L{layer}_H{head}.png`` for every layer and head,
``attention_grid.png`` with all of them, ``heads.csv`` (the statistics above),
``sample.txt`` (text generated with your ``sample``) and ``report.md``, a template
for your write-up. It is not auto-graded: see the week's README for what to hand in.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autograder import config, reference

HERE = Path(__file__).resolve().parent
DEFAULT_IMPL = HERE.parent.parent / "assignments" / "06-gpt2" / "gpt.py"
DEFAULT_SENTENCE = "KING HENRY:\nThe king is dead, long live the king!\nAnd so the king"


def load_impl(path: Path) -> ModuleType:
    """Import a ``gpt.py`` from a path (yours, or the reference) with the earlier weeks' modules it imports.

    Those (week 04's ``block.py``, week 02's ``multihead.py``) are found as ``course check``
    finds them: beside ``gpt.py``, then in each earlier week's folder next to its folder
    (``assignments/04-block/``), else the reference (``solutions/``, or the copy a student
    edition provides).
    """
    if not path.is_file():
        raise SystemExit(f"cannot import {path}")
    week = config.load(HERE.parent.parent).week("06")
    try:
        return reference.load_student_file(week, path, name="lab_gpt")
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


def gpt2_init(model: nn.Module, std: float = 0.02) -> None:
    """GPT-2's initialisation: weights N(0, 0.02^2), biases 0, LayerNorm weights 1.

    ``nn.Embedding``'s default N(0, 1) would make the tied head's first logits about
    ``sqrt(d_model)`` in size: a confident, wrong model that takes a while to unlearn it.
    """
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.zero_()
            elif "norm" in name:
                parameter.fill_(1.0)
            else:
                parameter.normal_(0.0, std)


def windows(data: Tensor, length: int, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    starts = torch.randint(len(data) - length - 1, (batch,), generator=generator).tolist()
    chunk = torch.stack([data[s : s + length + 1] for s in starts])
    return chunk[:, :-1], chunk[:, 1:]


def train(model: nn.Module, data: Tensor, *, steps: int, length: int, batch: int, lr: float, seed: int) -> float:
    generator = torch.Generator()
    generator.manual_seed(seed)
    adamw = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(adamw, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    started, loss = time.perf_counter(), torch.tensor(float("nan"))
    for step in range(1, steps + 1):
        inputs, targets = windows(data, length, batch, generator)
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
        adamw.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        adamw.step()
        schedule.step()
        if step % max(1, steps // 10) == 0 or step == steps:
            print(
                f"step {step:5d}/{steps}  loss {loss.item():.3f}  ({time.perf_counter() - started:.0f} s)", flush=True
            )
    return float(loss.item())


@torch.no_grad()
def validation_loss(model: nn.Module, data: Tensor, length: int, max_windows: int = 64) -> float:
    model.train(False)
    count = min(max_windows, (len(data) - 1) // length)
    inputs = torch.stack([data[i * length : (i + 1) * length] for i in range(count)])
    targets = torch.stack([data[i * length + 1 : (i + 1) * length + 1] for i in range(count)])
    return float(F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten()).item())


@torch.no_grad()
def attention_maps(model: nn.Module, ids: Tensor) -> list[Tensor]:
    """One ``(H, T, T)`` tensor per layer: the weights each block's attention returns, caught with forward hooks."""
    caught: list[Tensor] = []

    def keep(module: nn.Module, inputs: object, output: tuple[Tensor, Tensor]) -> None:
        caught.append(output[1][0].detach())  # (H, T, T) of the only sequence

    handles = [layer.attn.register_forward_hook(keep) for layer in model.blocks]
    try:
        model.train(False)
        model(ids)
    finally:
        for handle in handles:
            handle.remove()
    return caught


def head_statistics(weights: Tensor, text: str) -> dict[str, float]:
    """Average attention (over queries 1..T-1) to: the previous character, itself, the first character, spaces/newlines."""
    length = weights.shape[-1]
    queries = torch.arange(1, length)
    blank = torch.tensor([c in " \n" for c in text])
    return {
        "previous": float(weights[queries, queries - 1].mean()),
        "self": float(weights[queries, queries].mean()),
        "first": float(weights[queries, 0].mean()),
        "space_or_newline": float((weights[1:] * blank[None, :]).sum(-1).mean()),
    }


def label(c: str) -> str:
    return {"\n": "\\n", " ": "␣"}.get(c, c)


def plot_head(axes: Any, weights: Tensor, text: str, title: str, ticks: bool) -> None:
    axes.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes.set_title(title, fontsize=9)
    if ticks:
        marks = list(range(len(text)))
        axes.set_xticks(marks, [label(c) for c in text], fontsize=6, rotation=90)
        axes.set_yticks(marks, [label(c) for c in text], fontsize=6)
        axes.set_xlabel("key (attended to)")
        axes.set_ylabel("query (attending)")
    else:
        axes.set_xticks([])
        axes.set_yticks([])


def save_heatmaps(maps: list[Tensor], text: str, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    size = max(4.0, 0.16 * len(text) + 2.0)
    for layer, per_head in enumerate(maps):
        for head, weights in enumerate(per_head):
            figure, axes = plt.subplots(figsize=(size, size))
            plot_head(axes, weights, text, f"layer {layer}, head {head}", ticks=True)
            figure.tight_layout()
            path = out / f"attention_L{layer}_H{head}.png"
            figure.savefig(path, dpi=110)
            plt.close(figure)
            written.append(path)
    rows, columns = len(maps), len(maps[0])
    figure, grid = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows), squeeze=False)
    for layer, per_head in enumerate(maps):
        for head, weights in enumerate(per_head):
            plot_head(grid[layer][head], weights, text, f"L{layer} H{head}", ticks=False)
    figure.suptitle("attention weights: rows are queries, columns keys (causal: upper triangle empty)")
    figure.tight_layout()
    path = out / "attention_grid.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    written.append(path)
    return written


def generate_text(
    gpt: ModuleType, model: nn.Module, prompt: Tensor, decode: Callable[[list[int]], str], steps: int, seed: int
) -> str:
    try:
        ids = gpt.sample(model.train(False), prompt, steps, temperature=0.8, top_k=10, seed=seed)
    except NotImplementedError as exc:
        return f"(sample is not implemented yet: {exc})"
    return str(decode(ids[0].tolist()))


REPORT = """# Week 06 lab: attention maps of a small GPT

A {layers}-layer, {heads}-head GPT (d_model {d_model}) trained on `{corpus}` for {steps} steps
(batch {batch}, context {length}, seed {seed}): final training loss {train_loss:.3f},
validation loss {val_loss:.3f} nats per character.

Sample sentence ({n} characters): `{sentence}`

![all heads](attention_grid.png)

Mean attention per head (over queries 1..T-1), from `heads.csv`:

{table}

Generated with your `sample` (temperature 0.8, top_k 10), from the sentence's first line:

```
{generated}
```

## Your report (one page)

1. Which heads are **previous-token heads** (a bright line just below the diagonal)? Which attend
   mostly to themselves?
2. Which heads put most of their weight on the **first character**, or on spaces and newlines?
   Why might a head need somewhere "neutral" to put its weight (softmax must sum to 1)?
3. Pick one head whose pattern depends on the *content* (not just the offset). What does it seem
   to look for? Test your guess on a sentence of your own (`--sentence`).
4. How do the layer-0 and layer-1 patterns differ? What could layer 1 compute from layer 0's
   previous-token information (think of an induction head: "the token after the last time I saw
   this one")?
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a plain-text file, e.g. tinyshakespeare.txt")
    parser.add_argument("--out", type=Path, default=Path("build/lab06"), help="folder for the heatmaps and the report")
    parser.add_argument("--impl", type=Path, default=DEFAULT_IMPL, help="the gpt.py to use (default: yours)")
    parser.add_argument("--sentence", default=DEFAULT_SENTENCE, help="the text whose attention maps are drawn")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=96, help="training context in characters")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--n-heads", type=int, default=4)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    text = args.corpus.read_text(encoding="utf-8")
    vocabulary = sorted(set(text))
    index = {c: i for i, c in enumerate(vocabulary)}
    data = torch.tensor([index[c] for c in text])
    split = int(0.9 * len(data))
    sentence = "".join(c for c in args.sentence if c in index)[: args.length]
    if len(sentence) < 2:
        raise SystemExit("the sentence needs at least two characters that occur in the corpus")
    if len(sentence) < len(args.sentence):
        print(f"note: using {sentence!r} (characters missing from the corpus dropped, at most --length)")
    gpt = load_impl(args.impl)
    args.out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed)
    model = gpt.GPT(len(vocabulary), args.length, args.d_model, args.n_heads, args.n_layers)
    gpt2_init(model)
    train_loss = train(
        model, data[:split], steps=args.steps, length=args.length, batch=args.batch, lr=args.lr, seed=args.seed
    )
    val_loss = validation_loss(model, data[split:], args.length)
    print(f"validation loss {val_loss:.3f} nats per character")

    ids = torch.tensor([[index[c] for c in sentence]])
    maps = attention_maps(model, ids)
    written = save_heatmaps(maps, sentence, args.out)
    rows = []
    with (args.out / "heads.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["layer", "head", "previous", "self", "first", "space_or_newline"])
        for layer, per_head in enumerate(maps):
            for head, weights in enumerate(per_head):
                stats = head_statistics(weights, sentence)
                writer.writerow([layer, head, *(f"{v:.3f}" for v in stats.values())])
                rows.append(f"| {layer} | {head} | " + " | ".join(f"{v:.2f}" for v in stats.values()) + " |")
    table = "\n".join(
        ["| layer | head | previous | self | first | space/newline |", "|---|---|---|---|---|---|", *rows]
    )

    prompt_text = sentence.split("\n")[0] + "\n"
    prompt = torch.tensor([[index[c] for c in prompt_text]])
    room = max(0, args.length - prompt.shape[1])
    generated = generate_text(gpt, model, prompt, lambda ids: "".join(vocabulary[i] for i in ids), room, args.seed)
    (args.out / "sample.txt").write_text(generated + "\n")
    (args.out / "report.md").write_text(
        REPORT.format(
            layers=args.n_layers,
            heads=args.n_heads,
            d_model=args.d_model,
            corpus=args.corpus.name,
            steps=args.steps,
            batch=args.batch,
            length=args.length,
            seed=args.seed,
            train_loss=train_loss,
            val_loss=val_loss,
            n=len(sentence),
            sentence=sentence.replace("\n", "\\n"),
            table=table,
            generated=generated,
        )
    )
    print(f"wrote {len(written)} PNGs, heads.csv, sample.txt and report.md into {args.out}")
    if math.isnan(train_loss):
        print("warning: the training loss is NaN")
    return 0


if __name__ == "__main__":
    sys.exit(main())
