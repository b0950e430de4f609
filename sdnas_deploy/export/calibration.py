"""INT8 calibration: load calibration images, measure activation ranges in ONNX Runtime, cache them.

The ranges (tensor name -> amax, the largest |value| kept before int8 saturates) feed
:func:`onnx_precision.insert_qdq` for TensorRT's strongly typed path (and the TensorRT calibrator
of the implicit path). They are measured by onnxruntime's calibrators
(``onnxruntime.quantization.create_calibrator``) on the Conv/Gemm/MatMul tensors; the method is a
choice and part of the cache key (DESIGN.md §3: calibration is fragile):

- ``minmax``: the range of x over all calibration images.
- ``percentile``: the given percentile of |x| from a 2048-bin histogram (symmetric).
- ``entropy``: TensorRT's KL-divergence threshold over a 2048-bin histogram of |x|: for every
  threshold i in [128, 2048] (bins kept) the reference P is the first i bins with the outliers
  folded into bin i-1, the candidate Q is the first i bins quantized to 128 levels and expanded
  back over their non-zero bins; amax is the upper edge of bin i-1 for the smallest KL(P||Q). As in
  NVIDIA's reference (pytorch-quantization), bin 0 is replaced by bin 1 so the spike of exact
  zeros after ReLU does not dominate, and i = 2048 (no clipping) is a candidate. onnxruntime
  collects the histogram (signed, 4096 bins, folded here into |x|); the threshold search is ours
  (:func:`entropy_amax`), vectorized over all 1921 candidates from cumulative sums. Measured
  reason (bench/precision_quality.py, README): onnxruntime's own search is a Python loop per
  candidate, 10-28x slower per export on our models (27-75 s against 2.7-8.4 s) for no better
  accuracy, and its default of 128 bins leaves one candidate, the full range (= minmax).

amax is the larger magnitude of the two ends of the range.

The graph input (the normalized image) always gets its max |x|, whatever the method: its range
is bounded by the normalization and its extreme values are the signal (ink on a background), not
outliers. Measured on the demo digits model: entropy on the input put amax at the background
level (0.96 of 2.17; the background is a spike of mass) and saturated every stroke, top-1 0.994 ->
0.928; with the input at max |x| entropy keeps the fp32 accuracy.

A tensor that is all zeros gets amax 1e-8 (:data:`ZERO_AMAX`) so every scale stays positive.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import BadInputError, VerificationError
from ..io_utils import atomic_write_json, load_json
from ..registry import lookup

CALIB_METHODS = ("entropy", "minmax", "percentile")
CACHE_SCHEMA = "sdnas-calib/1"
DEFAULT_PERCENTILE = 99.99
ZERO_AMAX = 1e-8  # amax of an all-zero tensor: any positive scale represents it exactly
ENTROPY_BINS = 2048  # histogram bins for entropy/percentile (onnxruntime's entropy default of 128 = minmax)
ENTROPY_LEVELS = 128  # quantized bins of the KL search
CHUNK_IMAGES = 64  # calibration images per onnxruntime collect_data call
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    dims = tuple(int(d) for d in shape)
    if len(dims) < 3 or any(d <= 0 for d in dims[-3:]):
        raise BadInputError(f"input shape {dims} is invalid; pass the model's (N, C, H, W)")
    return dims[-3], dims[-2], dims[-1]


def _subsample(n: int, count: int, seed: int) -> np.ndarray:
    """Sorted indices of ``count`` of ``n`` items (all of them when there are not more)."""
    if n <= count:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False))


def _normalization(values: Sequence[float] | None, channels: int, what: str) -> np.ndarray:
    array = np.asarray(list(values) if values is not None else [], dtype=np.float32)
    if array.size == 1:
        array = np.repeat(array, channels)
    if array.size != channels:
        raise BadInputError(f"{what} has {array.size} values for {channels} channels; pass one per channel")
    return array.reshape(channels, 1, 1)


def _load_directory(root: Path, count: int, chw: tuple[int, int, int], mean: Any, std: Any, seed: int) -> np.ndarray:
    from PIL import Image

    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BadInputError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found; point --calib-data at a folder of images")
    if mean is None or std is None:
        raise BadInputError(f"{root}: images need the model's normalization; pass mean/std from the model sidecar")
    c, h, w = chw
    if c not in (1, 3):
        raise BadInputError(f"{root}: image folders give 1 or 3 channels, the model expects {c}; pass a .npy instead")
    m, s = _normalization(mean, c, "mean"), _normalization(std, c, "std")
    if np.any(s <= 0):
        raise BadInputError(f"std {list(s.ravel())} must be positive; check the model sidecar's normalization")
    chosen = [files[i] for i in _subsample(len(files), count, seed)]
    arrays = []
    for path in chosen:
        try:
            with Image.open(path) as image:
                image = image.convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
                pixels = np.asarray(image, dtype=np.float32) / 255.0
        except (OSError, ValueError) as exc:
            raise BadInputError(f"{path}: not a readable image ({type(exc).__name__}); remove it or convert it") from None
        pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        arrays.append((pixels - m) / s)
    return np.stack(arrays).astype(np.float32)


def _load_npy(path: Path, count: int, chw: tuple[int, int, int], seed: int) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{path}: not a readable .npy array ({' '.join(str(exc).split())[:100]}); "
                            "save a float N x C x H x W array with numpy.save") from None
    if array.ndim != 4 or tuple(array.shape[1:]) != chw or not np.issubdtype(array.dtype, np.floating):
        raise BadInputError(f"{path}: array is {array.dtype} {tuple(array.shape)}, the model needs float N x {chw[0]} x "
                            f"{chw[1]} x {chw[2]} (already normalized); save it in that layout")
    if len(array) == 0:
        raise BadInputError(f"{path}: the array holds no images; save at least one")
    return np.ascontiguousarray(array[_subsample(len(array), count, seed)], dtype=np.float32)


def load_calibration_images(
    source: str,
    count: int,
    input_shape: Sequence[int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    data_dir: str | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Up to ``count`` normalized float32 N x C x H x W calibration images from ``source``.

    ``source`` is a dataset name (its TRAIN split, so test-split verification stays honest), a
    folder of images (normalized with ``mean``/``std``) or a ``.npy`` array (already normalized).
    Fewer images than ``count`` are returned as they are (at least one).
    """
    from ..data import DATASETS, load_arrays

    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise BadInputError(f"calibration count must be a positive integer, got {count!r}")
    chw = _check_shape(input_shape)
    path = Path(source)
    if path.is_dir():
        images = _load_directory(path, count, chw, mean, std, seed)
    elif path.is_file():
        if path.suffix.lower() != ".npy":
            raise BadInputError(f"{path}: calibration data must be a dataset name, an image folder or a .npy file")
        images = _load_npy(path, count, chw, seed)
    elif source in DATASETS:
        images, _ = load_arrays(source, "train", data_dir=data_dir, limit=count, image_size=chw[1] if chw[1] == chw[2] else None)
        if tuple(images.shape[1:]) != chw:
            raise BadInputError(f"dataset {source!r} gives images {tuple(images.shape[1:])}, the model needs {chw}; "
                                "calibrate with the dataset the model was trained on")
    elif path.suffix or "/" in source or "\\" in source:
        raise BadInputError(f"calibration data not found: {source}; check the path")
    else:
        try:
            lookup(DATASETS, source, "dataset")
        except BadInputError as exc:
            raise BadInputError(f"{exc.message}; or pass an existing image folder or .npy file") from None
    return images


