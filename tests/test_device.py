"""Device resolution and mixed-precision policy (sdnas_deploy.device)."""

from __future__ import annotations

import pytest
import torch

from sdnas_deploy.device import DevicePolicy, eval_mode, grad_scaler, make_policy, resolve_device
from sdnas_deploy.errors import BadInputError, UnsupportedEnvironmentError

HAS_CUDA = torch.cuda.is_available()


@pytest.mark.parametrize("spec", ["cpu", "CPU", " cpu "])
def test_resolve_cpu(spec: str) -> None:
    assert resolve_device(spec) == torch.device("cpu")


@pytest.mark.parametrize("spec", ["auto", "", None])
def test_resolve_auto(spec: str | None) -> None:
    expected = "cuda" if HAS_CUDA else "cpu"
    assert resolve_device(spec).type == expected  # type: ignore[arg-type]


@pytest.mark.skipif(HAS_CUDA, reason="asserts the CPU-only behaviour")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_gpu_is_unsupported_environment(spec: str) -> None:
    with pytest.raises(UnsupportedEnvironmentError) as exc:
        resolve_device(spec)
    assert exc.value.exit_code == 5
    assert "CUDA is not available" in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("spec", ["gpu", "mps", "cpu:0x", "cudaa"])
def test_garbage_device_is_bad_input(spec: str) -> None:
    with pytest.raises(BadInputError) as exc:
        resolve_device(spec)
    assert exc.value.exit_code == 2
    assert "expected auto, cpu, cuda or cuda:N" in str(exc.value)


@pytest.mark.parametrize("amp", ["auto", "bf16", "fp16", "off", "OFF", None])
def test_cpu_policy_is_fp32_contiguous(amp: str | None) -> None:
    policy = make_policy("cpu", amp=amp)  # type: ignore[arg-type]
    assert isinstance(policy, DevicePolicy)
    assert policy.device == torch.device("cpu")
    assert policy.amp_dtype is None
    assert policy.channels_last is False


def test_channels_last_can_be_forced() -> None:
    assert make_policy("cpu", channels_last=True).channels_last is True


def test_bad_amp_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="--amp 'fp8': expected auto, bf16, fp16 or off"):
        make_policy("cpu", amp="fp8")


def test_describe() -> None:
    assert make_policy("cpu").describe() == "cpu (amp=off, channels_last=False)"
    policy = DevicePolicy(torch.device("cpu"), torch.bfloat16, True)
    assert policy.describe() == "cpu (amp=bfloat16, channels_last=True)"


def test_autocast_is_a_usable_no_op_on_cpu() -> None:
    policy = make_policy("cpu")
    model = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    with policy.autocast():
        y = model(x)
    assert y.dtype == torch.float32
    assert torch.equal(y, model(x))


def test_autocast_with_bf16_on_cpu_changes_matmul_dtype() -> None:
    """A policy with an AMP dtype really autocasts (CPU supports bf16 autocast)."""
    policy = DevicePolicy(torch.device("cpu"), torch.bfloat16, False)
    with policy.autocast():
        y = torch.nn.Linear(3, 2)(torch.randn(4, 3))
    assert y.dtype == torch.bfloat16


def test_grad_scaler_disabled_on_cpu() -> None:
    scaler = grad_scaler(make_policy("cpu"))
    assert scaler.is_enabled() is False


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_restores_previous_mode(training: bool) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    model.train(training)
    with eval_mode(model) as m:
        assert m is model
        assert not model.training and not model[1].training
    assert model.training is training and model[1].training is training


def test_eval_mode_restores_training_when_body_raises() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(model):
            assert not model[1].training
            raise RuntimeError("boom")
    assert model.training and model[1].training
