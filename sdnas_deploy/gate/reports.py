"""Render a gate check for people and CI: terminal table, JUnit XML, GitHub-flavoured Markdown.

All three are written for every outcome — passed (exit 0), a gate failed (exit 4) and a check
stopped by an error (exit 2/3/5) — so a CI job always has something to show and to upload.

* JUnit XML: one ``<testsuite name="sdnas-check">`` with one ``<testcase classname="sdnas.gates">``
  per gate; a failed gate carries ``<failure>``; a stopped check carries one ``<error>`` test case
  and lists the gates it did not measure as ``<skipped>``. Properties: model, sha256, backend,
  device, precision (and dataset, status, exit code).
* Markdown: a heading with ✅/❌, a gate | threshold | measured | result table, what was timed and
  the warnings. When the file already exists the summary is **appended** (blank line between),
  which is what ``--summary "$GITHUB_STEP_SUMMARY"`` needs: GitHub creates that file and other
  commands of the step may write to it. Delete the file first for a fresh one elsewhere.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ..errors import BadInputError
from ..io_utils import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..profile.report import render_table
from .gates import EXIT_CODES, CheckReport, GateRow, gate_names

SUITE_NAME = "sdnas-check"
CLASSNAME = "sdnas.gates"
ERROR_CASES = {2: "input", 3: "artifact verification", 5: "environment"}  # name of the <error> test case


def _fmt(value: float, unit: str) -> str:
    return f"{value:.4g} {unit}".strip() if unit else f"{value:.4f}"


def _device(report: CheckReport) -> str:
    gates = report.gates
    return str(gates.get("device") or ("cuda:0" if gates.get("backend") == "trt" else "cpu"))


def _properties(report: CheckReport) -> dict[str, str]:
    """Identity of what was checked, for the JUnit properties and the Markdown header."""
    art = report.artifact or {}
    gates = report.gates
    return {
        "model": str(art.get("path", report.onnx_path)),
        "sha256": str(art.get("sha256", "unknown")),
        "backend": str(gates.get("backend", "unknown")),
        "device": _device(report) if gates else "unknown",
        "precision": str(art.get("precision") or gates.get("precision", "unknown")),
        "dataset": f"{gates.get('dataset')}/{gates.get('split')}" if gates else "unknown",
        "status": report.status,
        "exit_code": str(report.exit_code),
    }


def describe_artifact(report: CheckReport) -> str:
    """One line: model, short sha256, precision, backend and device."""
    props = _properties(report)
    return (f"{props['model']} (sha256 {props['sha256'][:12]}, {props['precision']}) "
            f"on {props['backend']} {props['device']}")


def check_table(report: CheckReport) -> str:
    """Gate table, model, what was scored and timed, warnings; the caller prints ``final_line`` after it
    (kept separate so ``--json`` output can still end with the PASSED/FAILED line on its own)."""
    rows = [
        [row.gate, f"{row.comparison} {_fmt(row.threshold, row.unit)}", _fmt(row.measured, row.unit),
         "pass" if row.passed else "FAIL"]
        for row in report.rows
    ]
    lines = [render_table(f"gates: {report.onnx_path}", ["gate", "threshold", "measured", "result"], rows)]
    lines.append(f"model: {describe_artifact(report)}")
    if report.accuracy is not None:
        acc = report.accuracy
        ref = acc.get("torch_reference_source")
        lines.append(f"scored: {acc['n']} images of {report.gates.get('dataset')}/{report.gates.get('split')}"
                     + (f"; reference: {ref}" if ref else ""))
    if report.profile is not None:
        lines.append(f"timed: {report.profile['timed']}")
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)


def _row_time(report: CheckReport, row: GateRow) -> float:
    return float(report.timings_s.get(row.stage, 0.0))


def junit_xml(report: CheckReport) -> bytes:
    """The report as JUnit XML (UTF-8 bytes with an XML declaration)."""
    failures = sum(1 for row in report.rows if not row.passed)
    skipped = gate_names(report.gates) if report.error is not None else []
    errors = 1 if report.error is not None else 0
    tests = len(report.rows) + errors + len(skipped)
    counts = {"tests": str(tests), "failures": str(failures), "errors": str(errors), "skipped": str(len(skipped)),
              "time": f"{report.duration_s:.3f}"}
    root = ET.Element("testsuites", {"name": "sdnas", **counts})
    suite = ET.SubElement(root, "testsuite", {
        "name": SUITE_NAME, **counts, "timestamp": report.started_utc.split("+")[0], "hostname": socket.gethostname(),
    })
    props = ET.SubElement(suite, "properties")
    for name, value in _properties(report).items():
        ET.SubElement(props, "property", {"name": name, "value": value})
    for row in report.rows:
        case = ET.SubElement(suite, "testcase", {"classname": CLASSNAME, "name": row.gate,
                                                 "time": f"{_row_time(report, row):.3f}"})
        detail = f"measured {_fmt(row.measured, row.unit)}, threshold {row.comparison} {_fmt(row.threshold, row.unit)}"
        if not row.passed:
            failure = ET.SubElement(case, "failure", {"message": row.failure(), "type": "GateFailed"})
            failure.text = detail
        else:
            ET.SubElement(case, "system-out").text = detail
    if report.error is not None:
        code = report.exit_code
        case = ET.SubElement(suite, "testcase", {"classname": CLASSNAME, "name": ERROR_CASES.get(code, "check"),
                                                 "time": f"{report.duration_s:.3f}"})
        error = ET.SubElement(case, "error", {"message": report.reason, "type": str(report.error["type"])})
        error.text = f"exit {code} ({EXIT_CODES.get(code, 'error')}): {report.reason}"
        for name in skipped:
            case = ET.SubElement(suite, "testcase", {"classname": CLASSNAME, "name": name, "time": "0.000"})
            ET.SubElement(case, "skipped", {"message": f"not measured: the check stopped with exit {code}"})
    out = [f"{report.final_line}"]
    if report.profile is not None:
        out.append(f"timed: {report.profile['timed']}")
    out += [f"warning: {w}" for w in report.warnings]
    ET.SubElement(suite, "system-out").text = "\n".join(out)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _cell(text: Any) -> str:
    """A Markdown table cell: pipes escaped, newlines flattened."""
    return " ".join(str(text).split()).replace("|", "\\|")


def summary_markdown(report: CheckReport) -> str:
    """GitHub-flavoured Markdown: heading with ✅/❌, gate table, model identity, what was timed, warnings."""
    props = _properties(report)
    code = report.exit_code
    if report.passed:
        heading = "### ✅ sdnas check: PASSED"
    elif report.error is None:
        heading = "### ❌ sdnas check: FAILED (a gate failed, exit 4)"
    else:
        heading = f"### ❌ sdnas check: FAILED ({EXIT_CODES.get(code, 'error')}, exit {code})"
    lines = [heading, "",
             f"Model `{props['model']}` · sha256 `{props['sha256'][:12]}` · backend **{props['backend']}** on "
             f"**{props['device']}** · precision **{props['precision']}** · data {props['dataset']}", ""]
    if report.rows:
        lines += ["| gate | threshold | measured | result |", "| --- | --- | --- | --- |"]
        for row in report.rows:
            result = "✅ pass" if row.passed else "❌ fail"
            lines.append(f"| {_cell(row.gate)} | {row.comparison} {_fmt(row.threshold, row.unit)} | "
                         f"{_fmt(row.measured, row.unit)} | {result} |")
        lines.append("")
    if report.error is not None:
        lines += [f"**Error:** {_cell(report.reason)}", ""]
        skipped = gate_names(report.gates)
        if skipped:
            lines += [f"Not measured: {', '.join(skipped)}.", ""]
    if report.accuracy is not None:
        ref = report.accuracy.get("torch_reference_source")
        lines += [f"**Scored:** {report.accuracy['n']} images" + (f"; accuracy reference: {ref}" if ref else ""), ""]
    if report.profile is not None:
        lines += [f"**Timed:** {_cell(report.profile['timed'])}", ""]
    if report.warnings:
        lines += ["**Warnings**", ""] + [f"- ⚠️ {_cell(w)}" for w in report.warnings] + [""]
    lines.append(f"`{report.final_line}`" if report.passed else f"`{_cell(report.final_line)}`")
    return "\n".join(lines) + "\n"


def write_junit(path: Path | str, report: CheckReport) -> Path:
    """Write :func:`junit_xml` atomically."""
    return atomic_write_bytes(Path(path), junit_xml(report))


def write_summary(path: Path | str, report: CheckReport) -> Path:
    """Write :func:`summary_markdown`; append (after a blank line) when ``path`` already has content."""
    path = Path(path)
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    sep = "" if not existing or existing.endswith("\n\n") else "\n" if existing.endswith("\n") else "\n\n"
    return atomic_write_text(path, existing + sep + summary_markdown(report))


def write_reports(report: CheckReport, json_path: Path | str | None = None, junit_path: Path | str | None = None,
                  summary_path: Path | str | None = None) -> list[Path]:
    """Write each report a path was given for; an unwritable path is BadInputError (exit 2)."""
    jobs = [(json_path, lambda p: atomic_write_json(Path(p), report.to_dict())),
            (junit_path, lambda p: write_junit(p, report)), (summary_path, lambda p: write_summary(p, report))]
    written = []
    for path, write in jobs:
        if path is None or str(path) == "":
            continue
        try:
            written.append(write(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInputError(f"cannot write report {path} ({type(exc).__name__}: {exc}); pass a writable file path") from None
    return written


def format_check_table(report: CheckReport) -> str:
    """Terminal text of a report (gate table, model, what was timed, warnings): :func:`check_table`."""
    return check_table(report)
