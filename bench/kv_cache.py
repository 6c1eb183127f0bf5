"""Week 08 benchmark: generation with and without a KV cache, and the cache's memory.

Greedy generation of ``--new-tokens`` tokens (default 256) from a ``--prompt``-token prompt
(default 32) with a small GPT (default 4 layers, width 128, 4 heads, random weights):

* ``uncached``: every step runs the model on the whole sequence so far (week 06's ``greedy``),
* ``cached``: ``generate_cached`` (a prefill, then one token per step against the cache),

timed on the CPU and, when one is available, on a CUDA GPU; it prints seconds, tokens per
second and the speed-up of cached over uncached, and checks both give the same tokens.
Then the cache's memory for the same model and length with multi-head (``Hkv = H``),
grouped-query (2 groups) and multi-query (``Hkv = 1``) attention, measured from a real
cache and from ``cache_bytes_per_token``.

    python bench/kv_cache.py                           # the reference solution
    python bench/kv_cache.py --impl DIR                # another kvcache.py (e.g. assignments/08-kvcache)

The ``gpt.py``, ``block.py`` and ``multihead.py`` that ``kvcache.py`` imports are found as
``course check`` finds them: beside it, then in the earlier weeks' folders next to ``DIR``
(``assignments/06-gpt2/`` ...), else the reference.
    python bench/kv_cache.py --new-tokens 16 --layers 1 --d-model 32   # a quick run
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from autograder import config, reference

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMPL = ROOT / "solutions" / "08-kvcache"


def load(path: Path, name: str) -> ModuleType:
    """Import ``kvcache.py`` from ``path`` with the earlier weeks' modules it imports (yours where found)."""
    if not path.is_file():
        raise SystemExit(f"cannot import {path}")
    week = config.load(ROOT).week("08")
    try:
        return reference.load_student_file(week, path, name=name)
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


@torch.no_grad()
def uncached_greedy(model: torch.nn.Module, input_ids: Tensor, max_new_tokens: int) -> Tensor:
    """Week 06's greedy decoding: the whole sequence through the model at every step."""
    ids = input_ids
    for _ in range(max_new_tokens):
        chosen = model(ids)[:, -1, :].argmax(dim=-1, keepdim=True)
        ids = torch.cat([ids, chosen], dim=1)
    return ids


def timed(fn: Callable[[int], Tensor], new_tokens: int, device: torch.device) -> tuple[float, Tensor]:
    fn(min(new_tokens, 4))  # a short warm-up (kernels, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn(new_tokens)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def make_model(kv: ModuleType, args: argparse.Namespace, n_kv_heads: int | None) -> torch.nn.Module:
    torch.manual_seed(0)
    model = kv.GPT(
        args.vocab,
        args.prompt + args.new_tokens,
        args.d_model,
        args.heads,
        args.layers,
        n_kv_heads=n_kv_heads,
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.02)  # GPT-2's initialisation
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", type=Path, default=DEFAULT_IMPL, help="folder holding kvcache.py")
    parser.add_argument("--prompt", type=int, default=32, help="prompt length")
    parser.add_argument("--new-tokens", type=int, default=256, help="tokens to generate")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--devices", nargs="*", default=None, help="default: cpu, and cuda when available")
    args = parser.parse_args(argv)
    kv = load(args.impl / "kvcache.py", "kvcache_for_bench")
    devices = args.devices or ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    total = args.prompt + args.new_tokens
    print(
        f"GPT: {args.layers} layers, d_model {args.d_model}, {args.heads} heads, vocab {args.vocab}; "
        f"batch {args.batch}, prompt {args.prompt}, {args.new_tokens} new tokens (greedy)"
    )
    print(f"{'device':<8}{'method':<10}{'seconds':>10}{'tokens/s':>12}{'speed-up':>10}")
    for name in devices:
        device = torch.device(name)
        model = make_model(kv, args, None).to(device)
        prompt = torch.randint(args.vocab, (args.batch, args.prompt), generator=torch.Generator().manual_seed(1))
        prompt = prompt.to(device)
        plain_s, plain = timed(functools.partial(uncached_greedy, model, prompt), args.new_tokens, device)
        cached_s, cached = timed(functools.partial(kv.generate_cached, model, prompt), args.new_tokens, device)
        if not torch.equal(plain, cached):
            print(f"warning: cached and uncached tokens differ on {name}")
        tokens = args.batch * args.new_tokens
        print(f"{name:<8}{'uncached':<10}{plain_s:>10.3f}{tokens / plain_s:>12.1f}{1.0:>10.2f}")
        print(f"{name:<8}{'cached':<10}{cached_s:>10.3f}{tokens / cached_s:>12.1f}{plain_s / cached_s:>10.2f}")
    print(f"\nKV cache for batch {args.batch} x {total} tokens, float32:")
    print(f"{'attention':<12}{'Hkv':>5}{'bytes/token':>13}{'cache bytes':>14}{'measured':>12}{'vs MHA':>8}")
    head_options = [("MHA", args.heads), ("GQA-2", 2), ("MQA", 1)]
    mha_bytes = 0
    for label, n_kv in head_options:
        model = make_model(kv, args, n_kv)
        per_token = kv.cache_bytes_per_token(model)
        ids = torch.randint(args.vocab, (args.batch, total), generator=torch.Generator().manual_seed(2))
        _, cache = kv.prefill(model, ids)
        measured = cache.bytes()
        mha_bytes = mha_bytes or measured
        print(
            f"{label:<12}{n_kv:>5}{per_token:>13}{per_token * total * args.batch:>14}{measured:>12}"
            f"{measured / mha_bytes:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
