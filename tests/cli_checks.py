"""Assertions shared by the CLI tests (imported by name: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from typing import Any


def one_error_line(result: Any, code: int) -> str:
    """The CLI's bad-input contract: exit ``code``, exactly one ``error:`` line on stderr, no traceback."""
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]
