"""Jetson detection, power mode, clock state and board-power parsing, on sample texts and temporary trees."""

from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

import pytest

from sdnas_deploy.runtime.jetson import (
    TegrastatsSampler, clock_state, clock_warning, find_gpu_devfreq, is_jetson, jetson_info, parse_jtop_power,
    parse_nvpmodel, parse_tegra_release, parse_tegrastats_line, power_sampler, read_cpu_governors, read_gpu_clock,
    summarize_power,
)
from sdnas_deploy.profile.report import jetson_lines

ORIN_LINE = ("11-29-2026 17:25:46 RAM 2300/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@729,0%@729,"
             "off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] CPU@45.5C GPU@44.9C VDD_IN 4845mW/4845mW "
             "VDD_CPU_GPU_CV 800mW/800mW VDD_SOC 1200mW/1200mW")
XAVIER_LINE = ("RAM 1234/3964MB (lfb 25x4MB) IRAM 0/252kB(lfb 252kB) CPU [5%@102,3%@102,2%@102,1%@102] "
               "EMC_FREQ 2%@1600 GR3D_FREQ 0%@76 APE 25 PLL@30C CPU@33C POM_5V_IN 3210/3210 POM_5V_GPU 0/0 "
               "POM_5V_CPU 406/406")
RELEASE = "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13 2024\n"


def make_jetson(root: Path, governors: list[str], gpu_cur: int, gpu_max: int) -> Path:
    """A minimal L4T-like tree: release file, per-core cpufreq governors, GPU devfreq."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text(RELEASE)
    for i, gov in enumerate(governors):
        d = root / f"sys/devices/system/cpu/cpu{i}/cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(gov + "\n")
    gpu = root / "sys/devices/platform/17000000.gpu/devfreq/17000000.gpu"
    gpu.mkdir(parents=True)
    for name, value in (("cur_freq", gpu_cur), ("max_freq", gpu_max), ("min_freq", 306000000)):
        (gpu / name).write_text(f"{value}\n")
    (gpu / "governor").write_text("nvhost_podgov\n")
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_text("NVIDIA Jetson Orin Nano Developer Kit\x00")
    return root


def test_release_and_nvpmodel_parsing() -> None:
    info = parse_tegra_release(RELEASE)
    assert info["l4t"] == "36.4.0" and info["board"] == "generic"
    assert parse_tegra_release("")["l4t"] is None
    assert parse_nvpmodel("NV Power Mode: MAXN\n0\n") == {"mode": "MAXN", "id": 0}
    assert parse_nvpmodel("NVPM WARN: ...\nNV Power Mode: 15W\n2") == {"mode": "15W", "id": 2}
    assert parse_nvpmodel("garbage") == {"mode": None, "id": None}


def test_tegrastats_lines_orin_and_xavier() -> None:
    assert parse_tegrastats_line(ORIN_LINE) == {"VDD_IN": 4845.0, "VDD_CPU_GPU_CV": 800.0, "VDD_SOC": 1200.0}
    assert parse_tegrastats_line(XAVIER_LINE) == {"POM_5V_IN": 3210.0, "POM_5V_GPU": 0.0, "POM_5V_CPU": 406.0}
    assert parse_tegrastats_line("RAM 2300/7620MB SWAP 0/3810MB") == {}  # memory is not a power rail


def test_jtop_power_and_summary() -> None:
    power = {"rail": {"VDD_GPU_SOC": {"volt": 5000, "curr": 600, "power": 3000, "avg": 2900},
                      "VDD_CPU_CV": {"power": 1000}}, "tot": {"power": 4000, "avg": 3900}}
    assert parse_jtop_power(power) == {"VDD_GPU_SOC": 3000.0, "VDD_CPU_CV": 1000.0, "total": 4000.0}
    summary = summarize_power([{"VDD_IN": 4000.0, "VDD_SOC": 1000.0}, {"VDD_IN": 5000.0}])
    assert summary["VDD_IN"] == {"mean_mw": 4500.0, "max_mw": 5000.0, "samples": 2}
    assert summary["VDD_SOC"]["samples"] == 1


def test_clock_readers_on_a_tree(tmp_path: Path) -> None:
    root = make_jetson(tmp_path, ["schedutil", "performance"], 306000000, 1020000000)
    assert is_jetson(root) and not is_jetson(tmp_path / "nowhere")
    assert read_cpu_governors(root) == {"cpu0": "schedutil", "cpu1": "performance"}
    assert find_gpu_devfreq(root) == root / "sys/devices/platform/17000000.gpu/devfreq/17000000.gpu"
    gpu = read_gpu_clock(root)
    assert gpu is not None and (gpu["cur_hz"], gpu["max_hz"], gpu["governor"]) == (306000000, 1020000000, "nvhost_podgov")
    state = clock_state(read_cpu_governors(root), gpu)
    assert state["locked"] is False and len(state["reasons"]) == 2
    warning = clock_warning(state)
    assert warning is not None and "sudo jetson_clocks" in warning and "306 MHz of 1020 MHz" in warning


def test_locked_clocks_give_no_warning() -> None:
    state = clock_state({"cpu0": "performance"}, {"cur_hz": 1020000000, "max_hz": 1020000000})
    assert state == {"locked": True, "reasons": []} and clock_warning(state) is None
    unknown = clock_state({}, None)
    assert unknown["locked"] is None and "not locked" in (clock_warning(unknown) or "")


def test_jetson_info_block(tmp_path: Path) -> None:
    root = make_jetson(tmp_path, ["performance"] * 4, 1020000000, 1020000000)
    info = jetson_info(root, query_nvpmodel=False)
    assert info is not None and info["l4t"] == "36.4.0" and info["clocks_locked"] is True
    assert info["model"] == "NVIDIA Jetson Orin Nano Developer Kit" and info["power"] is None
    assert any("nvpmodel power mode unknown" in w for w in info["warnings"])
    info["nvpmodel"] = {"mode": "MAXN", "id": 0}
    info["power"] = {"source": "tegrastats", "samples": 3, "rails": summarize_power([{"VDD_IN": 4845.0}] * 3)}
    text = "\n".join(jetson_lines(info))
    assert "L4T 36.4.0" in text and "power mode MAXN (id 0)" in text and "clocks locked" in text
    assert "VDD_IN 4845 mW (max 4845)" in text


def test_off_jetson_nothing_is_read_or_spawned(tmp_path: Path) -> None:
    assert jetson_info(tmp_path) is None and power_sampler(tmp_path) is None


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX shell script")
def test_tegrastats_sampler_reads_a_subprocess(tmp_path: Path) -> None:
    """The sampler's subprocess plumbing, with a script that prints sample tegrastats lines."""
    script = tmp_path / "tegrastats"
    script.write_text("#!/bin/sh\nwhile true; do\n  echo '" + ORIN_LINE + "'\n  sleep 0.02\ndone\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    with TegrastatsSampler(str(script)) as sampler:
        deadline = time.time() + 5
        while len(sampler.samples) < 3 and time.time() < deadline:
            time.sleep(0.02)
    summary = sampler.summary()
    assert summary["source"] == "tegrastats" and summary["samples"] >= 3
    assert summary["rails"]["VDD_IN"]["mean_mw"] == 4845.0
    assert sampler._proc.poll() is not None  # the subprocess was stopped
