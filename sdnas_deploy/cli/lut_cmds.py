"""`sdnas lut list` and `sdnas lut build`: which latency tables exist, and measuring a new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .common import cli_errors, print_json, print_table

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
    info: dict[str, Any] = {"file": str(path), "exists": True, "space": table.space,
                            "geometry": table.geometry.to_dict(), "method": table.method, "entries": len(table.entries),
                            "date": fp.get("date"), "precision": fp.get("precision")}
    if fp.get("origin") == "public":
        fit = fp.get("fit") or {}
        info.update(origin="public", source=fp.get("source"), measured=f"column {fp.get('column')!r}, batch "
                    f"{fp.get('batch')}, precision/runtime {fp.get('runtime')}", note=fp.get("note"),
                    fit_networks=fit.get("rows"), validation=fp.get("validation"))
        return info
    runtime = f"{fp.get('backend')} {fp.get('onnxruntime') if fp.get('backend') == 'ort' else fp.get('torch')}"
    info.update(origin="measured", cpu=fp.get("cpu_model"), runtime=runtime, provider=fp.get("provider"),
                threads=fp.get("threads"), fit_networks=(fp.get("fit") or {}).get("rows"))
    return info


def list_targets() -> list[dict[str, Any]]:
    """Every registered target with the provenance of each of its table files."""
    from ..hw.targets import TARGETS, table_path

    rows = []
    for name in sorted(TARGETS):
        target = TARGETS[name]
        tables = {}
        for kind, files in (("microbenchmark", target.table_files), ("fitted", target.fitted_files)):
            for slot in sorted(files):
                space, _, setting = slot.partition("/")
                path = table_path(target, setting, kind, space)
                assert path is not None
                tables[slot if kind == "microbenchmark" else f"{slot} fitted"] = _table_info(path)
        rows.append({"target": name, "origin": target.origin, "aliases": list(target.aliases),
                     "backend": target.backend, "precision": target.precision,
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
        if row["origin"] == "public":
            typer.echo(f"{row['target']}  (public: {SOURCE_SHORT}) {row['description']}")
        else:
            typer.echo(f"{row['target']}  ({row['backend']}, {row['precision']}) {row['description']}")
        if not row["tables"]:
            from ..hw.targets import few_shot_hint

            typer.echo(f"    no table shipped; {few_shot_hint(row['target'], 'SPACE', 'SETTING')}; precise: "
                       f"`sdnas lut build --target {row['target']} --space SPACE --setting SETTING --backend {row['backend']}`")
        for setting, info in row["tables"].items():
            if not info["exists"]:
                typer.echo(f"    {setting}: no table ({Path(info['file']).name} not built)")
            elif "error" in info:
                typer.echo(f"    {setting}: unreadable: {info['error']}")
            elif info["origin"] == "public":
                v = info.get("validation") or {}
                typer.echo(f"    {setting}: {Path(info['file']).name}  fitted on {info['fit_networks']} measured "
                           f"networks ({info['measured']}); held-out {v.get('n')}: Spearman {v.get('spearman', 0):.3f}, "
                           f"MAPE {v.get('mean_abs_pct_error', 0):.2f}%, ±10% {100 * v.get('within_10pct', 0):.0f}%"
                           + (f"; {info['note']}" if info.get("note") else ""))
            else:
                typer.echo(f"    {setting}: {Path(info['file']).name}  {info['entries']} entries  {info['date']}  "
                           f"{info['cpu']}  {info['runtime']}")


SOURCE_SHORT = "HELP / HW-NAS-Bench measurements, latency_tables/public/LICENSE-HELP.md"


def default_out(target: Any, setting: str, space: str = "darts") -> Path:
    """The target's table file for ``space``/``setting`` in latency_tables/ (else ``<target>_<space>_<setting>.json``)."""
    from ..hw.targets import table_path
    from ..resources import data_dir

    return (table_path(target, setting, space=space)
            or data_dir("latency_tables") / f"{target.name}_{space}_{setting}.json")


