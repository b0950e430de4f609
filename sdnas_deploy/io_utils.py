"""Atomic file writes and strict readers for data files (JSON, YAML, safetensors).

Everything the tool writes goes to a temporary file in the same directory and is then renamed,
so an interrupted run never leaves a half-written file. Readers turn every parse failure into a
one-line :class:`BadInputError`; nothing here unpickles.
"""

from __future__ import annotations

import json
import math
import os
import re
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


def remove_stale_temp_files(folder: Path | str) -> int:
    """Delete the ``.NAME.*.tmp`` files a killed atomic write left in ``folder`` (on resume); returns how many."""
    removed = 0
    for tmp in Path(folder).glob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink()
            removed += 1
    return removed


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


MAX_NESTING = 100  # JSON/YAML deeper than this is not a config, a table or an architecture
MAX_EXPANDED_NODES = 100_000  # YAML values once aliases are expanded (a "billion laughs" file has 10^9)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of lists/dicts, without recursion; each shared object walked once; stops past ``limit``."""
    deepest, stack, seen = 0, [(value, 1)], set()
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)) and id(item) not in seen:
            seen.add(id(item))
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def load_json(path: Path | str, what: str = "JSON file") -> Any:
    """Parse a JSON file strictly, raising a one-line BadInputError on any failure."""
    path = require_file(path, what)
    text = _read_text(path, what)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: malformed {what} ({exc.msg} at line {exc.lineno}); fix or re-create the file") from None
    except RecursionError:
        raise BadInputError(f"{path}: {what} is nested more than {MAX_NESTING} levels deep; it is not a file sdnas "
                            "wrote — re-create it") from None
    if _depth(data, MAX_NESTING) > MAX_NESTING:
        raise BadInputError(f"{path}: {what} is nested more than {MAX_NESTING} levels deep; it is not a file sdnas "
                            "wrote — re-create it")
    return data


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """How many nodes the document has once every alias is expanded (memoized per node, no recursion); a node
    that contains itself counts as over the limit."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    active: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = ([v for pair in node.value for v in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        if done:
            active.discard(key)
            sizes[key] = min(limit + 1, 1 + sum(sizes[id(c)] for c in children))
            continue
        if key in sizes:
            continue
        if key in active:
            return limit + 1  # a recursive alias expands forever
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def load_yaml(path: Path | str, what: str = "YAML file") -> Any:
    """Parse a YAML file with the safe loader, raising a one-line BadInputError naming what is wrong."""
    path = require_file(path, what)
    text = _read_text(path, what)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
            raise BadInputError(f"{path}: {what} expands to more than {MAX_EXPANDED_NODES} values through its aliases "
                                "(*name); write the values out")
        data = None if node is None else loader.construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        found = re.search(r"'tag:yaml.org,2002:([^']{1,60})", exc.problem or "")
        tag = f" (!!{found.group(1)})" if found else ""
        raise BadInputError(f"{path}: {what} uses a tag that is not plain YAML{tag}; remove the tag and write plain "
                            "values") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        pos = f" at line {where.line + 1}" if where is not None else ""
        raise BadInputError(f"{path}: malformed {what}{pos}; fix the YAML syntax") from None
    except RecursionError:
        raise BadInputError(f"{path}: {what} is nested more than {MAX_NESTING} levels deep; it is not a recipe") from None
    finally:
        loader.dispose()
    if _depth(data, MAX_NESTING) > MAX_NESTING:
        raise BadInputError(f"{path}: {what} is nested more than {MAX_NESTING} levels deep; it is not a recipe")
    return data
