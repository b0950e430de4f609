"""Architecture diagrams shared by the spaces: cell graphs and layer strips, as SVG, PNG or PDF.

Cells (DARTS, NAS-Bench-201) are drawn as DARTS users know them from the original ``visualize.py``: input
nodes, intermediate nodes, an output node, edges labelled by their op. Graphviz's ``dot`` lays them out when
it is installed (``apt-get install graphviz``); otherwise matplotlib draws the same graph with nodes placed
by depth, so a diagram never needs more than the project's own dependencies. Layer-wise architectures (FBNet,
ProxylessNAS, DNA) are a strip of blocks coloured by kernel size (hue) and expansion (shade), with each
stage's output resolution and width written under it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import BadInputError
from ..io_utils import atomic_write_bytes

FORMATS = ("svg", "png", "pdf")
# Op colours (DARTS visualize.py draws every edge black; colour tells the op at a glance)
OP_COLOURS = {"sep_conv": "#1f77b4", "dil_conv": "#9467bd", "nor_conv": "#1f77b4", "max_pool": "#d62728",
              "avg_pool": "#ff7f0e", "skip_connect": "#2ca02c", "none": "#bbbbbb"}
KERNEL_HUES = {1: "#8c564b", 3: "#1f77b4", 5: "#2ca02c", 7: "#d62728"}


@dataclass(frozen=True)
class CellGraph:
    """One cell: ``inputs`` and ``outputs`` node names, ``nodes`` in between, ``edges`` (source, target, op)."""

    title: str
    inputs: tuple[str, ...]
    nodes: tuple[str, ...]
    outputs: tuple[str, ...]
    edges: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class StripBlock:
    """One layer of a layer-wise network: its block string and the stage text under it (first of a stage)."""

    block: str
    stage_note: str | None = None


def output_format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise BadInputError(f"{path}: diagrams are written as {', '.join('.' + f for f in FORMATS)}; "
                            "choose one of those suffixes")
    return fmt


def _op_colour(op: str) -> str:
    return next((c for prefix, c in OP_COLOURS.items() if op.startswith(prefix)), "#333333")


def cell_dot(cells: Sequence[CellGraph]) -> str:
    """The Graphviz source of ``cells`` (one cluster per cell, left to right)."""
    lines = ["digraph cells {", "  rankdir=LR; fontname=Helvetica; node [fontname=Helvetica, fontsize=12];",
             "  edge [fontname=Helvetica, fontsize=10];"]
    for k, cell in enumerate(cells):
        lines.append(f'  subgraph cluster_{k} {{ label="{cell.title}"; color="#999999";')
        for name in cell.inputs:
            lines.append(f'    "{k}:{name}" [label="{name}", shape=box, style=filled, fillcolor="#a3d9a5"];')
        for name in cell.nodes:
            lines.append(f'    "{k}:{name}" [label="{name}", shape=box, style=filled, fillcolor="#9ecae1"];')
        for name in cell.outputs:
            lines.append(f'    "{k}:{name}" [label="{name}", shape=box, style=filled, fillcolor="#fdd0a2"];')
        for src, dst, op in cell.edges:
            colour = _op_colour(op)
            style = ", style=dashed" if op in ("", "concat") else ""
            label = f', label="{op}"' if op and op != "concat" else ""
            lines.append(f'    "{k}:{src}" -> "{k}:{dst}" [color="{colour}", fontcolor="{colour}"{label}{style}];')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _depths(cell: CellGraph) -> dict[str, int]:
    depth = {name: 0 for name in cell.inputs}
    for _ in range(len(cell.nodes) + len(cell.outputs) + 1):
        for src, dst, _op in cell.edges:
            if src in depth:
                depth[dst] = max(depth.get(dst, 0), depth[src] + 1)
    return depth


def _draw_cells_matplotlib(cells: Sequence[CellGraph], path: Path, fmt: str) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cells), figsize=(6.5 * len(cells), 4.2), squeeze=False)
    for ax, cell in zip(axes[0], cells):
        depth = _depths(cell)
        columns: dict[int, list[str]] = {}
        for name in (*cell.inputs, *cell.nodes, *cell.outputs):
            columns.setdefault(depth.get(name, 0), []).append(name)
        pos = {name: (d, -i + (len(names) - 1) / 2) for d, names in columns.items() for i, name in enumerate(names)}
        for src, dst, op in cell.edges:
            (x0, y0), (x1, y1) = pos[src], pos[dst]
            colour = _op_colour(op)
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(
                arrowstyle="->", color=colour, lw=1.4, linestyle="--" if op in ("", "concat") else "-",
                shrinkA=14, shrinkB=14, connectionstyle="arc3,rad=0.12"))
            if op and op != "concat":
                ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.08, op, color=colour, fontsize=8, ha="center")
        fills = {**{n: "#a3d9a5" for n in cell.inputs}, **{n: "#9ecae1" for n in cell.nodes},
                 **{n: "#fdd0a2" for n in cell.outputs}}
        for name, (x, y) in pos.items():
            ax.text(x, y, name, ha="center", va="center", fontsize=10,
                    bbox=dict(boxstyle="round,pad=0.35", fc=fills[name], ec="#555555"))
        ax.set_title(cell.title)
        ax.set_xlim(-0.6, max(depth.values(), default=0) + 0.6)
        ys = [y for _, y in pos.values()]
        ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
        ax.axis("off")
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format=fmt, dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def draw_cells(cells: Sequence[CellGraph], path: Path | str, engine: str = "auto") -> str:
    """Write ``cells`` to ``path`` (format from its suffix); returns the engine used (``graphviz``/``matplotlib``).

    ``engine``: ``auto`` (Graphviz when ``dot`` is on PATH), ``graphviz`` (an error names the package when
    ``dot`` is missing) or ``matplotlib``.
    """
    path = Path(path)
    fmt = output_format(path)
    dot = shutil.which("dot")
    if engine == "graphviz" and dot is None:
        raise BadInputError("Graphviz's `dot` is not installed; `apt-get install graphviz` (or brew install "
                            "graphviz), or draw with --draw-engine matplotlib")
    if engine in ("auto", "graphviz") and dot is not None:
        done = subprocess.run([dot, f"-T{fmt}"], input=cell_dot(cells).encode(), capture_output=True, timeout=60)
        if done.returncode != 0:
            raise BadInputError(f"dot failed ({done.stderr.decode(errors='replace').strip()[:120]}); "
                                "draw with --draw-engine matplotlib")
        atomic_write_bytes(path, done.stdout)
        return "graphviz"
    atomic_write_bytes(path, _draw_cells_matplotlib(cells, path, fmt))
    return "matplotlib"


def block_kernel_expansion(block: str) -> tuple[int | None, int | None]:
    """(kernel, expansion) of a block string such as ``k5_e6`` or ``k3_e1_g2``; (None, None) for skip/zero."""
    kernel = re.search(r"k(\d+)", block)
    expansion = re.search(r"e(\d+)", block)
    return (int(kernel.group(1)) if kernel else None, int(expansion.group(1)) if expansion else None)


def _shade(hex_colour: str, amount: float) -> str:
    """Mix ``hex_colour`` with white: amount 0 = the colour, 1 = white."""
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


def draw_strip(blocks: Sequence[StripBlock], title: str, path: Path | str) -> str:
    """Write a layer strip (matplotlib) to ``path``; returns ``matplotlib``."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    path = Path(path)
    fmt = output_format(path)
    width = max(6.0, 0.62 * len(blocks) + 1.0)
    fig, ax = plt.subplots(figsize=(width, 2.6))
    expansions = sorted({e for b in blocks for e in [block_kernel_expansion(b.block)[1]] if e is not None}) or [1]
    for i, b in enumerate(blocks):
        kernel, expansion = block_kernel_expansion(b.block)
        if kernel is None:
            colour = "#dddddd"
        else:
            base = KERNEL_HUES.get(kernel, "#7f7f7f")
            rank = expansions.index(expansion) if expansion in expansions else 0
            colour = _shade(base, 0.6 - 0.6 * rank / max(len(expansions) - 1, 1))
        ax.add_patch(FancyBboxPatch((i + 0.06, 0.0), 0.88, 1.0, boxstyle="round,pad=0.02", fc=colour, ec="#444444"))
        ax.text(i + 0.5, 0.5, b.block.replace("_", "\n"), ha="center", va="center", fontsize=7)
        if b.stage_note is not None:
            ax.plot([i, i], [-0.55, 1.1], color="#888888", lw=0.8, ls=":")
            ax.text(i + 0.05, -0.4, b.stage_note, fontsize=7, ha="left", va="center", color="#333333")
    ax.set_xlim(-0.2, len(blocks) + 0.2)
    ax.set_ylim(-0.7, 1.35)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, fc=c) for c in KERNEL_HUES.values()]
    ax.legend(handles, [f"k{k}" for k in KERNEL_HUES], loc="upper right", ncol=4, fontsize=7, frameon=False,
              bbox_to_anchor=(1.0, 1.25))
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format=fmt, dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return "matplotlib"
