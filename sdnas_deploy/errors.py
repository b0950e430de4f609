"""Error types that carry a process exit code (DESIGN.md §4).

Library code raises these; the CLI turns them into one line on stderr and the exit code,
never a traceback. Messages name the problem *and* the fix.
"""

from __future__ import annotations


class SdnasError(Exception):
    """Base class: a user-facing failure with an exit code."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInputError(SdnasError):
    """Bad usage or input: missing/corrupt file, malformed JSON/YAML, unknown key, NaN loss (exit 2)."""

    exit_code = 2


class VerificationError(SdnasError):
    """An artifact failed verification, e.g. ONNX Runtime disagrees with PyTorch (exit 3)."""

    exit_code = 3


class GateFailedError(SdnasError):
    """A performance/accuracy gate failed (exit 4)."""

    exit_code = 4


class UnsupportedEnvironmentError(SdnasError):
    """The environment lacks what the command needs, e.g. TensorRT or CUDA (exit 5)."""

    exit_code = 5
