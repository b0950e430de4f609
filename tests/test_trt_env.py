"""trt_env: version eras, platform remediation, L4T/JetPack parsing, fingerprints and sidecar checks."""

from __future__ import annotations

import importlib.util
import json

import pytest

from sdnas_deploy.runtime import trt_env
from sdnas_deploy.runtime.fingerprint import file_sha256
from sdnas_deploy.errors import BadInputError, UnsupportedEnvironmentError, VerificationError

ORIN_RELEASE = "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024\n"
XAVIER_RELEASE = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n"


@pytest.mark.parametrize(
    ("text", "parsed", "era"),
    [
        ("10.12.0.36", (10, 12, 0, 36), "strong"),
        ("10.13.3.9", (10, 13, 3, 9), "strong"),
        ("11.0.0", (11, 0, 0), "strong"),
        ("10.3.0", (10, 3, 0), "weak"),
        ("10.11.0.33", (10, 11, 0, 33), "weak"),
        ("8.6.1", (8, 6, 1), "weak"),
        ("8.6.2.3+cuda12.2", (8, 6, 2, 3), "weak"),
        ("10.12.0.post1", (10, 12, 0), "strong"),
    ],
)
def test_parse_version_and_era(text: str, parsed: tuple[int, ...], era: str) -> None:
    assert trt_env.parse_version(text) == parsed
    assert trt_env.builder_era(text) == era


@pytest.mark.parametrize("bad", ["", "abc", "v10.3", "ten.three", None])
def test_parse_version_rejects_garbage(bad: str) -> None:
    with pytest.raises(BadInputError) as err:
        trt_env.parse_version(bad)
    assert err.value.exit_code == 2 and "10.3.0" in err.value.message


def test_minimum_supported_version() -> None:
    assert trt_env.check_supported_version("8.6.1") == (8, 6, 1)
    assert trt_env.check_supported_version("10.3.0")[:2] == (10, 3)
    with pytest.raises(UnsupportedEnvironmentError) as err:
        trt_env.check_supported_version("8.5.3.1")
    assert err.value.exit_code == 5
    assert "8.6" in err.value.message and "named-tensor" in err.value.message and "--format onnx" in err.value.message


def test_remediation_differs_on_jetson_and_x86(tmp_path) -> None:
    release = tmp_path / "nv_tegra_release"
    x86 = trt_env.tensorrt_remediation(release)
    assert not trt_env.is_jetson(release)
    assert "pip install tensorrt" in x86 and "NVIDIA driver" in x86 and x86.endswith("or use --format onnx")
    release.write_text(ORIN_RELEASE)
    assert trt_env.is_jetson(release)
    jetson = trt_env.tensorrt_remediation(release)
    assert "apt install nvidia-tensorrt" in jetson and "pip wheels do not exist for Jetson" in jetson
    assert jetson.endswith("or use --format onnx") and "pip install" not in jetson


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_require_tensorrt_without_tensorrt_is_exit_5() -> None:
    with pytest.raises(UnsupportedEnvironmentError) as err:
        trt_env.require_tensorrt()
    assert err.value.exit_code == 5
    assert "ImportError" in err.value.message or "ModuleNotFoundError" in err.value.message
    assert err.value.message.endswith("or use --format onnx") and "\n" not in err.value.message
    assert trt_env.tensorrt_version() is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [(ORIN_RELEASE, "36.3.0"), (XAVIER_RELEASE, "35.4.1"), ("# R32 (release), REVISION: 7.1, GCID: 29818004", "32.7.1"),
     ("", None), ("not a release file", None), (None, None)],
)
def test_parse_l4t_release(text: str, expected: str | None) -> None:
    assert trt_env.parse_l4t_release(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("6.0+b106", "6.0"), ("6.1+b123", "6.1"), ("5.1.2-b104", "5.1.2"), ("6.2", "6.2"), ("", None), (None, None)],
)
def test_parse_jetpack_version(text: str, expected: str | None) -> None:
    assert trt_env.parse_jetpack_version(text) == expected


def test_l4t_and_jetpack_readers_tolerate_absence(tmp_path) -> None:
    assert trt_env.l4t_release(tmp_path / "missing") is None
    release = tmp_path / "nv_tegra_release"
    release.write_text(ORIN_RELEASE)
    assert trt_env.l4t_release(release) == "36.3.0"
    assert trt_env.jetpack_version(dpkg_query=str(tmp_path / "no-such-dpkg-query")) is None


def test_engine_fingerprint_fields_and_key(tmp_path) -> None:
    release = tmp_path / "nv_tegra_release"
    fp = trt_env.engine_fingerprint("fp16", "dla:0", release_path=release)
    assert set(fp) == {"gpu_name", "compute_capability", "tensorrt", "cuda", "l4t", "jetpack", "precision", "device", "key"}
    assert fp["precision"] == "fp16" and fp["device"] == "dla:0" and fp["l4t"] is None
    assert len(fp["key"]) == 16 and fp["key"] == trt_env.fingerprint_key(fp)
    if fp["compute_capability"] is not None:
        assert fp["compute_capability"].startswith("sm_")
    # the key names the build environment: precision does not change it, the GPU does
    assert trt_env.engine_fingerprint("int8", "dla:0", release_path=release)["key"] == fp["key"]
    assert trt_env.fingerprint_key({**fp, "gpu_name": "Orin"}) != fp["key"]
    release.write_text(ORIN_RELEASE)
    assert trt_env.engine_fingerprint("fp16", "dla:0", release_path=release)["l4t"] == "36.3.0"


def _fp(**over):
    base = {"gpu_name": "Orin", "compute_capability": "sm_87", "tensorrt": "10.3.0", "cuda": "12.6", "l4t": "36.3.0",
            "jetpack": "6.1", "precision": "fp16", "device": "gpu"}
    base.update(over)
    base["key"] = trt_env.fingerprint_key(base)
    return base


