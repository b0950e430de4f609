"""One capturing TensorRT logger per process, shared by the engine builder (export) and the runtime."""

from __future__ import annotations

from typing import Any


class LogBuffer:
    """TensorRT log lines kept in memory, so a failed build can report its last error in one line."""

    def __init__(self, limit: int = 500) -> None:
        self.lines: list[tuple[str, str]] = []
        self.limit = limit
        self._dropped = 0

    def add(self, severity: str, message: str) -> None:
        self.lines.append((severity, " ".join(str(message).split())))
        if len(self.lines) > self.limit:
            del self.lines[0]
            self._dropped += 1

    def mark(self) -> int:
        """Position to read errors from (the logger is shared by every builder in the process)."""
        return self._dropped + len(self.lines)

    def last_error(self, since: int = 0) -> str | None:
        """The most recent ERROR / INTERNAL_ERROR message logged after ``since``."""
        start = max(0, since - self._dropped)
        for severity, message in reversed(self.lines[start:]):
            if severity in ("ERROR", "INTERNAL_ERROR"):
                return message
        return None


_LOGGERS: dict[int, Any] = {}


def get_logger(trt: Any) -> Any:
    """One capturing ``trt.ILogger`` per process: TensorRT keeps the first logger it was given, so a
    fresh logger per build would silently receive nothing. Messages at WARNING or worse are kept in
    ``logger.buffer`` and errors are echoed to stderr."""
    if id(trt) in _LOGGERS:
        return _LOGGERS[id(trt)]
    severity = trt.ILogger.Severity
    keep = {severity.INTERNAL_ERROR, severity.ERROR, severity.WARNING}

    class _CapturingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)  # pybind base classes must be initialised explicitly
            self.buffer = LogBuffer()

        def log(self, sev: Any, msg: str) -> None:
            if sev in keep:
                self.buffer.add(getattr(sev, "name", str(sev)).upper(), msg)

    _LOGGERS[id(trt)] = _CapturingLogger()
    return _LOGGERS[id(trt)]
