"""Public whole-network latency measurements of real devices (HELP, MIT; latency_tables/public/LICENSE-HELP.md).

The shipped CSVs hold every NAS-Bench-201 cell (15,625) and 5,000 FBNet-space networks, each measured on up to
20 device settings. :data:`DEVICES` names each setting (``raspi4``, ``pixel2``, ``gtx1080ti-b1``, ...; the
source's column name is an alias), says what the source says about it — batch from the column suffix, precision
and runtime "not stated", and for the HW-NAS-Bench devices that their FBNet values are layer-table sums — and
:func:`device_rows` gives its measurements as the rows `lut fit` / `lut validate` read. The geometry they describe
is each space's ``cifar`` network at 32x32x3 (:func:`public_geometry`).
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..errors import BadInputError
from ..registry import lookup
from ..resources import data_dir

SOURCE = "HELP (Lee et al., NeurIPS 2021; github.com/HayeonLee/HELP, MIT)"
NOT_STATED = "not stated"
FILES = {"nb201": "help_nb201_latency_ms.csv.gz", "fbnet": "help_fbnet_latency_ms.csv.gz"}
ARCH_COLUMNS = {"nb201": "arch_str", "fbnet": "blocks"}
LAYER_TABLE_SUMS = "values are sums of per-layer lookup tables (HW-NAS-Bench), not whole-network timings"


@dataclass(frozen=True)
class PublicDevice:
    """One device setting of the public data: our name, the source's column per space, and what is known."""

    name: str
    columns: dict[str, str]  # space -> column in that space's CSV
    kind: str  # gpu | cpu | phone | embedded | accelerator
    description: str
    batch: int = 1
    aliases: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)  # space -> caveat stated where the values are used

    @property
    def family(self) -> str:
        """The physical device (settings of one GPU at other batch sizes share it)."""
        return self.name.rsplit("-b", 1)[0] if self.kind == "gpu" else self.name

    def describe(self, space: str) -> dict[str, Any]:
        return {"device": self.name, "source": SOURCE, "column": self.columns[space], "kind": self.kind,
                "batch": self.batch, "precision": NOT_STATED, "runtime": NOT_STATED,
                "note": self.notes.get(space)}


def _gpu(name: str, column: str, label: str) -> list[PublicDevice]:
    found = []
    for batch, spaces in ((1, ("nb201", "fbnet")), (32, ("nb201", "fbnet")), (64, ("fbnet",)), (256, ("nb201",))):
        found.append(PublicDevice(f"{name}-b{batch}", {s: f"{column}_{batch}" for s in spaces}, "gpu",
                                  f"{label} desktop GPU, batch {batch}", batch,
                                  aliases=tuple(dict.fromkeys((f"{column}_{batch}",)
                                                              + ((name, column) if batch == 1 else ())))))
    return found


def _one(name: str, column: str, kind: str, label: str, notes: dict[str, str] | None = None,
         aliases: tuple[str, ...] = ()) -> PublicDevice:
    return PublicDevice(name, {"nb201": column, "fbnet": column}, kind, label, 1,
                        aliases=tuple(a for a in (column,) + aliases if a != name), notes=notes or {})


_HW_NAS_BENCH = {"fbnet": LAYER_TABLE_SUMS}
DEVICES: list[PublicDevice] = [
    *_gpu("gtx1080ti", "1080ti", "NVIDIA GTX 1080 Ti"),
    *_gpu("rtx2080ti", "2080ti", "NVIDIA RTX 2080 Ti"),
    *_gpu("titanx", "titanx", "NVIDIA Titan X"),
    *_gpu("titanxp", "titanxp", "NVIDIA Titan Xp"),
    _one("xeon-gold-6240", "gold_6240", "cpu", "Intel Xeon Gold 6240 CPU"),
    _one("xeon-silver-4210r", "silver_4210r", "cpu", "Intel Xeon Silver 4210R CPU"),
    _one("pixel2", "pixel2", "phone", "Google Pixel 2 phone (integer ms in the source)"),
    _one("samsung-a50", "samsung_a50", "phone", "Samsung Galaxy A50 phone (integer ms in the source)"),
    _one("essential-ph1", "essential_ph_1", "phone", "Essential PH-1 phone (integer ms in the source)"),
    _one("raspi4", "raspi4", "embedded", "Raspberry Pi 4 (HW-NAS-Bench)", _HW_NAS_BENCH, ("raspberry-pi-4",)),
    _one("eyeriss", "eyeriss", "accelerator", "Eyeriss accelerator, simulated (HW-NAS-Bench)", _HW_NAS_BENCH),
    _one("fpga", "fpga", "accelerator", "FPGA accelerator, simulated (HW-NAS-Bench)", _HW_NAS_BENCH),
]
DEVICES_BY_NAME: dict[str, PublicDevice] = {d.name: d for d in DEVICES}
ALIASES: dict[str, str] = {alias: d.name for d in DEVICES for alias in d.aliases}


