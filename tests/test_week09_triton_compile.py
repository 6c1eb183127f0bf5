"""Week 09's reference Triton kernel compiles for real GPUs, checked on a machine without one.

The interpreter that grades kernels on a CPU runs any Python the kernel holds: it never
checks what the GPU compiler does (``tl.dot`` tiles of at least 16, dtypes the tensor cores
take, shared memory per block). Triton can compile ahead of time for a named target with
no GPU present (its wheel ships ``ptxas``), so this test compiles the reference kernel down
to a cubin for the A100 (sm_80) and H100 (sm_90) with the launch configurations
``triton_flash_attention`` picks on a GPU, and checks the shared memory each one needs
against the card's limit per block.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytest.importorskip("triton", reason="Triton is not installed (Linux only)")

KERNEL = REPO / "solutions" / "09-efficient" / "flash_triton.py"

# The most dynamic shared memory one block may use, in bytes (CUDA programming guide, compute capabilities).
SHARED_LIMIT = {80: 163 * 1024, 90: 227 * 1024}

# (compute capability, dtype, head size, causal): what the wrapper launches on a GPU for these inputs.
CONFIGS = [
    (90, "fp16", 64, True),
    (90, "bf16", 128, False),
    (90, "fp32", 64, False),
    (80, "fp16", 128, True),
    (80, "fp16", 16, False),
]

SCRIPT = r"""
import importlib.util, json, math, sys
import torch
torch.cuda.is_available = lambda: True  # load the kernel as a compiled JITFunction, not the interpreter's
spec = importlib.util.spec_from_file_location("flash_triton_reference", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

kernel = module._flash_fwd_kernel
capability, dtype, head_dim, causal = json.loads(sys.argv[2])
half = dtype != "fp32"
block_m, block_n = (128, 64) if half else (64, 64)  # the wrapper's GPU tiles
options = {"num_warps": 8 if head_dim > 64 else 4, "num_stages": 3 if half else 2}
constants = {
    "CAUSAL": causal, "UPCAST": not half, "BLOCK_M": block_m, "BLOCK_N": block_n,
    "BLOCK_D": max(16, triton.next_power_of_2(head_dim)),
}
signature = {}
for name in kernel.arg_names:
    if name in constants:
        signature[name] = "constexpr"
    elif name in ("Q", "K", "V", "Out"):
        signature[name] = "*" + dtype
    elif name == "Lse":
        signature[name] = "*fp32"
    elif name == "scale":
        signature[name] = "fp32"
    else:
        signature[name] = "i32"
source = ASTSource(
    fn=kernel,
    signature=signature,
    constexprs={(kernel.arg_names.index(name),): value for name, value in constants.items()},
)
compiled = triton.compile(source, target=GPUTarget("cuda", capability, 32), options=options)
print(json.dumps({"shared": compiled.metadata.shared, "cubin": len(compiled.asm["cubin"]), "ptx": compiled.asm["ptx"]}))
"""


def compile_for(config: tuple[int, str, int, bool], cache: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=cache, TRITON_DEFAULT_FP_FUSION="1")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(KERNEL), json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"sm{c[0]}-{c[1]}-d{c[2]}-{'causal' if c[3] else 'full'}")
def test_reference_kernel_compiles_for_a_gpu(config, tmp_path):
    capability, dtype, _, _ = config
    compiled = compile_for(config, str(tmp_path))
    assert compiled["cubin"] > 0
    assert 0 < compiled["shared"] <= SHARED_LIMIT[capability], f"{compiled['shared']} bytes of shared memory"
    ptx = compiled["ptx"]
    assert f".target sm_{capability}" in ptx
    if dtype != "fp32":  # the tensor cores do the two products: mma instructions on fp16/bf16 tiles
        assert "mma" in ptx
