"""Atomic file writes and strict readers for data files (JSON, YAML, safetensors).

Everything the tool writes goes to a temporary file in the same directory and is then renamed,
so an interrupted run never leaves a half-written file. Readers turn every parse failure into a
one-line :class:`BadInputError`; nothing here unpickles.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import BadInputError


def _atomic_write(path: Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` then rename the temp file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        os.chmod(tmp, _plain_file_mode())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _plain_file_mode() -> int:
    """The mode a plain ``open(..., "w")`` would give (mkstemp's 0600 would hide reports from other users)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return _atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    """Replace NaN/inf floats (also inside arrays/tensors) by None so the JSON stays standard."""
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        obj = obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps_json(obj: Any) -> str:
    """Indented, standard JSON (NaN/inf become null; numpy/tensors/paths converted)."""
    return json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False)


def atomic_write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented, standard JSON (no NaN) to ``path`` atomically."""
    return atomic_write_text(path, dumps_json(obj) + "\n")


def atomic_save_safetensors(path: Path, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """Save a flat ``name -> tensor`` dict as safetensors, atomically."""
    from safetensors.torch import save_file

    flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return _atomic_write(path, lambda tmp: save_file(flat, str(tmp), metadata=metadata))


def load_safetensors(path: Path) -> tuple[dict, dict[str, str]]:
    """Load tensors and metadata from a safetensors file, or raise a one-line BadInputError."""
    from safetensors import safe_open

    path = require_file(path, "weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise BadInputError(
            f"{path}: not a readable safetensors file ({type(exc).__name__}); re-create it with `sdnas train` or `sdnas search`"
        ) from None
    return tensors, metadata


def require_file(path: Path | str, what: str = "file") -> Path:
    """Return ``path`` as a Path if it is an existing file, else raise BadInputError."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{what} not found: {path}; check the path")
    if not path.is_file():
        raise BadInputError(f"{what} is not a file: {path}; pass a file path")
    return path


def load_json(path: Path | str, what: str = "JSON file") -> Any:
    """Parse a JSON file strictly, raising a one-line BadInputError on any failure."""
    path = require_file(path, what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = getattr(exc, "msg", str(exc))
        line = getattr(exc, "lineno", "?")
        raise BadInputError(f"{path}: malformed {what} ({msg} at line {line}); fix or re-create the file") from None


def load_yaml(path: Path | str, what: str = "YAML file") -> Any:
    """Parse a YAML file with the safe loader, raising a one-line BadInputError on any failure."""
    path = require_file(path, what)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        pos = f" at line {where.line + 1}" if where is not None else ""
        raise BadInputError(f"{path}: malformed {what}{pos}; fix the YAML syntax") from None
