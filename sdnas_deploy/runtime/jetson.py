"""NVIDIA Jetson: detection, power model, clock state, and board power during a profile.

Jetson latency depends on the power mode (``nvpmodel``) and on DVFS: unless clocks are pinned
(``sudo jetson_clocks``), a short benchmark measures a GPU still ramping up. A report therefore
records the mode and the clock state and warns when clocks are not locked (DESIGN.md §3), and adds
board power per rail read from jtop (``jetson-stats``) or, failing that, a ``tegrastats`` subprocess.

Every parser takes text (tests feed sample lines); every filesystem reader takes a ``root`` so tests
point it at a temporary tree. Off Jetson nothing is read beyond one ``is_file`` and nothing is spawned.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

ROOT = Path("/")
TEGRA_RELEASE = "etc/nv_tegra_release"
DT_MODEL = "proc/device-tree/model"
GPU_DEVFREQ_GLOBS = ("sys/devices/platform/*gpu*/devfreq/*", "sys/devices/gpu.0/devfreq/*",
                     "sys/devices/platform/bus@0/*gpu*/devfreq/*")
CPU_GOVERNOR_GLOB = "sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor"
TEGRASTATS_INTERVAL_MS = 100
LOCK_FIX = "run `sudo jetson_clocks` (after choosing a power mode with `sudo nvpmodel -m N`) before profiling"

# "VDD_IN 4845mW/4845mW" (Orin, JetPack 5/6) or "POM_5V_IN 3210/3210" (Nano/TX2/Xavier): current/average.
_RAIL_RE = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_NON_RAILS = {"RAM", "SWAP", "IRAM", "LFB"}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip().strip("\x00").strip()
    except OSError:
        return None


def is_jetson(root: Path = ROOT) -> bool:
    """True on an NVIDIA Jetson (L4T writes ``/etc/nv_tegra_release``)."""
    return (Path(root) / TEGRA_RELEASE).is_file()


def parse_tegra_release(text: str) -> dict[str, str | None]:
    """``# R36 (release), REVISION: 4.0, GCID: ..., BOARD: generic, ...`` → ``{"l4t": "36.4.0", "board": ...}``."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    major = re.search(r"R(\d+)", first)
    revision = re.search(r"REVISION:\s*([0-9.]+)", first)
    board = re.search(r"BOARD:\s*([^,]+)", first)
    l4t = f"{major.group(1)}.{revision.group(1)}" if major and revision else (major.group(1) if major else None)
    return {"l4t": l4t, "board": board.group(1).strip() if board else None, "release_line": first or None}


def parse_nvpmodel(text: str) -> dict[str, Any]:
    """``nvpmodel -q`` output (``"NV Power Mode: MAXN\\n0"``) → ``{"mode": "MAXN", "id": 0}`` (None when absent)."""
    mode: str | None = None
    mode_id: int | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("NV Power Mode:"):
            mode = line.partition(":")[2].strip() or None
        elif line.isdigit() and mode_id is None:
            mode_id = int(line)
    return {"mode": mode, "id": mode_id}


def read_nvpmodel(timeout_s: float = 5.0) -> dict[str, Any] | None:
    """Query the power model with ``nvpmodel -q``; None when the tool is absent or fails."""
    exe = shutil.which("nvpmodel")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-q"], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvpmodel(done.stdout) if done.returncode == 0 else None


def read_cpu_governors(root: Path = ROOT) -> dict[str, str]:
    """``{"cpu0": "schedutil", ...}`` for every online core that exposes cpufreq."""
    result: dict[str, str] = {}
    for path in sorted(Path(root).glob(CPU_GOVERNOR_GLOB), key=lambda p: int(p.parent.parent.name[3:])):
        value = _read(path)
        if value:
            result[path.parent.parent.name] = value
    return result


def find_gpu_devfreq(root: Path = ROOT) -> Path | None:
    """The GPU's devfreq directory (``cur_freq``/``max_freq``/``governor``), or None."""
    for pattern in GPU_DEVFREQ_GLOBS:
        for path in sorted(Path(root).glob(pattern)):
            if (path / "cur_freq").is_file():
                return path
    return None


def read_gpu_clock(root: Path = ROOT) -> dict[str, Any] | None:
    """GPU devfreq state in Hz plus governor: ``{"cur_hz", "min_hz", "max_hz", "governor", "path"}``."""
    folder = find_gpu_devfreq(root)
    if folder is None:
        return None

    def num(name: str) -> int | None:
        text = _read(folder / name)
        return int(text) if text and text.isdigit() else None

    return {"cur_hz": num("cur_freq"), "min_hz": num("min_freq"), "max_hz": num("max_freq"),
            "governor": _read(folder / "governor"), "path": str(folder.relative_to(root))}


def clock_state(governors: Mapping[str, str], gpu: Mapping[str, Any] | None) -> dict[str, Any]:
    """Whether clocks are locked: every CPU governor ``performance`` and the GPU at its max frequency.

    Returns ``{"locked": bool | None, "reasons": [...]}``; ``locked`` is None when nothing was readable.
    """
    reasons: list[str] = []
    slow = sorted({g for g in governors.values() if g != "performance"})
    if slow:
        reasons.append(f"CPU governor {', '.join(slow)} (not performance)")
    if gpu is not None:
        cur, top = gpu.get("cur_hz"), gpu.get("max_hz")
        if cur is not None and top is not None and cur < top:
            reasons.append(f"GPU at {cur / 1e6:.0f} MHz of {top / 1e6:.0f} MHz max")
    if not governors and gpu is None:
        return {"locked": None, "reasons": ["no cpufreq/devfreq readable"]}
    return {"locked": not reasons, "reasons": reasons}


