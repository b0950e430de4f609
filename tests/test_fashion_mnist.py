"""``fashion-mnist``: the IDX reader, where the files are looked for, resizing, and one-line errors."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from sdnas_deploy.data import dataset_info, load_arrays, load_split
from sdnas_deploy.data import fashion_mnist as fm
from sdnas_deploy.errors import BadInputError


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_fashion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of four real-format IDX files with 12 train / 6 test images (sizes patched to match)."""
    monkeypatch.setattr(fm, "SIZES", {"train": 12, "test": 6})
    monkeypatch.setattr(fm, "SYSTEM_DIR", tmp_path / "no-system-copy")
    monkeypatch.delenv("SDNAS_DATA_DIR", raising=False)
    fm.load_raw.cache_clear()
    rng = np.random.default_rng(0)
    for split, (images, labels) in fm.FILES.items():
        n = fm.SIZES[split]
        _write_idx(tmp_path / f"{images}.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{labels}.gz", np.arange(n) % 10)
    yield tmp_path
    fm.load_raw.cache_clear()


def test_reads_idx_files_and_resizes(tiny_fashion: Path) -> None:
    info = dataset_info("fashion-mnist", tiny_fashion)
    assert (info.num_classes, info.in_channels, info.image_size) == (10, 1, 28)
    train = load_split("fashion-mnist", "train", tiny_fashion)
    image, label = train[3]
    assert image.shape == (1, 28, 28) and label == 3 and len(train) == 12
    x, y = load_arrays("fashion-mnist", "test", tiny_fashion, image_size=32)
    assert x.shape == (6, 1, 32, 32) and y.tolist() == [0, 1, 2, 3, 4, 5]
    augmented = load_split("fashion-mnist", "train", tiny_fashion, augment=True, cutout=4)
    assert augmented[0][0].shape == (1, 28, 28)


def test_env_folder_and_subfolder_are_searched(tiny_fashion: Path, tmp_path_factory, monkeypatch) -> None:
    home = tmp_path_factory.mktemp("data")
    shutil.copytree(tiny_fashion, home / "fashion-mnist", ignore=shutil.ignore_patterns("no-system-copy"))
    monkeypatch.setenv("SDNAS_DATA_DIR", str(home))
    assert fm.locate(None) == home / "fashion-mnist"


def test_missing_files_name_the_apt_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fm, "SYSTEM_DIR", tmp_path / "none")
    monkeypatch.delenv("SDNAS_DATA_DIR", raising=False)
    with pytest.raises(BadInputError) as info:
        dataset_info("fashion-mnist", tmp_path)
    assert "apt-get install dataset-fashion-mnist" in info.value.message and str(tmp_path) in info.value.message


def test_truncated_or_foreign_files_are_bad_input(tiny_fashion: Path) -> None:
    target = tiny_fashion / "t10k-images-idx3-ubyte.gz"
    data = gzip.decompress(target.read_bytes())
    target.write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(BadInputError, match="truncated or foreign"):
        load_split("fashion-mnist", "test", tiny_fashion)
    target.write_bytes(b"not gzip at all")
    fm.load_raw.cache_clear()
    with pytest.raises(BadInputError, match="unreadable"):
        load_split("fashion-mnist", "test", tiny_fashion)


def test_bad_image_size_is_refused(tiny_fashion: Path) -> None:
    with pytest.raises(BadInputError, match="image size"):
        dataset_info("fashion-mnist", tiny_fashion, image_size=4)


@pytest.mark.skipif(not all((fm.SYSTEM_DIR / f"{s}.gz").is_file() for pair in fm.FILES.values() for s in pair),
                    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)")
def test_the_real_files_match_the_published_sizes_and_statistics() -> None:
    fm.load_raw.cache_clear()
    images, labels = fm.load_raw(fm.SYSTEM_DIR, "train")
    assert images.shape == (60000, 28, 28) and np.bincount(labels).tolist() == [6000] * 10
    pixels = images.astype(np.float64) / 255.0
    assert pixels.mean() == pytest.approx(fm.MEAN[0], abs=1e-5) and pixels.std() == pytest.approx(fm.STD[0], abs=1e-5)
    assert fm.load_raw(fm.SYSTEM_DIR, "test")[0].shape == (10000, 28, 28)
