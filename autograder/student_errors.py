"""What can go wrong with a student's call, as exceptions the grading plugin turns into feedback.

``StudentCodeError`` and its kinds fail the test (they subclass ``AssertionError``, so pytest
counts a failure, not an error in the test); ``SandboxFailure`` means the grade cannot stand.
"""

from __future__ import annotations


class SandboxFailure(RuntimeError):
    """The sandbox itself failed (not the student's doing): the grade must not stand."""


class StudentCodeError(AssertionError):
    """Something went wrong in the student's code; the test fails with this message.

    It subclasses AssertionError so pytest counts it as a failure, not an error
    in the test itself.
    """


class StudentException(StudentCodeError):
    """The student's function raised an exception."""


class NotImplementedYet(StudentCodeError):
    """The student's function still raises NotImplementedError (an untouched stub)."""


class StudentTimeout(StudentCodeError):
    """A call ran past its time limit; the worker was killed and will restart."""


class StudentCrash(StudentCodeError):
    """The worker died (os._exit, a signal, the memory limit) or broke the protocol."""


class BadReturnValue(StudentCodeError):
    """The student returned something other than plain tensors and numbers."""
