"""TensorRT environment: import gate, version eras, engine fingerprints and sidecar checks.

TensorRT is optional and never installed at run time (DESIGN.md §3): :func:`require_tensorrt`
imports it lazily and otherwise says how to install it on *this* platform (JetPack's apt package
on Jetson, the pip wheel on x86). Engines are not portable across GPU model or TensorRT version,
so every engine gets a sidecar with an :func:`engine_fingerprint`, and loading one first runs
:func:`check_engine_sidecar`. Parsers take text, so tests feed sample files.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

from ..errors import BadInputError, UnsupportedEnvironmentError, VerificationError
from ..io_utils import load_json
from .fingerprint import file_sha256, package_version

TEGRA_RELEASE = Path("/etc/nv_tegra_release")
STRONG_TYPING_FROM = (10, 12)  # TensorRT >= 10.12 deprecates weak typing (FP16/INT8 flags, calibrators)
MIN_TENSORRT = (8, 6)  # the named-tensor API (num_io_tensors, set_tensor_address, execute_async_v3)
# Distribution names the Python bindings ship under (pip wheels; JetPack's apt package registers "tensorrt").
TENSORRT_DISTRIBUTIONS = ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11")
# Fields that make an engine non-portable; l4t is compared only when both sides know it.
PORTABILITY_FIELDS = ("gpu_name", "compute_capability", "tensorrt", "device")
KEY_FIELDS = ("gpu_name", "compute_capability", "tensorrt", "cuda", "l4t", "device")


def is_jetson(release_path: Path = TEGRA_RELEASE) -> bool:
    """True on NVIDIA Jetson (Tegra), recognised by its L4T release file."""
    return Path(release_path).is_file()


def tensorrt_remediation(release_path: Path = TEGRA_RELEASE) -> str:
    """How to get TensorRT on this platform (there are no pip wheels for Jetson)."""
    if is_jetson(release_path):
        how = (
            "install JetPack's TensorRT (sudo apt install nvidia-tensorrt / python3-libnvinfer); "
            "pip wheels do not exist for Jetson"
        )
    else:
        how = "pip install tensorrt on a machine with the NVIDIA driver (CUDA 12/13)"
    return f"{how}; or use --format onnx"


TENSORRT_REMEDIATION: str = tensorrt_remediation()


def parse_version(text: str) -> tuple[int, ...]:
    """``"10.12.0.36"`` -> ``(10, 12, 0, 36)``; suffixes such as ``.post1`` or ``+cuda12`` are ignored."""
    match = re.match(r"\s*(\d+(?:\.\d+)*)", str(text or ""))
    if not match:
        raise BadInputError(f"cannot parse TensorRT version {text!r}; expected dotted numbers such as 10.3.0")
    return tuple(int(part) for part in match.group(1).split("."))


def builder_era(version: str) -> str:
    """``"strong"`` (precision baked into the ONNX, strongly typed network) from 10.12, else ``"weak"``."""
    return "strong" if parse_version(version)[:2] >= STRONG_TYPING_FROM else "weak"


def check_supported_version(version: str) -> tuple[int, ...]:
    """Parsed ``version``, or UnsupportedEnvironmentError (exit 5) below :data:`MIN_TENSORRT`."""
    parsed = parse_version(version)
    if parsed[:2] < MIN_TENSORRT:
        minimum = ".".join(map(str, MIN_TENSORRT))
        raise UnsupportedEnvironmentError(
            f"TensorRT {version} is older than {minimum}, the first release with the named-tensor API sdnas uses; "
            f"upgrade TensorRT (Jetson: JetPack >= 6) or use --format onnx"
        )
    return parsed


def tensorrt_version() -> str | None:
    """Installed TensorRT version from package metadata, without importing it (None when absent).

    Falls back to the already-imported module's ``__version__`` (e.g. a system install without metadata).
    """
    for name in TENSORRT_DISTRIBUTIONS:
        version = package_version(name)
        if version:
            return version
    module = sys.modules.get("tensorrt")
    return getattr(module, "__version__", None) if module is not None else None


def require_tensorrt() -> Any:
    """Import and return ``tensorrt``; UnsupportedEnvironmentError (exit 5) when absent, broken or too old."""
    try:
        import tensorrt  # type: ignore[import-not-found]
    except (ImportError, OSError) as exc:  # OSError: a broken install missing libnvinfer
        raise UnsupportedEnvironmentError(
            f"TensorRT is not importable here ({type(exc).__name__}); {tensorrt_remediation()}"
        ) from None
    check_supported_version(getattr(tensorrt, "__version__", "") or tensorrt_version() or "0")
    return tensorrt


def parse_l4t_release(text: str | None) -> str | None:
    """``"# R36 (release), REVISION: 3.0, GCID: ..."`` -> ``"36.3.0"`` (None when unrecognised)."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+(?:\.\d+)*)", text or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


def parse_jetpack_version(text: str | None) -> str | None:
    """``dpkg-query`` output for nvidia-jetpack (``"6.0+b106"``, ``"5.1.2-b104"``) -> ``"6.0"``, ``"5.1.2"``."""
    match = re.match(r"\s*(\d+(?:\.\d+)*)", text or "")
    return match.group(1) if match else None


