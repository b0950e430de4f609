"""Few-shot latency tables, leave-one-device-out on the public measurements (issue 9, DESIGN.md §10).

For every public device setting of each space: its table is fitted from n ∈ {5, 10, 20, 50, 100} randomly drawn
measured networks (5 draws each) and scored by Spearman ρ against that device's measurements of every other
usable network. Priors are the shipped tables of the *other physical devices* (every batch setting of the same GPU
is left out too, so a GPU is never predicted from itself at another batch). Columns:

- ``flops``: rank by multiply-adds alone (no measurement);
- ``ridge``: the plain per-key ridge fit (``sdnas lut fit --prior none``);
- ``transfer``: ``sdnas lut fit --prior auto`` (hw/transfer.py);
- ``help``: HELP's published ρ at n = 10 where the paper reports that device.

    .venv/bin/python bench/lut_transfer.py [--spaces nb201,fbnet] [--ns 5,10,20,50,100] [--draws 5]

Prints a table per space and writes ``bench/results/lut_transfer.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdnas_deploy.hw.fit import DEFAULT_L2, design_matrix, nnls_ridge  # noqa: E402
from sdnas_deploy.hw.flops import flops_of  # noqa: E402
from sdnas_deploy.hw.lut import load_table  # noqa: E402
from sdnas_deploy.hw.public import device_rows, devices_of, public_geometry  # noqa: E402
from sdnas_deploy.hw.targets import resolve_table  # noqa: E402
from sdnas_deploy.hw.transfer import prior_vectors, transfer_weights  # noqa: E402
from sdnas_deploy.hw.validate import spearman  # noqa: E402
from sdnas_deploy.io_utils import atomic_write_json  # noqa: E402
from sdnas_deploy.spaces import get_space  # noqa: E402

# HELP (NeurIPS 2021) Table: Spearman ρ with 10 measured architectures on its unseen devices (DESIGN.md §10).
HELP_RHO = {"nb201": {"pixel2": 0.802, "raspi4": 0.890, "eyeriss": 0.940, "fpga": 0.985},
            "fbnet": {"raspi4": 0.887, "eyeriss": 0.943, "fpga": 0.892}}
HELP_MEAN = {"nb201": 0.932, "fbnet": 0.910}


def run_space(space: str, ns: list[int], draws: int) -> dict:
    impl = get_space(space)
    geometry = public_geometry(space)
    keys = impl.candidate_keys(geometry)
    devices = devices_of(space)
    tables = {d.name: load_table(resolve_table(d.name, "cifar", space=space)) for d in devices}
    rows0 = device_rows(space, devices[0])
    archs = [impl.arch_from_string(r["arch"]) for r in rows0]
    X = design_matrix(archs, geometry, space, keys)[1]
    macs = X[:, :-1] @ np.array([flops_of(impl, k, geometry) for k in keys])
    result: dict = {"space": space, "geometry": geometry.to_dict(), "devices": {}}
    rng = np.random.default_rng(0)
    for device in devices:
        rows = device_rows(space, device)
        assert [r["arch"] for r in rows] == [r["arch"] for r in rows0]
        y = np.array([r["latency_ms"] for r in rows])
        priors = [tables[d.name] for d in devices if d.family != device.family]
        P = np.stack([p.vector for p in prior_vectors(priors, keys, space, geometry)], axis=1)
        entry: dict = {"flops": spearman(macs, y), "help_n10": HELP_RHO[space].get(device.name), "n": {}}
        for n in ns:
            ridge, transfer, models = [], [], []
            for _ in range(draws):
                pick = rng.choice(len(y), n, replace=False)
                rest = np.setdiff1d(np.arange(len(y)), pick)
                Xs, ys = X[pick], y[pick]
                _, Xd, _ = design_matrix([archs[i] for i in pick], geometry, space)
                lam = DEFAULT_L2 * float(np.mean(np.sum(Xd**2, axis=0)))
                w_ridge_seen = nnls_ridge(Xd, ys, lam)  # the plain fit knows only the keys its rows contain
                seen_keys = sorted(set().union(*(impl.network_keys(archs[i], geometry) for i in pick)))
                w_ridge = np.zeros(len(keys) + 1)
                for j, k in enumerate(seen_keys):
                    w_ridge[keys.index(k)] = w_ridge_seen[j]
                w_ridge[-1] = w_ridge_seen[-1]
                w, model, _ = transfer_weights(Xs, ys, P)
                ridge.append(spearman(X[rest] @ w_ridge, y[rest]) or 0.0)
                transfer.append(spearman(X[rest] @ w, y[rest]) or 0.0)
                models.append(model)
            entry["n"][n] = {"ridge": float(np.mean(ridge)), "transfer": float(np.mean(transfer)),
                             "transfer_min": float(np.min(transfer)), "models": models}
        result["devices"][device.name] = entry
        print(f"  {space} {device.name:18s} flops {entry['flops']:.3f}  " + "  ".join(
            f"n={n}: ridge {entry['n'][n]['ridge']:.3f} transfer {entry['n'][n]['transfer']:.3f}" for n in ns),
            flush=True)
    result["mean"] = {n: {"ridge": float(np.mean([e["n"][n]["ridge"] for e in result["devices"].values()])),
                          "transfer": float(np.mean([e["n"][n]["transfer"] for e in result["devices"].values()]))}
                      for n in ns}
    result["mean_flops"] = float(np.mean([e["flops"] for e in result["devices"].values()]))
    result["help_mean_n10"] = HELP_MEAN[space]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", default="nb201,fbnet")
    parser.add_argument("--ns", default="5,10,20,50,100")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    ns = [int(v) for v in args.ns.split(",")]
    started = time.time()
    results = {}
    for space in args.spaces.split(","):
        results[space] = run_space(space, ns, args.draws)
    for space, res in results.items():
        print(f"\n{space}: mean Spearman ρ over {len(res['devices'])} devices (leave-one-device-out, "
              f"{args.draws} draws per n)")
        print(f"  {'device':18s} {'flops':>6s} " + " ".join(f"{'ridge@' + str(n):>9s} {'xfer@' + str(n):>9s}"
                                                             for n in ns) + "  help@10")
        for name, e in res["devices"].items():
            help_rho = "" if e["help_n10"] is None else f"{e['help_n10']:.3f}"
            print(f"  {name:18s} {e['flops']:6.3f} " + " ".join(
                f"{e['n'][n]['ridge']:9.3f} {e['n'][n]['transfer']:9.3f}" for n in ns) + f"  {help_rho}")
        print(f"  {'MEAN':18s} {res['mean_flops']:6.3f} " + " ".join(
            f"{res['mean'][n]['ridge']:9.3f} {res['mean'][n]['transfer']:9.3f}" for n in ns)
            + f"  {res['help_mean_n10']:.3f} (HELP's own devices)")
    out = ROOT / "bench" / "results" / "lut_transfer.json"
    atomic_write_json(out, {"ns": ns, "draws": args.draws, "seconds": time.time() - started, "results": results})
    print(f"\nwrote {out} ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
