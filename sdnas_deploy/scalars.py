"""Optional TensorBoard scalars (``--tensorboard DIR``): written only when the ``tensorboard`` package is installed.

TensorBoard is never a dependency: asking for it without the package is a one-line error naming the install
command, and without the flag nothing here is imported. Under torchrun only rank 0 writes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from .errors import BadInputError


class Scalars:
    """A TensorBoard ``SummaryWriter`` or nothing: ``add`` drops non-finite and non-numeric values."""

    def __init__(self, log_dir: str | Path | None, enabled: bool = True) -> None:
        self.writer: Any = None
        if log_dir is None or not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise BadInputError("--tensorboard needs the tensorboard package; `pip install tensorboard` "
                                "(or `pip install 'sdnas-deploy[tensorboard]'`), or drop the flag") from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def add(self, values: Mapping[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for tag, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(tag, float(value), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
