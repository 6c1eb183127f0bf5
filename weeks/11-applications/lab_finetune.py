"""Week 11 lab: does pretraining help? Fine-tune a character-level GPT the course trains itself.

No weights are downloaded: the "pretrained" model is a small character-level GPT (week 06's
``GPT``) pretrained here for a short, seeded run on the corpus (``--corpus``) with week 10's
``causal_lm_loss``, and cached in ``OUT/pretrained.pt`` (a later run with the same settings
loads it; the file is never committed). Then, with *your* ``applications.py`` (``--impl``):

1. two synthetic classification tasks built from the corpus, each fine-tuned from the
   pretrained weights and trained from scratch with the same steps, data and seed, through
   your ``GPTForSequenceClassification`` (last-real-token pooling, right padding) and your
   ``layerwise_lr_groups``:

   * **sentiment**: a window of corpus words with one sentiment word put in at a random place
     (``good, sweet, fair, noble, gentle, happy, kind`` vs ``foul, vile, false, cruel, wicked,
     base, sad``); the label is the word's polarity.
   * **scrambled**: a window of corpus text, or the same window with the letters inside each
     word shuffled; the label says which. Only a model that knows the language can tell.

2. the pretrained model's layer x head grid of previous-token and induction scores (your
   ``head_scores``) on repeated random characters, and the loss increase when each head is
   ablated (your ``head_ablation_loss``) on held-out corpus text.

Writes into ``--out``: ``accuracy_vs_steps.png``, ``head_scores.png``, ``metrics.json`` and
``report.md`` (the numbers). The handout shows the reference run's plots and numbers.

    python weeks/11-applications/lab_finetune.py --corpus ../shared/data/tinyshakespeare.txt --out build/lab11
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from autograder import config, reference

HERE = Path(__file__).resolve().parent
DEFAULT_IMPL = HERE.parent.parent / "assignments" / "11-applications" / "applications.py"
POSITIVE = ["good", "sweet", "fair", "noble", "gentle", "happy", "kind"]
NEGATIVE = ["foul", "vile", "false", "cruel", "wicked", "base", "sad"]


@dataclass
class Settings:
    """Sizes and steps; ``--quick`` shrinks every one of them (the lab's test)."""

    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    context: int = 48
    pretrain_steps: int = 800
    pretrain_batch: int = 32
    pretrain_lr: float = 2e-3
    finetune_steps: int = 300
    finetune_batch: int = 32
    finetune_lr: float = 1e-3
    lr_decay: float = 0.8
    eval_every: int = 25
    train_examples: int = 2000
    test_examples: int = 500
    seed: int = 0


QUICK = Settings(d_model=16, n_heads=2, n_layers=2, context=24, pretrain_steps=5, pretrain_batch=8, finetune_steps=4,
                 finetune_batch=8, eval_every=2, train_examples=40, test_examples=20)  # fmt: skip


def load_impl(path: Path) -> ModuleType:
    """Import an ``applications.py`` with the earlier weeks' modules it imports (beside it, else the reference)."""
    if not path.is_file():
        raise SystemExit(f"cannot import {path}")
    week = config.load(HERE.parent.parent).week("11")
    try:
        return reference.load_student_file(week, path, name="lab_applications")
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


# -- data ---------------------------------------------------------------------------------


def encode(text: str, vocab: dict[str, int]) -> list[int]:
    return [vocab.get(ch, 0) for ch in text]


def gpt2_init(model: torch.nn.Module, n_layers: int) -> None:
    """GPT-2's initialisation (as week 10's lab): N(0, 0.02^2), residual projections 0.02 / sqrt(2 L), biases 0, norms 1."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                parameter.zero_()
            elif name.endswith(("out_proj.weight", "fc2.weight")):
                parameter.normal_(0.0, 0.02 / (2 * n_layers) ** 0.5)
            else:
                parameter.normal_(0.0, 0.02)


def pretrain(app: ModuleType, text: str, vocab: dict[str, int], s: Settings, cache: Path) -> torch.nn.Module:
    """A seeded causal-LM pretraining run of ``app.GPT``, cached in ``cache``."""
    torch.manual_seed(s.seed)
    model = app.GPT(len(vocab), s.context, s.d_model, s.n_heads, s.n_layers)
    gpt2_init(model, s.n_layers)
    key = {"settings": asdict(s), "vocab": "".join(vocab)}
    if cache.is_file():
        saved = torch.load(cache, weights_only=True)
        if saved.get("key") == json.dumps(key, sort_keys=True):
            model.load_state_dict(saved["model"])
            print(f"loaded the pretrained model from {cache}")
            return model.eval()
    data = torch.tensor(encode(text[: int(0.9 * len(text))], vocab))
    generator = torch.Generator().manual_seed(s.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=s.pretrain_lr, weight_decay=0.1)
    model.train()
    start = time.time()
    for step in range(s.pretrain_steps):
        lr = s.pretrain_lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * (1 - step / s.pretrain_steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        offsets = torch.randint(len(data) - s.context, (s.pretrain_batch,), generator=generator)
        batch = torch.stack([data[o : o + s.context] for o in offsets.tolist()])
        loss = app.causal_lm_loss(model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 250 == 0 or step == s.pretrain_steps - 1:
            print(f"pretraining step {step:5d}  loss {loss.item():.3f}  ({time.time() - start:.0f} s)", flush=True)
    model.eval()
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"key": json.dumps(key, sort_keys=True), "model": model.state_dict()}, cache)
    return model


def sentiment_example(words: list[str], rng: random.Random) -> tuple[str, int]:
    label = rng.randrange(2)
    word = rng.choice(POSITIVE if label else NEGATIVE)
    start = rng.randrange(len(words) - 8)
    window = words[start : start + rng.randint(4, 7)]
    window.insert(rng.randrange(len(window) + 1), word)
    return " ".join(window), label


def scrambled_example(words: list[str], rng: random.Random) -> tuple[str, int]:
    label = rng.randrange(2)
    start = rng.randrange(len(words) - 8)
    window = words[start : start + 7]
    if label:
        shuffled = []
        for word in window:
            letters = list(word)
            rng.shuffle(letters)
            shuffled.append("".join(letters))
        window = shuffled
    return " ".join(window), label


def make_task(name: str, words: list[str], n: int, seed: int, vocab: dict[str, int], context: int):
    rng = random.Random(f"{name}-{seed}")
    make = sentiment_example if name == "sentiment" else scrambled_example
    texts, labels = zip(*(make(words, rng) for _ in range(n)), strict=True)
    ids = torch.zeros(n, context, dtype=torch.long)
    mask = torch.zeros(n, context, dtype=torch.long)
    for i, text in enumerate(texts):
        row = encode(text, vocab)[:context]
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1  # right padding: the classifier pools the last real character
    return ids, mask, torch.tensor(labels)


# -- fine-tuning ----------------------------------------------------------------------------


def accuracy(model: torch.nn.Module, data: tuple[Tensor, Tensor, Tensor]) -> float:
    ids, mask, labels = data
    model.eval()
    with torch.no_grad():
        logits, _ = model(ids, mask)
    model.train()
    return float((logits.argmax(-1) == labels).double().mean())


def finetune(app: ModuleType, pretrained: torch.nn.Module | None, vocab_size: int, train, test, s: Settings):
    """Accuracy on ``test`` every ``eval_every`` steps: ``[(step, accuracy), ...]``."""
    torch.manual_seed(s.seed + 1)
    model = app.GPTForSequenceClassification(2, vocab_size, s.context, s.d_model, s.n_heads, s.n_layers)
    gpt2_init(model, s.n_layers)
    if pretrained is not None:
        model.gpt.load_state_dict(pretrained.state_dict())
    app.freeze(model, "full", backbone="gpt")
    groups = app.layerwise_lr_groups(model, s.finetune_lr, s.lr_decay if pretrained is not None else 1.0, 0.01, "gpt")
    optimizer = torch.optim.AdamW(groups)
    generator = torch.Generator().manual_seed(s.seed + 2)
    ids, mask, labels = train
    curve = [(0, accuracy(model, test))]
    model.train()
    for step in range(1, s.finetune_steps + 1):
        index = torch.randint(len(labels), (s.finetune_batch,), generator=generator)
        _, loss = model(ids[index], mask[index], labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % s.eval_every == 0:
            curve.append((step, accuracy(model, test)))
    return curve


def plot_curves(curves: dict[str, dict[str, list[tuple[int, float]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6))
    for ax, (task, runs) in zip(axes, curves.items(), strict=True):
        for run, style in (("pretrained", "-"), ("scratch", "--")):
            steps, accs = zip(*runs[run], strict=True)
            ax.plot(steps, accs, style, label=run)
        ax.axhline(0.5, color="grey", lw=0.8)
        ax.set_title(task)
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel("held-out accuracy")
        ax.set_ylim(0.3, 1.02)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_heads(grids: dict[str, Tensor], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(grids), figsize=(3.6 * len(grids), 3.2))
    for ax, (name, grid) in zip(axes, grids.items(), strict=True):
        image = ax.imshow(grid.numpy(), cmap="viridis", vmin=0.0)
        for (layer, head), value in zip(
            ((i, j) for i in range(grid.shape[0]) for j in range(grid.shape[1])), grid.flatten().tolist(), strict=True
        ):
            ax.text(head, layer, f"{value:.2f}", ha="center", va="center", color="w", fontsize=8)
        ax.set_title(name)
        ax.set_xticks(range(grid.shape[1]))
        ax.set_yticks(range(grid.shape[0]))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a plain-text file")
    parser.add_argument("--out", type=Path, default=Path("build/lab11"))
    parser.add_argument("--impl", type=Path, default=DEFAULT_IMPL, help="your applications.py")
    parser.add_argument("--quick", action="store_true", help="tiny settings (seconds): for the lab's test")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the handout's numbers exactly)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    s = QUICK if args.quick else Settings()
    app = load_impl(args.impl)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    text = args.corpus.read_text()
    vocab = {ch: i for i, ch in enumerate(sorted(set(text)))}
    pretrained = pretrain(app, text, vocab, s, args.out / "pretrained.pt")
    pretrain_done = time.time()
    words = text[int(0.9 * len(text)) :].split()  # the held-out 10 %: text the pretraining never saw
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for task in ("sentiment", "scrambled"):
        train = make_task(task, words, s.train_examples, s.seed, vocab, s.context)
        test = make_task(task, words, s.test_examples, s.seed + 100, vocab, s.context)
        curves[task] = {
            "pretrained": finetune(app, pretrained, len(vocab), train, test, s),
            "scratch": finetune(app, None, len(vocab), train, test, s),
        }
        final = {run: curve[-1][1] for run, curve in curves[task].items()}
        print(f"{task}: pretrained {final['pretrained']:.3f}, from scratch {final['scratch']:.3f}", flush=True)
    plot_curves(curves, args.out / "accuracy_vs_steps.png")
    period = min(20, s.context // 2)
    grids = app.head_scores(pretrained, len(vocab), period=period, batch=16, seed=s.seed)
    held_out = torch.tensor(encode(text[-(8 * s.context) :], vocab)).view(8, s.context)
    ablation = torch.tensor(
        [[app.head_ablation_loss(pretrained, held_out, layer, head) for head in range(s.n_heads)]
         for layer in range(s.n_layers)]
    )  # fmt: skip
    plot_heads(
        {
            "previous-token score": grids["previous_token"],
            "induction score": grids["induction"],
            "ablation: loss increase": ablation,
        },
        args.out / "head_scores.png",
    )
    metrics: dict[str, Any] = {
        "settings": asdict(s),
        "pretrain_seconds": round(pretrain_done - started, 1),
        "total_seconds": round(time.time() - started, 1),
        "final_accuracy": {task: {run: c[-1][1] for run, c in runs.items()} for task, runs in curves.items()},
        "curves": curves,
        "previous_token": grids["previous_token"].tolist(),
        "induction": grids["induction"].tolist(),
        "entropy": grids["entropy"].tolist(),
        "ablation": ablation.tolist(),
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    lines = [
        "# Week 11 lab: pretrained vs from scratch",
        "",
        f"Pretraining: {s.pretrain_steps} steps ({metrics['pretrain_seconds']} s, cached); "
        f"fine-tuning: {s.finetune_steps} steps, batch {s.finetune_batch}; total {metrics['total_seconds']} s.",
        "",
        "| task | pretrained | from scratch |",
        "|---|---|---|",
    ]
    for task, runs in metrics["final_accuracy"].items():
        lines.append(f"| {task} | {runs['pretrained']:.3f} | {runs['scratch']:.3f} |")
    best_prev = max((v, i, j) for i, row in enumerate(metrics["previous_token"]) for j, v in enumerate(row))
    best_ind = max((v, i, j) for i, row in enumerate(metrics["induction"]) for j, v in enumerate(row))
    lines += [
        "",
        f"Strongest previous-token head: layer {best_prev[1]} head {best_prev[2]} ({best_prev[0]:.2f}); "
        f"strongest induction head: layer {best_ind[1]} head {best_ind[2]} ({best_ind[0]:.2f}); "
        f"uniform attention over {2 * period} keys would score about {1 / (2 * period):.3f}.",
    ]
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