def _range_tensors(proto: Any) -> list[str]:
    """Float tensors whose int8 range matters: graph inputs and the data inputs of Conv/Gemm/MatMul."""
    from onnx import TensorProto

    from .onnx_precision import linear_data_inputs, tensor_types

    types = tensor_types(proto)
    inits = {i.name for i in proto.graph.initializer}
    names = [i.name for i in proto.graph.input if i.name not in inits] + linear_data_inputs(proto)
    return [n for n in dict.fromkeys(names) if types.get(n) == TensorProto.FLOAT]


class _ImageReader:
    """``onnxruntime.quantization.CalibrationDataReader`` over a slice of the calibration images.

    A static-batch model gets batches of exactly its batch size: the last one is filled up with
    images from the start of the slice (real images, so no range is widened by padding).
    """

    def __init__(self, input_name: str, images: np.ndarray, step: int) -> None:
        self.input_name, self.images, self.step, self.start = input_name, images, step, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.start >= len(self.images):
            return None
        chunk = self.images[self.start : self.start + self.step]
        self.start += self.step
        while len(chunk) < self.step:
            chunk = np.concatenate([chunk, self.images[: self.step - len(chunk)]])
        return {self.input_name: chunk}


def _static_batch(proto: Any) -> int | None:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return int(dims[0].dim_value) if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None


