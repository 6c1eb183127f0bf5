"""What an instrument recorded during a call, as the grader holds it: with the submission's escapes."""

from __future__ import annotations

from typing import Any

from autograder import audit


class RecordedOps(frozenset[str]):
    """The op names a call ran, as the worker's recorder reported them, with the submission's escapes.

    ``escapes`` lists what the grader read in the student's files that the recorder cannot see
    through (``torch.jit``, NumPy, ``getattr`` with a computed name ...): checks built on the
    recording refuse to pass while there are any (``checks.assert_no_forbidden_ops``).
    """

    escapes: tuple[audit.Escape, ...]

    def __new__(cls, ops: Any = (), escapes: tuple[audit.Escape, ...] = ()) -> RecordedOps:
        recorded = super().__new__(cls, ops)
        recorded.escapes = tuple(escapes)
        return recorded


class RecordedShapes(list[tuple[int, ...]]):
    """The tensor shapes a traced call created, with the submission's escapes (see ``RecordedOps``)."""

    def __init__(self, shapes: Any = (), escapes: tuple[audit.Escape, ...] = ()) -> None:
        super().__init__(shapes)
        self.escapes = tuple(escapes)