@lut_app.command("build")
@cli_errors
def build_cmd(
    target: str = typer.Option(..., "--target", help="Target name (see `sdnas lut list`)."),
    space: str = typer.Option("darts", "--space", help="Search space whose keys the table holds (darts, fbnet, proxyless)."),
    setting: str = typer.Option(..., "--setting", help="The space's deployment setting (darts: cifar, mobile; fbnet/proxyless: imagenet, cifar, small)."),
    backend: str = typer.Option(..., "--backend", help="ort, torch or trt."),
    layers: Optional[int] = typer.Option(None, "--layers", help="Cells (default: the setting's)."),
    channels: Optional[int] = typer.Option(None, "--channels", help="Initial channels (default: the setting's)."),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Input height/width (default: the target's)."),
    in_channels: int = typer.Option(3, "--in-channels", help="Input image channels."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", help="Classifier outputs (default: cifar 10, mobile 1000)."),
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
    from ..hw.measure import check_backend
    from ..hw.targets import require_measurable, table_geometry

    spec = require_measurable(target)
    check_backend(backend)  # unknown → exit 2; trt → exit 5 where TensorRT is absent
    if out is None and backend != spec.backend:
        raise BadInputError(
            f"--backend {backend} differs from target {target!r}'s {spec.backend}; its shipped table must be measured "
            f"with --backend {spec.backend}, or pass --out FILE for an experimental table"
        )
    geometry = table_geometry(space, setting, layers, channels, input_size, in_channels, num_classes)
    path = out or default_out(spec, setting, space)
    table = build_table(target, geometry, backend=backend, repeats=repeats, warmup=warmup, threads=threads,
                        out_path=path, resume=resume, progress=not json_out, device=spec.device,
                        precision=spec.precision if backend == spec.backend else "fp32", space=space)
    summary = {"target": target, "space": space, "file": str(path), "entries": len(table.entries), "overhead_ms": table.overhead_ms,
               "backend": backend, "geometry": geometry.to_dict()}
    if json_out:
        print_json(summary)
    else:
        typer.echo(f"wrote {path}: {len(table.entries)} entries, overhead {table.overhead_ms:.4f} ms")



# ---- whole-network measurements: `lut measure`, `lut fit`, `lut validate` -------------------------------------

def _print_metrics(title: str, report: dict[str, Any]) -> None:
    tau = report["kendall_tau"]
    print_table(title, [
        ("architectures", report["n"]),
        ("mean abs error %", report["mean_abs_pct_error"]),
        ("median abs error %", report["median_abs_pct_error"]),
        ("max abs error %", report["max_abs_pct_error"]),
        ("mean signed error %", report["mean_signed_pct_error"]),
        ("within ±10 %", f"{100 * report['within_10pct']:.0f}%"),
        ("Kendall τ-b", "n/a" if tau is None else f"{tau:.3f}"),
        ("Spearman ρ", "n/a" if report.get("spearman") is None else f"{report['spearman']:.3f}"),
    ])


SPACE_HELP = "Search space whose keys the table holds (darts, nb201, fbnet, proxyless)."
SETTING_HELP = ("The space's deployment setting (darts: cifar, mobile; nb201: cifar, small; fbnet/proxyless: imagenet, "
                "cifar, small).")


GEOMETRY_HELP = {
    "layers": "Cells (default: the setting's).", "channels": "Initial channels (default: the setting's).",
    "input_size": "Input height/width (default: the target's).",
}


@lut_app.command("measure")
@cli_errors
def measure_cmd(
    target: str = typer.Option(..., "--target", help="Target name (see `sdnas lut list`), or a new name for a device "
                               "of your own (timed here with --backend on --device)."),
    space: str = typer.Option("darts", "--space", help=SPACE_HELP),
    setting: Optional[str] = typer.Option(None, "--setting", help=SETTING_HELP + " Default: the space's default."),
    backend: Optional[str] = typer.Option(None, "--backend", help="ort, torch or trt, for a new target (default ort)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda[:N], for a new target (default cpu)."),
    n: int = typer.Option(60, "--n", help="Random architectures to measure."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed (validate defaults to 1: held out)."),
    repeats: int = typer.Option(30, "--repeats", help="Timed calls per network."),
    warmup: int = typer.Option(5, "--warmup", help="Untimed calls per network first."),
    threads: int = typer.Option(1, "--threads", help="Intra-op threads."),
    layers: Optional[int] = typer.Option(None, "--layers", help=GEOMETRY_HELP["layers"]),
    channels: Optional[int] = typer.Option(None, "--channels", help=GEOMETRY_HELP["channels"]),
    input_size: Optional[int] = typer.Option(None, "--input-size", help=GEOMETRY_HELP["input_size"]),
    in_channels: int = typer.Option(3, "--in-channels", help="Input image channels."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", help="Classifier outputs (default: cifar 10, mobile 1000)."),
    out: Optional[Path] = typer.Option(None, "--out", help="CSV file (default: <target>_<setting>_measurements.csv)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Measure N sampled whole networks on this device and write them as a measurements CSV."""
    from ..errors import BadInputError
    from ..hw.build import build_fingerprint
    from ..hw.measure import check_backend
    from ..hw.targets import measuring_target, table_geometry
    from ..hw.whole import measure_many, sample_architectures, write_measurements_csv
    from ..spaces import get_space

    setting = setting or get_space(space).default_setting
    spec = measuring_target(target, backend, device)
    target = spec.name
    check_backend(spec.backend)
    if repeats < 1 or warmup < 0 or threads < 1:
        raise BadInputError(f"need --repeats >= 1, --warmup >= 0, --threads >= 1; got {repeats}, {warmup}, {threads}")
    geometry = table_geometry(space, setting, layers, channels, input_size, in_channels, num_classes)
    rows = measure_many(sample_architectures(n, seed, space, geometry.setting), geometry, backend=spec.backend,
                        threads=threads, repeats=repeats, progress=not json_out, warmup=warmup, device=spec.device,
                        precision=spec.precision, space=space)
    fp = build_fingerprint(spec.backend, threads, spec.device, spec.precision)
    meta = {"target": target, "space": space, "backend": spec.backend, "provider": fp["provider"], "device": spec.device,
            "threads": threads,
            "repeats": repeats, "warmup": warmup, "seed": seed, "geometry": geometry.to_dict(), "date": fp["date"],
            "cpu_model": fp.get("cpu_model"), "onnxruntime": fp.get("onnxruntime"), "torch": fp.get("torch"),
            "fingerprint_key": fp.get("key"), "sdnas_version": fp["sdnas_version"]}
    path = write_measurements_csv(out or Path(f"{target}_{space}_{setting}_measurements.csv"), rows, meta)
    lat = [r["latency_ms"] for r in rows]
    summary = {"file": str(path), "rows": len(rows), "min_ms": min(lat), "max_ms": max(lat), "meta": meta}
    if json_out:
        print_json(summary)
    else:
        typer.echo(f"wrote {path}: {len(rows)} architectures, {min(lat):.3f}–{max(lat):.3f} ms")


@lut_app.command("fit")
@cli_errors
def fit_cmd(
    measurements: Path = typer.Option(..., "--measurements", help="CSV from `sdnas lut measure` (arch,latency_ms), "
                                      "or a wide CSV with --column."),
    space: str = typer.Option("darts", "--space", help=SPACE_HELP),
    target: Optional[str] = typer.Option(None, "--target", help="Device name the table is for (any name; default: "
                                         "the CSV's, the --column, or the --out file's stem)."),
    setting: Optional[str] = typer.Option(None, "--setting", help=SETTING_HELP + " Default: the CSV's, else the "
                                          "space's default."),
    column: Optional[str] = typer.Option(None, "--column", help="Latency column of a wide CSV (one column per device)."),
    prior: Optional[str] = typer.Option(None, "--prior", help="Few-shot fit: auto (every shipped table of this space "
                                        "and geometry), none (plain ridge) or T1,T2,... (targets or table files)."),
    l2: float = typer.Option(1.0, "--l2", help="Relative ridge weight pulling the fit toward the base table "
                             "(0 = plain NNLS; λ = l2 · mean Σ count²)."),
    base: Optional[Path] = typer.Option(None, "--base", help="Microbenchmark table to regularise toward "
                                        "(default: the target's, when its geometry matches)."),
    no_base: bool = typer.Option(False, "--no-base", help="Plain ridge toward 0, no base table."),
    layers: Optional[int] = typer.Option(None, "--layers", help=GEOMETRY_HELP["layers"] + " Used if the CSV has none."),
    channels: Optional[int] = typer.Option(None, "--channels", help=GEOMETRY_HELP["channels"]),
    input_size: Optional[int] = typer.Option(None, "--input-size", help=GEOMETRY_HELP["input_size"]),
    in_channels: int = typer.Option(3, "--in-channels", help="Input image channels."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", help="Classifier outputs (default: the setting's table network)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Table file (default: next to the target's table, else "
                                       "<target>_<space>_<setting>_fitted.json here)."),
    cv: int = typer.Option(0, "--cv", help="Also report K-fold held-out error of a ridge fit (0 = off)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Fit an additive table (method "fitted") to whole-network latencies: ridge NNLS, or few-shot with --prior."""
    from ..errors import BadInputError
    from ..hw.fitting import FitRequest, fit_from_request
    from ..hw.validate import validate_table
    from ..progress import log

    if cv and prior not in (None, "none"):
        raise BadInputError("--cv cross-validates a ridge fit; a --prior fit already chooses by leave-one-out")
    req = FitRequest(space=space, measurements=measurements, target=target, setting=setting, column=column,
                     prior=prior, base=base, no_base=no_base, l2=l2, layers=layers, channels=channels,
                     input_size=input_size, in_channels=in_channels, num_classes=num_classes, out=out)
    table, path, summary, rows = fit_from_request(req)
    report = validate_table(table, rows)
    summary["train_error"] = {k: v for k, v in report.items() if k not in ("rows", "geometry")}
    if cv:
        from ..hw.fit import cross_validate

        summary["cv_error"] = cross_validate(rows, table.geometry, k=cv, l2=l2, space=space)
    if json_out:
        print_json(summary)
        return
    if summary.get("note"):
        log(summary["note"])
    _print_metrics("fit error on the training rows (optimistic: validate on held-out ones)", report)
    if cv:
        _print_metrics(f"{cv}-fold cross-validated error (held-out rows)", summary["cv_error"])
    how = (f"few-shot, model {summary['model']}, priors {', '.join(summary['priors'])}" if summary["method"] == "transfer"
           else f"base {summary.get('base') or 'none'}")
    typer.echo(f"wrote {path}: {summary['fitted_keys']} keys fitted from {len(rows)} networks, "
               f"overhead {table.overhead_ms:.4f} ms, {how}")


@lut_app.command("validate")
@cli_errors
def validate_cmd(
    target: Optional[str] = typer.Option(None, "--target", help="Target name (see `sdnas lut list`; default: the "
                                         "--table's)."),
    space: Optional[str] = typer.Option(None, "--space", help=SPACE_HELP + " Default: the --table's, else darts."),
    setting: Optional[str] = typer.Option(None, "--setting", help=SETTING_HELP + " Default: the --table's."),
    table_file: Optional[Path] = typer.Option(None, "--table", help="Table to validate (default: the target's)."),
    column: Optional[str] = typer.Option(None, "--column", help="Latency column of a wide --measurements CSV."),
    n: Optional[int] = typer.Option(None, "--n", help="Random architectures to measure here (default 50)."),
    measurements: Optional[Path] = typer.Option(None, "--measurements", help="CSV measured elsewhere instead."),
    seed: int = typer.Option(1, "--seed", help="Sampling seed (measure's default is 0, so these are held out)."),
    repeats: int = typer.Option(30, "--repeats", help="Timed calls per network."),
    warmup: int = typer.Option(5, "--warmup", help="Untimed calls per network first."),
    max_error: float = typer.Option(10.0, "--max-error", help="PASSED when the mean abs % error is at most this."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a predicted-vs-measured scatter PNG."),
    report_file: Optional[Path] = typer.Option(None, "--report", help="Write the full report as JSON."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON (status inside)."),
) -> None:
    """Predicted vs measured latency of random architectures: errors, Kendall τ, plot, PASSED/FAILED (exit 4)."""
    from ..errors import BadInputError
    from ..hw.lut import load_table
    from ..hw.targets import get_target, measuring_target, resolve_table
    from ..hw.validate import scatter_png, status_line, validate_table
    from ..io_utils import atomic_write_json
    from ..progress import log

    if table_file is None and (target is None or setting is None):
        raise BadInputError("pass --table FILE, or --target and --setting to validate a target's shipped table")
    if measurements is not None and n is not None:
        raise BadInputError("--n measures here, --measurements reads a CSV; pass one of them")
    if max_error < 0:
        raise BadInputError(f"--max-error must be >= 0, got {max_error}")
    if table_file is not None:
        table = load_table(table_file)
        space = space or table.space
        setting = setting or table.geometry.setting
        target = target or table.target
    else:
        target = get_target(target).name  # type: ignore[arg-type]
        space = space or "darts"
        table = load_table(resolve_table(target, setting, space=space))  # type: ignore[arg-type]
    if measurements is None:  # measuring here: refuse a provider we cannot time with
        measuring_target(target, None, str(table.fingerprint.get("device", "cpu")))
    table.check_space(space, str(table_file or target))
    if table.geometry.setting != setting:
        raise BadInputError(f"table is for setting {table.geometry.setting!r}; pass --setting {table.geometry.setting}")
    if measurements is not None:
        from ..hw.fitting import read_checked

        rows, meta, geometry = read_checked(measurements, space, column, target if column is None else None, setting)
        if geometry is not None:
            table.check_geometry(geometry)
        source = str(measurements)
    else:
        rows, source = _measure_here(table, n or 50, seed, repeats, warmup, progress=not json_out)
        meta = {}
    report = validate_table(table, rows)
    report.update({"source": source, "measurements_meta": meta, "max_error": max_error,
                   "status": status_line(report, max_error)})
    if plot is not None:
        scatter_png(plot, [r["predicted_ms"] for r in report["rows"]], [r["measured_ms"] for r in report["rows"]],
                    f"{target} {setting} ({table.method}): {report['mean_abs_pct_error']:.1f}% mean abs error")
        report["plot"] = str(plot)
    if report_file is not None:
        atomic_write_json(report_file, report)
    if json_out:
        print_json(report)
    else:
        _print_metrics(f"{target} {setting} table ({table.method}) vs {source}", report)
        for extra in (plot, report_file):
            if extra is not None:
                log(f"wrote {extra}")
        typer.echo(report["status"])
    if report["status"] != "PASSED":
        raise typer.Exit(4)


def _measure_here(table: Any, n: int, seed: int, repeats: int, warmup: int, progress: bool) -> tuple[list, str]:
    """Measure ``n`` held-out random architectures at the table's geometry with the table's backend/threads."""
    from ..runtime.fingerprint import environment_fingerprint
    from ..hw.measure import check_backend, check_device
    from ..hw.whole import measure_many, sample_architectures
    from ..progress import log

    backend = str(table.fingerprint.get("backend", "ort"))
    threads = int(table.fingerprint.get("threads") or 1)
    check_backend(backend)
    device = check_device(backend, str(table.fingerprint.get("device", "cpu")))
    here = environment_fingerprint(threads).get("key")
    if table.fingerprint.get("key") not in (None, here):
        log(f"warning: the table was measured in another environment ({table.fingerprint.get('key')} != {here})")
    rows = measure_many(sample_architectures(n, seed, table.space, table.geometry.setting), table.geometry,
                        backend=backend, threads=threads, repeats=repeats, progress=progress, warmup=warmup,
                        device=device, precision=str(table.fingerprint.get("precision", "fp32")), space=table.space)
    return rows, f"{n} architectures measured here (seed {seed})"
