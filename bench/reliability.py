"""Bad inputs and kill -9 trials against the real `sdnas` console script (issue 12's evidence).

**Bad inputs**: every case runs `sdnas ...` in a fresh process and must exit with its code (2 for bad input, 3 for
a failed verification) within ``--timeout`` seconds, print exactly one `error:` line on stderr and no traceback, and
leave the files it was handed byte-identical. Cases are grouped by kind (files, numbers, paths, architectures,
tables, recipes, checkpoints, artifacts).

**Kill/resume**: a tiny search and a tiny training run are started, killed with SIGKILL at a random moment, resumed
with `--resume` until they finish, and compared with an uninterrupted run: the final report figures and the
architecture / weights must be identical, every JSON file must parse, and no `.NAME.*.tmp` file may remain.

    .venv/bin/python bench/reliability.py [--kills 6] [--timeout 60] [--out runs/bench-reliability]

Prints a table and writes ``bench/results/reliability.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SDNAS = [sys.executable, "-m", "sdnas_deploy.cli.main"]
DEMO = ROOT / "export" / "demo"
TINY_SEARCH = ["search", "--layers", "3", "--channels", "2", "--limit", "96", "--epochs", "4", "--batch-size", "16",
               "--steps-per-epoch", "3", "--method", "sd-darts", "--teachers", "1", "--teacher-interval", "1",
               "--distill-warmup", "1", "--seed", "0", "--device", "cpu"]
TINY_TRAIN = ["train", "darts_v2", "--layers", "3", "--channels", "4", "--limit", "96", "--epochs", "4",
              "--batch-size", "16", "--seed", "0", "--device", "cpu", "--no-auxiliary"]


def run(args: list[str], timeout: float, cwd: Path) -> tuple[int, str, str, float]:
    started = time.perf_counter()
    try:
        proc = subprocess.run([*SDNAS, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started
    except subprocess.TimeoutExpired:
        return -1, "", "timeout", time.perf_counter() - started


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def make_inputs(work: Path) -> dict[str, Path]:
    """The bad files the cases hand to the tool."""
    work.mkdir(parents=True, exist_ok=True)
    files = {
        "deep.json": "[" * 200_000 + "]" * 200_000,
        "bomb.yaml": "a: &a [" + ",".join(['"x"'] * 9) + "]\n" + "\n".join(
            f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi")) + "\n",
        "pytag.yaml": 'search: !!python/object/apply:os.system ["true"]\n',
        "broken.yaml": "search: {epochs: [[[\n",
        "unknown_key.yaml": "search: {epocs: 3}\n",
        "bad_format.yaml": "export: {format: onxx}\n",
        "bad_device.yaml": "profile: {device: gpu0}\n",
        "nan_gates.yaml": "max_latency_ms: .nan\n",
        "arch_unknown_op.json": json.dumps({"space": "fbnet", "blocks": ["k9_e9"] * 12}),
        "arch_other_space.json": json.dumps({"space": "nb201", "edges": ["none"] * 6}),
        "arch_wrong_count.json": json.dumps({"space": "fbnet", "setting": "small", "blocks": ["k3_e1"] * 5}),
        "arch_not_object.json": "[1, 2, 3]",
        "table_bad_schema.json": json.dumps({"schema": "nope"}),
        "table_nan.json": "{\"schema\": \"sdnas-lut/1\", \"entries\": NaN}",
        "measure.csv": "arch,latency_ms\nnb201:|bogus~0|,nan\n",
    }
    paths = {}
    for name, text in files.items():
        paths[name] = work / name
        paths[name].write_text(text)
    (work / "latin.yaml").write_bytes(b"search:\n  dataset: caf\xe9\n")
    paths["latin.yaml"] = work / "latin.yaml"
    (work / "corrupt.safetensors").write_bytes(b"\x00" * 64)
    paths["corrupt.safetensors"] = work / "corrupt.safetensors"
    (work / "afile").write_text("keep")
    paths["afile"] = work / "afile"
    search_dir = work / "corrupt-search"
    search_dir.mkdir(exist_ok=True)
    (search_dir / "config.json").write_text(json.dumps({"space": "darts"}))
    (search_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    paths["corrupt-search"] = search_dir
    model = work / "model"
    model.mkdir(exist_ok=True)
    for name in ("model.onnx", "model.json"):
        shutil.copy(DEMO / name, model / name)
    side = json.loads((model / "model.json").read_text())
    side["sha256"] = "0" * 64
    (work / "mismatch").mkdir(exist_ok=True)
    shutil.copy(DEMO / "model.onnx", work / "mismatch" / "model.onnx")
    (work / "mismatch" / "model.json").write_text(json.dumps(side))
    paths["model"], paths["mismatch"] = model / "model.onnx", work / "mismatch" / "model.onnx"
    return paths


def cases(p: dict[str, Path], work: Path) -> list[tuple[str, str, list[str], int]]:
    """(kind, what, arguments, expected exit code)."""
    onnx, out = str(p["model"]), str(work / "out")
    return [
        ("usage", "integer flag 'abc'", ["search", "--epochs", "abc"], 2),
        ("usage", "missing argument", ["train"], 2),
        ("usage", "unknown command", ["serch"], 2),
        ("usage", "unknown option", ["check", onnx, "--bogus"], 2),
        ("files", "JSON nested 200k deep", ["inspect", str(p["deep.json"])], 2),
        ("files", "YAML alias bomb", ["search", "--recipe", str(p["bomb.yaml"]), "--out", out], 2),
        ("files", "YAML Python tag", ["search", "--recipe", str(p["pytag.yaml"]), "--out", out], 2),
        ("files", "YAML syntax error", ["search", "--recipe", str(p["broken.yaml"]), "--out", out], 2),
        ("files", "non-UTF-8 recipe", ["search", "--recipe", str(p["latin.yaml"]), "--out", out], 2),
        ("files", "directory as recipe", ["search", "--recipe", str(work), "--out", out], 2),
        ("files", "missing recipe", ["search", "--recipe", str(work / "nope.yaml"), "--out", out], 2),
        ("files", "corrupt weights", ["export", str(p["corrupt.safetensors"]), "--out", out], 2),
        ("recipes", "unknown key", ["search", "--recipe", str(p["unknown_key.yaml"]), "--out", out], 2),
        ("recipes", "bad export format (run)", ["run", "--recipe", str(p["bad_format.yaml"]), "--out", out], 2),
        ("recipes", "bad profile device (run)", ["run", "--recipe", str(p["bad_device.yaml"]), "--out", out], 2),
        ("numbers", "check --max-latency-ms nan", ["check", onnx, "--max-latency-ms", "nan"], 2),
        ("numbers", "check --max-latency-ms -1", ["check", onnx, "--max-latency-ms", "-1"], 2),
        ("numbers", "gate profile with NaN", ["check", onnx, "--gates", str(p["nan_gates.yaml"])], 2),
        ("numbers", "profile --duration-s nan", ["profile", onnx, "--duration-s", "nan"], 2),
        ("numbers", "profile --duration-s inf", ["profile", onnx, "--duration-s", "inf"], 2),
        ("numbers", "search --lr nan", ["search", "--lr", "nan", "--out", out], 2),
        ("numbers", "search --layers 2", ["search", "--layers", "2", "--out", out], 2),
        ("numbers", "inspect --input-size 0", ["inspect", "darts_v2", "--input-size", "0"], 2),
        ("numbers", "inspect --input-size 100000", ["inspect", "fbnet_b", "--input-size", "100000"], 2),
        ("paths", "--out is a file (search)", ["search", "--out", str(p["afile"])], 2),
        ("paths", "--out inside a file (export)", ["export", str(DEMO / "model.safetensors"), "--out",
                                                   str(p["afile"] / "sub")], 2),
        ("paths", "--out /proc/x (profile)", ["profile", onnx, "--out", "/proc/sdnas-x"], 2),
        ("architectures", "unknown block", ["inspect", str(p["arch_unknown_op.json"])], 2),
        ("architectures", "wrong layer count", ["train", str(p["arch_wrong_count.json"]), "--setting", "small",
                                                "--out", out], 2),
        ("architectures", "not an object", ["inspect", str(p["arch_not_object.json"])], 2),
        ("architectures", "DNA on a cell space", ["search", "--method", "dna", "--space", "darts", "--out", out], 2),
        ("tables", "wrong schema", ["profile", onnx, "--compare-lut", str(p["table_bad_schema.json"])], 2),
        ("tables", "NaN in JSON", ["profile", onnx, "--compare-lut", str(p["table_nan.json"])], 2),
        ("tables", "CSV with unknown ops", ["lut", "fit", "--space", "nb201", "--measurements",
                                           str(p["measure.csv"]), "--out", str(work / "t.json")], 2),
        ("checkpoints", "corrupt search checkpoint", ["search", "--resume", "--out", str(p["corrupt-search"])], 2),
        ("artifacts", "model and sidecar mismatch", ["check", str(p["mismatch"]), "--max-latency-ms", "100"], 3),
        ("artifacts", "--expect-sha256 of another file", ["check", onnx, "--max-latency-ms", "100",
                                                          "--expect-sha256", "0" * 64], 3),
    ]


def bad_inputs(work: Path, timeout: float) -> list[dict]:
    paths = make_inputs(work)
    rows = []
    for kind, what, args, expected in cases(paths, work):
        before = digest(work)
        code, stdout, stderr, seconds = run(args, timeout, work)
        lines = [line for line in stderr.strip().splitlines() if line]
        after = {k: v for k, v in digest(work).items() if not k.startswith("out")}
        ok = (code == expected and len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in
              stdout + stderr and all(after.get(k) == v for k, v in before.items() if not k.startswith("out")))
        rows.append({"kind": kind, "case": what, "expected": expected, "exit": code, "seconds": round(seconds, 2),
                     "ok": ok, "message": lines[0][:160] if lines else stderr[:160]})
        shutil.rmtree(work / "out", ignore_errors=True)
    return rows


def _content_hash(path: Path) -> str:
    """A file's content: for .safetensors the tensors and metadata (the library writes its header's metadata keys
    in no fixed order, so equal files can differ byte-wise), else the bytes."""
    if path.suffix != ".safetensors":
        return hashlib.sha256(path.read_bytes()).hexdigest()
    from safetensors import safe_open

    digest = hashlib.sha256()
    with safe_open(str(path), framework="numpy") as f:
        digest.update(json.dumps(f.metadata(), sort_keys=True).encode())
        for key in sorted(f.keys()):
            digest.update(key.encode() + f.get_tensor(key).tobytes())
    return digest.hexdigest()


def _final(folder: Path, files: tuple[str, ...]) -> dict:
    report = json.loads((folder / "report.json").read_text())
    final = report.get("final", {})
    keep = {k: final.get(k) for k in ("genotype", "arch_string", "supernet_val_acc", "best_top1", "last_top1")}
    return {"final": keep, "status": report.get("status"),
            "files": {f: _content_hash(folder / f) for f in files if (folder / f).is_file()}}


def kill_trials(kind: str, args: list[str], files: tuple[str, ...], work: Path, kills: int, seed: int) -> list[dict]:
    """Run uninterrupted once, then ``kills`` times: kill -9 at a random moment, resume until done, compare."""
    reference = work / f"{kind}-reference"
    shutil.rmtree(reference, ignore_errors=True)
    started = time.perf_counter()
    code, *_ = run([*args, "--out", str(reference)], 600, work)
    full_s = time.perf_counter() - started
    want = _final(reference, files) if code == 0 else None
    rng = random.Random(seed)
    rows = []
    for trial in range(kills):
        folder = work / f"{kind}-killed-{trial}"
        shutil.rmtree(folder, ignore_errors=True)
        delay = rng.uniform(0.3, 0.9) * full_s
        proc = subprocess.Popen([*SDNAS, *args, "--out", str(folder)], cwd=work, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        resumes = 0
        code = 0
        while not (folder / "report.json").is_file() or json.loads((folder / "report.json").read_text()).get(
                "status") not in ("complete", "finished"):
            resumes += 1
            code, *_ = run([*args, "--out", str(folder), "--resume"], 600, work)
            if code != 0 or resumes > 3:
                break
        parse_ok = all(_parses(p) for p in folder.glob("*.json"))
        temps = [p.name for p in folder.glob(".*.tmp")]
        same = code == 0 and want is not None and _final(folder, files) == want
        rows.append({"kind": kind, "trial": trial, "killed_after_s": round(delay, 1), "killed": killed,
                     "resumes": resumes, "identical": same, "json_parse": parse_ok, "temp_files_left": len(temps)})
    return rows


def recompare(work: Path) -> None:
    """Re-judge ``identical`` for the trials in bench/results/reliability.json from their folders."""
    path = ROOT / "bench" / "results" / "reliability.json"
    data = json.loads(path.read_text())
    files = {"search": ("genotype.json", "alpha_history.json"), "train": ("best.safetensors", "last.safetensors")}
    for trial in data["kill_trials"]:
        want = _final(work / f"{trial['kind']}-reference", files[trial["kind"]])
        got = _final(work / f"{trial['kind']}-killed-{trial['trial']}", files[trial["kind"]])
        trial["identical"] = got == want
        trial["temp_files_left"] = len(list((work / f"{trial['kind']}-killed-{trial['trial']}").glob(".*.tmp")))
    data["summary"]["kills"]["identical"] = sum(t["identical"] for t in data["kill_trials"])
    data["summary"]["kills"]["temp_files_left"] = sum(t["temp_files_left"] for t in data["kill_trials"])
    path.write_text(json.dumps(data, indent=1))
    print(json.dumps(data["summary"]["kills"]))


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_text())
        return True
    except ValueError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--out", default="runs/bench-reliability")
    parser.add_argument("--recompare", action="store_true", help="only compare the kill trials already in --out "
                        "with their reference again (after finishing a resume by hand)")
    args = parser.parse_args()
    work = (ROOT / args.out).resolve()
    if args.recompare:
        recompare(work)
        return
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows = bad_inputs(work / "inputs", args.timeout)
    print(f"{'kind':14s} {'case':34s} {'exit':>4} {'want':>4} {'s':>5}  ok  message")
    for r in rows:
        print(f"{r['kind']:14s} {r['case']:34s} {r['exit']:>4} {r['expected']:>4} {r['seconds']:5.1f}  "
              f"{'yes' if r['ok'] else 'NO ':3s} {r['message'][:90]}")
    trials = (kill_trials("search", TINY_SEARCH, ("genotype.json", "alpha_history.json"), work, args.kills, 0)
              + kill_trials("train", TINY_TRAIN, ("best.safetensors", "last.safetensors"), work, args.kills, 1))
    print(f"\n{'run':7s} {'trial':>5} {'killed at s':>11} {'resumes':>7} {'identical':>9} {'JSON ok':>7} {'tmp left':>8}")
    for t in trials:
        print(f"{t['kind']:7s} {t['trial']:>5} {t['killed_after_s']:>11} {t['resumes']:>7} {str(t['identical']):>9} "
              f"{str(t['json_parse']):>7} {t['temp_files_left']:>8}")
    by_kind: dict[str, list[int]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], [0, 0])
        by_kind[r["kind"]][0] += 1
        by_kind[r["kind"]][1] += int(r["ok"])
    summary = {"bad_inputs": {k: {"cases": n, "ok": ok} for k, (n, ok) in by_kind.items()},
               "kills": {"trials": len(trials), "identical": sum(t["identical"] for t in trials),
                         "json_parse": sum(t["json_parse"] for t in trials),
                         "temp_files_left": sum(t["temp_files_left"] for t in trials)}}
    print(json.dumps(summary, indent=1))
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "reliability.json").write_text(json.dumps(
        {"summary": summary, "bad_inputs": rows, "kill_trials": trials}, indent=1))


if __name__ == "__main__":
    main()
