"""`verirag models`: the bundled models, and whether each resolves."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from verirag.core.registry import REGISTRY, ModelError, resolve_model
from verirag.pipeline.cli.common import DataDirOpt, load_settings, out


def models(
    verify: Annotated[bool, typer.Option(help="resolve and sha256-check every model")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """The bundled models: name, role, package, licence (and whether each resolves)."""
    settings = load_settings(data_dir=data_dir)
    table = Table("name", "kind", "model", "licence", *(["status"] if verify else []), box=None)
    bad = 0
    for model in REGISTRY.values():
        row = [model.name, model.kind, model.title, model.licence]
        if verify:
            try:
                resolve_model(model.name, settings.models_dir)
                row.append("[green]ok[/]")
            except ModelError as exc:
                bad += 1
                row.append(f"[red]{exc}[/]")
        table.add_row(*row)
    out.print(table)
    if bad:
        raise typer.Exit(4)