def test_fingerprint_match_returns_no_warnings() -> None:
    assert trt_env.check_engine_fingerprint(_fp(), _fp()) == []
    # the module's own version carries a build number the metadata lacks: same install
    assert trt_env.check_engine_fingerprint(_fp(tensorrt="10.3.0"), _fp(tensorrt="10.3.0.30")) == []
    # CUDA / JetPack / precision do not make an engine non-portable by themselves
    assert trt_env.check_engine_fingerprint(_fp(), _fp(cuda="12.2", jetpack="6.0", precision="int8")) == []


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("gpu_name", "NVIDIA H200", "this device is NVIDIA H200"),
        ("compute_capability", "sm_90", "(sm_90)"),
        ("tensorrt", "10.13.0", "TensorRT 10.13.0"),
        ("device", "dla:0", "on dla:0"),
        ("l4t", "36.4.0", "L4T 36.4.0"),
    ],
)
def test_fingerprint_mismatch_refuses_with_exit_5(field: str, value: str, needle: str) -> None:
    recorded, current = _fp(), _fp(**{field: value})
    assert trt_env.fingerprint_mismatches(recorded, current) == [field]
    with pytest.raises(UnsupportedEnvironmentError) as err:
        trt_env.check_engine_fingerprint(recorded, current)
    msg = err.value.message
    assert err.value.exit_code == 5 and needle in msg
    assert msg.startswith("engine was built for Orin (sm_87) with TensorRT 10.3.0")
    assert "rebuild it here with `sdnas export --format trt`" in msg and msg.endswith("or pass --force")
    warnings = trt_env.check_engine_fingerprint(recorded, current, force=True)
    assert len(warnings) == 1 and needle in warnings[0] and "--force" in warnings[0]


def test_l4t_compared_only_when_both_known() -> None:
    assert trt_env.check_engine_fingerprint(_fp(l4t=None), _fp(l4t="36.4.0")) == []
    assert trt_env.check_engine_fingerprint(_fp(l4t="36.3.0"), _fp(l4t=None)) == []


def test_missing_fingerprint_refuses_unless_forced() -> None:
    with pytest.raises(UnsupportedEnvironmentError) as err:
        trt_env.check_engine_fingerprint(None, _fp())
    assert "no build fingerprint" in err.value.message and "--force" in err.value.message
    assert "running anyway" in trt_env.check_engine_fingerprint({}, _fp(), force=True)[0]


def test_engine_sidecar_path() -> None:
    assert trt_env.engine_sidecar_path("runs/x/model.engine").as_posix() == "runs/x/model.engine.json"


def _engine_with_sidecar(tmp_path, fingerprint, **extra):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\x00raw-plan-bytes\x01")
    sidecar = {"schema": "sdnas-engine/1", "file": engine.name, "sha256": file_sha256(engine),
               "precision": "fp16", "fingerprint": fingerprint, **extra}
    trt_env.engine_sidecar_path(engine).write_text(json.dumps(sidecar))
    return engine


def test_sidecar_check_match_and_mismatch(tmp_path) -> None:
    engine = _engine_with_sidecar(tmp_path, _fp())
    sidecar, warnings = trt_env.check_engine_sidecar(engine, _fp())
    assert warnings == [] and sidecar["fingerprint"]["gpu_name"] == "Orin"
    with pytest.raises(UnsupportedEnvironmentError) as err:
        trt_env.check_engine_sidecar(engine, _fp(gpu_name="NVIDIA H200", compute_capability="sm_90", tensorrt="10.13.0"))
    assert "this device is NVIDIA H200 (sm_90) with TensorRT 10.13.0" in err.value.message
    _, warnings = trt_env.check_engine_sidecar(engine, _fp(gpu_name="NVIDIA H200"), force=True)
    assert len(warnings) == 1


def test_sidecar_check_against_this_machine(tmp_path) -> None:
    """Without ``current`` the check compares with this machine (no Orin here): refused, or warned with force."""
    engine = _engine_with_sidecar(tmp_path, _fp())
    with pytest.raises(UnsupportedEnvironmentError):
        trt_env.check_engine_sidecar(engine)
    _, warnings = trt_env.check_engine_sidecar(engine, force=True)
    assert warnings and "engine was built for Orin" in warnings[0]


def test_missing_sidecar_refuses_unless_forced(tmp_path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(UnsupportedEnvironmentError) as err:
        trt_env.check_engine_sidecar(engine, _fp())
    assert err.value.exit_code == 5 and "model.engine.json is missing" in err.value.message
    assert "--force" in err.value.message
    sidecar, warnings = trt_env.check_engine_sidecar(engine, _fp(), force=True)
    assert sidecar is None and "is missing" in warnings[0]


def test_sha_mismatch_is_exit_3_even_with_force(tmp_path) -> None:
    engine = _engine_with_sidecar(tmp_path, _fp())
    engine.write_bytes(b"another plan")
    for force in (False, True):
        with pytest.raises(VerificationError) as err:
            trt_env.check_engine_sidecar(engine, _fp(), force=force)
        assert err.value.exit_code == 3 and "sha256 differs" in err.value.message


def test_corrupt_sidecar_is_bad_input(tmp_path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"plan")
    trt_env.engine_sidecar_path(engine).write_text("{not json")
    with pytest.raises(BadInputError):
        trt_env.check_engine_sidecar(engine, _fp())
    trt_env.engine_sidecar_path(engine).write_text("[1, 2]")
    with pytest.raises(BadInputError, match="not a JSON object"):
        trt_env.check_engine_sidecar(engine, _fp())
