"""compare_logits: accuracy drop and top-1 agreement decide, per precision."""

from __future__ import annotations

import numpy as np
import pytest

from sdnas_deploy.export.accuracy import DEFAULT_MAX_ACCURACY_DROP, MIN_TOP1_AGREEMENT, compare_logits
from sdnas_deploy.errors import BadInputError


def logits_for(predictions: np.ndarray, classes: int = 10) -> np.ndarray:
    out = np.random.default_rng(0).uniform(-1, 0, (len(predictions), classes)).astype(np.float32)
    out[np.arange(len(predictions)), predictions] = 5.0
    return out


LABELS = np.arange(200) % 10


def test_identical_logits_pass_with_zero_drop() -> None:
    ref = logits_for(LABELS)
    delta = compare_logits(ref, ref.copy(), LABELS, "fp32")
    assert delta.passed and delta.accuracy_drop == 0 and delta.top1_agreement == 1.0 and delta.max_abs_diff == 0
    assert delta.reference_accuracy == delta.candidate_accuracy == 1.0
    assert delta.max_accuracy_drop == DEFAULT_MAX_ACCURACY_DROP["fp32"]
    assert set(delta.to_dict()) >= {"n_images", "precision", "top1_agreement", "reference_accuracy",
                                    "candidate_accuracy", "accuracy_drop", "max_accuracy_drop", "max_abs_diff", "passed"}
    assert "\n" not in delta.describe() and "fp32" in delta.describe()


def test_accuracy_drop_against_the_tolerance() -> None:
    ref = logits_for(LABELS)
    wrong = LABELS.copy()
    wrong[:3] = (wrong[:3] + 1) % 10  # 3 of 200 flipped: drop 0.015, agreement 0.985
    cand = logits_for(wrong)
    assert compare_logits(ref, cand, LABELS, "int8").passed  # 0.015 <= 0.02, 0.985 >= 0.96
    failed = compare_logits(ref, cand, LABELS, "fp16")  # 0.015 > 0.01
    assert not failed.passed and failed.accuracy_drop == pytest.approx(0.015)
    assert "drop +0.0150" in failed.describe()
    assert compare_logits(ref, cand, LABELS, "fp16", max_accuracy_drop=0.02).passed
    assert not compare_logits(ref, cand, LABELS, "int8", max_accuracy_drop=0.0).passed


def test_agreement_floor_catches_flips_that_cancel_in_accuracy() -> None:
    labels = LABELS
    ref_pred = labels.copy()
    ref_pred[:10] = (ref_pred[:10] + 1) % 10  # the reference is wrong on 10 images
    cand_pred = labels.copy()
    cand_pred[10:20] = (cand_pred[10:20] + 1) % 10  # the candidate fixes those and breaks 10 others
    delta = compare_logits(logits_for(ref_pred), logits_for(cand_pred), labels, "int8")
    assert delta.accuracy_drop == 0 and delta.top1_agreement == pytest.approx(0.9)
    assert not delta.passed and delta.min_top1_agreement == MIN_TOP1_AGREEMENT["int8"]


def test_without_labels_only_agreement_counts() -> None:
    ref = logits_for(LABELS)
    near = ref + 0.01
    delta = compare_logits(ref, near, None, "fp16")
    assert delta.passed and delta.accuracy_drop is None and delta.reference_accuracy is None
    assert delta.max_abs_diff == pytest.approx(0.01, rel=1e-3)
    far = logits_for((LABELS + 1) % 10)
    assert not compare_logits(ref, far, None, "fp16").passed
    assert "no labels" in compare_logits(ref, far, None, "fp16").describe()


def test_non_finite_and_bad_arguments() -> None:
    ref = logits_for(LABELS)
    broken = ref.copy()
    broken[0, 0] = np.nan
    assert not compare_logits(ref, broken, LABELS, "int8").passed
    with pytest.raises(BadInputError, match="same non-empty batch"):
        compare_logits(ref, ref[:5], LABELS, "int8")
    with pytest.raises(BadInputError, match="unknown precision"):
        compare_logits(ref, ref, LABELS, "int4")
    with pytest.raises(BadInputError, match=r"fraction in \[0, 1\]"):
        compare_logits(ref, ref, LABELS, "int8", max_accuracy_drop=-1)
    with pytest.raises(BadInputError, match="one integer label per image"):
        compare_logits(ref, ref, LABELS[:5], "int8")
