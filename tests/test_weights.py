"""Weights files: safetensors + sdnas metadata round trip, and one-line errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces.darts.settings import build_network
from sdnas_deploy.spaces.darts.genotype import REFERENCE_GENOTYPES
from sdnas_deploy.training.weights import META_KEY, NetworkMeta, load_network, read_weights, save_weights

GENOTYPE = REFERENCE_GENOTYPES["darts_v2"]


def _meta(**changes: object) -> NetworkMeta:
    base = dict(
        genotype=GENOTYPE.to_dict(), setting="cifar", num_classes=10, in_channels=1, image_size=16,
        layers=3, channels=4, dataset="digits", mean=[0.3], std=[0.4], epoch=2, test_top1=55.5,
    )
    base.update(changes)
    return NetworkMeta(**base)  # type: ignore[arg-type]


def _trained_like_net(meta: NetworkMeta) -> torch.nn.Module:
    """A tiny network with non-default weights *and* BN statistics, as after training."""
    torch.manual_seed(3)
    net = build_network(GENOTYPE, meta.setting, meta.num_classes, in_channels=meta.in_channels,
                        layers=meta.layers, channels=meta.channels, auxiliary=True)
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn(4, meta.in_channels, meta.image_size, meta.image_size))
    return net


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module, NetworkMeta]:
    meta = _meta()
    net = _trained_like_net(meta)
    path = tmp_path_factory.mktemp("weights") / "net.safetensors"
    save_weights(path, net, meta)
    return path, net, meta


def test_round_trip_gives_identical_eval_outputs(saved: tuple[Path, torch.nn.Module, NetworkMeta]) -> None:
    path, net, meta = saved
    loaded, loaded_meta = load_network(path)
    assert loaded_meta == meta
    assert not loaded.training
    assert not any(k.startswith("auxiliary_head.") for k in loaded.state_dict())
    x = torch.randn(3, 1, 16, 16)
    net.eval()
    with torch.no_grad():
        expected = net(x)
        got = loaded(x)
    assert got.shape == (3, 10)
    assert torch.equal(got, expected)


def test_file_keeps_aux_head_and_metadata_json(saved: tuple[Path, torch.nn.Module, NetworkMeta]) -> None:
    path, net, meta = saved
    tensors, read_meta = read_weights(path)
    assert set(tensors) == set(net.state_dict())
    assert any(k.startswith("auxiliary_head.") for k in tensors)
    assert read_meta.input_shape == (1, 1, 16, 16)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        assert json.loads(f.metadata()[META_KEY])["channels"] == 4
    with_aux, _ = load_network(path, auxiliary=True)
    for name, value in net.state_dict().items():
        assert torch.equal(with_aux.state_dict()[name], value), name


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        load_network(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_file(saved: tuple[Path, torch.nn.Module, NetworkMeta], tmp_path: Path, damage: str) -> None:
    bad = tmp_path / "bad.safetensors"
    data = saved[0].read_bytes()
    bad.write_bytes(b"this is not safetensors at all" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(BadInputError, match="safetensors") as err:
        load_network(bad)
    assert "\n" not in str(err.value)


def test_safetensors_without_sdnas_metadata(saved: tuple[Path, torch.nn.Module, NetworkMeta], tmp_path: Path) -> None:
    plain = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in saved[1].state_dict().items()}, str(plain))
    with pytest.raises(BadInputError, match="no sdnas metadata"):
        load_network(plain)


@pytest.mark.parametrize(
    "metadata, problem",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"setting": "cifar"}), "missing genotype"),
        (json.dumps({**json.loads(_meta().to_json()), "layers": "three"}), "layers"),
        (json.dumps({**json.loads(_meta().to_json()), "colour": "red"}), "unknown colour"),
    ],
)
def test_invalid_metadata(saved: tuple[Path, torch.nn.Module, NetworkMeta], tmp_path: Path, metadata: str, problem: str) -> None:
    path = tmp_path / "meta.safetensors"
    save_file({k: v.contiguous() for k, v in saved[1].state_dict().items()}, str(path), metadata={META_KEY: metadata})
    with pytest.raises(BadInputError, match=problem):
        load_network(path)


def test_invalid_genotype_in_metadata(saved: tuple[Path, torch.nn.Module, NetworkMeta], tmp_path: Path) -> None:
    genotype = GENOTYPE.to_dict()
    genotype["normal"][0] = ["conv_9x9", 0]
    path = tmp_path / "geno.safetensors"
    save_weights(path, saved[1], _meta(genotype=genotype))
    with pytest.raises(BadInputError, match="conv_9x9"):
        load_network(path)


def test_shape_mismatch(saved: tuple[Path, torch.nn.Module, NetworkMeta], tmp_path: Path) -> None:
    path = tmp_path / "wider.safetensors"
    save_weights(path, saved[1], _meta(channels=6))
    with pytest.raises(BadInputError, match="shape mismatch"):
        load_network(path)


def test_layer_mismatch_names_missing_tensor(saved: tuple[Path, torch.nn.Module, NetworkMeta], tmp_path: Path) -> None:
    path = tmp_path / "deeper.safetensors"
    save_weights(path, saved[1], _meta(layers=4))
    with pytest.raises(BadInputError, match="lack .* tensor"):
        load_network(path)


def test_auxiliary_requested_but_absent(tmp_path: Path) -> None:
    meta = _meta()
    net = build_network(GENOTYPE, "cifar", 10, in_channels=1, layers=3, channels=4, auxiliary=False)
    path = tmp_path / "noaux.safetensors"
    save_weights(path, net, meta)
    load_network(path)  # fine without the head
    with pytest.raises(BadInputError, match="no auxiliary head"):
        load_network(path, auxiliary=True)


def test_save_is_atomic_no_temp_files_left(saved: tuple[Path, torch.nn.Module, NetworkMeta]) -> None:
    leftovers = [p.name for p in saved[0].parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