def l4t_release(release_path: Path = TEGRA_RELEASE) -> str | None:
    """L4T release of this Jetson, or None elsewhere."""
    try:
        return parse_l4t_release(Path(release_path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def jetpack_version(dpkg_query: str = "dpkg-query", timeout_s: float = 5.0) -> str | None:
    """The installed nvidia-jetpack meta-package version, or None (no dpkg, not installed, timeout)."""
    try:
        done = subprocess.run(
            [dpkg_query, "-W", "-f=${Version}", "nvidia-jetpack"],
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_jetpack_version(done.stdout) if done.returncode == 0 else None


def _gpu_identity() -> tuple[str | None, str | None]:
    """(GPU name, ``sm_XY``) of the current CUDA device via torch, or (None, None) without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None, None
    try:
        index = torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        return torch.cuda.get_device_name(index), f"sm_{major}{minor}"
    except Exception:  # driver hiccups: report unknown rather than crash a report
        return None, None


def fingerprint_key(fp: Mapping[str, Any]) -> str:
    """Short hash of the build-environment fields (KEY_FIELDS); precision is not part of it, so
    one timing cache serves every precision built on the same GPU + TensorRT."""
    blob = json.dumps({k: fp.get(k) for k in KEY_FIELDS}, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def engine_fingerprint(precision: str, device: str = "gpu", release_path: Path = TEGRA_RELEASE) -> dict[str, Any]:
    """Where an engine is (or was) built: GPU, compute capability, TensorRT, CUDA, L4T/JetPack, precision, device."""
    import torch

    gpu_name, capability = _gpu_identity()
    jetson = is_jetson(release_path)
    fp: dict[str, Any] = {
        "gpu_name": gpu_name,
        "compute_capability": capability,
        "tensorrt": tensorrt_version(),
        "cuda": torch.version.cuda,
        "l4t": l4t_release(release_path) if jetson else None,
        "jetpack": jetpack_version() if jetson else None,
        "precision": precision,
        "device": device,
    }
    fp["key"] = fingerprint_key(fp)
    return fp


def _same(field: str, recorded: Any, current: Any) -> bool:
    if field == "tensorrt" and recorded and current:
        try:
            a, b = parse_version(str(recorded)), parse_version(str(current))
        except BadInputError:
            return recorded == current
        n = min(len(a), len(b))  # "10.3.0" (metadata) and "10.3.0.30" (module) are the same install
        return a[:n] == b[:n]
    return recorded == current


def _describe(fp: Mapping[str, Any], extra: tuple[str, ...]) -> str:
    text = f"{fp.get('gpu_name') or 'unknown GPU'} ({fp.get('compute_capability') or 'sm_?'}) with TensorRT {fp.get('tensorrt') or '?'}"
    if "device" in extra:
        text += f" on {fp.get('device')}"
    if "l4t" in extra:
        text += f", L4T {fp.get('l4t')}"
    return text


def fingerprint_mismatches(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Names of the portability fields that differ (l4t only when both sides record it)."""
    fields = list(PORTABILITY_FIELDS)
    if recorded.get("l4t") and current.get("l4t"):
        fields.append("l4t")
    return [f for f in fields if not _same(f, recorded.get(f), current.get(f))]


def check_engine_fingerprint(
    recorded: Mapping[str, Any] | None, current: Mapping[str, Any], force: bool = False
) -> list[str]:
    """Refuse (exit 5) an engine built elsewhere; with ``force`` return the problems as warnings instead."""
    if not recorded:
        problem = "engine sidecar has no build fingerprint, so its portability cannot be checked"
        if force:
            return [f"{problem}; running anyway (--force)"]
        raise UnsupportedEnvironmentError(
            f"{problem}: rebuild it here with `sdnas export --format trt`, or pass --force"
        )
    diff = fingerprint_mismatches(recorded, current)
    if not diff:
        return []
    extra = tuple(f for f in diff if f in ("device", "l4t"))
    what = f"engine was built for {_describe(recorded, extra)}; this device is {_describe(current, extra)}"
    if force:
        return [f"{what}: running anyway (--force); it may fail to load or give wrong results"]
    raise UnsupportedEnvironmentError(f"{what}: rebuild it here with `sdnas export --format trt`, or pass --force")


def engine_sidecar_path(engine_path: Path | str) -> Path:
    """``runs/x/model.engine`` -> ``runs/x/model.engine.json``."""
    path = Path(engine_path)
    return path.with_name(path.name + ".json")


def check_engine_sidecar(
    engine_path: Path | str, current: Mapping[str, Any] | None = None, force: bool = False
) -> tuple[dict[str, Any] | None, list[str]]:
    """Load ``engine_path``'s sidecar and check it before the engine is deserialized.

    Missing sidecar -> exit 5 unless ``force``; engine sha256 differing from the sidecar -> VerificationError
    (exit 3) even with ``force`` (the file is not the one that was built and verified); fingerprint mismatch
    -> :func:`check_engine_fingerprint`. ``current`` defaults to this machine's fingerprint for the engine's
    recorded precision and device. Returns ``(sidecar or None, warnings)``.
    """
    engine_path = Path(engine_path)
    side = engine_sidecar_path(engine_path)
    if not side.is_file():
        problem = f"{engine_path}: sidecar {side.name} is missing, so the engine's build device cannot be checked"
        if force:
            return None, [f"{problem}; running anyway (--force)"]
        raise UnsupportedEnvironmentError(
            f"{problem}; rebuild it here with `sdnas export --format trt`, or pass --force"
        )
    sidecar = load_json(side, "engine sidecar")
    if not isinstance(sidecar, dict):
        raise BadInputError(f"{side}: engine sidecar is not a JSON object; re-export with `sdnas export --format trt`")
    recorded_sha = sidecar.get("sha256")
    if recorded_sha and recorded_sha != file_sha256(engine_path):
        raise VerificationError(
            f"{engine_path}: sha256 differs from {side.name}, the file was modified or replaced after it was built; "
            "re-export it with `sdnas export --format trt`"
        )
    recorded = sidecar.get("fingerprint")
    if current is None:
        rec = recorded or {}
        current = engine_fingerprint(str(rec.get("precision") or sidecar.get("precision") or "fp32"),
                                     str(rec.get("device") or "gpu"))
    return sidecar, check_engine_fingerprint(recorded, current, force)
