"""Week 10's hidden tests, one file a section of the handout (training: objectives, schedules, clipping, mixed precision, checkpointing, MoE, the lab).

Expected values come from the reference solution (``reference``) run here, in the trusted
grader, with the same weights loaded into the student's modules by name;
``tests/test_week10_reference.py`` checks that reference against ``F.cross_entropy``,
``GPT2LMHeadModel`` and ``BertForMaskedLM`` losses, ``transformers``' cosine and inverse-sqrt
schedules, ``clip_grad_norm_``, ``torch.amp.GradScaler``, ``torch.optim.AdamW`` with
nanoGPT's parameter groups, Mixtral's sparse MoE block, Switch Transformer's
load-balancing loss and a dense float64 computation of the routing.

Clipping and loss-scaling tests build a small ``nn.Sequential`` in the student's process from
``torch.nn`` (the ``nn`` their file imports), so they do not depend on the GPT. The student's
``GPT`` subclasses week 06's (the reference ``gpt`` module when graded) and overrides its
``run_blocks``; an old single-file submission with its own copy of week 06 grades the same.
Mixed-precision results are compared with float32 at tolerances stated beside each test.
The lab's artefacts (``report.md``, ``loss_curve.png``, ``train_log.csv``, ``checkpoint.pt``)
are read with ``handed_in`` and never executed, and their points come from evidence the grader
produces: the checkpoint is read here as plain tensors into the reference's own ``GPT`` (the
student's ``load_checkpoint`` has its own round-trip test) and its held-out loss measured here,
the log must agree with that measurement, the plot is decoded, and a short seeded training run
of the student's own code must follow the reference's. The report is graded by a person
(``manual:`` in course.yml); its test here checks only its form.
"""

from __future__ import annotations

import pytest

from autograder.testing import forbidden as forbidden_ops

WEEK = "10-training"


@pytest.fixture
def forbidden() -> list[str]:
    """The ops this week's code may not call (course.yml's ``forbidden:`` for the week, with what it inherits)."""
    return forbidden_ops(WEEK)