def get_device(name: str) -> PublicDevice:
    """A public device by name or alias (BadInputError with a suggestion)."""
    return lookup(DEVICES_BY_NAME, ALIASES.get(name, name), "public device")


def devices_of(space: str) -> list[PublicDevice]:
    """The devices measured on ``space`` (nb201 or fbnet)."""
    return [d for d in DEVICES if space in d.columns]


def public_geometry(space: str) -> Any:
    """The network the public data measured: the space's ``cifar`` table network (32x32x3, 100 classes: FBNet's is
    HW-NAS-Bench's CIFAR-100 network; for NB201 the source states no class count — the classifier is < 0.1% of the
    multiply-adds — and HELP's NB201 experiments are on CIFAR-100)."""
    from ..spaces import get_space

    if space not in FILES:
        raise BadInputError(f"no public measurements of space {space!r}; they exist for {', '.join(FILES)}")
    impl = get_space(space)
    spec = impl.setting("cifar")
    return impl.geometry("cifar", input_size=spec.table_input_size, in_channels=3,
                         num_classes=spec.table_num_classes or 10)


def table_filename(device: str, space: str) -> str:
    """``public/<device>_<space>_cifar.json`` (relative to latency_tables/): where a public device's table ships."""
    return f"public/{device}_{space}_cifar.json"


@lru_cache(maxsize=None)
def _table(space: str) -> tuple[tuple[str, ...], dict[str, tuple[float, ...]]]:
    if space not in FILES:
        raise BadInputError(f"no public measurements of space {space!r}; they exist for {', '.join(FILES)}")
    path = data_dir("latency_tables") / "public" / FILES[space]
    if not path.is_file():
        raise BadInputError(f"{path}: the public measurements are missing from this install; reinstall sdnas")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        reader = csv.reader(io.StringIO(handle.read()))
        header = next(reader)
        rows = list(reader)
    arch_col = header.index(ARCH_COLUMNS[space])
    archs = tuple(r[arch_col] for r in rows)
    values = {name: tuple(float(r[j]) for r in rows) for j, name in enumerate(header) if j > arch_col}
    return archs, values


def public_archs(space: str) -> tuple[str, ...]:
    """Every architecture of the public data of ``space`` (one-line arch strings), in the source's order."""
    return _table(space)[0]


@lru_cache(maxsize=None)
def usable(space: str) -> tuple[bool, ...]:
    """Per public architecture, whether it computes something (``Space.degenerate`` is None). HW-NAS-Bench's
    Raspberry Pi timed the ~2% of NB201 cells whose output ignores the input at ~0.01 ms (the runtime folds the
    dead graph); no additive model, and no search, is about them, so fits and validations leave them out."""
    from ..spaces import get_space

    impl = get_space(space)
    return tuple(impl.degenerate(impl.arch_from_string(a)) is None for a in public_archs(space))


def device_rows(space: str, device: str | PublicDevice) -> list[dict[str, Any]]:
    """``{arch, latency_ms}`` per usable measured network of ``device`` on ``space`` (see :func:`usable`)."""
    dev = get_device(device) if isinstance(device, str) else device
    if space not in dev.columns:
        raise BadInputError(f"public device {dev.name!r} has no measurements of space {space!r}; "
                            f"it has {', '.join(dev.columns)}")
    archs, values = _table(space)
    column = values[dev.columns[space]]
    return [{"arch": a, "latency_ms": v} for a, v, ok in zip(archs, column, usable(space)) if ok and v > 0]
