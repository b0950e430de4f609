"""`sdnas inspect`: parameters and multiply-adds of the network an architecture would build (any space)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import BadInputError
from .common import cli_errors, print_json, print_table


@cli_errors
def inspect(
    genotype: str = typer.Argument(..., help="genotype.json, a run directory, or a reference name (darts_v2, fbnet_b)."),
    setting: Optional[str] = typer.Option(None, help="The space's setting (darts: cifar, mobile; fbnet/proxyless: "
                                          "imagenet, cifar, small); default: the space's."),
    layers: Optional[int] = typer.Option(None, help="darts only."),
    channels: Optional[int] = typer.Option(None, help="darts only."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", help="Default: 1000 at 224 px, else 10."),
    in_channels: int = typer.Option(3, "--in-channels"),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Default: the setting's (else 32)."),
    draw: Optional[Path] = typer.Option(None, "--draw", metavar="FILE", help="Also write a diagram of the "
                                        "architecture (.svg, .png or .pdf): cells as graphs, layer-wise as a strip."),
    draw_engine: str = typer.Option("auto", "--draw-engine", help="auto (Graphviz if `dot` is installed), "
                                    "graphviz or matplotlib."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Print parameters (aux head excluded) and conv + linear multiply-adds, plus fvcore's FLOPs."""
    from ..hw.targets import table_geometry
    from ..runs import load_arch_arg
    from ..spaces.complexity import inspect_network

    space, arch = load_arch_arg(genotype)
    geometry = table_geometry(space.name, setting or space.setting_for(arch), layers, channels, input_size,
                              in_channels, num_classes)
    info = inspect_network(arch, geometry.setting, num_classes=geometry.num_classes, in_channels=in_channels,
                           input_size=geometry.input_size, layers=layers, channels=channels, space=space)
    if draw is not None:
        if draw_engine not in ("auto", "graphviz", "matplotlib"):
            raise BadInputError(f"--draw-engine {draw_engine!r}: use auto, graphviz or matplotlib")
        info["diagram"] = {"file": str(draw), "engine": space.draw(arch, draw, geometry.setting, draw_engine)}
    if json_out:
        print_json(info)
        return
    rows = [(k, v) for k, v in info.items() if k != "warnings" and not isinstance(v, (dict, list))]
    if draw is not None:
        rows.append(("diagram", f"{draw} ({info['diagram']['engine']})"))
    print_table(f"network: {genotype} ({space.name}, {info['setting']})", rows)
    for warning in info.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
