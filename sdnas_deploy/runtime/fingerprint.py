"""Environment fingerprint: which machine, OS, runtimes and threads produced a measurement.

Latency figures are meaningless without it (DESIGN.md §2: published LUTs do not record the
device/runtime that produced them). Everything here is cheap, pure Python: /proc and /sys reads,
``platform``, package metadata; onnxruntime is imported only to list its providers.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from ..errors import BadInputError
from ..io_utils import require_file

_CPUINFO = Path("/proc/cpuinfo")
_TEGRA_RELEASE = Path("/etc/nv_tegra_release")
_GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
_DT_MODEL = Path("/proc/device-tree/model")

# Fields that identify where a number was measured; the key used to index caches and tables.
KEY_FIELDS: tuple[str, ...] = ("cpu_model", "logical_cores", "machine", "gpu_name", "onnxruntime", "torch", "threads")


def _read_text(path: Path) -> str | None:
    """File contents stripped, or None when unreadable (absent on this OS, permissions)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip().strip("\x00")
    except OSError:
        return None


def cpu_model() -> str:
    """Human CPU name: ``model name`` (x86), ``Hardware``/``Model`` (ARM) or the device-tree model."""
    text = _read_text(_CPUINFO) or ""
    for key in ("model name", "Hardware", "Model", "cpu model"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return _read_text(_DT_MODEL) or platform.processor() or platform.machine() or "unknown"


def package_version(name: str) -> str | None:
    """Installed version of a distribution, without importing it (None when absent)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def ort_providers() -> list[str]:
    """Execution providers ONNX Runtime offers here ([] when it is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def _gpu_name() -> str | None:
    if not torch.cuda.is_available():
        return None
    try:
        return torch.cuda.get_device_name(torch.cuda.current_device())
    except Exception:  # driver hiccups must not break a CPU profile
        return None


def _available_cores() -> int:
    """Cores this process may run on (affinity / cgroup cpuset), falling back to the logical count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def environment_fingerprint(threads: int | None = None) -> dict[str, Any]:
    """A JSON-ready description of this machine and software stack.

    ``threads`` is the intra-op thread count the measurement used (None = runtime default).
    ``warnings`` lists conditions that make timings less trustworthy (e.g. Jetson clocks unlocked).
    """
    from .. import __version__

    tegra = _read_text(_TEGRA_RELEASE)
    governor = _read_text(_GOVERNOR)
    warnings: list[str] = []
    if tegra is not None and governor not in (None, "performance"):
        warnings.append(
            f"Jetson CPU governor is {governor!r}, clocks not locked: run `sudo nvpmodel -m 0 && sudo jetson_clocks`"
        )
    fp: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count() or 1,
        "available_cores": _available_cores(),
        "machine": platform.machine(),
        "os": platform.system(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": package_version("onnx"),
        "onnxruntime": package_version("onnxruntime") or package_version("onnxruntime-gpu"),
        "sdnas_deploy": __version__,
        "ort_providers": ort_providers(),
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "gpu_name": _gpu_name(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "cpu_governor": governor,
        "tegra_release": tegra.splitlines()[0] if tegra else None,
        "warnings": warnings,
    }
    fp["key"] = fingerprint_key(fp)
    return fp


def fingerprint_key(fp: dict[str, Any]) -> str:
    """Short stable hash of the identifying fields (KEY_FIELDS): equal keys mean comparable timings."""
    subset = {k: fp.get(k) for k in KEY_FIELDS}
    blob = json.dumps(subset, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def require_sha256(path: Path | str, expected: str | None) -> None:
    """``--expect-sha256``: the artifact is the one the user built (a sidecar's own sha256 is as untrusted as the
    file it describes). Mismatch → VerificationError (exit 3); a malformed digest → BadInputError."""
    if expected is None:
        return
    text = expected.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise BadInputError(f"--expect-sha256 {expected[:70]!r}: give the 64 hex digits of the file's SHA-256 "
                            "(`sha256sum FILE`)")
    actual = file_sha256(path)
    if actual != text:
        from ..errors import VerificationError

        raise VerificationError(f"{path}: sha256 is {actual[:12]}…, not the expected {text[:12]}…; this is not the "
                                "artifact you built — rebuild or copy it again")


def file_sha256(path: Path | str) -> str:
    """SHA-256 of a file, streamed (identity of an artifact in sidecars and reports)."""
    path = require_file(path, "model file")
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read file ({exc.strerror}); check permissions") from None
    return digest.hexdigest()

