"""Discrete DARTS networks: cells, aux heads, drop-path, settings and ONNX export."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces.darts.network import Cell, NetworkCIFAR, NetworkMobile
from sdnas_deploy.spaces.darts.settings import SETTINGS, build_network, get_setting
from sdnas_deploy.spaces.darts.settings import resolve_input_size
from sdnas_deploy.spaces.darts.genotype import DARTS_V1, DARTS_V2, Genotype


def _cifar(auxiliary: bool = True, genotype: Genotype = DARTS_V2) -> NetworkCIFAR:
    torch.manual_seed(0)
    return NetworkCIFAR(C=4, num_classes=5, layers=3, auxiliary=auxiliary, genotype=genotype, in_channels=1)


def test_cell_output_concatenates_its_nodes() -> None:
    cell = Cell(DARTS_V2, C_prev_prev=6, C_prev=6, C=4, reduction=False, reduction_prev=False)
    assert cell.multiplier == 4
    out = cell(torch.randn(2, 6, 8, 8), torch.randn(2, 6, 8, 8))
    assert out.shape == (2, 16, 8, 8)
    reduce = Cell(DARTS_V2, C_prev_prev=6, C_prev=16, C=8, reduction=True, reduction_prev=False)
    assert reduce(torch.randn(2, 6, 8, 8), torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    bns = [m for m in cell.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bn.weight is not None for bn in bns), "discrete nets use affine BatchNorm"


@pytest.mark.parametrize("genotype", [DARTS_V2, DARTS_V1])
def test_cifar_network_eval_gives_logits_and_train_gives_aux(genotype: Genotype) -> None:
    net = _cifar(genotype=genotype)
    x = torch.randn(2, 1, 16, 16)
    net.train()
    logits, aux = net(x)
    assert logits.shape == (2, 5) and aux.shape == (2, 5)
    net.eval()
    out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)
    assert [c.reduction for c in net.cells] == [False, True, True]


def test_aux_head_matches_darts_on_8x8_maps() -> None:
    net = NetworkCIFAR(C=4, num_classes=10, layers=6, auxiliary=True, genotype=DARTS_V2)
    net.train()
    seen: dict[str, torch.Size] = {}

    def record(module: torch.nn.Module, args: tuple) -> None:
        seen["shape"] = args[0].shape

    net.auxiliary_head.register_forward_pre_hook(record)
    _, aux = net(torch.randn(2, 3, 32, 32))
    assert seen["shape"][-2:] == (8, 8) and aux.shape == (2, 10)


def test_mobile_network_stems_and_aux() -> None:
    torch.manual_seed(0)
    net = NetworkMobile(C=8, num_classes=7, layers=3, auxiliary=True, genotype=DARTS_V2, in_channels=1)
    x = torch.randn(2, 1, 32, 32)
    assert net.stem0(x).shape == (2, 8, 8, 8) and net.stem1(net.stem0(x)).shape == (2, 8, 4, 4)
    assert net.cells[0].preprocess0.__class__.__name__ == "FactorizedReduce"
    net.train()
    logits, aux = net(x)
    assert logits.shape == (2, 7) and aux.shape == (2, 7)
    net.eval()
    assert net(torch.randn(1, 1, 28, 28)).shape == (1, 7), "odd intermediate sizes work too"


def test_drop_path_only_acts_in_training() -> None:
    net = _cifar(auxiliary=False)
    x = torch.randn(4, 1, 16, 16)
    assert net.drop_path_prob == 0.0
    net.train()
    assert torch.equal(net(x), net(x)), "no randomness without drop-path (batch-stat BN is deterministic)"
    net.drop_path_prob = 0.5
    torch.manual_seed(1)
    first = net(x)
    torch.manual_seed(2)
    assert not torch.allclose(first, net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


def test_no_aux_head_unless_asked() -> None:
    net = _cifar(auxiliary=False)
    assert net.auxiliary_head is None
    assert not any("auxiliary" in name for name, _ in net.named_parameters())
    net.train()
    assert isinstance(net(torch.randn(2, 1, 16, 16)), torch.Tensor)


def test_settings_registry_and_defaults() -> None:
    assert set(SETTINGS) >= {"cifar", "mobile"}
    assert (SETTINGS["cifar"].layers, SETTINGS["cifar"].channels, SETTINGS["cifar"].input_size) == (20, 36, None)
    assert (SETTINGS["mobile"].layers, SETTINGS["mobile"].channels, SETTINGS["mobile"].input_size) == (14, 48, 224)
    assert resolve_input_size("cifar", dataset_size=16) == 16
    assert resolve_input_size("mobile", dataset_size=16) == 224
    assert resolve_input_size("mobile", input_size=96) == 96
    with pytest.raises(BadInputError, match="input"):
        resolve_input_size("cifar")
    with pytest.raises(BadInputError, match="did you mean 'mobile'"):
        get_setting("mobil")


def test_build_network_uses_setting_defaults_and_overrides() -> None:
    net = build_network(DARTS_V2, "cifar", num_classes=10)
    assert isinstance(net, NetworkCIFAR) and len(net.cells) == 20 and net.stem[0].out_channels == 3 * 36
    small = build_network(DARTS_V2.to_dict(), "mobile", num_classes=3, in_channels=1, layers=2, channels=8,
                          auxiliary=True)
    assert isinstance(small, NetworkMobile) and len(small.cells) == 2 and small.auxiliary
    assert small.stem0[0].in_channels == 1


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"setting": "imagenet"}, "unknown network setting"),
        ({"channels": 0}, "channels"),
        ({"layers": -1}, "layers"),
        ({"num_classes": 1.5}, "num_classes"),
        ({"setting": "mobile", "channels": 1}, "channels >= 2"),
        ({"genotype": {"normal": []}}, "missing key"),
    ],
)
def test_build_network_rejects_bad_input(kwargs: dict, fragment: str) -> None:
    args = {"genotype": DARTS_V2, "setting": "cifar", "num_classes": 10, **kwargs}
    with pytest.raises(BadInputError, match=fragment):
        build_network(**args)


def test_eval_network_exports_to_onnx_and_matches_onnxruntime(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    net = _cifar(auxiliary=True).eval()
    x = torch.randn(2, 1, 16, 16)
    path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=20,
                          input_names=["input"], output_names=["logits"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits"]
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        expected = net(x).numpy()
    assert np.abs(got - expected).max() < 1e-4
