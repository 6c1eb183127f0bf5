"""Week 03 lab: which positional encodings let a model read sequences longer than it was trained on?

Trains one tiny character-level causal transformer per encoding on short windows
of a text corpus, then measures validation loss on longer windows. It uses *your*
``positional.py`` (``--impl``), so it also shows your encodings working in a model.

    python weeks/03-positional/lab_extrapolation.py --corpus PATH/TO/tinyshakespeare.txt --out build/lab03

Writes ``loss_vs_length.png``, ``results.csv`` and ``report.md`` into ``--out``.
With the defaults it takes a few minutes on a laptop CPU. It is not auto-graded:
hand in the plot and a short report (see the week's README).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autograder import config, reference

HERE = Path(__file__).resolve().parent
DEFAULT_IMPL = HERE.parent.parent / "assignments" / "03-positional" / "positional.py"
ENCODINGS = ("none", "sinusoidal", "learned", "t5", "rope", "alibi")


def load_impl(path: Path) -> ModuleType:
    """Import a ``positional.py`` from a path (yours, or the reference)."""
    if not path.is_file():
        raise SystemExit(f"cannot import {path}")
    week = config.load(HERE.parent.parent).week("03")
    try:
        return reference.load_student_file(week, path, name="lab_positional")
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


@dataclass
class Config:
    encoding: str
    vocab: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    max_len: int = 512  # the learned table's size: rows past the training length are never trained


class Attention(nn.Module):
    """Causal self-attention that lets each encoding enter where it belongs (q/k rotation or score bias)."""

    def __init__(self, config: Config, pe: ModuleType, shared_bias: nn.Module | None) -> None:
        super().__init__()
        self.config, self.pe, self.shared_bias = config, pe, shared_bias
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        if config.encoding == "alibi":
            self.register_buffer("slopes", pe.alibi_slopes(config.n_heads), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        n_seq, length, width = x.shape
        heads, d_head = self.config.n_heads, width // self.config.n_heads
        q, k, v = (t.view(n_seq, length, heads, d_head).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        encoding = self.config.encoding
        if encoding == "rope":
            cos, sin = self.pe.rope_cos_sin(torch.arange(length, dtype=x.dtype), d_head)
            q, k = self.pe.apply_rope(q, cos, sin), self.pe.apply_rope(k, cos, sin)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d_head)  # (B, H, T, T)
        if encoding == "t5":
            assert self.shared_bias is not None
            scores = scores + self.shared_bias(length, length)
        elif encoding == "alibi":
            scores = scores + self.pe.alibi_bias(self.slopes, length, length)
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        weights = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(n_seq, length, width))


class Block(nn.Module):
    def __init__(self, config: Config, pe: ModuleType, shared_bias: nn.Module | None) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(config.d_model), nn.LayerNorm(config.d_model)
        self.attn = Attention(config, pe, shared_bias)
        self.ff = nn.Sequential(
            nn.Linear(config.d_model, 4 * config.d_model), nn.GELU(), nn.Linear(4 * config.d_model, config.d_model)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ff(self.norm2(x))


class TinyLM(nn.Module):
    """A pre-norm character-level decoder; only the position scheme changes between runs."""

    def __init__(self, config: Config, pe: ModuleType) -> None:
        super().__init__()
        self.config, self.pe = config, pe
        self.embed = nn.Embedding(config.vocab, config.d_model)
        self.positions = (
            pe.LearnedPositionalEmbedding(config.max_len, config.d_model) if config.encoding == "learned" else None
        )
        # T5 shares one bias table across layers; causal, because this is a decoder.
        self.bias = pe.RelativePositionBias(config.n_heads, bidirectional=False) if config.encoding == "t5" else None
        self.stack = nn.ModuleList(Block(config, pe, self.bias) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens)
        if self.config.encoding == "sinusoidal":
            x = x + self.pe.sinusoidal_encoding(torch.arange(tokens.shape[1], dtype=x.dtype), self.config.d_model)
        elif self.positions is not None:
            x = self.positions(x)
        for block in self.stack:
            x = block(x)
        return self.head(self.norm(x))


def batches(data: Tensor, length: int, batch: int, rng: torch.Generator) -> tuple[Tensor, Tensor]:
    starts = torch.randint(len(data) - length - 1, (batch,), generator=rng)
    windows = torch.stack([data[s : s + length + 1] for s in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


def train(model: TinyLM, data: Tensor, *, steps: int, length: int, batch: int, lr: float, seed: int) -> float:
    rng = torch.Generator().manual_seed(seed)  # the order of training windows
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    loss = torch.tensor(float("nan"))
    model.train()
    for _ in range(steps):
        inputs, targets = batches(data, length, batch, rng)
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    return loss.item()


@torch.no_grad()
def evaluate(model: TinyLM, data: Tensor, length: int, tokens: int) -> float:
    """Mean next-character loss (nats) over non-overlapping validation windows of ``length``, about ``tokens`` in all."""
    model.eval()
    windows = min(max(1, tokens // length), (len(data) - 1) // length)
    starts = torch.arange(windows) * length
    inputs = torch.stack([data[s : s + length] for s in starts.tolist()])
    targets = torch.stack([data[s + 1 : s + length + 1] for s in starts.tolist()])
    losses = [
        F.cross_entropy(model(inputs[i : i + 16]).flatten(0, 1), targets[i : i + 16].flatten()).item()
        for i in range(0, windows, 16)
    ]
    return sum(losses) / len(losses)


def plot(results: dict[str, dict[int, float]], train_length: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for encoding, by_length in results.items():
        lengths = sorted(by_length)
        axes.plot(lengths, [by_length[n] for n in lengths], marker="o", label=encoding)
    axes.axvline(train_length, color="grey", linestyle="--", linewidth=1, label="training length")
    axes.set_xscale("log", base=2)
    axes.set_xlabel("evaluation length (characters)")
    axes.set_ylabel("validation loss (nats per character)")
    axes.set_title("Length extrapolation of positional encodings")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


REPORT = """# Week 03 lab: length extrapolation

