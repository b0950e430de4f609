"""How well do this machine's latency tables predict whole networks? (issue 3 evidence)

For each space/setting of the `x86-cpu-ort` target (darts/cifar, darts/mobile, fbnet/small, proxyless/small):
measure N_fit random architectures of the space end to end (ONNX Runtime CPU, 1 thread, batch 1) to fit a table
(`lut fit`, ridge NNLS toward the microbenchmark table), and N_val *other* random architectures (different seed) to validate both the
microbenchmark table (`lut build`) and the fitted one: mean abs % error, share within ±10%, Kendall τ.
Prints a table, writes bench/results/lut_accuracy.json, scatter plots and the measurement CSVs.
Measurements are cached in the CSVs, so a rerun only refits/revalidates (delete them to re-measure).
Also measures the validation architectures a second time (``lut_<setting>_val_repeat.csv``): the agreement
of two measurements of the same networks (τ, % difference) is the ceiling any table's τ can reach here.

    .venv/bin/python bench/lut_accuracy.py [--cases darts/cifar fbnet/small ...] [--n-fit 60] [--n-val 50] [--repeats 30]

Files are named ``lut_<setting>_*`` for darts (as before) and ``lut_<space>_<setting>_*`` for the other spaces.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdnas_deploy.runtime.fingerprint import environment_fingerprint  # noqa: E402
from sdnas_deploy.hw.fit import fit_table  # noqa: E402
from sdnas_deploy.hw.lut import load_table  # noqa: E402
from sdnas_deploy.hw.targets import resolve_table  # noqa: E402
from sdnas_deploy.hw.validate import compare, scatter_png, validate_table  # noqa: E402
from sdnas_deploy.hw.whole import measure_many, read_measurements_csv, sample_architectures, write_measurements_csv  # noqa: E402
from sdnas_deploy.io_utils import atomic_write_json  # noqa: E402

TARGET = "x86-cpu-ort"


def measured_rows(path: Path, seed: int, n: int, geometry, repeats: int, space: str, sessions: int) -> list[dict]:
    """Rows of ``path`` if it exists, else measure ``n`` architectures sampled with ``seed`` and save them."""
    if path.is_file():
        return read_measurements_csv(path, space)
    rows = measure_many(sample_architectures(n, seed, space, geometry.setting), geometry, backend="ort", threads=1,
                        repeats=repeats, space=space, sessions=sessions)
    write_measurements_csv(path, rows, {"target": TARGET, "space": space, "seed": seed, "repeats": repeats,
                                        "sessions": sessions, "threads": 1, "geometry": geometry.to_dict(),
                                        "date": time.strftime("%Y-%m-%d")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["darts/cifar", "darts/mobile", "fbnet/small", "proxyless/small"])
    parser.add_argument("--n-fit", type=int, default=60)
    parser.add_argument("--n-val", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=1, help="fresh sessions per network (median); darts used 1")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    results = []
    for case in args.cases:
        space, _, setting = case.partition("/")
        stem = f"lut_{setting}" if space == "darts" else f"lut_{space}_{setting}"
        base = load_table(resolve_table(TARGET, setting, "microbenchmark", space))
        geometry = base.geometry
        sessions = args.sessions
        fit_rows = measured_rows(args.out / f"{stem}_fit.csv", 0, args.n_fit, geometry, args.repeats, space, sessions)
        val_rows = measured_rows(args.out / f"{stem}_val.csv", 1, args.n_val, geometry, args.repeats, space, sessions)
        again = measured_rows(args.out / f"{stem}_val_repeat.csv", 1, args.n_val, geometry, args.repeats, space,
                              sessions)
        assert [r["arch"] for r in again] == [r["arch"] for r in val_rows], "repeat must measure the same networks"
        ceiling = compare([r["latency_ms"] for r in again], [r["latency_ms"] for r in val_rows])
        results.append({"space": space, "setting": setting, "table": "remeasured", "n_fit": 0, "n_val": ceiling["n"],
                        **{k: ceiling[k] for k in ("mean_abs_pct_error", "median_abs_pct_error", "max_abs_pct_error",
                                                  "within_10pct", "kendall_tau", "mean_signed_pct_error")},
                        "note": "the same networks measured twice: the noise ceiling of any table's tau"})
        fitted = fit_table(base, geometry, fit_rows, TARGET, space=space)
        for name, table in (("microbenchmark", base), ("fitted", fitted)):
            report = validate_table(table, val_rows)
            png = scatter_png(args.out / f"{stem}_{name}.png", [r["predicted_ms"] for r in report["rows"]],
                              [r["measured_ms"] for r in report["rows"]], f"{TARGET} {case}: {name} table")
            results.append({"space": space, "setting": setting, "table": name, "n_fit": len(fit_rows), "n_val": report["n"],
                            **{k: report[k] for k in ("mean_abs_pct_error", "median_abs_pct_error", "max_abs_pct_error",
                                                      "within_10pct", "kendall_tau", "mean_signed_pct_error")},
                            "plot": png.name, "rows": report["rows"]})

    print(f"{'space/setting':<18}{'table':<16}{'n_val':>6}{'MAPE %':>9}{'±10 %':>8}{'tau':>7}{'bias %':>8}")
    for r in results:
        print(f"{r['space'] + '/' + r['setting']:<18}{r['table']:<16}{r['n_val']:>6}{r['mean_abs_pct_error']:>9.1f}"
              f"{100 * r['within_10pct']:>8.0f}{r['kendall_tau']:>7.3f}{r['mean_signed_pct_error']:>8.1f}")
    path = atomic_write_json(args.out / "lut_accuracy.json", {
        "benchmark": "lut_accuracy", "target": TARGET, "date": time.strftime("%Y-%m-%d"),
        "fingerprint": environment_fingerprint(1), "goal": {"within_10pct": 0.9, "kendall_tau": 0.9},
        "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
