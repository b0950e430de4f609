"""Tests for sdnas_deploy.data: embedded digits, splits/loaders, transforms, imagefolder, CIFAR errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from sdnas_deploy.data import (
    DATASETS,
    Cutout,
    DatasetInfo,
    dataset_info,
    load_arrays,
    load_split,
    make_loader,
    search_halves,
)
from sdnas_deploy.data import digits as digits_mod
from sdnas_deploy.errors import BadInputError

REPO = Path(__file__).resolve().parents[1]


def _labels(dataset) -> list[int]:
    return [int(dataset[i][1]) for i in range(len(dataset))]


def _one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


# ---------------------------------------------------------------- registry / info


def test_registry_lists_all_datasets_and_rejects_unknown_names() -> None:
    assert set(DATASETS) == {"digits", "fashion-mnist", "cifar10", "cifar100", "imagefolder"}
    assert [name for name, src in sorted(DATASETS.items()) if src.resizable] == ["fashion-mnist", "imagefolder"]
    assert [name for name, src in sorted(DATASETS.items()) if src.needs_data_dir] == ["imagefolder"]
    with pytest.raises(BadInputError) as excinfo:
        dataset_info("cifar1")
    assert "did you mean 'cifar10'" in _one_line_error(excinfo)
    with pytest.raises(BadInputError, match="unknown split"):
        load_split("digits", "val")
    with pytest.raises(BadInputError, match="fixed 16x16"):
        load_split("digits", "train", image_size=32)


def test_dataset_info_values_and_json_form(tmp_path: Path) -> None:
    info = dataset_info("digits")
    assert (info.num_classes, info.in_channels, info.image_size) == (10, 1, 16)
    assert info.input_shape == (1, 16, 16)
    c10, c100 = dataset_info("cifar10", data_dir=tmp_path), dataset_info("cifar100", data_dir=tmp_path)
    assert (c10.num_classes, c10.in_channels, c10.image_size, len(c10.mean)) == (10, 3, 32, 3)
    assert c100.num_classes == 100 and str(tmp_path) in c100.source
    restored = json.loads(json.dumps(info.to_dict()))
    assert DatasetInfo(**{**restored, "mean": tuple(restored["mean"]), "std": tuple(restored["std"])}) == info


# ---------------------------------------------------------------- digits


def test_digits_splits_shapes_and_classes() -> None:
    train, test = load_split("digits", "train"), load_split("digits", "test")
    assert (len(train), len(test)) == (1437, 360)
    image, label = train[0]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32 and isinstance(label, int)
    train_counts = np.bincount(_labels(train), minlength=10)
    test_counts = np.bincount(_labels(test), minlength=10)
    assert train_counts.min() > 0 and test_counts.min() > 0
    # stratified: every class contributes its share (360/1797) to the test split, within one image
    share = (train_counts + test_counts) * 360 / 1797
    assert np.all(np.abs(test_counts - share) < 1)


def test_digits_split_is_fixed_disjoint_and_covering() -> None:
    split = digits_mod.split_indices()
    train_idx, test_idx = set(split["train"].tolist()), set(split["test"].tolist())
    assert not train_idx & test_idx and len(train_idx | test_idx) == 1797
    torch.manual_seed(123)  # the split must not depend on the run's seed
    digits_mod.split_indices.cache_clear()
    assert np.array_equal(digits_mod.split_indices()["test"], split["test"])
    # class-mixed order so that limit=N is not a single class
    assert len(set(_labels(load_split("digits", "train", limit=20)))) > 3


def test_digits_stats_constants_match_the_data() -> None:
    mean, std = digits_mod.compute_train_stats()
    assert digits_mod.DIGITS_MEAN[0] == pytest.approx(mean, abs=1e-5)
    assert digits_mod.DIGITS_STD[0] == pytest.approx(std, abs=1e-5)
    x, _ = load_arrays("digits", "train")
    assert abs(float(x.mean())) < 1e-4 and float(x.std()) == pytest.approx(1.0, abs=1e-4)


def test_digits_asset_matches_scikit_learn() -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    reference = datasets.load_digits()
    images, labels = digits_mod.load_raw()
    assert images.dtype == np.uint8 and labels.dtype == np.int64
    assert np.array_equal(images.astype(np.float64), reference.images)
    assert np.array_equal(labels, reference.target)


def test_runtime_needs_neither_sklearn_nor_eager_torchvision() -> None:
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import sdnas_deploy.data as d\n"
        "assert 'torchvision' not in sys.modules, 'torchvision imported eagerly'\n"
        "x, y = d.load_arrays('digits', 'test', limit=4)\n"
        "print(x.shape, y.tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("(4, 1, 16, 16)")


def test_digits_augmentation_is_a_small_shift_without_flips() -> None:
    plain = load_split("digits", "train", limit=8)
    augmented = load_split("digits", "train", augment=True, limit=8)
    mean, std = digits_mod.DIGITS_MEAN[0], digits_mod.DIGITS_STD[0]
    torch.manual_seed(0)
    shifted_somewhere = False
    for i in range(len(plain)):
        raw = plain[i][0] * std + mean  # back to [0, 1]
        aug, label = augmented[i]
        assert aug.shape == (1, 16, 16) and label == plain[i][1]
        padded = torch.nn.functional.pad(raw, (2, 2, 2, 2))
        aug01 = aug * std + mean
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.allclose(padded[:, dy : dy + 16, dx : dx + 16], aug01, atol=1e-5)
        ]
        assert matches, "augmented digit is not a translation of the original"
        shifted_somewhere |= (2, 2) not in matches
    assert shifted_somewhere


# ---------------------------------------------------------------- transforms


def test_cutout_zeroes_one_square_and_leaves_input_alone() -> None:
    torch.manual_seed(3)
    image = torch.ones(3, 16, 16)
    out = Cutout(6)(image)
    assert torch.equal(image, torch.ones(3, 16, 16))
    zero = out[0] == 0
    assert torch.equal(out == 0, zero.expand(3, -1, -1))  # same square in every channel
    rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
    assert 0 < len(rows) <= 6 and 0 < len(cols) <= 6
    assert int(zero.sum()) == len(rows) * len(cols)  # a solid rectangle
    assert torch.all(out[~zero.expand(3, -1, -1)] == 1)
    with pytest.raises(BadInputError):
        Cutout(0)
    with pytest.raises(BadInputError, match="cutout must be >= 0"):
        load_split("digits", "train", augment=True, cutout=-1)


def test_cutout_is_applied_only_when_augmenting() -> None:
    torch.manual_seed(0)
    with_cutout = load_split("digits", "test", augment=True, cutout=8, limit=6)
    assert any(int((with_cutout[i][0] == 0).sum()) >= 16 for i in range(6))
    no_augment = load_split("digits", "test", augment=False, cutout=8, limit=6)
    reference = load_split("digits", "test", limit=6)
    assert all(torch.equal(no_augment[i][0], reference[i][0]) for i in range(6))


# ---------------------------------------------------------------- limit, halves, loaders


def test_limit_is_deterministic_nested_and_validated() -> None:
    small, large = load_split("digits", "test", limit=10), load_split("digits", "test", limit=50)
    assert (len(small), len(large)) == (10, 50)
    assert set(small.indices) <= set(large.indices)
    assert list(load_split("digits", "test", limit=10).indices) == list(small.indices)
    assert len(load_split("digits", "test", limit=10_000)) == 360
    for bad in (0, -3):
        with pytest.raises(BadInputError, match="limit"):
            load_split("digits", "test", limit=bad)


def test_search_halves_deterministic_disjoint_and_covering() -> None:
    train = load_split("digits", "train")
    a_w, a_v = search_halves(train, seed=1)
    b_w, b_v = search_halves(train, seed=1)
    c_w, _ = search_halves(train, seed=2)
    assert list(a_w.indices) == list(b_w.indices) and list(a_v.indices) == list(b_v.indices)
    assert list(a_w.indices) != list(c_w.indices)
    assert not set(a_w.indices) & set(a_v.indices)
    assert sorted(list(a_w.indices) + list(a_v.indices)) == list(range(len(train)))
    assert (len(a_w), len(a_v)) == (718, 719)
    w80, v80 = search_halves(train, seed=1, fraction=0.8)
    assert len(w80) == round(1437 * 0.8) and len(w80) + len(v80) == 1437
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(BadInputError, match="fraction"):
            search_halves(train, seed=1, fraction=bad)


def test_make_loader_order_depends_only_on_seed_and_epoch() -> None:
    data = load_split("digits", "test", limit=40)

    def order(seed: int, epoch: int = 0) -> list[int]:
        return [int(v) for _, y in make_loader(data, 8, shuffle=True, seed=seed, epoch=epoch) for v in y]

    torch.manual_seed(0)
    first = order(5)
    torch.manual_seed(99)  # the global RNG must not matter
    assert order(5) == first
    assert order(6) != first and order(5, epoch=1) != first
    assert order(5, epoch=3) == order(5, epoch=3)
    batches = list(make_loader(data, 16, shuffle=False, seed=0, drop_last=True))
    assert [b[0].shape for b in batches] == [(16, 1, 16, 16)] * 2
    with pytest.raises(BadInputError, match="batch size"):
        make_loader(data, 64, shuffle=True, seed=0, drop_last=True)
    with pytest.raises(BadInputError, match="batch size"):
        make_loader(data, 0, shuffle=True, seed=0)


def test_load_arrays_matches_load_split() -> None:
    x, y = load_arrays("digits", "test", limit=12)
    assert x.shape == (12, 1, 16, 16) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.flags["C_CONTIGUOUS"]
    dataset = load_split("digits", "test", limit=12)
    expected = np.stack([dataset[i][0].numpy() for i in range(12)])
    assert np.array_equal(x, expected) and y.tolist() == _labels(dataset)


# ---------------------------------------------------------------- imagefolder


def _write_pngs(folder: Path, count: int, color: tuple[int, int, int]) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(count):
        pixels = np.clip(rng.normal(color, 20, size=(20, 24, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    root = tmp_path / "pets"
    for split, count in (("train", 3), ("val", 2)):
        _write_pngs(root / split / "cat", count, (200, 40, 40))
        _write_pngs(root / split / "dog", count, (40, 40, 200))
    return root


def test_imagefolder_loads_a_tiny_tree(image_tree: Path) -> None:
    info = dataset_info("imagefolder", data_dir=image_tree)
    assert (info.num_classes, info.in_channels, info.image_size) == (2, 3, 224)
    train = load_split("imagefolder", "train", data_dir=image_tree, augment=True, image_size=32)
    assert len(train) == 6 and train[0][0].shape == (3, 32, 32)
    assert _labels(train) == [0, 0, 0, 1, 1, 1]
    x, y = load_arrays("imagefolder", "test", data_dir=image_tree, image_size=32)
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [0, 0, 1, 1]
    # red cats, blue dogs: the red channel separates the classes after normalization
    assert x[:2, 0].mean() > x[2:, 0].mean()
    (image_tree / "val").rename(image_tree / "test")
    assert len(load_split("imagefolder", "test", data_dir=image_tree, image_size=32)) == 4


def test_imagefolder_layout_errors_name_the_path(image_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="needs --data-dir"):
        load_split("imagefolder", "train")
    with pytest.raises(BadInputError) as excinfo:
        load_split("imagefolder", "train", data_dir=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in _one_line_error(excinfo)
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    with pytest.raises(BadInputError) as excinfo:
        dataset_info("imagefolder", data_dir=empty)
    assert "no class folders" in _one_line_error(excinfo) and str(empty / "train") in str(excinfo.value)
    with pytest.raises(BadInputError) as excinfo:
        load_split("imagefolder", "test", data_dir=empty)
    assert "val/" in _one_line_error(excinfo)
    (image_tree / "train" / "bird").mkdir()
    with pytest.raises(BadInputError) as excinfo:
        load_split("imagefolder", "train", data_dir=image_tree)
    assert "bird" in _one_line_error(excinfo)
    with pytest.raises(BadInputError, match="class folders differ"):
        load_split("imagefolder", "test", data_dir=image_tree)


def test_imagefolder_unreadable_image_is_bad_input(image_tree: Path) -> None:
    broken = image_tree / "val" / "cat" / "img0.png"
    broken.write_bytes(b"not a png")
    dataset = load_split("imagefolder", "test", data_dir=image_tree, image_size=16)
    with pytest.raises(BadInputError) as excinfo:
        dataset[0]
    assert str(broken) in _one_line_error(excinfo)


# ---------------------------------------------------------------- cifar (offline)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CIFAR download fail like an offline machine, and forbid any socket connection."""
    import torchvision.datasets.cifar as cifar

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    def no_socket(*args: object, **kwargs: object) -> None:
        raise OSError("test forbids network access")

    monkeypatch.setattr(cifar, "download_and_extract_archive", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_socket)


@pytest.mark.parametrize(("name", "folder"), [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_cifar_offline_gives_one_line_bad_input(name: str, folder: str, tmp_path: Path, offline: None) -> None:
    with pytest.raises(BadInputError) as excinfo:
        load_split(name, "train", data_dir=tmp_path)
    message = _one_line_error(excinfo)
    assert folder in message and str(tmp_path) in message and "--data-dir" in message and "URLError" in message


def test_cifar_default_dir_comes_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None) -> None:
    monkeypatch.setenv("SDNAS_DATA_DIR", str(tmp_path / "store"))
    assert str(tmp_path / "store") in dataset_info("cifar10").source
    (tmp_path / "store" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "store" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"tampered")
    with pytest.raises(BadInputError) as excinfo:
        load_split("cifar10", "test")
    assert str(tmp_path / "store") in _one_line_error(excinfo)
