"""`sdnas lut list` and `sdnas lut build`: which latency tables exist, and measuring a new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .common import cli_errors, print_json

lut_app = typer.Typer(
    help="Per-operator latency tables (LUTs) for hardware-aware search.", no_args_is_help=True, add_completion=False,
)


def _table_info(path: Path) -> dict[str, Any]:
    """Provenance of one table file: date, CPU, runtime, entry count (or why it cannot be read)."""
    from ..errors import BadInputError
    from ..hw.lut import load_table

    if not path.is_file():
        return {"file": str(path), "exists": False}
    try:
        table = load_table(path)
    except BadInputError as exc:
        return {"file": str(path), "exists": True, "error": exc.message}
    fp = table.fingerprint
    runtime = f"{fp.get('backend')} {fp.get('onnxruntime') if fp.get('backend') == 'ort' else fp.get('torch')}"
    return {
        "file": str(path), "exists": True, "date": fp.get("date"), "cpu": fp.get("cpu_model"), "runtime": runtime,
        "provider": fp.get("provider"), "precision": fp.get("precision"), "threads": fp.get("threads"),
        "method": table.method, "entries": len(table.entries),
    }


def list_targets() -> list[dict[str, Any]]:
    """Every registered target with the provenance of each of its table files."""
    from ..hw.targets import TARGETS, table_path

    rows = []
    for name in sorted(TARGETS):
        target = TARGETS[name]
        tables = {}
        for setting in sorted(target.table_files):
            path = table_path(target, setting)
            assert path is not None
            tables[setting] = _table_info(path)
        rows.append({"target": name, "backend": target.backend, "precision": target.precision,
                     "description": target.description, "tables": tables})
    return rows


@lut_app.command("list")
@cli_errors
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Targets and the provenance of their tables (file, date, CPU, runtime, entries)."""
    rows = list_targets()
    if json_out:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['target']}  ({row['backend']}, {row['precision']}) {row['description']}")
        if not row["tables"]:
            typer.echo(f"    no table shipped: measure one on the device with "
                       f"`sdnas lut build --target {row['target']} --setting cifar --backend {row['backend']}`")
        for setting, info in row["tables"].items():
            if not info["exists"]:
                typer.echo(f"    {setting}: no table ({Path(info['file']).name} not built)")
            elif "error" in info:
                typer.echo(f"    {setting}: unreadable: {info['error']}")
            else:
                typer.echo(f"    {setting}: {Path(info['file']).name}  {info['entries']} entries  {info['date']}  "
                           f"{info['cpu']}  {info['runtime']}")


def default_out(target: Any, setting: str) -> Path:
    """The target's table file for ``setting`` in latency_tables/ (``<target>_<setting>.json`` if it names none)."""
    from ..hw.targets import table_path
    from ..resources import data_dir

    return table_path(target, setting) or data_dir("latency_tables") / f"{target.name}_{setting}.json"


@lut_app.command("build")
@cli_errors
def build_cmd(
    target: str = typer.Option(..., "--target", help="Target name (see `sdnas lut list`)."),
    setting: str = typer.Option(..., "--setting", help="cifar or mobile."),
    backend: str = typer.Option(..., "--backend", help="ort, torch or trt."),
    layers: Optional[int] = typer.Option(None, "--layers", help="Cells (default: the setting's)."),
    channels: Optional[int] = typer.Option(None, "--channels", help="Initial channels (default: the setting's)."),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Input height/width (default: the target's)."),
    in_channels: int = typer.Option(3, "--in-channels", help="Input image channels."),
    num_classes: int = typer.Option(10, "--num-classes", help="Classifier outputs."),
    repeats: int = typer.Option(50, "--repeats", help="Timed calls per operator."),
    warmup: int = typer.Option(5, "--warmup", help="Untimed calls per operator first."),
    threads: int = typer.Option(1, "--threads", help="Intra-op threads."),
    out: Optional[Path] = typer.Option(None, "--out", help="Table file (default: the target's in latency_tables/)."),
    resume: bool = typer.Option(False, "--resume", help="Measure only the keys missing from --out."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Micro-benchmark every operator of the geometry on this machine and write the table."""
    from ..errors import BadInputError
    from ..hw.build import build_table
    from ..hw.geometry import NetworkGeometry
    from ..hw.measure import check_backend
    from ..hw.targets import get_target

    spec = get_target(target)
    check_backend(backend)  # unknown → exit 2; trt → exit 5 where TensorRT is absent
    if setting not in ("cifar", "mobile"):
        raise BadInputError(f"--setting {setting!r}: use cifar or mobile")
    if out is None and backend != spec.backend:
        raise BadInputError(
            f"--backend {backend} differs from target {target!r}'s {spec.backend}; its shipped table must be measured "
            f"with --backend {spec.backend}, or pass --out FILE for an experimental table"
        )
    if input_size is None:
        input_size = spec.default_input.get(setting)
    geometry = NetworkGeometry.from_setting(setting, input_size=input_size, layers=layers, channels=channels,
                                            in_channels=in_channels, num_classes=num_classes)
    path = out or default_out(spec, setting)
    table = build_table(target, geometry, backend=backend, repeats=repeats, warmup=warmup, threads=threads,
                        out_path=path, resume=resume, progress=not json_out)
    summary = {"target": target, "file": str(path), "entries": len(table.entries), "overhead_ms": table.overhead_ms,
               "backend": backend, "geometry": geometry.to_dict()}
    if json_out:
        print_json(summary)
    else:
        typer.echo(f"wrote {path}: {len(table.entries)} entries, overhead {table.overhead_ms:.4f} ms")

