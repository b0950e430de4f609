"""Calibration images, activation ranges (onnxruntime's minmax / percentile / KL entropy) and the range cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from sdnas_deploy.data import load_arrays
from sdnas_deploy.export.calibration import (
    CACHE_SCHEMA,
    ZERO_AMAX,
    calibrate,
    collect_activation_ranges,
    entropy_amax,
    fold_signed_histogram,
    load_calibration_images,
)
from sdnas_deploy.errors import BadInputError, VerificationError

SHAPE = (1, 1, 16, 16)


def histogram(values: np.ndarray, bins: int = 2048) -> tuple[np.ndarray, float]:
    top = float(values.max())
    return np.bincount(np.minimum((values / top * bins).astype(int), bins - 1), minlength=bins), top


def loop_entropy(hist: np.ndarray, top: float) -> float:
    """Straightforward per-candidate KL search (the definition), to check the vectorized version."""
    h = hist.astype(np.float64).copy()
    h[0] = h[1]
    best, best_kl = len(h), np.inf
    for i in range(128, len(h) + 1):
        p = h[:i].copy()
        p[i - 1] += h[i:].sum()
        level = np.arange(i) * 128 // i
        nonzero = h[:i] > 0
        sums = np.bincount(level, weights=h[:i], minlength=128)
        counts = np.bincount(level, weights=nonzero, minlength=128)
        q = np.where(nonzero, sums[level] / np.maximum(counts[level], 1), 0.0)
        p, q = p / p.sum(), q / q.sum()
        used = p > 0
        kl = np.inf if np.any(q[used] == 0) else float(np.sum(p[used] * np.log(p[used] / q[used])))
        if kl < best_kl:
            best, best_kl = i, kl
    return best * top / len(h)


def test_entropy_clips_heavy_tails_and_keeps_uniform() -> None:
    rng = np.random.default_rng(0)
    uniform = histogram(rng.uniform(0, 1, 200_000))
    assert entropy_amax(*uniform) == pytest.approx(uniform[1], rel=2e-3)
    for tail in (np.abs(rng.laplace(0, 1, 200_000)), np.abs(rng.standard_cauchy(50_000))):
        hist, top = histogram(tail)
        amax = entropy_amax(hist, top)
        assert amax < 0.9 * top
        assert amax > np.percentile(tail, 90)  # clips the tail, not the body
    assert entropy_amax(np.zeros(2048), 0.0) == ZERO_AMAX


def test_entropy_matches_the_plain_definition() -> None:
    rng = np.random.default_rng(1)
    for values in (np.abs(rng.laplace(0, 1, 50_000)), np.maximum(rng.normal(0.5, 1, 50_000), 0),
                   rng.exponential(1.0, 50_000)):
        hist, top = histogram(values)
        assert entropy_amax(hist, top) == pytest.approx(loop_entropy(hist, top), rel=1e-12)


def test_fold_signed_histogram() -> None:
    values = np.random.default_rng(3).normal(0, 1, 10_000)
    top = float(np.abs(values).max())
    hist, edges = np.histogram(values, 8, range=(-top, top))
    folded, got_top = fold_signed_histogram(hist, edges)
    assert got_top == top and folded.sum() == len(values)
    assert np.array_equal(folded, np.histogram(np.abs(values), 4, range=(0, top))[0])
    with pytest.raises(VerificationError, match="not symmetric"):
        fold_signed_histogram(hist, edges + 1.0)


def abs_model() -> onnx.ModelProto:
    """x -> Abs -> a -> Conv(1x1, weight 1) -> y: the range of ``a`` is the range of |x| as calibrated."""
    inits = [numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")]
    nodes = [helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Conv", ["a", "w"], ["y"])]
    graph = helper.make_graph(nodes, "abs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, 16, 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def as_images(values: np.ndarray) -> np.ndarray:
    return values[: len(values) // 256 * 256].astype(np.float32).reshape(-1, 1, 16, 16)


def test_entropy_clips_heavy_tails_and_keeps_uniform() -> None:
    rng = np.random.default_rng(0)
    uniform = as_images(rng.uniform(0, 1, 200_000))
    top = float(uniform.max())
    assert collect_activation_ranges(abs_model(), uniform, "entropy")["a"] == pytest.approx(top, rel=0.02)
    for tail in (rng.laplace(0, 1, 200_000), rng.standard_cauchy(50_000)):
        images = as_images(tail)
        amax = collect_activation_ranges(abs_model(), images, "entropy")["a"]
        assert amax < 0.9 * float(np.abs(images).max())
        assert amax > np.percentile(np.abs(images), 90)  # clips the tail, not the body


def test_percentile_and_minmax_of_a_known_distribution() -> None:
    images = as_images(np.random.default_rng(2).uniform(-1, 1, 500_000))
    top = float(np.abs(images).max())
    got = collect_activation_ranges(abs_model(), images, "percentile", percentile=99.0)["a"]
    assert got == pytest.approx(np.percentile(np.abs(images), 99.0), abs=2 * top / 2048)
    assert collect_activation_ranges(abs_model(), images, "minmax")["a"] == pytest.approx(top, rel=1e-6)


def tiny_model(batch: int | str = "n") -> onnx.ModelProto:
    """x -> Conv -> Relu -> Conv(zero weights) -> Relu -> Flatten -> Gemm."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(np.zeros((4, 4, 3, 3), np.float32), "w2"),
        numpy_helper.from_array(rng.standard_normal((10, 4 * 16 * 16)).astype(np.float32), "fc"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Flatten", ["r2"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("batch", ["n", 1])
def test_ranges_cover_inputs_of_linear_ops(batch: int | str) -> None:
    images = np.random.default_rng(3).standard_normal((12, *SHAPE[1:])).astype(np.float32)
    ranges = collect_activation_ranges(tiny_model(batch), images, "minmax", batch=5)
    assert set(ranges) == {"x", "r1", "f"}
    assert ranges["x"] == pytest.approx(float(np.abs(images).max()))
    assert ranges["f"] == ZERO_AMAX  # all-zero activations still get a positive amax
    relu = np.maximum(0, sum(  # r1 by hand: 3x3 conv, padding 1
        np.pad(images[:, 0], ((0, 0), (1, 1), (1, 1)))[None, :, dy:dy + 16, dx:dx + 16]
        * numpy_helper.to_array(tiny_model().graph.initializer[0])[:, 0, dy, dx][:, None, None, None]
        for dy in range(3) for dx in range(3)))
    assert ranges["r1"] == pytest.approx(float(relu.max()), rel=1e-5)
    for method in ("percentile", "entropy"):
        other = collect_activation_ranges(tiny_model(batch), images, method)
        assert other["x"] == ranges["x"]  # the image itself is never clipped
        assert 0 < other["r1"] <= ranges["r1"]


def test_bad_calibration_arguments() -> None:
    images = np.zeros((2, *SHAPE[1:]), np.float32)
    with pytest.raises(BadInputError, match="did you mean 'entropy'"):
        collect_activation_ranges(tiny_model(), images, "entropi")
    with pytest.raises(BadInputError, match="percentile"):
        collect_activation_ranges(tiny_model(), images, "percentile", percentile=0)
    with pytest.raises(BadInputError, match="N x C x H x W"):
        collect_activation_ranges(tiny_model(), images[0], "minmax")


def test_cache_reuse_mismatch_and_corruption(tmp_path: Path) -> None:
    images = np.random.default_rng(4).standard_normal((6, *SHAPE[1:])).astype(np.float32)
    cache = tmp_path / "calib.json"
    ranges, cached = calibrate(tiny_model(), images, "percentile", cache_path=cache, source="digits")
    assert not cached
    data = json.loads(cache.read_text())
    assert data["schema"] == CACHE_SCHEMA and data["key"]["count"] == 6 and data["key"]["percentile"] == 99.99
    assert data["key"]["method"] == "percentile" and data["ranges"] == pytest.approx(ranges)
    again, cached = calibrate(tiny_model(), images, "percentile", cache_path=cache, source="digits")
    assert cached and again == pytest.approx(ranges)
    with pytest.raises(BadInputError, match=r"\(method differs\); delete it or pass another --calib-cache"):
        calibrate(tiny_model(), images, "minmax", cache_path=cache, source="digits")
    with pytest.raises(BadInputError, match="model_sha256 differs"):
        calibrate(tiny_model(batch=1), images, "percentile", cache_path=cache, source="digits")
    with pytest.raises(BadInputError, match="source differs"):
        calibrate(tiny_model(), images, "percentile", cache_path=cache, source="other")
    cache.write_text("{not json")
    with pytest.raises(BadInputError, match="malformed"):
        calibrate(tiny_model(), images, "percentile", cache_path=cache)
    cache.write_text(json.dumps({"schema": CACHE_SCHEMA, "key": data["key"], "ranges": {"x": -1}}))
    with pytest.raises(BadInputError, match="not a sdnas-calib/1 calibration cache"):
        calibrate(tiny_model(), images, "percentile", cache_path=cache, source="digits")


def test_images_from_dataset_use_the_train_split() -> None:
    images = load_calibration_images("digits", 8, SHAPE)
    train, _ = load_arrays("digits", "train", limit=8)
    assert images.shape == (8, 1, 16, 16) and images.dtype == np.float32
    assert np.array_equal(images, train)
    with pytest.raises(BadInputError):
        load_calibration_images("digits", 8, (1, 3, 32, 32))
    with pytest.raises(BadInputError, match="did you mean 'digits'"):
        load_calibration_images("digts", 8, SHAPE)


def test_images_from_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for k in range(5):
        folder = tmp_path / ("a" if k % 2 else "a/b")
        Image.fromarray(np.full((20, 24), 40 * k, np.uint8)).save(folder / f"img{k}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    images = load_calibration_images(str(tmp_path), 3, SHAPE, mean=(0.5,), std=(0.25,), seed=1)
    assert images.shape == (3, 1, 16, 16)
    levels = sorted(round(float(v), 4) for v in images[:, 0, 0, 0])
    allowed = {round((40 * k / 255 - 0.5) / 0.25, 4) for k in range(5)}
    assert set(levels) <= allowed and len(set(levels)) == 3
    every = load_calibration_images(str(tmp_path), 100, (1, 3, 8, 8), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert every.shape == (5, 3, 8, 8)  # fewer than asked: all of them
    with pytest.raises(BadInputError, match="normalization"):
        load_calibration_images(str(tmp_path), 3, SHAPE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no images"):
        load_calibration_images(str(tmp_path / "empty"), 3, SHAPE, mean=(0.5,), std=(0.25,))
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(BadInputError, match="broken.png: not a readable image"):
        load_calibration_images(str(tmp_path), 100, SHAPE, mean=(0.5,), std=(0.25,))


def test_images_from_npy(tmp_path: Path) -> None:
    data = np.random.default_rng(5).standard_normal((10, 1, 16, 16)).astype(np.float32)
    np.save(tmp_path / "calib.npy", data)
    images = load_calibration_images(str(tmp_path / "calib.npy"), 4, SHAPE)
    assert images.shape == (4, 1, 16, 16)
    assert all(any(np.array_equal(row, d) for d in data) for row in images)
    assert load_calibration_images(str(tmp_path / "calib.npy"), 50, SHAPE).shape == (10, 1, 16, 16)
    np.save(tmp_path / "wrong.npy", data[:, :, :8])
    with pytest.raises(BadInputError, match="already normalized"):
        load_calibration_images(str(tmp_path / "wrong.npy"), 4, SHAPE)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BadInputError, match="not a readable .npy"):
        load_calibration_images(str(tmp_path / "objects.npy"), 4, SHAPE)
    with pytest.raises(BadInputError, match="not found"):
        load_calibration_images(str(tmp_path / "missing.npy"), 4, SHAPE)
    with pytest.raises(BadInputError, match="positive integer"):
        load_calibration_images(str(tmp_path / "calib.npy"), 0, SHAPE)
