"""Multi-process runs under torchrun: PyTorch DDP, no home-made launcher (DESIGN.md §5).

``torchrun --nproc_per_node N -m sdnas_deploy search|train ...`` starts N copies of the command with
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set; :func:`setup` joins them into one process group (NCCL on
CUDA, gloo on CPU) and every engine asks :func:`current` what it is. One process (``WORLD_SIZE``
unset or 1) is the plain run: nothing here talks to anyone then, and every helper is a no-op.

What is shared how: the weights are wrapped in ``DistributedDataParallel`` (gradients averaged by its
hooks); the architecture parameters α stay outside it and their gradients are averaged explicitly
(:meth:`Parallel.average_grads`), because the architect takes them with ``autograd.grad``, which
DDP's hooks never see; sums (loss, correct, seen) are reduced with :meth:`Parallel.sum`. Only rank 0
writes files and logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from .errors import BadInputError


@dataclass(frozen=True)
class Parallel:
    """This process's place in the run: rank, world size, local rank (its GPU), backend (None = one process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int] | None:
        """(rank, world size) for ``data.make_loader`` to take this rank's part; None for one process."""
        return (self.rank, self.world_size) if self.active else None

    def describe(self, batch_size: int) -> dict[str, Any]:
        """The ``parallel`` block of a report: world size, backend and the global batch (per-process × N)."""
        return {"world_size": self.world_size, "backend": self.backend, "global_batch": int(batch_size) * self.world_size}

    def sum(self, values: Sequence[float], device: torch.device | str = "cpu") -> list[float]:
        """Element-wise sum of ``values`` over all ranks (float64)."""
        if not self.active:
            return [float(v) for v in values]
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._comm_device(device))
        torch.distributed.all_reduce(tensor)
        return tensor.cpu().tolist()

    def any(self, flag: bool, device: torch.device | str = "cpu") -> bool:
        """True on every rank when ``flag`` is True on any (so all ranks stop together, never one alone)."""
        return self.sum([1.0 if flag else 0.0], device)[0] > 0 if self.active else flag

    def average_grads(self, params: Sequence[torch.Tensor]) -> None:
        """Replace each parameter's ``.grad`` by its mean over the ranks (α: DDP never sees these)."""
        if not self.active:
            return
        for p in params:
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad.div_(self.world_size)

    def average_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Average tensors in place over the ranks (e.g. BatchNorm statistics re-estimated on each shard)."""
        if not self.active:
            return
        for t in tensors:
            if t.is_floating_point():
                torch.distributed.all_reduce(t)
                t.div_(self.world_size)

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """The tensors of all ranks concatenated along dim 0 (same shape on every rank)."""
        if not self.active:
            return tensor
        device = self._comm_device(tensor.device)
        parts = [torch.empty_like(tensor, device=device) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, tensor.to(device))
        return torch.cat(parts).to(tensor.device)

    def check_identical(self, tensors: Sequence[torch.Tensor], what: str) -> None:
        """Raise when ``tensors`` differ between ranks by even one bit (α must be replicated exactly)."""
        if not self.active:
            return
        for k, t in enumerate(tensors):
            gathered = self.gather(t.detach().reshape(1, -1))
            if not bool((gathered == gathered[0:1]).all()):
                raise RuntimeError(f"{what}[{k}] differs between ranks; the replicas have drifted apart")

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def _comm_device(self, device: torch.device | str) -> torch.device:
        """NCCL reduces CUDA tensors only; gloo reduces CPU tensors."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


_CURRENT = Parallel()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise BadInputError(f"environment variable {name}={value!r} is not an integer; launch with torchrun") from None


def setup(device: str = "auto") -> Parallel:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 (once per process); return :func:`current`."""
    global _CURRENT
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1 or _CURRENT.active:
        return _CURRENT
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise BadInputError(f"LOCAL_RANK {local_rank} but {torch.cuda.device_count()} GPU(s); lower --nproc_per_node")
        torch.cuda.set_device(local_rank)
    backend = "nccl" if use_cuda else "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    _CURRENT = Parallel(rank, world, local_rank, backend)
    return _CURRENT


def current() -> Parallel:
    """This process's :class:`Parallel` (one process unless :func:`setup` joined a torchrun group)."""
    return _CURRENT


def device_for(device: str, par: Parallel) -> str:
    """The device string of this rank: ``cuda``/``auto`` on a CUDA run become ``cuda:LOCAL_RANK``."""
    if par.backend == "nccl" and device in ("auto", "cuda"):
        return f"cuda:{par.local_rank}"
    if par.backend == "gloo" and device == "auto":
        return "cpu"
    return device


def wrap_ddp(model: torch.nn.Module, par: Parallel, device: torch.device, ignore: Sequence[torch.nn.Parameter] = (),
             find_unused_parameters: bool = False) -> torch.nn.Module:
    """``model`` in ``DistributedDataParallel`` under torchrun (itself otherwise); ``ignore``: parameters DDP must
    leave alone (α: their gradients are averaged by :meth:`Parallel.average_grads`)."""
    if not par.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if ignore:
        ids = {id(p) for p in ignore}
        names = [name for name, p in model.named_parameters() if id(p) in ids]
        # the reducer spells a root module's parameter ".name" (module name "" + "." + name): give both spellings
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            model, [*names, *(f".{n}" for n in names if "." not in n)])
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=find_unused_parameters)


def with_sync_batchnorm(model: torch.nn.Module, par: Parallel, enabled: bool) -> torch.nn.Module:
    """``model`` with every BatchNorm synchronized over the ranks (``--sync-bn``; NCCL only, as PyTorch's)."""
    if not enabled or not par.active:
        return model
    if par.backend != "nccl":
        raise BadInputError("--sync-bn needs CUDA processes (NCCL); on CPU each process normalizes its own batch")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
