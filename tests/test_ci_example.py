"""The CI example (export/github-actions/sdnas-check.yml) stays runnable: its structure, and its exact
`sdnas check` command run in-process against the committed model, with the output paths sent to tmp."""

from __future__ import annotations

import json
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from sdnas_deploy.cli.check_cmd import check
from sdnas_deploy.gate.gates import load_gates

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "export" / "github-actions" / "sdnas-check.yml"

app = typer.Typer()


@app.callback()
def _root() -> None:
    """Keeps `check` a named sub-command, as in the real `sdnas` app."""


app.command("check")(check)


def load_workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def steps() -> list[dict]:
    jobs = load_workflow()["jobs"]
    assert list(jobs) == ["gate"]
    return jobs["gate"]["steps"]


def check_command() -> list[str]:
    """The one `sdnas check ...` line of the workflow, split like a shell would (variables left as written)."""
    lines = [line.strip() for step in steps() for line in str(step.get("run", "")).splitlines()
             if line.strip().startswith("sdnas check ")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def test_workflow_structure() -> None:
    data = load_workflow()
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on:` key as the boolean True
    assert set(triggers) == {"push", "pull_request"}
    job = data["jobs"]["gate"]
    assert job["runs-on"] == "ubuntu-latest"
    uses = [s["uses"] for s in job["steps"] if "uses" in s]
    assert uses == ["actions/checkout@v4", "actions/setup-python@v5", "actions/upload-artifact@v4"]
    setup = next(s for s in job["steps"] if s.get("uses") == "actions/setup-python@v5")
    assert str(setup["with"]["python-version"]) == "3.12"
    upload = next(s for s in job["steps"] if s.get("uses") == "actions/upload-artifact@v4")
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"
    install = " ".join(str(s.get("run", "")) for s in job["steps"])
    assert "--index-url https://download.pytorch.org/whl/cpu" in install and "pip install -e ." in install
    runs = " ".join(str(s.get("run", "")) for s in job["steps"])
    assert "sdnas train" not in runs and "sdnas search" not in runs and "sdnas run" not in runs  # it trains nothing


def test_command_flags_and_files_exist() -> None:
    argv = check_command()
    assert argv[:3] == ["sdnas", "check", "export/demo/model.onnx"]
    flags = dict(zip(argv[3::2], argv[4::2]))
    assert flags == {"--gates": "export/ci-demo.yaml", "--junit": "reports/sdnas-check.xml",
                     "--summary": "$GITHUB_STEP_SUMMARY", "--report": "reports/check.json"}
    for path in ("export/demo/model.onnx", "export/demo/model.json", "export/demo/model.safetensors", flags["--gates"]):
        assert (ROOT / path).is_file(), path
    gates = load_gates(ROOT / flags["--gates"])
    assert gates.min_accuracy and gates.max_accuracy_drop is not None and gates.max_latency_ms  # all three gates set


def test_the_workflow_command_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the workflow's own command from the repository root, as the CI job does; outputs go to tmp."""
    summary = tmp_path / "step_summary.md"
    summary.write_text("")  # GitHub creates the step-summary file before the step runs
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    redirect = {"reports/sdnas-check.xml": str(tmp_path / "reports" / "sdnas-check.xml"),
                "reports/check.json": str(tmp_path / "reports" / "check.json"),
                "$GITHUB_STEP_SUMMARY": str(summary)}
    argv = [redirect.get(arg, arg) for arg in check_command()]
    result = CliRunner().invoke(app, argv[1:])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "PASSED"
    suite = ET.parse(tmp_path / "reports" / "sdnas-check.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "0", "0")
    assert json.loads((tmp_path / "reports" / "check.json").read_text())["status"] == "PASSED"
    assert summary.read_text().startswith("### ✅ sdnas check: PASSED")
