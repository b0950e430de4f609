"""`sdnas inspect`: parameters and multiply-adds of the network a genotype would build."""

from __future__ import annotations

from typing import Optional

import typer

from .common import cli_errors, print_json, print_table


@cli_errors
def inspect(
    genotype: str = typer.Argument(..., help="genotype.json, a run directory, or a reference name (darts_v2)."),
    setting: str = typer.Option("cifar", help="cifar or mobile."),
    layers: Optional[int] = typer.Option(None),
    channels: Optional[int] = typer.Option(None),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", help="Default: 10 (cifar) / 1000 (mobile)."),
    in_channels: int = typer.Option(3, "--in-channels"),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Default: 32 (cifar) / 224 (mobile)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Print parameters (aux head excluded) and multiply-adds counted the DARTS way, plus fvcore's FLOPs."""
    from ..nets.complexity import inspect_network
    from ..runs import load_genotype_arg

    geno = load_genotype_arg(genotype)
    mobile = setting == "mobile"
    info = inspect_network(
        geno, setting, num_classes=num_classes or (1000 if mobile else 10), in_channels=in_channels,
        input_size=input_size or (224 if mobile else 32), layers=layers, channels=channels,
    )
    if json_out:
        print_json(info)
        return
    rows = [(k, v) for k, v in info.items() if k != "warnings" and not isinstance(v, (dict, list))]
    print_table(f"network: {genotype} ({setting})", rows)
    for warning in info.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
