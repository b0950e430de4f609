"""Training checkpoints: atomic save, safe load (``torch.load(weights_only=True)``, never unpickling code).

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (model/optimizer state,
RNG states, epoch counters). Loading a corrupt or foreign file raises a one-line BadInputError.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import BadInputError
from .io_utils import atomic_write_bytes, require_file


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Serialize ``state`` to ``path`` atomically (temp file + rename)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; refuse anything else with a clear message."""
    path = require_file(path, "checkpoint")
    try:
        state = torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as exc:
        raise BadInputError(
            f"{path}: corrupt or unsafe checkpoint ({type(exc).__name__}); delete it and restart without --resume"
        ) from None
    if not isinstance(state, dict):
        raise BadInputError(f"{path}: not an sdnas checkpoint (top level is {type(state).__name__}); delete it")
    return state


def load_run_checkpoint(out_dir: Path, fmt: str, what: str) -> dict[str, Any]:
    """``out_dir/checkpoint.pt`` of a run of kind ``fmt`` (a ``format`` field), for ``--resume``; a missing file or
    another kind of checkpoint → one line telling to start without --resume."""
    path = Path(out_dir) / "checkpoint.pt"
    if not path.is_file():
        raise BadInputError(f"{out_dir}: no checkpoint.pt to resume from; start again without --resume")
    state = load_checkpoint(path)  # CPU: RNG states must stay CPU tensors; load_state_dict moves the rest
    if state.get("format") != fmt:
        raise BadInputError(f"{path}: not a {what} checkpoint ({state.get('format')!r}); start without --resume")
    return state


def rng_state() -> dict[str, Any]:
    """Capture Python, NumPy and torch RNG states so a resumed run continues exactly."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_gauss": [int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`rng_state`."""
    random.setstate((3, tuple(int(v) for v in state["python"]), state["python_pos"]))
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    has_gauss, cached = state.get("numpy_gauss", [0, 0.0])
    np.random.set_state(("MT19937", keys, int(state["numpy_pos"]), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch for a deterministic run."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
