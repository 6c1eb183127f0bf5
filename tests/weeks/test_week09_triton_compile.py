"""Week 09's reference Triton kernel compiles for real GPUs, checked on a machine without one.

The interpreter that grades kernels on a CPU runs any Python the kernel holds: it never
checks what the GPU compiler does (``tl.dot`` tiles of at least 16, dtypes the tensor cores
take, shared memory per block). Triton can compile ahead of time for a named target with
no GPU present (its wheel ships ``ptxas``), so this test compiles the reference kernel down
to a cubin for the A100 (sm_80) and H100 (sm_90) with the launch configurations
``triton_flash_attention`` picks on a GPU, through ``autograder/sandboxed/triton_aot.py`` (what the
grader runs for students' kernels: the wrapper records its launches in the sandbox, then the
grader compiles them from the kernels cut out of the file), and checks the shared memory each one
needs against the card's limit per block.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from autograder import config, kernel_source, sandbox, validate
from autograder.kernel_source import SHARED_MEMORY_PER_BLOCK
from tests.helpers import REPO

pytest.importorskip("triton", reason="Triton is not installed (Linux only)")

KERNEL = REPO / "solutions" / "09-efficient" / "flash_triton.py"

# The most dynamic shared memory one block may use, in bytes (CUDA programming guide, compute capabilities).

# (compute capability, dtype, head size, causal): what the wrapper launches on a GPU for these inputs.
CONFIGS = [
    (90, "fp16", 64, True),
    (90, "bf16", 128, False),
    (90, "fp32", 64, False),
    (80, "fp16", 128, True),
    (80, "fp16", 16, False),
]

AOT = REPO / "autograder" / "sandboxed" / "triton_aot.py"  # what the grader runs in the sandbox for the same check
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def compile_for(config: tuple[int, str, int, bool], folder: Path, kernel: Path = KERNEL) -> dict[str, Any]:
    capability, dtype, head_dim, causal = config
    q, k, v = (torch.randn(1, 2, 256, head_dim).to(DTYPES[dtype]) for _ in range(3))
    torch.save(((q, k, v, causal), {}), folder / "args.pt")
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=str(folder / "cache"), TRITON_DEFAULT_FP_FUSION="1")
    command = [
        sys.executable,
        str(AOT),
        str(kernel),
        "triton_flash_attention",
        str(folder / "args.pt"),
        str(capability),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    recorded: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    if not recorded["ok"]:
        return recorded
    # The grader's half: compile the recorded launches from the kernels cut out of the file.
    info = sandbox.SandboxInfo("process", "a test")
    return kernel_source.compile_from_source(
        kernel.read_bytes(), "flash_triton", recorded["launches"], capability, timeout_s=300, info=info, hidden=[]
    )


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"sm{c[0]}-{c[1]}-d{c[2]}-{'causal' if c[3] else 'full'}")
def test_reference_kernel_compiles_for_a_gpu(config, tmp_path):
    capability, dtype, _, _ = config
    report = compile_for(config, tmp_path)
    assert report["ok"], report
    (kernel,) = report["kernels"]
    assert kernel["name"] == "_flash_fwd_kernel"
    assert kernel["target"] == f"sm_{capability}"
    assert 0 < kernel["shared"] <= SHARED_MEMORY_PER_BLOCK[capability], f"{kernel['shared']} bytes of shared memory"
    if dtype != "fp32":  # the tensor cores do the two products: mma instructions on fp16/bf16 tiles
        assert kernel["mma"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mutant", "stage", "message"),
    [
        ("triton_dot_mixed_dtypes", "compile", "Both operands must be same dtype"),
        ("triton_tiles_overflow_shared_memory", None, None),
    ],
)
def test_kernels_the_interpreter_accepts_but_a_gpu_does_not(mutant, stage, message, tmp_path):
    """The two week-09 mutants that pass every interpreter test: one does not compile, one needs 288 KB."""
    week = config.load(REPO).week("09")
    folder = validate.build_mutant(week, week.mutants_dir / f"{mutant}.py", tmp_path / "submission")
    report = compile_for((90, "fp16", 64, True), tmp_path, folder / "flash_triton.py")
    if stage is None:
        assert report["ok"], report
        assert report["kernels"][0]["shared"] > SHARED_MEMORY_PER_BLOCK[90]
    else:
        assert not report["ok"]
        assert report["stage"] == stage
        assert message in report["error"]


FORGER = """
import sys

import torch


def triton_flash_attention(q, k, v, causal=False):
    return torch.zeros_like(q)  # no Triton kernel anywhere in this file


REPORT = {"ok": True, "kernels": [{"name": "_flash_fwd_kernel", "target": "sm_90", "shared": 65536, "mma": True}]}
REPORT.update(LAUNCHES)
for _module in list(sys.modules.values()):
    _worker = vars(_module).get("Worker") if hasattr(_module, "__dict__") else None
    if isinstance(_worker, type) and hasattr(_worker, "_gpu_compile"):
        _worker._gpu_compile = lambda self, *args, **kwargs: dict(REPORT)
"""
FAKE_LAUNCH = '{"name": "flash_triton._flash_fwd_kernel", "signature": {}, "constant_keys": [], "constant_vals": []}'


@pytest.mark.parametrize("launches", ["{}", "{'launches': [" + repr(FAKE_LAUNCH) + "]}"], ids=["none", "made-up"])
def test_a_forged_compile_report_earns_nothing(tmp_path, launches):
    """The worker's report is replaced from the student's module; the grader compiles from source and finds no kernel."""
    from autograder.proxy import StudentModule
    from autograder.student_process import StudentProcess

    week = config.load().week("09")
    (tmp_path / "flash_triton.py").write_text(FORGER.replace("LAUNCHES", launches))
    process = StudentProcess(tmp_path, ["flash_triton.py"], week.limits)
    try:
        q = torch.randn(1, 2, 256, 64, dtype=torch.float16)
        report = StudentModule(process, "flash_triton").triton_flash_attention.compile_for_gpu(90, q, q, q, True)
    finally:
        process.close()
    assert report["ok"] is False, report
    assert report["stage"] == "none", report
