"""Multi-process runs: torchrun with 2 CPU processes (gloo) for a tiny search and a tiny training run.

Checks what DESIGN.md §5 and the README promise: α stays bit-identical on every rank (the search checks it
each epoch and records it), one set of files, and a checkpoint written by 2 ranks resumes with 1 and back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sdnas_deploy.checkpoint import load_checkpoint
from sdnas_deploy.cli import common
from sdnas_deploy.parallel import Parallel

SEARCH = ["search", "--layers", "3", "--channels", "4", "--limit", "128", "--batch-size", "16",
          "--steps-per-epoch", "2", "--device", "cpu", "--method", "sd-darts", "--teachers", "2",
          "--teacher-interval", "1", "--distill-warmup", "0", "--json"]
TRAIN = ["--layers", "3", "--channels", "8", "--limit", "256", "--batch-size", "32", "--device", "cpu",
         "--no-auxiliary", "--json"]


def _run(args: list[str], nproc: int) -> dict:
    """Run the CLI under torchrun (nproc > 1) or as one process; return the JSON report rank 0 printed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    prefix = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
              if nproc > 1 else [sys.executable])
    done = subprocess.run([*prefix, "-m", "sdnas_deploy", *args], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def test_search_two_ranks_identical_alpha_one_set_of_files_and_resume_across_world_sizes(tmp_path: Path) -> None:
    out = str(tmp_path / "search")
    two = _run([*SEARCH, "--epochs", "1", "--out", out], nproc=2)
    assert two["parallel"] == {"world_size": 2, "backend": "gloo", "global_batch": 32}
    assert two["epochs"][0]["alpha_replicas_identical"] is True
    assert sorted(p.name for p in Path(out).iterdir()) == [
        "alpha_history.json", "checkpoint.pt", "config.json", "genotype.json", "plots", "report.json"]
    one = _run([*SEARCH, "--epochs", "2", "--out", out, "--resume"], nproc=1)  # 2 ranks -> 1
    assert one["epochs_done"] == 2 and one["parallel"]["world_size"] == 1
    back = _run([*SEARCH, "--epochs", "3", "--out", out, "--resume"], nproc=2)  # and back to 2
    assert back["epochs_done"] == 3 and [e["epoch"] for e in back["epochs"]] == [1, 2, 3]
    assert back["epochs"][2]["alpha_replicas_identical"] is True
    state = load_checkpoint(Path(out) / "checkpoint.pt")
    assert all(torch.isfinite(state["model"][k]).all() for k in ("alphas_normal", "alphas_reduce"))


def test_train_two_ranks_one_set_of_files_and_resume_across_world_sizes(tmp_path: Path) -> None:
    out = str(tmp_path / "train")
    args = ["train", "darts_v2", *TRAIN, "--epochs", "3", "--out", out]
    two = _run([*args, "--stop-after", "1"], nproc=2)
    assert two["parallel"]["world_size"] == 2 and two["epochs_done"] == 1
    assert {p.name for p in Path(out).iterdir()} == {
        "best.safetensors", "last.safetensors", "checkpoint.pt", "config.json", "genotype.json", "plots", "report.json"}
    one = _run([*args, "--resume", "--stop-after", "2"], nproc=1)  # 2 ranks -> 1
    assert one["epochs_done"] == 2 and one["parallel"]["world_size"] == 1
    back = _run([*args, "--resume"], nproc=2)  # and back to 2
    assert back["epochs_done"] == 3 and back["status"] == "finished"
    assert [r["epoch"] for r in back["history"]] == [1, 2, 3]


def test_one_process_helpers_are_no_ops() -> None:
    par = Parallel()
    assert not par.active and par.is_main
    assert par.sum([1, 2.5]) == [1.0, 2.5] and par.any(True) and not par.any(False)
    t = torch.ones(3)
    assert par.gather(t) is t
    par.check_identical([t], "α")
    par.average_([t])
    assert torch.equal(t, torch.ones(3))


def test_sync_batchnorm_needs_nccl() -> None:
    from sdnas_deploy.errors import BadInputError
    from sdnas_deploy.parallel import with_sync_batchnorm

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    assert with_sync_batchnorm(net, Parallel(), True) is net  # one process: nothing to synchronize
    with pytest.raises(BadInputError, match="needs CUDA processes"):
        with_sync_batchnorm(net, Parallel(0, 2, 0, "gloo"), True)
    assert isinstance(with_sync_batchnorm(net, Parallel(0, 2, 0, "nccl"), True)[1], torch.nn.SyncBatchNorm)


def test_nproc_execs_torchrun_with_the_same_command(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(sys, "argv", ["sdnas", "search", "--nproc", "2", "--epochs", "1", "--nproc=2", "--out", "x"])
    monkeypatch.setattr(os, "execv", lambda exe, argv: calls.append(argv))
    common.relaunch_with_torchrun(2)
    assert calls[0][1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "sdnas_deploy",
                            "search", "--epochs", "1", "--out", "x"]
    common.relaunch_with_torchrun(1)
    monkeypatch.setenv("LOCAL_RANK", "0")  # already a rank: never relaunch
    common.relaunch_with_torchrun(2)
    assert len(calls) == 1
