"""The human form of a profile report: stats table, trtexec-style breakdown, Jetson lines, warnings.

Rendered with rich to plain text (no colour codes) so logs, files and terminals read alike; the CLI
prints the same tables. Kept apart from profiler.py, which measures.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

from ..runtime.gpu_timing import STAGE_LABELS


def render_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A title line and a rich table rendered to plain text (no colour codes): logs, files and terminals alike."""
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console(file=io.StringIO(), width=110, color_system=None, force_terminal=False, soft_wrap=False)
    console.print(table)
    return title + "\n" + console.file.getvalue().rstrip()  # type: ignore[attr-defined]


def _stat_rows(stats: dict[str, Any]) -> list[list[str]]:
    skip = {"n", "cov", "std", "p50"}  # p50 is the median, shown once
    rows = [[name, f"{value:.4g}"] for name, value in stats.items() if name not in skip]
    rows.append(["std", f"{stats['std']:.4g}"])
    rows.append(["cov", f"{stats['cov'] * 100:.2f} %"])
    return rows


def breakdown_table(breakdown: dict[str, dict[str, float]]) -> str:
    """The trtexec-style stage table: one row per stage, min/mean/median/percentiles/max/cov in columns."""
    first = next(iter(breakdown.values()))
    pcts = [k for k in first if k.startswith("p") and k != "p50"]
    headers = ["stage", "min", "mean", "median", *pcts, "max", "cov"]
    rows = [[STAGE_LABELS.get(stage, stage), *(f"{s[k]:.4g}" for k in headers[1:-1]), f"{s['cov'] * 100:.2f} %"]
            for stage, s in breakdown.items()]
    return render_table("breakdown per iteration (ms)", headers, rows)


def jetson_lines(jetson: dict[str, Any]) -> list[str]:
    """Human lines for the report's ``jetson`` block: power mode, clocks, board power per rail."""
    nvp = jetson.get("nvpmodel") or {}
    mode = f"{nvp.get('mode')} (id {nvp.get('id')})" if nvp.get("mode") else "unknown"
    locked = {True: "locked", False: "NOT locked", None: "unknown"}[jetson.get("clocks_locked")]
    lines = [f"jetson: L4T {jetson.get('l4t')}, {jetson.get('model') or 'unknown model'}, power mode {mode}, "
             f"clocks {locked}"]
    power = jetson.get("power") or {}
    rails = power.get("rails") or {}
    if rails:
        parts = ", ".join(f"{rail} {r['mean_mw']:.0f} mW (max {r['max_mw']:.0f})" for rail, r in rails.items())
        lines.append(f"board power ({power.get('source')}, {power.get('samples')} samples): {parts}")
    else:
        lines.append("board power: not sampled (install jetson-stats or put tegrastats on PATH)")
    return lines


def format_profile_table(report: dict[str, Any]) -> str:
    """Human-readable profile: stats table, breakdown, throughput, what was timed, environment, warnings."""
    stats = report["stats"]
    title = f"{report['backend']} ({report['provider']}) latency in ms, batch {report['batch']}, {stats['n']} calls"
    fp = report["fingerprint"]
    threads = report["threads"] if report["threads"] is not None else "runtime default"
    lines = [render_table(title, ["statistic", "value"], _stat_rows(stats))]
    if report.get("breakdown"):
        lines.append(breakdown_table(report["breakdown"]))
    lines += [
        f"throughput: {report['throughput_per_s']:.1f} items/s",
        f"timed: {report['timed']}",
        f"environment: {fp['cpu_model']}, {fp['logical_cores']} logical cores, threads {threads}, "
        f"{fp['os']} {fp['kernel']}, {report['runtime']}" + (f", GPU {fp['gpu_name']}" if fp.get("gpu_name") else ""),
    ]
    if report.get("jetson"):
        lines += jetson_lines(report["jetson"])
    lut = report.get("compare_lut")
    if lut:
        lines.append(f"latency table {lut['target']}: predicted {lut['predicted_ms']:.4g} ms, measured median "
                     f"{lut['measured_ms']:.4g} ms, error {lut['error_pct']:+.1f} %")
    if "warnings" in report:
        warnings = list(report["warnings"]) + (list(lut.get("warnings", [])) if lut else [])
    else:
        warnings = ([report["cov_warning"]] if report.get("cov_warning") else []) + list(fp.get("warnings", []))
    lines += [f"warning: {w}" for w in warnings]
    return "\n".join(lines)
