"""One-off generator of ``sdnas_deploy/data/assets/digits.npz`` (not used at run time).

Extracts the UCI "Optical Recognition of Handwritten Digits" test set as shipped by scikit-learn
(``sklearn.datasets.load_digits``: 1797 images, 8x8, integer values 0..16, 10 classes) into a
compressed NumPy archive with ``images`` (uint8, N x 8 x 8) and ``labels`` (int64, N), so the
package ships a real dataset without depending on scikit-learn. Prints the train-split mean/std
to paste into ``sdnas_deploy/data/digits.py`` (the tests check the pasted values).

Usage: ``.venv/bin/python tools/make_digits_asset.py``
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ASSET = REPO / "sdnas_deploy" / "data" / "assets" / "digits.npz"


def extract() -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 (exact: the source values are integers 0..16) and labels as int64."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    raw = np.asarray(bunch.images)
    if not np.array_equal(raw, np.round(raw)) or raw.min() < 0 or raw.max() > 16:
        raise SystemExit("unexpected digits values: expected integers 0..16")
    images = raw.astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    if images.shape != (1797, 8, 8) or labels.shape != (1797,):
        raise SystemExit(f"unexpected digits shapes {images.shape}, {labels.shape}")
    return images, labels


def main() -> int:
    sys.path.insert(0, str(REPO))
    from sdnas_deploy.io_utils import atomic_write_bytes

    images, labels = extract()
    buf = io.BytesIO()
    np.savez_compressed(buf, images=images, labels=labels)
    atomic_write_bytes(ASSET, buf.getvalue())
    ASSET.chmod(0o644)  # the temp file behind the atomic write is private (0600); a package file is not
    print(f"wrote {ASSET} ({ASSET.stat().st_size} bytes, {len(labels)} images)")

    from sdnas_deploy.data.digits import compute_train_stats

    mean, std = compute_train_stats()
    print(f"train-split statistics: DIGITS_MEAN = ({mean:.6f},)  DIGITS_STD = ({std:.6f},)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
