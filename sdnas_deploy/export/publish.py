"""Putting an export in place so that a good pair is never lost or mixed with another (issue 12).

Every format exports into a private staging folder inside the output folder; only then are its artifact and its
sidecar moved into place, the artifact first and the sidecar last (both renames on one filesystem), so a kill leaves
either the old pair, or the new artifact beside the old sidecar — which `check` names as a pair that does not belong
together (the sidecar records the artifact's sha256). An export that fails verification never replaces a verified
pair: it is published beside it as ``model.failed.onnx`` + ``model.failed.json``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from ..io_utils import atomic_write_json, load_json


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A fresh folder inside ``out_dir`` (same filesystem, so publishing is a rename), removed afterwards."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".export-staging-", dir=out_dir))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _verified(sidecar: Path) -> bool:
    try:
        return sidecar.is_file() and load_json(sidecar, "export sidecar").get("verified") is True
    except Exception:  # a corrupt old sidecar protects nothing
        return False


def failed_name(artifact: Path) -> Path:
    """``model.onnx`` -> ``model.failed.onnx``."""
    return artifact.with_name(f"{artifact.stem}.failed{artifact.suffix}")


def publish(stage: Path, final: Path, sidecar_of: Callable[[Path], Path], passed: bool) -> Path:
    """Move the staged artifact and sidecar to ``final`` (artifact first, sidecar last) and return where the
    artifact went: beside a verified pair as ``*.failed.*`` when this export did not pass."""
    staged, staged_side = stage / final.name, sidecar_of(stage / final.name)
    target = final
    if not passed and _verified(sidecar_of(final)):
        target = failed_name(final)
        if staged_side.is_file():
            data = load_json(staged_side, "export sidecar")
            if isinstance(data, dict):
                data["file"] = target.name
                atomic_write_json(staged_side, data)
    if staged.is_file():
        os.replace(staged, target)
    if staged_side.is_file():
        os.replace(staged_side, sidecar_of(target))
    return target