Trained on windows of {train_length} characters for {steps} steps (batch {batch}, seed {seed});
validation loss in nats per character at each evaluation length. Corpus: `{corpus}`.

{table}

![loss vs length](loss_vs_length.png)

## Your report (half a page)

1. Which encodings keep their loss past the training length, and which break? Why?
2. Why can the learned table not extrapolate? (What are rows {train_length}…{max_len} of it?)
3. How do ALiBi's linear penalty and T5's clamped buckets behave past the training length?
4. What does the `none` run (no positional encoding at all) tell you about the causal mask?
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a plain-text file, e.g. tinyshakespeare.txt")
    parser.add_argument("--out", type=Path, default=Path("build/lab03"), help="folder for the plot and the report")
    parser.add_argument("--impl", type=Path, default=DEFAULT_IMPL, help="the positional.py to use (default: yours)")
    parser.add_argument("--encodings", nargs="+", default=list(ENCODINGS), choices=ENCODINGS)
    parser.add_argument("--train-length", type=int, default=64)
    parser.add_argument("--eval-lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--eval-tokens", type=int, default=32768, help="validation characters per length")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    text = args.corpus.read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text])
    split = int(0.9 * len(data))
    train_data, val_data = data[:split], data[split:]
    pe = load_impl(args.impl)
    args.out.mkdir(parents=True, exist_ok=True)

    results: dict[str, dict[int, float]] = {}
    for encoding in args.encodings:
        torch.manual_seed(args.seed)
        config = Config(encoding, len(chars), d_model=args.d_model, max_len=max(args.eval_lengths))
        model = TinyLM(config, pe)
        started = time.perf_counter()
        final = train(
            model, train_data, steps=args.steps, length=args.train_length, batch=args.batch, lr=args.lr, seed=args.seed
        )
        results[encoding] = {n: evaluate(model, val_data, n, args.eval_tokens) for n in args.eval_lengths}
        losses = "  ".join(f"{n}: {loss:.3f}" for n, loss in results[encoding].items())
        elapsed = time.perf_counter() - started
        print(f"{encoding:>10}  train loss {final:.3f}  val {losses}  ({elapsed:.0f} s)", flush=True)

    with (args.out / "results.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["encoding", *args.eval_lengths])
        for encoding, by_length in results.items():
            writer.writerow([encoding, *(f"{by_length[n]:.4f}" for n in args.eval_lengths)])
    plot(results, args.train_length, args.out / "loss_vs_length.png")
    header = "| encoding | " + " | ".join(str(n) for n in args.eval_lengths) + " |"
    rows = [header, "|---" * (len(args.eval_lengths) + 1) + "|"]
    rows += [
        f"| {encoding} | " + " | ".join(f"{by_length[n]:.3f}" for n in args.eval_lengths) + " |"
        for encoding, by_length in results.items()
    ]
    (args.out / "report.md").write_text(
        REPORT.format(
            train_length=args.train_length,
            steps=args.steps,
            batch=args.batch,
            seed=args.seed,
            corpus=args.corpus.name,
            table="\n".join(rows),
            max_len=max(args.eval_lengths) - 1,
        )
    )
    print(f"wrote {args.out / 'loss_vs_length.png'}, results.csv and report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
