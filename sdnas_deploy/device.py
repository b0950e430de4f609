"""Device selection and mixed-precision policy for search/train (``--device auto|cpu|cuda[:N]``)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch

from .errors import BadInputError, UnsupportedEnvironmentError


@dataclass(frozen=True)
class DevicePolicy:
    """Where to run and how: AMP dtype (None = fp32) and memory format."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for the forward pass (a no-op on CPU/fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def describe(self) -> str:
        amp = str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off"
        return f"{self.device} (amp={amp}, channels_last={self.channels_last})"


def resolve_device(spec: str = "auto") -> torch.device:
    """Parse ``auto|cpu|cuda|cuda:N``; raise exit-5 error when CUDA is asked for but absent."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UnsupportedEnvironmentError(
                f"--device {spec}: CUDA is not available on this machine; use --device cpu or auto"
            )
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BadInputError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s); pick a valid index")
        return dev
    raise BadInputError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N")


def make_policy(spec: str = "auto", amp: str = "auto", channels_last: bool | None = None) -> DevicePolicy:
    """Choose AMP (``auto|bf16|fp16|off``) and channels_last for the resolved device.

    ``auto`` picks bf16 on CUDA GPUs that support it, else fp16, and fp32 on CPU (CPU autocast
    slows DARTS ops down). channels_last defaults to on for CUDA only.
    """
    device = resolve_device(spec)
    amp = (amp or "auto").lower()
    if amp not in {"auto", "bf16", "fp16", "off"}:
        raise BadInputError(f"--amp {amp!r}: expected auto, bf16, fp16 or off")
    dtype: torch.dtype | None
    if device.type != "cuda" or amp == "off":
        dtype = None
    elif amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        dtype = torch.bfloat16
    else:
        dtype = torch.float16
    if channels_last is None:
        channels_last = device.type == "cuda"
    return DevicePolicy(device=device, amp_dtype=dtype, channels_last=channels_last)


def grad_scaler(policy: DevicePolicy) -> "torch.amp.GradScaler":
    """A GradScaler enabled only for fp16 autocast (bf16 needs none)."""
    return torch.amp.GradScaler(policy.device.type, enabled=policy.amp_dtype == torch.float16)


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Temporarily put ``model`` in eval mode, restoring its previous mode."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