def clock_warning(state: Mapping[str, Any]) -> str | None:
    """One warning line when clocks are not locked (or could not be read), else None."""
    if state.get("locked") is True:
        return None
    why = "; ".join(state.get("reasons") or []) or "state unknown"
    return f"Jetson clocks are not locked ({why}): timings vary with DVFS; {LOCK_FIX}"


def parse_tegrastats_line(line: str) -> dict[str, float]:
    """Instantaneous power per rail in mW from one tegrastats line (``{"VDD_IN": 4845.0, ...}``)."""
    return {name: float(cur) for name, cur, _avg in _RAIL_RE.findall(line) if name not in _NON_RAILS}


def parse_jtop_power(power: Mapping[str, Any]) -> dict[str, float]:
    """jtop's ``jetson.power`` (``{"rail": {name: {"power": mW, ...}}, "tot": {"power": mW}}``) → mW per rail."""
    result: dict[str, float] = {}
    for name, values in (power.get("rail") or {}).items():
        if isinstance(values, Mapping) and isinstance(values.get("power"), (int, float)):
            result[str(name)] = float(values["power"])
    total = power.get("tot")
    if isinstance(total, Mapping) and isinstance(total.get("power"), (int, float)):
        result["total"] = float(total["power"])
    return result


def summarize_power(samples: Iterable[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``{rail: {"mean_mw", "max_mw", "samples"}}`` over power samples (rails missing in a sample are skipped)."""
    per_rail: dict[str, list[float]] = {}
    for sample in samples:
        for rail, mw in sample.items():
            per_rail.setdefault(rail, []).append(float(mw))
    return {rail: {"mean_mw": sum(v) / len(v), "max_mw": max(v), "samples": len(v)}
            for rail, v in sorted(per_rail.items())}


class PowerSampler:
    """Background power sampling during a run: ``with sampler: ...`` then :meth:`summary`."""

    source = "none"

    def __init__(self) -> None:
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> "PowerSampler":
        self._thread = threading.Thread(target=self._run, name=f"{self.source}-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _close(self) -> None:
        """Unblock :meth:`_run` (subclasses stop their subprocess here)."""

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "rails": summarize_power(self.samples), "samples": len(self.samples)}


class TegrastatsSampler(PowerSampler):
    """Runs ``tegrastats --interval 100`` in a subprocess and parses each line."""

    source = "tegrastats"

    def __init__(self, exe: str, interval_ms: int = TEGRASTATS_INTERVAL_MS) -> None:
        super().__init__()
        self._proc = subprocess.Popen([exe, "--interval", str(interval_ms)], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)

    def _run(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if self._stop.is_set():
                break
            sample = parse_tegrastats_line(line)
            if sample:
                self.samples.append(sample)

    def _close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()


class JtopSampler(PowerSampler):
    """Polls jtop (jetson-stats service) every ``interval_s`` while the run lasts."""

    source = "jtop"

    def __init__(self, jtop_cls: Any, interval_s: float = TEGRASTATS_INTERVAL_MS / 1000.0) -> None:
        super().__init__()
        self._jtop = jtop_cls(interval=interval_s)
        self._interval = interval_s
        self._jtop.start()  # raises when the jtop service is not running: the caller falls back

    def _run(self) -> None:
        while not self._stop.is_set() and self._jtop.ok():
            sample = parse_jtop_power(self._jtop.power or {})
            if sample:
                self.samples.append(sample)
            self._stop.wait(self._interval)

    def _close(self) -> None:
        try:
            self._jtop.close()
        except Exception:  # the service may already be gone; sampling is best effort
            pass


def power_sampler(root: Path = ROOT) -> PowerSampler | None:
    """jtop when importable and its service answers, else tegrastats when on PATH; None off Jetson."""
    if not is_jetson(root):
        return None
    try:
        from jtop import jtop  # type: ignore[import-not-found]

        return JtopSampler(jtop)
    except Exception:  # not installed, or the jetson_stats service is not running
        pass
    exe = shutil.which("tegrastats")
    if exe is None:
        return None
    try:
        return TegrastatsSampler(exe)
    except OSError:
        return None


def jetson_info(root: Path = ROOT, query_nvpmodel: bool = True) -> dict[str, Any] | None:
    """The report's ``jetson`` block (None off Jetson): L4T, model, power mode, clocks, warnings."""
    if not is_jetson(root):
        return None
    release = parse_tegra_release(_read(Path(root) / TEGRA_RELEASE) or "")
    governors = read_cpu_governors(root)
    gpu = read_gpu_clock(root)
    state = clock_state(governors, gpu)
    nvp = read_nvpmodel() if query_nvpmodel else None
    warnings = [w for w in [clock_warning(state)] if w]
    if nvp is None:
        warnings.append("nvpmodel power mode unknown (`nvpmodel -q` unavailable); record it with the results")
    return {
        "l4t": release["l4t"], "board": release["board"], "model": _read(Path(root) / DT_MODEL),
        "nvpmodel": nvp, "cpu_governors": governors, "gpu_clock": gpu, "clocks_locked": state["locked"],
        "power": None, "warnings": warnings,
    }