def entropy_amax(hist: np.ndarray, max_value: float) -> float:
    """TensorRT-style KL-divergence threshold for a histogram of |x| over [0, max_value] (module docstring)."""
    h = np.asarray(hist, dtype=np.float64).copy()
    nbins = len(h)
    if h.sum() <= 0 or max_value <= 0:
        return ZERO_AMAX
    if nbins <= ENTROPY_LEVELS:
        return float(max_value)
    h[0] = h[1]  # as NVIDIA's reference: the spike of exact zeros (ReLU) must not dominate the divergence
    total = h.sum()
    if total <= 0:
        return float(max_value)
    cum = np.concatenate([[0.0], np.cumsum(h)])
    nonzero = np.concatenate([[0], np.cumsum(h > 0)])
    xlogx = np.where(h > 0, h * np.log(np.where(h > 0, h, 1.0)), 0.0)
    cum_xlogx = np.concatenate([[0.0], np.cumsum(xlogx)])
    cand = np.arange(ENTROPY_LEVELS, nbins + 1)  # i = number of bins kept; i = nbins clips nothing
    bounds = -(-np.arange(ENTROPY_LEVELS + 1)[None, :] * cand[:, None] // ENTROPY_LEVELS)  # bin j is in level j*128//i
    sums = cum[bounds[:, 1:]] - cum[bounds[:, :-1]]  # mass of the first i bins per level (Q before expansion)
    counts = nonzero[bounds[:, 1:]] - nonzero[bounds[:, :-1]]  # non-zero bins per level (Q is spread over them)
    outliers = total - cum[cand]
    last = h[cand - 1]
    folded_last = last + outliers  # bin i-1 of P
    p_mass = sums.copy()
    p_mass[:, -1] += outliers  # mass of P per level
    plogp = cum_xlogx[cand - 1] + np.where(folded_last > 0, folded_last * np.log(np.maximum(folded_last, 1e-300)), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        level_q = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)  # Q of each non-zero bin of the level
        cross = np.where(p_mass > 0, p_mass * np.log(level_q), 0.0)  # sum over bins of P log Q, per level
        kl = plogp / total - np.log(total) - cross.sum(axis=1) / total + np.log(cum[cand])
    # P > 0 where Q = 0 (outliers folded into an empty bin i-1): infinite divergence, never chosen
    kl = np.where(np.isfinite(kl) & ~((last == 0) & (outliers > 0)), kl, np.inf)
    if not np.isfinite(kl).any():
        return float(max_value)
    best = int(cand[int(np.argmin(kl))])
    return float(best * max_value / nbins)


def fold_signed_histogram(hist: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, float]:
    """(histogram of |x| over [0, top], top) from onnxruntime's entropy histogram, symmetric about 0."""
    hist = np.asarray(hist, dtype=np.float64)
    half = len(hist) // 2
    if len(hist) % 2 or len(edges) != len(hist) + 1 or not np.isclose(edges[0], -edges[-1]):
        raise VerificationError("onnxruntime's entropy histogram is not symmetric about 0; "
                                "calibrate with --calib-method minmax or percentile and report this model")
    return hist[half:] + hist[:half][::-1], float(edges[-1])


def _ort_calibrator(method: str, model_path: Path, augmented: Path, percentile: float) -> Any:
    """onnxruntime's calibrator for ``method``; options chosen so each method means what the module docstring says."""
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    from .onnx_precision import QUANTIZED_OPS

    options: dict[str, Any] = {
        "minmax": {},
        "entropy": {"num_bins": 2 * ENTROPY_BINS},  # signed, symmetric: folds into ENTROPY_BINS bins of |x|
        "percentile": {"num_bins": ENTROPY_BINS, "percentile": percentile, "symmetric": True},
    }[method]
    kind = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[method]
    return create_calibrator(model_path, list(QUANTIZED_OPS), augmented_model_path=str(augmented),
                             calibrate_method=kind, extra_options=options)


def collect_activation_ranges(
    proto: Any,
    images: np.ndarray,
    method: str = "entropy",
    batch: int = 32,
    percentile: float = DEFAULT_PERCENTILE,
) -> dict[str, float]:
    """Tensor name -> amax (> 0) for the graph input and every Conv/Gemm/MatMul data input.

    onnxruntime's calibrator measures the tensors, ``CHUNK_IMAGES`` images per ``collect_data``
    call (its histograms merge across calls, so memory stays bounded); amax is the larger end
    of the range it computes. The graph input gets max |x| of the images themselves.
    """
    import onnx

    from .onnx_precision import quiet_library

    if method not in CALIB_METHODS:
        lookup({m: m for m in CALIB_METHODS}, method, "calibration method")
    if not 0 < percentile <= 100:
        raise BadInputError(f"percentile {percentile} must be in (0, 100]; e.g. 99.99")
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0 or not np.issubdtype(images.dtype, np.floating):
        raise BadInputError(f"calibration images have shape {images.shape} ({images.dtype}); pass float N x C x H x W, N >= 1")
    if batch < 1:
        raise BadInputError(f"batch must be >= 1, got {batch}")
    images = np.ascontiguousarray(images, dtype=np.float32)
    names = _range_tensors(proto)
    graph_inputs = {i.name for i in proto.graph.input}
    step = _static_batch(proto) or batch
    with tempfile.TemporaryDirectory(prefix="sdnas-calib-") as tmp, quiet_library():
        model_path = Path(tmp) / "model.onnx"
        onnx.save(proto, str(model_path))
        calibrator = _ort_calibrator(method, model_path, Path(tmp) / "augmented.onnx", percentile)
        input_name = proto.graph.input[0].name
        for start in range(0, len(images), CHUNK_IMAGES):
            calibrator.collect_data(_ImageReader(input_name, images[start : start + CHUNK_IMAGES], step))
        if method == "entropy":  # onnxruntime's histograms, our threshold search (module docstring)
            hists = calibrator.collector.get_histogram_dict()
            measured = {name: entropy_amax(*fold_signed_histogram(*hists[name][:2])) for name in names if name in hists}
        else:
            measured = {name: data.range_value for name, data in calibrator.compute_data().items()}
    ranges = {}
    for name in names:
        if name in graph_inputs:  # the image itself: its extremes are signal, never clipped (module docstring)
            amax = float(np.abs(images).max())
        elif name in measured:
            amax = float(np.abs(np.asarray(measured[name], dtype=np.float64)).max())
        else:
            continue
        if not np.isfinite(amax):
            raise BadInputError(f"activation {name!r} is not finite on the calibration images; check the model's "
                                "weights and the images' normalization")
        ranges[name] = max(amax, ZERO_AMAX)
    return ranges


def _cache_key(proto: Any, method: str, count: int, source: str, percentile: float) -> dict[str, Any]:
    return {
        "model_sha256": hashlib.sha256(proto.SerializeToString()).hexdigest(),
        "method": method,
        "count": int(count),
        "source": str(source),
        "percentile": float(percentile) if method == "percentile" else None,
    }


def _read_cache(path: Path, key: dict[str, Any]) -> dict[str, float] | None:
    """The cached ranges when ``path`` holds the same key; None when there is no file."""
    if not path.exists():
        return None
    data = load_json(path, "calibration cache")
    fix = "delete it or pass another --calib-cache"
    ok = (isinstance(data, dict) and data.get("schema") == CACHE_SCHEMA and isinstance(data.get("key"), dict)
          and isinstance(data.get("ranges"), dict))
    ranges = data.get("ranges") if ok else None
    if not ok or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in ranges.values()):
        raise BadInputError(f"{path}: not a {CACHE_SCHEMA} calibration cache; {fix}")
    for field, value in key.items():
        if data["key"].get(field) != value:
            raise BadInputError(f"{path} was made for another model or calibration setting ({field} differs); {fix}")
    return {str(k): float(v) for k, v in ranges.items()}


def calibrate(
    proto: Any,
    images: np.ndarray,
    method: str = "entropy",
    cache_path: Path | str | None = None,
    source: str = "",
    percentile: float = DEFAULT_PERCENTILE,
) -> tuple[dict[str, float], bool]:
    """``(ranges, loaded_from_cache)``: reuse ``cache_path`` when its key matches, else compute and save it.

    The key is the model's sha256, the method, the image count, ``source`` and the percentile;
    a cache with another key is an error (never silently reused or overwritten).
    """
    if method not in CALIB_METHODS:
        lookup({m: m for m in CALIB_METHODS}, method, "calibration method")
    key = _cache_key(proto, method, len(images), source, percentile)
    path = Path(cache_path) if cache_path is not None else None
    if path is not None:
        cached = _read_cache(path, key)
        if cached is not None:
            return cached, True
    ranges = collect_activation_ranges(proto, images, method=method, percentile=percentile)
    if path is not None:
        atomic_write_json(path, {
            "schema": CACHE_SCHEMA,
            "key": key,
            "ranges": ranges,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        })
    return ranges, False
